// Training: data-parallel minibatch training and full-batch L-BFGS behind one entry point.
//
// The trainer is written against a Communicator from the start: a single process trains with
// the size-1 communicator, N workers (threads or processes) with a real one, and the code path
// is the same. Its contract, which the distributed runtime relies on:
//
//   N ranks with global batch size B, the same data (split into any shards) and the same seed
//   produce the same model as one rank with batch B, up to floating-point rounding.
//
// It holds because every decision is a pure function of global row identities: the epoch's
// shuffle is a keyed permutation of global row ids (each rank places its own rows without
// communication), global batch j is positions [jB, (j+1)B) of that order, each rank sums the loss
// gradient over its rows of batch j, the sums are all-reduced and divided once by the global
// batch size, and dropout masks are keyed by (seed, step, row id).
//
// Within a rank, the local part of each batch is split over threads (each with its own
// workspace and gradient buffer, summed in a fixed order); the hot loop allocates nothing per
// batch. Validation runs every epoch; early stopping, checkpoints (atomic, resumable to the
// exact same state) and a per-epoch history are built in.
//
// Thread-safety: a Trainer is used from one thread; it runs its own parallel loops.
#ifndef ESCALA_TRAIN_TRAINER_H_
#define ESCALA_TRAIN_TRAINER_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "escala/core/communicator.h"
#include "escala/core/matrix.h"
#include "escala/io/history.h"
#include "escala/models/model.h"
#include "escala/train/backend.h"
#include "escala/train/metrics.h"
#include "escala/train/optimizer.h"

namespace escala::train {

// One rank's share of a dataset.
struct DataShard {
  ConstMatrixViewF features;      // rows x model.num_features()
  std::span<const float> labels;  // one per row
  // Dense global row identities in [0, total rows over all ranks). Empty: derived from rank
  // order, i.e. rank r's rows follow rank r-1's (true for contiguous splits).
  std::span<const std::uint64_t> row_ids;
  // Per-row weights (finite, >= 0), one per row; empty: every row weighs 1. A row's loss and
  // gradient count its weight times: integer weights train as duplicated rows would (exactly for
  // L-BFGS and boosted trees), weight 0 as a dropped row. Normalisations divide by the weight sum
  // over all ranks where they divided by the row count (docs/training.md, "Sample weights").
  std::span<const float> weights;

  std::int64_t rows() const { return features.rows(); }
  bool weighted() const { return !weights.empty(); }
};

// Throws kInvalidArgument unless `weights` is empty or holds one finite weight >= 0 per row of
// `rows`, and, over all ranks, some weight is positive. `what` names the weights in the message
// ("weight column 'w'"); a row is named by its position plus `row_offset`. Returns the weight sum
// over all ranks (rows count 1 each where a rank's weights are empty). Collective: every rank
// calls it.
double CheckWeights(std::span<const float> weights, std::int64_t rows, const std::string& what,
                    Communicator& comm, std::int64_t row_offset = 0);

struct EarlyStoppingConfig {
  int patience = 0;          // epochs without improvement before stopping; 0 disables
  double min_delta = 0.0;    // smallest change that counts as an improvement
  bool restore_best = true;  // end with the best epoch's parameters
};

struct CheckpointConfig {
  std::string dir;               // empty: no checkpoints
  int every_epochs = 1;          // 0: not at epoch ends
  std::int64_t every_steps = 0;  // 0: not mid-epoch
  bool resume = false;           // continue from dir/checkpoint.ckpt if present
  // What the features are (escala train: the fitted pipeline's spec and checksum): a checkpoint
  // written under another tag is refused on resume, as one of other options or data is.
  std::string data_tag;
};

struct TrainOptions {
  OptimizerConfig optimizer;  // name "lbfgs" selects full-batch L-BFGS (convex models)
  ScheduleConfig schedule;
  int epochs = 10;                // L-BFGS: maximum iterations is lbfgs_max_iterations instead
  std::int64_t batch_size = 256;  // global, over all ranks
  bool drop_last = false;
  double clip_norm = 0.0;  // global gradient-norm clipping; 0 disables
  std::uint64_t seed = 42;
  // Monitored validation metric (early stopping, best epoch); empty: DefaultMetric(task).
  std::string metric;
  EarlyStoppingConfig early_stopping;
  CheckpointConfig checkpoint;
  int lbfgs_max_iterations = 200;
  // L-BFGS stops when the largest gradient component is at most this times max(1, |objective|)
  // (`escala train --tol`); see LbfgsOptions.
  double lbfgs_tolerance = 1e-5;
  int lbfgs_memory = 10;
  int threads = 0;  // per rank; 0: NumThreads()
  // With several ranks, gradients are all-reduced in buckets of about this size (whole layers),
  // each started as soon as its layers' backward pass is done, overlapping communication with
  // the rest of the backward pass. 0: one all-reduce after the backward pass. The default (as
  // PyTorch DDP's 25 MB) gives small models one all-reduce per step: splitting a 330 KB gradient
  // in two made W2 with 2 workers 1.9x slower (bench/distributed/run_scaling.sh); large models
  // still overlap.
  std::size_t bucket_bytes = std::size_t{25} << 20;
  bool progress = true;    // progress bar / log lines on rank 0
  bool initialize = true;  // call model.Initialize(seed) first (false: warm start)
  // Where minibatch steps run (escala/train/backend.h): empty for the CPU loop; e.g.
  // gpu::CudaBackend(...) for a GPU. Not used by L-BFGS (which refuses a backend).
  BackendFactory backend;
};

// Throws kInvalidArgument naming the first bad field.
void Validate(const TrainOptions& options);

// The per-epoch record (escala/io/history.h); kept under this name for the trainer's users.
using EpochRecord = io::EpochRecord;

struct TrainResult {
  std::vector<EpochRecord> history;
  Metrics valid;  // final model on the validation data (empty without)
  int best_epoch = 0;
  std::uint64_t steps = 0;
  double seconds = 0;
  bool early_stopped = false;
  bool resumed = false;
  std::string stop_reason;
};

// Dense global row ids (0..N-1, N = rows over all ranks) from any stable, unique row identities
// (e.g. file index and byte offset): each row's position in the sorted order of all ids. The
// result does not depend on how rows are split across ranks. Exchanges every id once
// (8 bytes per row), so call it once per job, not per epoch.
std::vector<std::uint64_t> DenseRowIds(std::span<const std::uint64_t> stable_ids,
                                       Communicator& comm);

using io::WriteHistoryCsv;
using io::WriteHistoryJson;

class ChunkSource;  // escala/train/source.h

// Minibatches read from a ChunkSource as training needs them (Trainer::FitStreamed).
struct StreamedBatchOptions {
  // Rows held for shuffling: each row moves at most this many places later than its source
  // order, or anywhere earlier (a buffer the size of the shard is a full shuffle).
  std::int64_t shuffle_rows = 65536;
  // Batches prepared ahead by the reading thread.
  int prefetch = 4;
};

class Trainer {
 public:
  // model and comm must outlive the trainer.
  Trainer(models::GradientModel& model, TrainOptions options, Communicator& comm);

  // Trains on `train` (this rank's shard), validating on `valid` (may be null) every epoch. With
  // weights (DataShard::weights, on `valid` too) the loss and the validation metrics are weighted;
  // weights must be finite and >= 0, not all 0 (kInvalidArgument naming the row), and need the
  // CPU (no backend).
  // Errors: kInvalidArgument (shapes, labels), kAborted if the loss diverges (NaN/Inf; the last
  // good checkpoint is kept), kFailedPrecondition for a checkpoint from different options, and
  // communicator errors.
  TrainResult Fit(const DataShard& train, const DataShard* valid);

  // Full-batch L-BFGS (options.optimizer.name "lbfgs") over this rank's rows as a source read in
  // chunks, one pass per objective evaluation (escala/train/source.h): the model Fit gives for the
  // same rows, to rounding, without holding them in one matrix. Errors as Fit.
  TrainResult FitFullBatch(ChunkSource& train, const DataShard* valid);

  // Minibatch training (a first-order optimizer, on the CPU) over this rank's rows read from a
  // source as training needs them, through a seeded shuffle buffer, a few batches ahead by a
  // reading thread (escala/train/source.h, StreamedBatchOptions): `rows` is the number of rows
  // the source gives (every rank's is exchanged). Each global batch holds batch_size rows, rank
  // r's share fixed; the order differs from Fit's global shuffle, so the model is another
  // sample of the same training, of the same accuracy within noise. Checkpoints, resume,
  // validation and early stopping work as in Fit (a resumed epoch re-reads its first batches).
  // Errors as Fit.
  TrainResult FitStreamed(ChunkSource& train, std::int64_t rows, const DataShard* valid,
                          const StreamedBatchOptions& batches = {});

  // Predictions of the current model for a shard (parallel; no communication).
  void Predict(ConstMatrixViewF features, MatrixViewF out) const;

 private:
  TrainResult FitMinibatch(const DataShard& train, const DataShard* valid);
  TrainResult FitLbfgs(const DataShard& train, const DataShard* valid);
  Metrics ValidationMetrics(const DataShard* valid);
  // Checks the validation shard and settles the monitored metric.
  void PrepareFit(const DataShard* valid);
  std::vector<std::uint64_t> ResolveRowIds(const DataShard& shard, std::uint64_t* global_rows);

  models::GradientModel& model_;
  TrainOptions options_;
  Communicator& comm_;
  int threads_;
  double weight_sum_ = 0;  // the training rows' over all ranks (Fit)
};

}  // namespace escala::train

#endif  // ESCALA_TRAIN_TRAINER_H_
