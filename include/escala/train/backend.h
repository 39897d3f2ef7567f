// Training backends: where the per-step numerics of minibatch training run.
//
// The Trainer decides *what* is computed, identically for every backend: the epoch's global
// order, the batches, the learning-rate schedule, metrics, early stopping, checkpoints and the
// history. A backend decides *where*: given this rank's rows of one batch it computes the summed
// loss gradient, sums it over the ranks, and applies the optimizer update, with the semantics of
// the trainer's built-in CPU loop (the gradient of the summed loss divided by the global batch
// size, global-norm clipping, coupled L2, decoupled weight decay, proximal L1, the penalty mask,
// dropout masks keyed by (seed, step, row id, unit)).
//
// Without a backend (TrainOptions::backend empty) the trainer runs its CPU backend
// (src/train/cpu_backend.h), which trains the model's parameters in place. The CUDA backend
// (escala/gpu/train.h) keeps parameters, gradients and optimizer state on a GPU.
//
// Protocol: Trainer::Fit creates the backend with the factory, calls Start once (after the
// parameters were initialised or restored from a checkpoint), Step once per batch, Sync whenever
// it reads the parameters or the optimizer state (validation, checkpoints, the end of training,
// a divergence), and destroys the backend before Fit returns. L-BFGS has no per-step form and
// never uses a backend.
//
// Thread-safety: a backend is used from the trainer's thread only.
#ifndef ESCALA_TRAIN_BACKEND_H_
#define ESCALA_TRAIN_BACKEND_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "escala/core/communicator.h"
#include "escala/core/matrix.h"
#include "escala/models/model.h"
#include "escala/train/optimizer.h"

namespace escala::train {

struct BackendSetup {
  // Structure and current parameters (initialised, restored or warm-started). Outlives the
  // backend; the backend must not write to it except through Sync's `params`.
  const models::GradientModel* model = nullptr;
  OptimizerConfig optimizer;
  double clip_norm = 0.0;  // 0: no clipping
  // This rank's training rows (x: rows x num_features, one label per row) and their dense global
  // ids. Valid until the backend is destroyed. Labels were not validated yet.
  ConstMatrixViewF features;
  std::span<const float> labels;
  std::span<const std::uint64_t> row_ids;
  // Per-row weights (empty: 1 each) and the training rows' mean weight over all ranks: a step
  // divides the batch's summed (weighted) gradient by global_count x mean_weight.
  std::span<const float> weights;
  double mean_weight = 1.0;
  // The most rows of this rank that any Step will pass.
  std::int64_t max_batch_rows = 0;
  // The ranks to sum gradients with; size 1 needs no communication.
  Communicator* comm = nullptr;
  // Gradients may be summed in buckets of about this many bytes (whole layers), overlapped with
  // the backward pass; 0: one all-reduce per step.
  std::size_t bucket_bytes = 0;
  // Optimizer state to continue from (the CPU optimizer's layout: one vector per moment, each
  // with one value per parameter; empty vectors for SGD) and the number of steps it has taken.
  // Empty: a fresh optimizer.
  std::vector<std::vector<float>> optimizer_state;
  std::uint64_t optimizer_steps = 0;
};

struct BackendBatch {
  // This rank's rows of the batch, as indices into BackendSetup::features, in the epoch's order.
  // May be empty (another rank holds all of the batch); the step still takes part in the sums.
  std::span<const std::uint32_t> rows;
  // This rank's rows of the next batch of the epoch (empty at its end), so that a backend can
  // start copying them while this step computes. The next Step passes them as `rows`.
  std::span<const std::uint32_t> next_rows;
  std::uint64_t global_count = 0;  // rows of the batch over all ranks (the divisor)
  std::uint64_t step = 0;          // global step, 0-based (dropout key)
  std::uint64_t seed = 0;          // dropout key
  float lr = 0.0f;                 // this step's learning rate (schedule applied)
};

class TrainBackend {
 public:
  virtual ~TrainBackend() = default;

  // For logs: "cuda:0 (NVIDIA H100 80GB HBM3, tf32)".
  virtual std::string Describe() const = 0;

  // Allocates, uploads the parameters and optimizer state, validates the labels (kInvalidArgument
  // naming the row, as the CPU loop does).
  virtual void Start(const BackendSetup& setup) = 0;

  // One training step. Returns the batch's summed loss over all ranks (before any penalty). When
  // that is not finite, the parameters and optimizer state are left as they were and the trainer
  // stops with kAborted.
  virtual double Step(const BackendBatch& batch) = 0;

  // Copies the current parameters into `params` (size of the model's parameters) and, unless
  // `optimizer_state` is null, the optimizer state into it (same layout as BackendSetup's);
  // returns the number of optimizer steps taken.
  virtual std::uint64_t Sync(std::span<float> params,
                             std::vector<std::vector<float>>* optimizer_state) = 0;

  // Seconds this rank waited on gradient all-reduces that computation did not hide, since the
  // last call (the history's comm_seconds); 0 when the backend does not measure it.
  virtual double TakeCommSeconds() { return 0.0; }
};

// Creates a backend; called once per Fit.
using BackendFactory = std::function<std::unique_ptr<TrainBackend>()>;

}  // namespace escala::train

#endif  // ESCALA_TRAIN_BACKEND_H_
