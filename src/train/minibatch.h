// The minibatch training loop behind Trainer::Fit: epochs of globally shuffled batches, each
// stepped by a TrainBackend (the CPU one unless TrainOptions::backend names another), with
// resume, validation, early stopping, divergence checks, checkpoints and the history around it.
// Private to src/train.
#ifndef ESCALA_SRC_TRAIN_MINIBATCH_H_
#define ESCALA_SRC_TRAIN_MINIBATCH_H_

#include <cstdint>
#include <functional>
#include <span>

#include "escala/core/communicator.h"
#include "escala/core/matrix.h"
#include "escala/models/model.h"
#include "escala/train/trainer.h"

namespace escala::train {

// Batches read as training needs them (Trainer::FitStreamed), instead of a shard in memory:
// batch j of an epoch is this rank's rows [0, count) of a fixed staging buffer, which the
// backend reads by index; every rank steps batches_per_epoch() times an epoch (a rank whose rows
// ran out steps with none).
class BatchFeed {
 public:
  virtual ~BatchFeed() = default;
  // The staging rows (max_batch_rows() of them), labels and row identities (dropout keys).
  virtual ConstMatrixViewF features() const = 0;
  virtual std::span<const float> labels() const = 0;
  virtual std::span<const std::uint64_t> row_ids() const = 0;
  virtual std::int64_t max_batch_rows() const = 0;
  virtual std::uint64_t batches_per_epoch() const = 0;
  // Starts reading `epoch`; Next(j) then fills batch j (j increases by one from 0; a resumed
  // epoch asks for its first batches and drops them) and returns this rank's rows in it and the
  // rows over all ranks.
  virtual void StartEpoch(int epoch) = 0;
  virtual std::pair<std::int64_t, std::uint64_t> Next(std::uint64_t j) = 0;
};

struct MinibatchInputs {
  models::GradientModel& model;
  const TrainOptions& options;  // validated, metric resolved
  Communicator& comm;
  int threads = 1;
  const DataShard& train;
  const DataShard* valid = nullptr;
  std::span<const std::uint64_t> row_ids;  // dense global ids of train's rows
  std::uint64_t global_rows = 0;
  // Metrics of the current parameters on the validation data (empty without).
  std::function<Metrics()> validate;
  // Streamed training: the batches come from here, and `train` and `row_ids` are not read.
  BatchFeed* feed = nullptr;
  // The training rows' mean weight over all ranks (1 without weights): a batch's gradient is
  // divided by its row count times this.
  double mean_weight = 1.0;
};

TrainResult FitMinibatch(const MinibatchInputs& in);

}  // namespace escala::train

#endif  // ESCALA_SRC_TRAIN_MINIBATCH_H_
