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
#include "escala/train/v1/checkpoint.pb.h"
#include "models/model_proto.h"

namespace escala::train {

namespace pb = escala::train::v1;

namespace {

constexpr char kCheckpointMagic[] = "ESCALACK";
constexpr std::uint32_t kCheckpointVersion = 1;
constexpr char kCheckpointFile[] = "checkpoint.ckpt";

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// "; the last good checkpoint is P" when one was written, for divergence messages.
std::string LastCheckpoint(const std::string& ckpt_path) {
  std::error_code ec;
  if (ckpt_path.empty() || !std::filesystem::exists(ckpt_path, ec)) return "";
  return fmt::format("; the last good checkpoint is {}", ckpt_path);
}

// Options that must be identical for a resumed run to continue the same trajectory.
std::string Fingerprint(const TrainOptions& o, const models::Model& m, std::uint64_t rows) {
  const auto& p = o.optimizer;
  const auto& s = o.schedule;
  return fmt::format(
      "model={};opt={},{},{},{},{},{},{},{},{};sched={},{},{},{},{};batch={};drop_last={};"
      "clip={};seed={};epochs={};rows={};data={}",
      m.Describe(), p.name, p.lr, p.momentum, p.beta1, p.beta2, p.epsilon, p.weight_decay, p.l2,
      p.l1, s.name, s.warmup_steps, s.step_size, s.gamma, s.min_lr, o.batch_size, o.drop_last,
      o.clip_norm, o.seed, o.epochs, rows, o.checkpoint.data_tag);
}

// A finite loss diverges too: no sane run's epoch loss is this many times its loss at the start.
constexpr double kDivergenceFactor = 1e4;

bool Diverging(const EpochRecord& rec, double start_loss) {
  return start_loss > 0 && rec.train_loss > kDivergenceFactor * start_loss;
}

[[noreturn]] void ThrowDiverged(const EpochRecord& rec, double start_loss, float lr,
                                const std::string& ckpt_path) {
  Throw(ErrorCode::kAborted,
        "training diverged at epoch {}: the mean training loss {:.4g} is over {:.0e} times the "
        "loss at the start ({:.4g}); lower the learning rate (now {}){}",
        rec.epoch, rec.train_loss, kDivergenceFactor, start_loss, lr, LastCheckpoint(ckpt_path));
}

void MetricsToProto(const Metrics& m, google::protobuf::RepeatedPtrField<pb::MetricValue>* out) {
  for (const auto& [k, v] : m.values) {
    auto* mv = out->Add();
    mv->set_name(k);
    mv->set_value(v);
  }
}

Metrics MetricsFromProto(const google::protobuf::RepeatedPtrField<pb::MetricValue>& in) {
  Metrics m;
  for (const auto& mv : in) m.values[mv.name()] = mv.value();
  return m;
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

void WriteHistoryCsv(const std::vector<EpochRecord>& history, const std::string& path) {
  std::vector<std::string> names;
  for (const auto& r : history) {
    for (const auto& [k, v] : r.valid.values) {
      if (std::find(names.begin(), names.end(), k) == names.end()) names.push_back(k);
    }
  }
  std::string out = "epoch,step,train_loss,learning_rate,seconds,samples_per_second,comm_seconds";
  for (const auto& n : names) out += ",valid_" + n;
  out += "\n";
  for (const auto& r : history) {
    out += fmt::format("{},{},{:.9g},{:.9g},{:.6f},{:.1f},{:.6f}", r.epoch, r.step, r.train_loss,
                       r.learning_rate, r.seconds, r.samples_per_second, r.comm_seconds);
    for (const auto& n : names) {
      auto it = r.valid.values.find(n);
      out += it == r.valid.values.end() ? "," : fmt::format(",{:.9g}", it->second);
    }
    out += "\n";
  }
  WriteFileAtomic(path, out);
}

void WriteHistoryJson(const std::vector<EpochRecord>& history, const std::string& path) {
  auto num = [](double v) { return std::isfinite(v) ? fmt::format("{:.9g}", v) : "null"; };
  std::string out = "[\n";
  for (std::size_t i = 0; i < history.size(); ++i) {
    const auto& r = history[i];
    out += fmt::format(
        "  {{\"epoch\": {}, \"step\": {}, \"train_loss\": {}, \"learning_rate\": {}, "
        "\"seconds\": {}, \"samples_per_second\": {}, \"comm_seconds\": {}, \"valid\": {{",
        r.epoch, r.step, num(r.train_loss), num(r.learning_rate), num(r.seconds),
        num(r.samples_per_second), num(r.comm_seconds));
    bool first = true;
    for (const auto& [k, v] : r.valid.values) {
      out += fmt::format("{}\"{}\": {}", first ? "" : ", ", k, num(v));
      first = false;
    }
    out += i + 1 < history.size() ? "}},\n" : "}}\n";
  }
  out += "]\n";
  WriteFileAtomic(path, out);
}

Trainer::Trainer(models::Model& model, TrainOptions options, Communicator& comm)
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
  return EvaluateDistributed(model_.task(), pred.view(), valid->labels, comm_);
}

TrainResult Trainer::Fit(const DataShard& train, const DataShard* valid) {
  if (valid != nullptr) {
    ESCALA_CHECK(valid->features.cols() == model_.num_features(), kInvalidArgument,
                 "validation data has {} features but the model expects {}", valid->features.cols(),
                 model_.num_features());
    ESCALA_CHECK(valid->labels.size() == static_cast<std::size_t>(valid->rows()), kInvalidArgument,
                 "{} validation labels for {} rows", valid->labels.size(), valid->rows());
  }
  if (options_.metric.empty()) options_.metric = DefaultMetric(model_.task());
  CheckMetric(model_.task(), options_.metric);
  if (options_.optimizer.name == "lbfgs") return FitLbfgs(train, valid);
  return FitMinibatch(train, valid);
}

// ---- minibatch training ----------------------------------------------------------------------

struct Trainer::State {
  int epoch = 0;
  std::int64_t next_batch = 0;
  std::uint64_t step = 0;
  double epoch_loss_sum = 0;
  std::int64_t epoch_loss_count = 0;
  double best_metric = std::nan("");
  int best_epoch = 0;
  int epochs_without_improvement = 0;
  std::vector<float> best_params;
  std::vector<EpochRecord> history;
};

TrainResult Trainer::FitMinibatch(const DataShard& train, const DataShard* valid) {
  const auto start = Clock::now();
  std::uint64_t total_rows = 0;
  const std::vector<std::uint64_t> ids = ResolveRowIds(train, &total_rows);
  const auto n_rows_local = static_cast<std::uint64_t>(train.rows());
  const auto batch = static_cast<std::uint64_t>(options_.batch_size);
  const std::uint64_t num_batches =
      options_.drop_last ? total_rows / batch : (total_rows + batch - 1) / batch;
  ESCALA_CHECK(num_batches > 0, kInvalidArgument,
               "no complete batch: {} rows in all, batch size {}{}", total_rows, batch,
               options_.drop_last ? " with drop_last" : "");
  const std::uint64_t total_steps = num_batches * static_cast<std::uint64_t>(options_.epochs);

  if (options_.initialize) model_.Initialize(options_.seed);
  auto params = model_.parameters();
  const std::size_t np = params.size();
  auto optimizer = MakeOptimizer(options_.optimizer, np, model_.penalty_mask());
  const std::string fingerprint = Fingerprint(options_, model_, total_rows);
  const bool higher_better = HigherIsBetter(options_.metric);

  State st;
  TrainResult result;
  double start_loss = std::nan("");  // the first step's mean loss in this run
  const std::string ckpt_path =
      options_.checkpoint.dir.empty()
          ? std::string()
          : (std::filesystem::path(options_.checkpoint.dir) / kCheckpointFile).string();

  // ---- resume ----
  if (options_.checkpoint.resume && !ckpt_path.empty()) {
    const std::int64_t found = std::filesystem::exists(ckpt_path) ? 1 : 0;
    const auto lo = comm_.AllReduceScalar<std::int64_t>(found, ReduceOp::kMin);
    const auto hi = comm_.AllReduceScalar<std::int64_t>(found, ReduceOp::kMax);
    ESCALA_CHECK(lo == hi, kFailedPrecondition,
                 "checkpoint {} is visible on some ranks only (checkpoint directories must be "
                 "shared)",
                 ckpt_path);
    if (found) {
      std::uint32_t version = 0;
      const std::string file = ReadFileToString(ckpt_path);
      const auto payload = UnframePayload(file, kCheckpointMagic, &version, ckpt_path);
      ESCALA_CHECK(version == kCheckpointVersion, kFailedPrecondition,
                   "{}: checkpoint format version {} is not supported (expected {})", ckpt_path,
                   version, kCheckpointVersion);
      pb::Checkpoint ck;
      ESCALA_CHECK(ck.ParseFromArray(payload.data(), static_cast<int>(payload.size())), kDataLoss,
                   "{}: checkpoint does not parse", ckpt_path);
      ESCALA_CHECK(ck.config_fingerprint() == fingerprint, kFailedPrecondition,
                   "{}: checkpoint was written with different options or data; refusing to "
                   "resume (checkpoint: {}; now: {})",
                   ckpt_path, ck.config_fingerprint(), fingerprint);
      auto restored = models::ModelFromProto(ck.model());
      ESCALA_CHECK(restored->parameters().size() == np, kFailedPrecondition,
                   "{}: checkpoint model has {} parameters, this model {}", ckpt_path,
                   restored->parameters().size(), np);
      std::copy(restored->parameters().begin(), restored->parameters().end(), params.begin());
      auto& os = optimizer->state();
      ESCALA_CHECK(static_cast<std::size_t>(ck.optimizer_state_size()) == os.size(), kDataLoss,
                   "{}: optimizer state mismatch", ckpt_path);
      for (std::size_t i = 0; i < os.size(); ++i) {
        const auto& v = ck.optimizer_state(static_cast<int>(i)).values();
        ESCALA_CHECK(static_cast<std::size_t>(v.size()) == np, kDataLoss,
                     "{}: optimizer state mismatch", ckpt_path);
        std::copy(v.begin(), v.end(), os[i].begin());
      }
      optimizer->set_steps(ck.optimizer_steps());
      st.epoch = ck.epoch();
      st.next_batch = ck.next_batch();
      st.step = ck.global_step();
      st.epoch_loss_sum = ck.epoch_loss_sum();
      st.epoch_loss_count = ck.epoch_loss_count();
      st.best_metric = ck.best_metric();
      st.best_epoch = ck.best_epoch();
      st.epochs_without_improvement = ck.epochs_without_improvement();
      st.best_params.assign(ck.best_parameters().begin(), ck.best_parameters().end());
      for (const auto& h : ck.history()) {
        EpochRecord r;
        r.epoch = h.epoch();
        r.step = h.step();
        r.train_loss = h.train_loss();
        r.learning_rate = h.learning_rate();
        r.seconds = h.seconds();
        r.samples_per_second = h.samples_per_second();
        r.comm_seconds = h.comm_seconds();
        r.valid = MetricsFromProto(h.valid());
        st.history.push_back(r);
      }
      result.resumed = true;
      if (comm_.rank() == 0) {
        ESCALA_LOG_INFO("resuming from {} at epoch {}, batch {} (step {})", ckpt_path, st.epoch + 1,
                        st.next_batch, st.step);
      }
    }
  }

  // ---- backend (escala/train/backend.h): when set, it runs the steps and holds the current
  // parameters and optimizer state; sync_host() copies them back before anything reads them ----
  std::unique_ptr<TrainBackend> backend;
  if (options_.backend) {
    backend = options_.backend();
    BackendSetup setup;
    setup.model = &model_;
    setup.optimizer = options_.optimizer;
    setup.clip_norm = options_.clip_norm;
    setup.features = train.features;
    setup.labels = train.labels;
    setup.row_ids = ids;
    setup.max_batch_rows = static_cast<std::int64_t>(std::min<std::uint64_t>(batch, n_rows_local));
    setup.comm = &comm_;
    setup.bucket_bytes = options_.bucket_bytes;
    setup.optimizer_state = optimizer->state();
    setup.optimizer_steps = optimizer->steps();
    backend->Start(setup);
    if (comm_.rank() == 0) ESCALA_LOG_INFO("training on {}", backend->Describe());
  }
  auto sync_host = [&](bool with_optimizer_state) {
    if (!backend) return;
    const std::uint64_t steps =
        backend->Sync(params, with_optimizer_state ? &optimizer->state() : nullptr);
    optimizer->set_steps(steps);
  };
  std::vector<std::uint32_t> epoch_rows;  // with a backend: this rank's rows in epoch order

  auto write_checkpoint = [&]() {
    if (ckpt_path.empty() || comm_.rank() != 0) return;
    sync_host(true);
    pb::Checkpoint ck;
    ck.set_config_fingerprint(fingerprint);
    models::ModelToProto(model_, ck.mutable_model());
    for (const auto& v : optimizer->state()) {
      ck.add_optimizer_state()->mutable_values()->Assign(v.begin(), v.end());
    }
    ck.set_optimizer_steps(optimizer->steps());
    ck.set_epoch(st.epoch);
    ck.set_next_batch(st.next_batch);
    ck.set_global_step(st.step);
    ck.set_epoch_loss_sum(st.epoch_loss_sum);
    ck.set_epoch_loss_count(st.epoch_loss_count);
    ck.set_best_metric(st.best_metric);
    ck.set_best_epoch(st.best_epoch);
    ck.set_epochs_without_improvement(st.epochs_without_improvement);
    ck.mutable_best_parameters()->Assign(st.best_params.begin(), st.best_params.end());
    for (const auto& r : st.history) {
      auto* h = ck.add_history();
      h->set_epoch(r.epoch);
      h->set_step(r.step);
      h->set_train_loss(r.train_loss);
      h->set_learning_rate(r.learning_rate);
      h->set_seconds(r.seconds);
      h->set_samples_per_second(r.samples_per_second);
      h->set_comm_seconds(r.comm_seconds);
      MetricsToProto(r.valid, h->mutable_valid());
    }
    ck.set_world_size(comm_.size());
    ck.set_global_rows(static_cast<std::int64_t>(total_rows));
    std::filesystem::create_directories(options_.checkpoint.dir);
    WriteFileAtomic(ckpt_path,
                    FramePayload(kCheckpointMagic, kCheckpointVersion, ck.SerializeAsString()));
  };

  // ---- per-thread buffers, allocated once ----
  const std::int64_t d = model_.num_features();
  const auto parts = static_cast<std::size_t>(threads_);
  const std::int64_t max_part =
      static_cast<std::int64_t>(batch) / static_cast<std::int64_t>(parts) + 1;
  struct ThreadBuf {
    std::unique_ptr<models::Workspace> ws;
    MatrixF x;
    std::vector<float> y;
    std::vector<std::uint64_t> ids;
    AlignedVector<float> grad;
    double loss = 0;
  };
  std::vector<ThreadBuf> tb(parts);
  for (auto& t : tb) {
    t.ws = model_.NewWorkspace();
    t.x.Resize(max_part, d);
    t.y.reserve(static_cast<std::size_t>(max_part));
    t.ids.reserve(static_cast<std::size_t>(max_part));
    t.grad.assign(np, 0.0f);
  }
  // reduced[0] holds the loss sum and reduced[1 + i] gradient i, so that the bucket of the first
  // layer (the last to finish backward) carries the loss in the same all-reduce.
  AlignedVector<float> reduced(np + 1);

  // Overlap (multi-rank): gradients are all-reduced in buckets of whole layers, each launched as
  // soon as every thread has finished those layers' backward pass, while the earlier layers are
  // still being computed. Buckets are formed from the last layer backwards.
  struct Bucket {
    std::size_t begin = 0, end = 0;  // parameter range
    int groups = 0;
  };
  const auto groups = model_.ParameterGroups();
  std::vector<Bucket> buckets;
  std::vector<int> group_bucket(groups.size(), 0);
  const bool overlap = comm_.size() > 1 && options_.bucket_bytes > 0 && groups.size() > 1;
  if (overlap) {
    Bucket cur;
    cur.end = groups.back().second;
    for (std::size_t g = groups.size(); g-- > 0;) {
      cur.begin = groups[g].first;
      ++cur.groups;
      group_bucket[g] = static_cast<int>(buckets.size());
      if ((cur.end - cur.begin) * sizeof(float) >= options_.bucket_bytes || g == 0) {
        buckets.push_back(cur);
        cur = Bucket{};
        cur.end = groups[g].first;
      }
    }
  }
  std::vector<std::atomic<int>> group_left(groups.size());
  std::vector<std::atomic<int>> bucket_left(buckets.size());
  std::vector<std::uint8_t> bucket_ready(buckets.size());
  std::vector<std::shared_ptr<Work>> bucket_work(buckets.size());
  std::mutex launch_mu;
  std::size_t next_launch = 0;
  CollectiveOptions step_opts;
  // Launches, in bucket order (every rank must issue collectives in the same order), the
  // buckets whose layers are all summed; the first layer's bucket waits for the loss.
  auto launch_ready = [&](bool final_bucket) {
    std::lock_guard lock(launch_mu);
    while (next_launch < buckets.size() && bucket_ready[next_launch] &&
           (next_launch + 1 < buckets.size() || final_bucket)) {
      const Bucket& bk = buckets[next_launch];
      const bool first_layer = next_launch + 1 == buckets.size();
      float* base = reduced.data() + (first_layer ? 0 : 1 + bk.begin);
      const std::size_t count = (first_layer ? 1 : 0) + bk.end - bk.begin;
      bucket_work[next_launch] =
          comm_.AllReduceAsync(base, count, DType::kFloat32, ReduceOp::kSum, step_opts);
      ++next_launch;
    }
  };
  // Told by each thread as it finishes a layer's backward pass (overlap only). Defined once: the
  // hot loop must not allocate.
  models::GradientReadyFn ready = [&](std::size_t begin, std::size_t end) {
    const auto g = static_cast<std::size_t>(
        std::lower_bound(groups.begin(), groups.end(), std::make_pair(begin, std::size_t{0})) -
        groups.begin());
    if (group_left[g].fetch_sub(1) != 1) return;
    // The last thread to finish this layer sums every thread's partial, in thread order.
    for (std::size_t i = begin; i < end; ++i) {
      float v = tb[0].grad[i];
      for (std::size_t q = 1; q < parts; ++q) v += tb[q].grad[i];
      reduced[1 + i] = v;
    }
    const int k = group_bucket[g];
    if (bucket_left[static_cast<std::size_t>(k)].fetch_sub(1) == 1) {
      {
        std::lock_guard lock(launch_mu);
        bucket_ready[static_cast<std::size_t>(k)] = 1;
      }
      launch_ready(false);
    }
  };
  const auto n_local = static_cast<std::size_t>(train.rows());
  std::vector<std::pair<std::uint64_t, std::uint32_t>> order(n_local);
  std::vector<std::size_t> batch_begin(num_batches + 1);

  ProgressOptions popts;
  popts.unit = "samples";
  const bool show_progress = options_.progress && comm_.rank() == 0;
  if (!show_progress) popts.mode = ProgressOptions::Mode::kSilent;
  ProgressReporter progress(fmt::format("train {}", model_.kind()),
                            total_rows * static_cast<std::uint64_t>(options_.epochs), popts);
  progress.Update(
      std::min(st.step * batch, total_rows * static_cast<std::uint64_t>(options_.epochs)));

  std::string stop_reason = "completed all epochs";
  for (; st.epoch < options_.epochs; ++st.epoch, st.next_batch = 0) {
    const auto epoch_start = Clock::now();
    const std::uint64_t step_at_epoch_start = st.step;
    double epoch_comm_seconds = 0;
    // Place this rank's rows in the epoch's global order.
    const RandomPermutation perm(total_rows,
                                 HashCombine(options_.seed, static_cast<std::uint64_t>(st.epoch)));
    for (std::size_t i = 0; i < n_local; ++i) {
      order[i] = {perm.Map(ids[i]), static_cast<std::uint32_t>(i)};
    }
    std::sort(order.begin(), order.end());
    if (backend) {
      epoch_rows.resize(n_local);
      for (std::size_t i = 0; i < n_local; ++i) epoch_rows[i] = order[i].second;
    }
    {
      std::size_t pos = 0;
      for (std::uint64_t j = 0; j <= num_batches; ++j) {
        while (pos < n_local && order[pos].first < j * batch) ++pos;
        batch_begin[j] = pos;
      }
    }
    float lr = options_.optimizer.lr;
    // The bookkeeping after an update, on the CPU loop and after a backend's step alike.
    auto end_step = [&](double batch_loss, std::uint64_t global_count, std::uint64_t j) {
      if (std::isnan(start_loss)) start_loss = batch_loss / static_cast<double>(global_count);
      ++st.step;
      st.epoch_loss_sum += batch_loss;
      st.epoch_loss_count += static_cast<std::int64_t>(global_count);
      progress.Add(global_count);
      // The status string is formatted only now and then: the step itself must not allocate.
      if (show_progress && (st.step % 64 == 0 || j + 1 == num_batches)) {
        progress.SetStatus(
            fmt::format("epoch {}/{} loss {:.4f}", st.epoch + 1, options_.epochs,
                        st.epoch_loss_sum / static_cast<double>(st.epoch_loss_count)));
      }
      if (options_.checkpoint.every_steps > 0 &&
          st.step % static_cast<std::uint64_t>(options_.checkpoint.every_steps) == 0) {
        st.next_batch = static_cast<std::int64_t>(j + 1);
        write_checkpoint();
      }
    };
    for (auto j = static_cast<std::uint64_t>(st.next_batch); j < num_batches; ++j) {
      const std::size_t b0 = batch_begin[j];
      const std::size_t m = batch_begin[j + 1] - b0;
      const std::uint64_t global_count = std::min(batch, total_rows - j * batch);
      models::BatchContext base_ctx;
      base_ctx.training = true;
      base_ctx.seed = options_.seed;
      base_ctx.step = st.step;
      step_opts.tag = st.step;
      if (backend) {
        // The backend computes the gradient, sums it over the ranks and applies the update in
        // one call; what follows it is the CPU path's bookkeeping after its update.
        lr = ScheduledLr(options_.schedule, options_.optimizer.lr, st.step, total_steps);
        BackendBatch bb;
        bb.rows = std::span<const std::uint32_t>(epoch_rows).subspan(b0, m);
        if (j + 1 < num_batches) {
          bb.next_rows = std::span<const std::uint32_t>(epoch_rows)
                             .subspan(batch_begin[j + 1], batch_begin[j + 2] - batch_begin[j + 1]);
        }
        bb.global_count = global_count;
        bb.step = st.step;
        bb.seed = options_.seed;
        bb.lr = lr;
        const double batch_loss = backend->Step(bb);
        if (!std::isfinite(batch_loss)) {
          sync_host(false);  // the parameters before this step
          Throw(ErrorCode::kAborted,
                "training diverged at epoch {} step {}: the loss is {} (learning rate {} may be "
                "too high){}",
                st.epoch + 1, st.step, batch_loss, lr, LastCheckpoint(ckpt_path));
        }
        end_step(batch_loss, global_count, j);
        continue;
      }
      if (overlap) {
        for (std::size_t g = 0; g < groups.size(); ++g) group_left[g] = static_cast<int>(parts);
        for (std::size_t k = 0; k < buckets.size(); ++k) {
          bucket_left[k] = buckets[k].groups;
          bucket_ready[k] = 0;
          bucket_work[k].reset();
        }
        next_launch = 0;
      }
      ParallelForStatic(m, parts, [&](std::size_t p, std::size_t b, std::size_t e) {
        ThreadBuf& t = tb[p];
        std::fill(t.grad.begin(), t.grad.end(), 0.0f);
        t.loss = 0;
        if (b == e) {
          // No rows here: this thread's (zero) partial of every layer is final now.
          if (overlap) {
            for (std::size_t g = groups.size(); g-- > 0;) ready(groups[g].first, groups[g].second);
          }
          return;
        }
        const auto rows = static_cast<std::int64_t>(e - b);
        t.x.Resize(rows, d);
        t.y.clear();
        t.ids.clear();
        for (std::size_t r = b; r < e; ++r) {
          const std::uint32_t li = order[b0 + r].second;
          std::memcpy(t.x.row(static_cast<std::int64_t>(r - b)), train.features.row(li),
                      static_cast<std::size_t>(d) * sizeof(float));
          t.y.push_back(train.labels[li]);
          t.ids.push_back(ids[li]);
        }
        models::BatchContext ctx = base_ctx;
        ctx.row_ids = t.ids;
        t.loss = model_.AccumulateGradient(std::as_const(t.x).view(), t.y, t.grad, ctx, *t.ws,
                                           overlap ? &ready : nullptr);
      });
      double loss_sum = 0;
      for (std::size_t p = 0; p < parts; ++p) loss_sum += tb[p].loss;
      reduced[0] = static_cast<float>(loss_sum);
      const auto comm_start = Clock::now();
      if (overlap) {
        launch_ready(true);
        for (auto& w : bucket_work) w->Wait();
      } else {
        // The threads' partials, summed in thread order (the same bits for any split of the
        // parameters among the summing tasks).
        ParallelFor(np, 16384, [&](std::size_t b, std::size_t e) {
          float* __restrict out = reduced.data() + 1;
          std::copy(tb[0].grad.data() + b, tb[0].grad.data() + e, out + b);
          for (std::size_t p = 1; p < parts; ++p) {
            const float* __restrict g = tb[p].grad.data();
            for (std::size_t i = b; i < e; ++i) out[i] += g[i];
          }
        });
        comm_.AllReduce(std::span<float>(reduced), ReduceOp::kSum, step_opts);
      }
      // Communication the backward pass did not hide (the summing of thread partials included).
      epoch_comm_seconds += Seconds(comm_start);
      const double batch_loss = reduced[0];
      if (!std::isfinite(batch_loss)) {
        Throw(ErrorCode::kAborted,
              "training diverged at epoch {} step {}: the loss is {} (learning rate {} may be too "
              "high){}",
              st.epoch + 1, st.step, batch_loss, lr, LastCheckpoint(ckpt_path));
      }
      const float inv = 1.0f / static_cast<float>(global_count);
      std::span<float> grad(reduced.data() + 1, np);
      ParallelFor(np, 16384, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) grad[i] *= inv;
      });
      if (options_.clip_norm > 0) ClipGradNorm(grad, options_.clip_norm);
      lr = ScheduledLr(options_.schedule, options_.optimizer.lr, st.step, total_steps);
      optimizer->Step(params, grad, lr);
      end_step(batch_loss, global_count, j);
    }
    // ---- end of epoch ----
    EpochRecord rec;
    rec.epoch = st.epoch + 1;
    rec.step = st.step;
    rec.train_loss = st.epoch_loss_count > 0
                         ? st.epoch_loss_sum / static_cast<double>(st.epoch_loss_count)
                         : std::nan("");
    rec.learning_rate = lr;
    rec.seconds = Seconds(epoch_start);
    rec.comm_seconds = epoch_comm_seconds;
    const double samples =
        static_cast<double>(st.step - step_at_epoch_start) * static_cast<double>(batch);
    rec.samples_per_second =
        rec.seconds > 0 ? std::min(samples, static_cast<double>(total_rows)) / rec.seconds : 0;
    if (Diverging(rec, start_loss)) {
      sync_host(false);  // a backend's parameters, as a non-finite loss leaves them
      ThrowDiverged(rec, start_loss, lr, ckpt_path);
    }
    if (valid != nullptr || options_.early_stopping.patience > 0) sync_host(false);
    rec.valid = ValidationMetrics(valid);
    const double monitored = valid != nullptr ? rec.valid.at(options_.metric) : rec.train_loss;
    const bool monitor_higher = valid != nullptr ? higher_better : false;
    const bool improved =
        std::isnan(st.best_metric) ||
        (monitor_higher ? monitored > st.best_metric + options_.early_stopping.min_delta
                        : monitored < st.best_metric - options_.early_stopping.min_delta);
    if (improved) {
      st.best_metric = monitored;
      st.best_epoch = rec.epoch;
      st.epochs_without_improvement = 0;
      if (options_.early_stopping.patience > 0 && options_.early_stopping.restore_best) {
        st.best_params.assign(params.begin(), params.end());
      }
    } else {
      ++st.epochs_without_improvement;
    }
    st.history.push_back(rec);
    if (comm_.rank() == 0) {
      ESCALA_LOG_INFO("epoch {}/{}: loss {:.5f}{}{} ({:.1f} s, {:.0f} samples/s{})", rec.epoch,
                      options_.epochs, rec.train_loss, valid != nullptr ? "  valid " : "",
                      rec.valid.ToString(), rec.seconds, rec.samples_per_second,
                      comm_.size() > 1
                          ? fmt::format(", {:.2f} s waiting on all-reduce", rec.comm_seconds)
                          : "");
    }
    st.epoch_loss_sum = 0;
    st.epoch_loss_count = 0;
    const bool stop = options_.early_stopping.patience > 0 &&
                      st.epochs_without_improvement >= options_.early_stopping.patience;
    if (options_.checkpoint.every_epochs > 0 &&
        ((st.epoch + 1) % options_.checkpoint.every_epochs == 0 || stop ||
         st.epoch + 1 == options_.epochs)) {
      const int saved_epoch = st.epoch;
      st.epoch += 1;
      st.next_batch = 0;
      write_checkpoint();
      st.epoch = saved_epoch;
    }
    if (stop) {
      result.early_stopped = true;
      stop_reason = fmt::format("early stopping: no improvement of {} for {} epoch(s)",
                                options_.metric, options_.early_stopping.patience);
      ++st.epoch;
      break;
    }
  }
  sync_host(false);
  progress.Finish();
  if (result.early_stopped && options_.early_stopping.restore_best && !st.best_params.empty()) {
    std::copy(st.best_params.begin(), st.best_params.end(), params.begin());
  }
  result.history = std::move(st.history);
  result.best_epoch = st.best_epoch;
  result.steps = st.step;
  result.valid =
      result.early_stopped && options_.early_stopping.restore_best
          ? ValidationMetrics(valid)
          : (result.history.empty() ? ValidationMetrics(valid) : result.history.back().valid);
  result.seconds = Seconds(start);
  result.stop_reason = stop_reason;
  return result;
}

// ---- full-batch L-BFGS ------------------------------------------------------------------------

TrainResult Trainer::FitLbfgs(const DataShard& train, const DataShard* valid) {
  const auto start = Clock::now();
  std::uint64_t total_rows = 0;
  ResolveRowIds(train, &total_rows);
  ESCALA_CHECK(total_rows > 0, kInvalidArgument, "no training rows");
  ESCALA_CHECK(!options_.backend, kInvalidArgument,
               "lbfgs runs on the CPU only; choose a first-order optimizer (sgd, momentum, "
               "nesterov, adam, adamw) to train on another device");
  ESCALA_CHECK(model_.kind() != "mlp", kInvalidArgument,
               "lbfgs is for the convex models (linear, logistic, softmax); use adam or sgd for "
               "an MLP");
  if (options_.initialize) model_.Initialize(options_.seed);
  auto params = model_.parameters();
  const std::size_t np = params.size();
  const auto mask = model_.penalty_mask();
  const double l2 = options_.optimizer.l2;
  const auto parts = static_cast<std::size_t>(threads_);
  const std::size_t n_local = static_cast<std::size_t>(train.rows());

  struct ThreadBuf {
    std::unique_ptr<models::Workspace> ws;
    AlignedVector<float> grad;
    double loss = 0;
  };
  std::vector<ThreadBuf> tb(parts);
  for (auto& t : tb) {
    t.ws = model_.NewWorkspace();
    t.grad.assign(np, 0.0f);
  }
  AlignedVector<double> reduced(np + 1);
  const double inv_n = 1.0 / static_cast<double>(total_rows);

  auto objective = [&](std::span<const double> x, std::span<double> g) -> double {
    for (std::size_t i = 0; i < np; ++i) params[i] = static_cast<float>(x[i]);
    ParallelForStatic(n_local, parts, [&](std::size_t p, std::size_t b, std::size_t e) {
      ThreadBuf& t = tb[p];
      std::fill(t.grad.begin(), t.grad.end(), 0.0f);
      t.loss = 0;
      // Blocks small enough that each block's rows stay in cache between the forward and the
      // gradient pass.
      constexpr std::size_t kBlock = 2048;
      for (std::size_t i = b; i < e; i += kBlock) {
        const std::size_t m = std::min(kBlock, e - i);
        t.loss += model_.AccumulateGradient(
            train.features.Rows(static_cast<std::int64_t>(i), static_cast<std::int64_t>(m)),
            train.labels.subspan(i, m), t.grad, models::BatchContext{}, *t.ws);
      }
    });
    std::fill(reduced.begin(), reduced.end(), 0.0);
    for (std::size_t p = 0; p < parts; ++p) {
      for (std::size_t i = 0; i < np; ++i) reduced[i] += tb[p].grad[i];
      reduced[np] += tb[p].loss;
    }
    comm_.AllReduce(std::span<double>(reduced), ReduceOp::kSum);
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
  if (!result.history.empty()) result.history.back().valid = result.valid;
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
