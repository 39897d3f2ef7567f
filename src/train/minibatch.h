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
#include "escala/models/model.h"
#include "escala/train/trainer.h"

namespace escala::train {

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
};

TrainResult FitMinibatch(const MinibatchInputs& in);

}  // namespace escala::train

#endif  // ESCALA_SRC_TRAIN_MINIBATCH_H_
