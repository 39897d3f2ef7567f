#include "escala/train/trainer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <numeric>

#include <fmt/format.h>

#include "escala/core/error.h"
#include "escala/core/file_util.h"
#include "escala/core/logging.h"
#include "escala/core/parallel.h"
#include "escala/core/progress.h"
#include "escala/core/random.h"
#include "escala/train/lbfgs.h"
#include "escala/train/source.h"
#include "train/minibatch.h"
#include "train/streamed_batches.h"

namespace escala::train {

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Each thread's loss gradient over one pass of a source (L-BFGS's objective), summed per thread.
struct PassBuffer {
  std::unique_ptr<models::Workspace> ws;
  AlignedVector<float> grad;
  double loss = 0;
};

struct PassCount {
  std::uint64_t rows = 0;
  double weight = 0;  // the rows' weight sum (the row count without weights)
};

double WeightSum(const DataShard& chunk) {
  if (!chunk.weighted()) return static_cast<double>(chunk.rows());
  return std::accumulate(chunk.weights.begin(), chunk.weights.end(), 0.0);
}

void CheckChunk(const DataShard& chunk) {
  ESCALA_CHECK(chunk.labels.size() == static_cast<std::size_t>(chunk.rows()), kInvalidArgument,
               "{} labels for {} rows", chunk.labels.size(), chunk.rows());
  ESCALA_CHECK(!chunk.weighted() || chunk.weights.size() == chunk.labels.size(), kInvalidArgument,
               "{} weights for {} rows", chunk.weights.size(), chunk.rows());
}

PassCount AccumulatePass(const models::GradientModel& model, ChunkSource& train,
                         std::vector<PassBuffer>& tb) {
  for (auto& t : tb) {
    std::fill(t.grad.begin(), t.grad.end(), 0.0f);
    t.loss = 0;
  }
  PassCount count;
  train.ForEachChunk([&](const DataShard& chunk) {
    CheckChunk(chunk);
    const auto n = static_cast<std::size_t>(chunk.rows());
    count.rows += n;
    count.weight += WeightSum(chunk);
    ParallelForStatic(n, tb.size(), [&](std::size_t p, std::size_t b, std::size_t e) {
      PassBuffer& t = tb[p];
      // Blocks small enough that each block's rows stay in cache between the forward and the
      // gradient pass.
      constexpr std::size_t kBlock = 2048;
      for (std::size_t i = b; i < e; i += kBlock) {
        const std::size_t m = std::min(kBlock, e - i);
        models::BatchContext ctx;
        if (chunk.weighted()) ctx.weights = chunk.weights.subspan(i, m);
        t.loss += model.AccumulateGradient(
            chunk.features.Rows(static_cast<std::int64_t>(i), static_cast<std::int64_t>(m)),
            chunk.labels.subspan(i, m), t.grad, ctx, *t.ws);
      }
    });
  });
  return count;
}

}  // namespace

void Validate(const TrainOptions& o) {
  Validate(o.optimizer);
  Validate(o.schedule);
  ESCALA_CHECK(o.epochs >= 1, kInvalidArgument, "epochs must be >= 1, got {}", o.epochs);
  ESCALA_CHECK(o.batch_size >= 1, kInvalidArgument, "batch_size must be >= 1, got {}",
               o.batch_size);
  ESCALA_CHECK(o.clip_norm >= 0, kInvalidArgument, "clip_norm must be >= 0, got {}", o.clip_norm);
  ESCALA_CHECK(o.early_stopping.patience >= 0, kInvalidArgument,
               "early_stopping.patience must be >= 0, got {}", o.early_stopping.patience);
  ESCALA_CHECK(o.early_stopping.min_delta >= 0, kInvalidArgument,
               "early_stopping.min_delta must be >= 0");
  ESCALA_CHECK(o.checkpoint.every_epochs >= 0 && o.checkpoint.every_steps >= 0, kInvalidArgument,
               "checkpoint intervals must be >= 0");
  ESCALA_CHECK(o.lbfgs_max_iterations >= 1, kInvalidArgument, "lbfgs_max_iterations must be >= 1");
  ESCALA_CHECK(o.lbfgs_tolerance >= 0, kInvalidArgument, "lbfgs_tolerance must be >= 0");
  ESCALA_CHECK(o.lbfgs_memory >= 1, kInvalidArgument, "lbfgs_memory must be >= 1");
  ESCALA_CHECK(o.threads >= 0, kInvalidArgument, "threads must be >= 0");
}

std::vector<std::uint64_t> DenseRowIds(std::span<const std::uint64_t> ids, Communicator& comm) {
  std::vector<std::uint64_t> all;
  if (comm.size() == 1) {
    all.assign(ids.begin(), ids.end());
  } else {
    const auto parts = comm.AllGatherV(std::as_bytes(ids));
    for (const auto& p : parts) {
      const auto* v = reinterpret_cast<const std::uint64_t*>(p.data());
      all.insert(all.end(), v, v + p.size() / sizeof(std::uint64_t));
    }
  }
  std::sort(all.begin(), all.end());
  for (std::size_t i = 1; i < all.size(); ++i) {
    ESCALA_CHECK(all[i] != all[i - 1], kInvalidArgument,
                 "row id {} appears more than once: shards overlap", all[i]);
  }
  std::vector<std::uint64_t> dense(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    dense[i] =
        static_cast<std::uint64_t>(std::lower_bound(all.begin(), all.end(), ids[i]) - all.begin());
  }
  return dense;
}

double CheckWeights(std::span<const float> weights, std::int64_t rows, const std::string& what,
                    Communicator& comm, std::int64_t row_offset) {
  ESCALA_CHECK(weights.empty() || static_cast<std::int64_t>(weights.size()) == rows,
               kInvalidArgument, "{}: {} weights for {} rows", what, weights.size(), rows);
  double sum = weights.empty() ? static_cast<double>(rows) : 0.0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    ESCALA_CHECK(std::isfinite(weights[i]) && weights[i] >= 0, kInvalidArgument,
                 "{}: row {}: weight {} is not a finite number >= 0", what,
                 static_cast<std::int64_t>(i) + row_offset, weights[i]);
    sum += weights[i];
  }
  sum = comm.AllReduceScalar(sum, ReduceOp::kSum);
  const auto total = comm.AllReduceScalar<std::int64_t>(rows, ReduceOp::kSum);
  ESCALA_CHECK(total == 0 || sum > 0, kInvalidArgument,
               "{}: every weight is 0; some row must weigh more", what);
  return sum;
}

Trainer::Trainer(models::GradientModel& model, TrainOptions options, Communicator& comm)
    : model_(model), options_(std::move(options)), comm_(comm) {
  Validate(options_);
  threads_ = options_.threads > 0 ? options_.threads : NumThreads();
}

std::vector<std::uint64_t> Trainer::ResolveRowIds(const DataShard& shard,
                                                  std::uint64_t* global_rows) {
  const auto n = static_cast<std::int64_t>(shard.rows());
  ESCALA_CHECK(static_cast<std::int64_t>(shard.labels.size()) == n, kInvalidArgument,
               "{} labels for {} rows", shard.labels.size(), n);
  ESCALA_CHECK(shard.features.cols() == model_.num_features(), kInvalidArgument,
               "data has {} features but the model expects {}", shard.features.cols(),
               model_.num_features());
  const auto counts = comm_.AllGather(std::span<const std::int64_t>(&n, 1));
  std::uint64_t total = 0, offset = 0;
  for (int r = 0; r < comm_.size(); ++r) {
    if (r == comm_.rank()) offset = total;
    total += static_cast<std::uint64_t>(counts[static_cast<std::size_t>(r)]);
  }
  *global_rows = total;
  std::vector<std::uint64_t> ids;
  if (shard.row_ids.empty()) {
    ids.resize(static_cast<std::size_t>(n));
    std::iota(ids.begin(), ids.end(), offset);
  } else {
    ESCALA_CHECK(static_cast<std::int64_t>(shard.row_ids.size()) == n, kInvalidArgument,
                 "{} row ids for {} rows", shard.row_ids.size(), n);
    ids.assign(shard.row_ids.begin(), shard.row_ids.end());
    for (std::uint64_t id : ids) {
      ESCALA_CHECK(id < total, kInvalidArgument,
                   "row id {} outside [0, {}): row ids must be dense over all ranks", id, total);
    }
  }
  return ids;
}

void Trainer::Predict(ConstMatrixViewF x, MatrixViewF out) const {
  constexpr std::int64_t kBlock = 4096;
  const std::int64_t n = x.rows();
  const auto parts = static_cast<std::size_t>(std::max(1, threads_));
  ParallelForStatic(
      static_cast<std::size_t>(n), parts, [&](std::size_t, std::size_t b, std::size_t e) {
        if (b == e) return;
        auto ws = model_.NewWorkspace();
        for (auto i = static_cast<std::int64_t>(b); i < static_cast<std::int64_t>(e); i += kBlock) {
          const std::int64_t m = std::min<std::int64_t>(kBlock, static_cast<std::int64_t>(e) - i);
          model_.Predict(x.Rows(i, m), out.Rows(i, m), *ws);
        }
      });
}

Metrics Trainer::ValidationMetrics(const DataShard* valid) {
  if (valid == nullptr) return {};
  MatrixF pred(valid->rows(), model_.num_outputs());
  Predict(valid->features, pred.view());
  return EvaluateDistributed(model_.task(), pred.view(), valid->labels, valid->weights, comm_);
}

void Trainer::PrepareFit(const DataShard* valid) {
  if (valid != nullptr) {
    ESCALA_CHECK(valid->features.cols() == model_.num_features(), kInvalidArgument,
                 "validation data has {} features but the model expects {}", valid->features.cols(),
                 model_.num_features());
    ESCALA_CHECK(valid->labels.size() == static_cast<std::size_t>(valid->rows()), kInvalidArgument,
                 "{} validation labels for {} rows", valid->labels.size(), valid->rows());
    CheckWeights(valid->weights, valid->rows(), "validation weights", comm_);
  }
  if (options_.metric.empty()) options_.metric = DefaultMetric(model_.task());
  CheckMetric(model_.task(), options_.metric);
}

TrainResult Trainer::Fit(const DataShard& train, const DataShard* valid) {
  PrepareFit(valid);
  weight_sum_ = CheckWeights(train.weights, train.rows(), "weights", comm_);
  if (options_.optimizer.name == "lbfgs") return FitLbfgs(train, valid);
  return FitMinibatch(train, valid);
}

TrainResult Trainer::FitMinibatch(const DataShard& train, const DataShard* valid) {
  std::uint64_t global_rows = 0;
  const std::vector<std::uint64_t> ids = ResolveRowIds(train, &global_rows);
  MinibatchInputs in{model_,   options_,    comm_,
                     threads_, train,       valid,
                     ids,      global_rows, [this, valid] { return ValidationMetrics(valid); }};
  // Each step divides the batch's summed gradient by its row count times the mean weight: the
  // same divisor on every rank and for any split of the rows (a batch's own weight sum would
  // need one more all-reduce per step), and 1 x the row count without weights.
  in.mean_weight = global_rows > 0 ? weight_sum_ / static_cast<double>(global_rows) : 1.0;
  const bool weighted = comm_.AllReduceScalar<int>(train.weighted() ? 1 : 0, ReduceOp::kMax) > 0;
  ESCALA_CHECK(!weighted || !options_.backend, kInvalidArgument,
               "sample weights train on the CPU only for now: leave the backend (device) out");
  return train::FitMinibatch(in);
}

TrainResult Trainer::FitStreamed(ChunkSource& train, std::int64_t rows, const DataShard* valid,
                                 const StreamedBatchOptions& batches) {
  ESCALA_CHECK(train.cols() == model_.num_features(), kInvalidArgument,
               "data has {} features but the model expects {}", train.cols(),
               model_.num_features());
  ESCALA_CHECK(options_.optimizer.name != "lbfgs", kInvalidArgument,
               "lbfgs is full-batch: train it from a source with FitFullBatch");
  ESCALA_CHECK(!options_.backend, kInvalidArgument, "streamed minibatch training runs on the CPU");
  PrepareFit(valid);
  const std::vector<std::int64_t> all = comm_.AllGather(std::span<const std::int64_t>(&rows, 1));
  std::uint64_t global_rows = 0;
  for (auto r : all) global_rows += static_cast<std::uint64_t>(r);
  ESCALA_CHECK(global_rows > 0, kInvalidArgument, "training data has no rows");
  StreamedBatches feed(train, all, comm_.rank(), options_.batch_size, options_.seed, batches);
  const DataShard none{ConstMatrixViewF(nullptr, 0, model_.num_features()), {}, {}};
  MinibatchInputs in{model_,   options_,    comm_,
                     threads_, none,        valid,
                     {},       global_rows, [this, valid] { return ValidationMetrics(valid); }};
  in.feed = &feed;
  return train::FitMinibatch(in);
}

// ---- full-batch L-BFGS ------------------------------------------------------------------------

TrainResult Trainer::FitLbfgs(const DataShard& train, const DataShard* valid) {
  std::uint64_t total_rows = 0;
  ResolveRowIds(train, &total_rows);  // checks labels and columns
  ShardChunks chunks(train);
  return FitFullBatch(chunks, valid);
}

TrainResult Trainer::FitFullBatch(ChunkSource& train, const DataShard* valid) {
  const auto start = Clock::now();
  ESCALA_CHECK(train.cols() == model_.num_features(), kInvalidArgument,
               "data has {} features but the model expects {}", train.cols(),
               model_.num_features());
  ESCALA_CHECK(!options_.backend, kInvalidArgument,
               "lbfgs runs on the CPU only; choose a first-order optimizer (sgd, momentum, "
               "nesterov, adam, adamw) to train on another device");
  ESCALA_CHECK(model_.kind() != "mlp", kInvalidArgument,
               "lbfgs is for the convex models (linear, logistic, softmax); use adam or sgd for "
               "an MLP");
  ESCALA_CHECK(options_.optimizer.name == "lbfgs", kInvalidArgument,
               "training from a chunked source is full-batch: it needs optimizer lbfgs, not {}",
               options_.optimizer.name);
  PrepareFit(valid);
  if (options_.initialize) model_.Initialize(options_.seed);
  auto params = model_.parameters();
  const std::size_t np = params.size();
  const auto mask = model_.penalty_mask();
  const double l2 = options_.optimizer.l2;
  const auto parts = static_cast<std::size_t>(threads_);

  std::vector<PassBuffer> tb(parts);
  for (auto& t : tb) {
    t.ws = model_.NewWorkspace();
    t.grad.assign(np, 0.0f);
  }
  // The gradient, the loss, the weight sum and the row count, summed over ranks: a pass counts
  // the rows it reads, so that a streamed source is not read once more just to count them.
  AlignedVector<double> reduced(np + 3);
  std::uint64_t total_rows = 0;

  auto objective = [&](std::span<const double> x, std::span<double> g) -> double {
    for (std::size_t i = 0; i < np; ++i) params[i] = static_cast<float>(x[i]);
    const PassCount count = AccumulatePass(model_, train, tb);
    std::fill(reduced.begin(), reduced.end(), 0.0);
    for (std::size_t p = 0; p < parts; ++p) {
      for (std::size_t i = 0; i < np; ++i) reduced[i] += tb[p].grad[i];
      reduced[np] += tb[p].loss;
    }
    reduced[np + 1] = count.weight;
    reduced[np + 2] = static_cast<double>(count.rows);
    comm_.AllReduce(std::span<double>(reduced), ReduceOp::kSum);
    total_rows = static_cast<std::uint64_t>(reduced[np + 2]);
    ESCALA_CHECK(total_rows > 0, kInvalidArgument, "no training rows");
    ESCALA_CHECK(reduced[np + 1] > 0, kInvalidArgument, "every training row weighs 0");
    // The mean loss is over the weight sum (the row count without weights), so that l2 keeps its
    // meaning: weights 2 on every row train the model weights 1 do.
    const double inv_n = 1.0 / reduced[np + 1];
    double f = reduced[np] * inv_n;
    for (std::size_t i = 0; i < np; ++i) {
      g[i] = reduced[i] * inv_n;
      if (l2 > 0 && mask[i]) {
        f += 0.5 * l2 * x[i] * x[i];
        g[i] += l2 * x[i];
      }
    }
    return f;
  };

  std::vector<double> x(params.begin(), params.end());
  LbfgsOptions lo;
  lo.max_iterations = options_.lbfgs_max_iterations;
  lo.memory = options_.lbfgs_memory;
  lo.gradient_tolerance = options_.lbfgs_tolerance;
  lo.l1 = options_.optimizer.l1;
  lo.l1_mask = mask;

  TrainResult result;
  ProgressOptions popts;
  popts.unit = "iterations";
  if (!options_.progress || comm_.rank() != 0) popts.mode = ProgressOptions::Mode::kSilent;
  ProgressReporter progress(fmt::format("train {} (lbfgs)", model_.kind()),
                            static_cast<std::uint64_t>(lo.max_iterations), popts);
  auto last = Clock::now();
  const auto lres = MinimizeLbfgs(objective, x, lo, [&](int it, double f) {
    if (!std::isfinite(f)) return false;
    EpochRecord rec;
    rec.epoch = it;
    rec.step = static_cast<std::uint64_t>(it);
    rec.train_loss = f;
    rec.seconds = Seconds(last);
    last = Clock::now();
    rec.samples_per_second = rec.seconds > 0 ? static_cast<double>(total_rows) / rec.seconds : 0;
    result.history.push_back(rec);
    progress.Update(static_cast<std::uint64_t>(it));
    progress.SetStatus(fmt::format("objective {:.6f}", f));
    return true;
  });
  progress.Finish();
  for (std::size_t i = 0; i < np; ++i) params[i] = static_cast<float>(x[i]);
  ESCALA_CHECK(std::isfinite(lres.objective), kAborted,
               "training diverged: the L-BFGS objective is {}", lres.objective);
  result.valid = ValidationMetrics(valid);
  if (!result.history.empty()) result.history.back().valid = result.valid.values;
  result.steps = static_cast<std::uint64_t>(lres.iterations);
  result.best_epoch = lres.iterations;
  result.stop_reason = fmt::format("lbfgs: {} after {} iterations ({} evaluations)", lres.reason,
                                   lres.iterations, lres.evaluations);
  result.seconds = Seconds(start);
  if (comm_.rank() == 0) {
    ESCALA_LOG_INFO("{}; objective {:.6f}{}{}", result.stop_reason, lres.objective,
                    valid != nullptr ? "  valid " : "", result.valid.ToString());
  }
  return result;
}

}  // namespace escala::train
