// `escala train` and `escala evaluate`.
#include <array>
#include <cmath>
#include <filesystem>
#include <optional>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "escala/core/error.h"
#include "escala/core/file_util.h"
#include "escala/core/logging.h"
#include "escala/data/split.h"
#include "escala/distributed/connect.h"
#include "escala/distributed/worker_env.h"
#include "escala/features/pipeline.h"
#include "escala/gpu/device.h"
#include "escala/gpu/nccl.h"
#include "escala/gpu/train.h"
#include "escala/io/bundle.h"
#include "escala/models/factory.h"
#include "escala/train/metrics.h"
#include "escala/train/selection.h"
#include "escala/train/trainer.h"

namespace escala::cli {

namespace {

// The pipeline used when none is given: fill missing values, standardise numbers, one-hot
// categories (unseen categories at prediction time are ignored rather than rejected).
constexpr int kDefaultMaxEpochs = 200;
// `escala evaluate` prints the confusion matrix up to this many classes.
constexpr std::size_t kMaxConfusionClasses = 50;
constexpr int kDefaultPatience = 10;

constexpr char kDefaultPipeline[] =
    "impute(median) | impute(most_frequent) | standardize | onehot(unknown=ignore)";

struct TrainFlags {
  std::vector<std::string> data;
  std::vector<std::string> valid;
  std::string label;
  double valid_fraction = 0.0;
  std::string model = "logistic";
  std::string task = "auto";
  std::string hidden = "256,256";
  std::string activation = "relu";
  float dropout = 0.0f;
  std::string optimizer;
  std::optional<float> lr;
  std::optional<int> epochs;  // default: see DefaultEpochs
  std::int64_t batch_size = 256;
  std::optional<float> l2;  // default: see DefaultL2
  float l1 = 0.0f;
  float weight_decay = 0.0f;
  float momentum = 0.9f;
  std::string schedule = "constant";
  std::uint64_t warmup_steps = 0;
  double clip_norm = 0.0;
  std::optional<int> early_stopping;
  double min_delta = 0.0;
  std::string metric;
  std::string pipeline;
  std::string pipeline_file;
  int cv = 0;
  std::string search;
  int search_samples = 0;
  std::string checkpoint_dir;
  std::int64_t checkpoint_every_steps = 0;
  bool resume = false;
  std::string init_from;
  bool refit_pipeline = false;
  int lbfgs_iterations = 200;
  double tol = train::TrainOptions{}.lbfgs_tolerance;
  std::int64_t bucket_kb = 25600;
  std::string out;
  std::string history;
  std::string name;
  std::uint64_t seed = 42;
  bool drop_missing_labels = false;
  std::string device = "cpu";
  std::string precision = "fp32";
  DataFlags data_flags;
};

// With several GPU workers, gradients travel through NCCL; host collectives (metadata, metrics)
// stay on the job's communicator, which the NCCL communicator wraps. Rank 0 publishes NCCL's
// unique id in the coordinator's key-value store, and failures the job relays abort NCCL.
std::unique_ptr<Communicator> WithNccl(std::unique_ptr<Communicator> comm, int cuda_device) {
  gpu::NcclBootstrap nb;
  if (auto session = distributed::JobSessionOf(*comm)) {
    nb.set = [session](const std::string& k, const std::string& v) { session->Set(k, v); };
    nb.get = [session](const std::string& k, std::chrono::milliseconds t) {
      return session->Get(k, t);
    };
    nb.add_failure_handler = [session](std::function<void(const Status&)> h) {
      return session->AddFailureHandler(std::move(h));
    };
    nb.remove_failure_handler = [session](int id) { session->RemoveFailureHandler(id); };
  }
  gpu::NcclOptions no;
  no.device = cuda_device;
  return gpu::MakeNcclCommunicator(std::move(comm), nb, no);
}

// Rows whose label is missing, removed (with a count in the log) when asked to.
data::Table DropMissingLabels(const data::Table& t, const std::string& label, Communicator& comm) {
  const data::Column& col = t.column(label);
  std::vector<std::int64_t> keep;
  for (std::int64_t i = 0; i < t.num_rows(); ++i) {
    if (!col.is_missing(i)) keep.push_back(i);
  }
  const auto dropped = comm.AllReduceScalar<std::int64_t>(
      t.num_rows() - static_cast<std::int64_t>(keep.size()), ReduceOp::kSum);
  if (dropped > 0 && comm.rank() == 0) {
    ESCALA_LOG_INFO("dropped {} row(s) whose label '{}' is missing", dropped, label);
  }
  return t.Take(keep);
}

models::Task ResolveTask(const TrainFlags& f, const data::Table& t, Communicator& comm,
                         std::vector<std::string>* classes) {
  models::Task task;
  if (f.model != "mlp") {
    task = models::TaskForKind(f.model, models::Task::kBinary);
  } else if (f.task == "regression") {
    task = models::Task::kRegression;
  } else if (f.task == "binary") {
    task = models::Task::kBinary;
  } else if (f.task == "multiclass") {
    task = models::Task::kMulticlass;
  } else {
    ESCALA_CHECK(f.task == "auto", kInvalidArgument,
                 "--task must be auto, regression, binary or multiclass, got '{}'", f.task);
    // A categorical label, or a few integer values, is a class label; anything else a target.
    const data::Column& col = t.column(f.label);
    bool integral = col.type() != data::DataType::kCategorical;
    for (std::int64_t i = 0; integral && i < col.size(); ++i) {
      const double v = col.GetDouble(i);
      if (!std::isnan(v) && v != std::floor(v)) integral = false;
    }
    const auto names = col.type() == data::DataType::kCategorical || integral
                           ? ClassNames(t, f.label, comm)
                           : std::vector<std::string>{};
    if (col.type() == data::DataType::kCategorical || (integral && names.size() <= 20)) {
      task = names.size() <= 2 ? models::Task::kBinary : models::Task::kMulticlass;
    } else {
      task = models::Task::kRegression;
    }
  }
  if (task != models::Task::kRegression) {
    WarnIfLabelLooksWrong(t, f.label, comm);
    *classes = ClassNames(t, f.label, comm);
    if (task == models::Task::kBinary) {
      ESCALA_CHECK(classes->size() == 2, kInvalidArgument,
                   "label '{}' has {} class(es) ({}); binary models need exactly 2{}", f.label,
                   classes->size(), ShortList(*classes),
                   classes->size() > 20  ? " (a regression target? use --model linear)"
                   : classes->size() > 2 ? " (use --model softmax or --task multiclass)"
                                         : "");
    } else {
      ESCALA_CHECK(classes->size() >= 2, kInvalidArgument,
                   "label '{}' has {} class(es); classification needs at least 2", f.label,
                   classes->size());
    }
  } else {
    const auto type = t.column(f.label).type();
    ESCALA_CHECK(type != data::DataType::kCategorical, kInvalidArgument,
                 "label '{}' is categorical; a regression model needs a numeric label", f.label);
  }
  return task;
}

// Defaults that work on small tables as scikit-learn's do (docs/training.md): linear models are
// regularised as C = 1 (l2 = 1/n: the objective is the mean loss + l2/2 |w|^2); minibatch
// training runs up to 200 epochs and stops when the monitored loss has not improved by 1e-4 for
// 10 epochs (MLPClassifier's max_iter, tol and n_iter_no_change).
void ApplyDefaults(const TrainFlags& f, std::int64_t rows, bool leader, train::TrainOptions* o) {
  const bool linear = f.model != "mlp";
  o->optimizer.l2 = f.l2.value_or(linear && rows > 0 ? 1.0f / static_cast<float>(rows) : 0.0f);
  o->epochs = f.epochs.value_or(kDefaultMaxEpochs);
  o->early_stopping.patience = f.early_stopping.value_or(f.epochs ? 0 : kDefaultPatience);
  if (!f.early_stopping && !f.epochs && f.min_delta == 0) o->early_stopping.min_delta = 1e-4;
  if (!leader) return;
  if (!f.l2 && linear) {
    ESCALA_LOG_INFO("--l2 defaults to 1/n = {:.3g} (scikit-learn's C=1); --l2 0 turns it off",
                    o->optimizer.l2);
  }
  if (!f.epochs && o->optimizer.name != "lbfgs") {
    ESCALA_LOG_INFO(
        "--epochs defaults to at most {}, stopping when the {} loss has not improved by 1e-4 for "
        "{} epochs; give --epochs for a fixed count",
        kDefaultMaxEpochs, f.valid.empty() && f.valid_fraction == 0 ? "training" : "validation",
        o->early_stopping.patience);
  }
}

struct TargetScaling {
  double shift = 0, scale = 1;
};

// An mlp regressor trains on the standardised target (the model un-scales its predictions), so
// that its defaults work whatever the target's units; a warm start keeps the earlier scaling.
TargetScaling StandardizeTarget(const TrainFlags& f, models::Task task,
                                const models::Model* previous, Communicator& comm,
                                std::vector<float>* y) {
  TargetScaling t;
  if (task != models::Task::kRegression || f.model != "mlp") return t;
  if (previous != nullptr) {
    t = {previous->target_shift(), previous->target_scale()};
  } else {
    std::array<double, 3> m = {static_cast<double>(y->size()), 0, 0};
    for (float v : *y) m[1] += v;
    comm.AllReduce(std::span<double>(m), ReduceOp::kSum);
    const double mean = m[0] > 0 ? m[1] / m[0] : 0;
    for (float v : *y) m[2] += (v - mean) * (v - mean);
    double ss = m[2];
    comm.AllReduce(std::span<double>(&ss, 1), ReduceOp::kSum);
    const double sd = m[0] > 0 ? std::sqrt(ss / m[0]) : 0;
    t = {mean, sd > 0 && std::isfinite(sd) ? sd : 1.0};
  }
  for (float& v : *y) v = static_cast<float>((v - t.shift) / t.scale);
  return t;
}

// Flag values that the library would otherwise reinterpret or accept silently.
void ValidateFlags(const TrainFlags& f) {
  auto finite_nonneg = [](double v) { return std::isfinite(v) && v >= 0; };
  ESCALA_CHECK(!f.lr || (std::isfinite(*f.lr) && *f.lr > 0), kInvalidArgument,
               "--lr must be a positive number, got {}", f.lr.value_or(0));
  ESCALA_CHECK(
      finite_nonneg(f.l2.value_or(0)) && finite_nonneg(f.l1) && finite_nonneg(f.weight_decay),
      kInvalidArgument, "--l2, --l1 and --weight-decay must be >= 0 (got {}, {}, {})",
      f.l2.value_or(0), f.l1, f.weight_decay);
  ESCALA_CHECK(f.dropout >= 0 && f.dropout < 1, kInvalidArgument,
               "--dropout must be in [0, 1), got {}", f.dropout);
  ESCALA_CHECK(f.cv == 0 || f.cv >= 2, kInvalidArgument,
               "--cv must be 0 (off) or at least 2 folds, got {}", f.cv);
  ESCALA_CHECK(f.search_samples >= 0, kInvalidArgument, "--search-samples must be >= 0, got {}",
               f.search_samples);
  ESCALA_CHECK(f.epochs.value_or(1) >= 1, kInvalidArgument, "--epochs must be >= 1, got {}",
               f.epochs.value_or(1));
  ESCALA_CHECK(f.batch_size >= 1, kInvalidArgument, "--batch-size must be >= 1, got {}",
               f.batch_size);
  ESCALA_CHECK(f.early_stopping.value_or(0) >= 0, kInvalidArgument,
               "--early-stopping must be >= 0, got {}", f.early_stopping.value_or(0));
  ESCALA_CHECK(std::isfinite(f.tol) && f.tol >= 0, kInvalidArgument,
               "--tol must be a number >= 0, got {}", f.tol);
  ESCALA_CHECK(f.lbfgs_iterations >= 1, kInvalidArgument, "--lbfgs-iterations must be >= 1, got {}",
               f.lbfgs_iterations);
}

// Outputs must not overwrite inputs; training that keeps nothing says so.
void CheckOutputs(const TrainFlags& f) {
  std::vector<std::string> inputs = InputPaths(f.data, f.data_flags);
  if (!f.valid.empty()) {
    const auto v = InputPaths(f.valid, f.data_flags);
    inputs.insert(inputs.end(), v.begin(), v.end());
  }
  if (!f.init_from.empty()) inputs.push_back(f.init_from);
  if (!f.pipeline_file.empty()) inputs.push_back(f.pipeline_file);
  if (!f.out.empty()) CheckOutputIsNotInput(f.out, "--out", inputs);
  if (!f.history.empty()) {
    CheckOutputIsNotInput(f.history, "--history", inputs);
    if (!f.out.empty()) CheckOutputIsNotInput(f.history, "--history", {f.out});
  }
  if (f.out.empty()) {
    ESCALA_LOG_WARN("no --out given: the trained model will not be saved");
  }
}

// The training table and the validation table (--valid, or --valid-fraction held out).
struct TrainTables {
  data::Table train, valid;
  bool has_valid = false;
};

TrainTables ReadTables(const TrainFlags& f, Communicator& comm) {
  data::Table table = ReadShard(f.data, f.data_flags, comm, "training data", f.label);
  ESCALA_CHECK(table.num_rows() > 0 || comm.size() > 1, kInvalidArgument,
               "training data has no rows");
  table.column(f.label);  // a missing label column fails here, listing the columns
  if (f.drop_missing_labels) table = DropMissingLabels(table, f.label, comm);
  data::Table valid;
  bool has_valid = false;
  if (!f.valid.empty()) {
    valid = ReadShard(f.valid, f.data_flags, comm, "validation data", f.label);
    if (f.drop_missing_labels) valid = DropMissingLabels(valid, f.label, comm);
    has_valid = true;
  } else if (f.valid_fraction > 0) {
    const auto split = data::SplitTrainValidation(table.row_ids(), f.valid_fraction, f.seed);
    valid = table.Take(split.valid);
    table = table.Take(split.train);
    const auto left = comm.AllReduceScalar<std::int64_t>(table.num_rows(), ReduceOp::kSum);
    ESCALA_CHECK(left >= 2, kInvalidArgument,
                 "--valid-fraction {} leaves {} training row(s) of {}: give a smaller fraction",
                 f.valid_fraction, left,
                 left + comm.AllReduceScalar<std::int64_t>(valid.num_rows(), ReduceOp::kSum));
    has_valid = true;
  }
  return {std::move(table), std::move(valid), has_valid};
}

// The feature pipeline: the warm start's, or the spec's fitted on this data (all ranks).
features::Pipeline FitPipeline(const TrainFlags& f, const io::ModelBundle* previous,
                               const data::Table& table, Communicator& comm) {
  features::Pipeline pipeline;
  if (previous && !f.refit_pipeline) {
    pipeline = previous->pipeline;
  } else {
    std::string spec = kDefaultPipeline;
    if (!f.pipeline_file.empty()) {
      spec = ReadFileToString(f.pipeline_file);
    } else if (!f.pipeline.empty()) {
      // "none": the identity over numeric columns (features used as they are).
      spec = f.pipeline == "none" ? "" : f.pipeline;
    }
    pipeline = features::Pipeline::FromSpec(spec);
    features::FitOptions fo;
    fo.exclude = {f.label};
    pipeline.Fit(table, fo, comm);
  }
  return pipeline;
}

models::ModelSpec MakeSpec(const TrainFlags& f, models::Task task,
                           const features::Pipeline& pipeline,
                           const std::vector<std::string>& classes) {
  models::ModelSpec spec;
  spec.kind = f.model;
  spec.task = task;
  spec.num_features = pipeline.num_outputs();
  spec.num_classes = task == models::Task::kMulticlass ? static_cast<int>(classes.size()) : 0;
  spec.hidden = ParseIntList(f.hidden, "--hidden");
  spec.activation = models::ParseActivation(f.activation);
  spec.dropout = f.dropout;
  return spec;
}

// Training options from the flags; the defaults that depend on the data come after
// (ApplyDefaults).
train::TrainOptions MakeTrainOptions(const TrainFlags& f, const gpu::DeviceSpec& device,
                                     gpu::Precision precision, int cuda_device,
                                     const features::Pipeline& pipeline) {
  train::TrainOptions o;
  // L-BFGS has no GPU form: on a GPU every model defaults to adam.
  o.optimizer.name = !f.optimizer.empty()                ? f.optimizer
                     : (f.model == "mlp" || device.cuda) ? "adam"
                                                         : "lbfgs";
  // No --lr: the optimizer's usual rate.
  o.optimizer.lr =
      f.lr.value_or(o.optimizer.name == "adam" || o.optimizer.name == "adamw" ? 1e-3f : 1e-2f);
  o.optimizer.l1 = f.l1;
  o.optimizer.weight_decay = f.weight_decay;
  o.optimizer.momentum = f.momentum;
  o.schedule.name = f.schedule;
  o.schedule.warmup_steps = f.warmup_steps;
  o.batch_size = f.batch_size;
  o.clip_norm = f.clip_norm;
  o.seed = f.seed;
  o.metric = f.metric;
  o.early_stopping.min_delta = f.min_delta;
  o.checkpoint.dir = f.checkpoint_dir;
  o.checkpoint.every_steps = f.checkpoint_every_steps;
  o.checkpoint.resume = f.resume;
  o.checkpoint.data_tag = fmt::format("{} #{:08x}", pipeline.spec(), Crc32(pipeline.Serialize()));
  o.lbfgs_max_iterations = f.lbfgs_iterations;
  o.lbfgs_tolerance = f.tol;
  ESCALA_CHECK(f.bucket_kb >= 0, kInvalidArgument, "--bucket-kb must be >= 0, got {}", f.bucket_kb);
  o.bucket_bytes = static_cast<std::size_t>(f.bucket_kb) << 10;
  if (device.cuda) {
    gpu::CudaTrainOptions co;
    co.device = cuda_device;
    co.precision = precision;
    o.backend = gpu::CudaBackend(co);
  }
  return o;
}

// --cv / --search: cross-validates the candidates, prints the table on rank 0 and applies the
// best to spec and o. Returns the best mean score as "cv_<metric>" (empty when off).
std::map<std::string, double> SelectModel(const TrainFlags& f, const train::DataShard& data,
                                          Communicator& comm, models::ModelSpec* spec,
                                          train::TrainOptions* o) {
  if (f.cv == 0 && f.search.empty()) return {};
  std::vector<train::Candidate> candidates = {{}};
  if (!f.search.empty()) {
    const auto space = train::ParseSearchSpace(f.search);
    candidates = f.search_samples > 0 ? train::RandomCandidates(space, f.search_samples, f.seed)
                                      : train::GridCandidates(space);
  }
  train::SelectionOptions so;
  so.folds = f.cv > 0 ? f.cv : 5;
  so.metric = f.metric;
  so.seed = f.seed;
  const auto sel = train::CrossValidate(*spec, *o, candidates, data, so, comm);
  const auto& best = sel.candidates[static_cast<std::size_t>(sel.best)];
  if (comm.rank() == 0) {
    fmt::print("cross-validation ({} folds, {}):\n", so.folds, sel.metric);
    for (std::size_t i = 0; i < sel.candidates.size(); ++i) {
      const auto& c = sel.candidates[i];
      std::string desc;
      for (const auto& [k, v] : c.params)
        desc += fmt::format("{}{}={}", desc.empty() ? "" : " ", k, v);
      fmt::print("  {} {:<40} {:.5f} +/- {:.5f}\n", static_cast<int>(i) == sel.best ? "*" : " ",
                 desc.empty() ? "(defaults)" : desc, c.mean, c.stddev);
    }
  }
  train::ApplyCandidate(best.params, spec, o);
  return {{"cv_" + sel.metric, best.mean}};
}

std::map<std::string, std::string> TrainingConfig(const TrainFlags& f, models::Task task,
                                                  const train::TrainOptions& o,
                                                  const features::Pipeline& pipeline, int workers,
                                                  bool cuda, const std::string& stop_reason) {
  return {{"model", f.model},
          {"task", std::string(models::TaskName(task))},
          {"optimizer", o.optimizer.name},
          {"lr", fmt::format("{}", o.optimizer.lr)},
          {"epochs", std::to_string(o.epochs)},
          {"batch_size", std::to_string(o.batch_size)},
          {"l2", fmt::format("{}", o.optimizer.l2)},
          {"l1", fmt::format("{}", o.optimizer.l1)},
          {"seed", std::to_string(o.seed)},
          {"pipeline", pipeline.spec()},
          {"workers", std::to_string(workers)},
          {"device", f.device},
          {"precision", cuda ? f.precision : "fp32"},
          {"data", fmt::format("{}", fmt::join(f.data, " "))},
          {"init_from", f.init_from},
          {"stop_reason", stop_reason}};
}

// The bundle (--out, creating its directory) and the history (--history).
void SaveOutputs(const TrainFlags& f, const io::ModelBundle& bundle,
                 const train::TrainResult& result) {
  if (!f.out.empty()) {
    // A model repository's layout (models/<name>/<version>/model.bundle) may not exist yet.
    const auto parent = std::filesystem::path(f.out).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    ESCALA_CHECK(!ec, kIo, "--out {}: cannot create directory {}: {}", f.out, parent.string(),
                 ec.message());
    bundle.Save(f.out);
    ESCALA_LOG_INFO("wrote {}", f.out);
  }
  if (f.history.empty()) return;
  if (f.history.size() > 5 && f.history.substr(f.history.size() - 5) == ".json") {
    train::WriteHistoryJson(result.history, f.history);
  } else {
    train::WriteHistoryCsv(result.history, f.history);
  }
}

void RunTrain(const TrainFlags& f) {
  // The device first: `--device cuda` in a CPU-only build fails here, before any work.
  const gpu::DeviceSpec device = gpu::ParseDeviceSpec(f.device);
  const gpu::Precision precision = gpu::ParsePrecision(f.precision);
  int cuda_device = -1;
  if (device.cuda) {
    cuda_device = gpu::SelectDevice(device, distributed::WorkerEnv::FromEnvironment().local_rank);
  }
  auto comm = MakeWorkerCommunicator();
  if (device.cuda && comm->size() > 1) comm = WithNccl(std::move(comm), cuda_device);
  const bool leader = comm->rank() == 0;
  ESCALA_CHECK(!f.label.empty(), kInvalidArgument, "--label is required");
  ESCALA_CHECK(f.valid_fraction >= 0 && f.valid_fraction < 1, kInvalidArgument,
               "--valid-fraction must be in [0, 1), got {}", f.valid_fraction);
  ESCALA_CHECK(f.valid.empty() || f.valid_fraction == 0, kInvalidArgument,
               "give --valid or --valid-fraction, not both");
  ValidateFlags(f);
  CheckOutputs(f);

  // Warm start: the earlier bundle supplies the pipeline (unless refitted), classes and weights.
  std::optional<io::ModelBundle> previous;
  if (!f.init_from.empty()) previous = io::ModelBundle::Load(f.init_from);

  auto [table, valid, has_valid] = ReadTables(f, *comm);
  std::vector<std::string> classes;
  const models::Task task = ResolveTask(f, table, *comm, &classes);
  if (previous && !previous->class_names.empty()) {
    ESCALA_CHECK(previous->class_names == classes, kFailedPrecondition,
                 "--init-from {}: its classes ({}) differ from this data's ({})", f.init_from,
                 fmt::join(previous->class_names, ", "), fmt::join(classes, ", "));
  }

  const features::Pipeline pipeline = FitPipeline(f, previous ? &*previous : nullptr, table, *comm);
  if (leader) ESCALA_LOG_INFO("{}", pipeline.Describe());
  MatrixF x, xv;
  pipeline.Transform(table, &x);
  std::vector<float> y = EncodeLabels(table, f.label, classes);
  const TargetScaling target =
      StandardizeTarget(f, task, previous ? previous->model.get() : nullptr, *comm, &y);
  std::vector<float> yv;
  if (has_valid) {
    pipeline.Transform(valid, &xv);
    yv = EncodeLabels(valid, f.label, classes);
  }
  const std::vector<std::uint64_t> ids = train::DenseRowIds(table.row_ids(), *comm);

  // Model and training options.
  models::ModelSpec spec = MakeSpec(f, task, pipeline, classes);
  train::TrainOptions o = MakeTrainOptions(f, device, precision, cuda_device, pipeline);
  ApplyDefaults(f, comm->AllReduceScalar<std::int64_t>(table.num_rows(), ReduceOp::kSum), leader,
                &o);
  train::Validate(o);

  const train::DataShard train_shard{std::as_const(x).view(), y, ids};
  const train::DataShard valid_shard{std::as_const(xv).view(), yv, {}};
  const std::map<std::string, double> cv_metrics = SelectModel(f, train_shard, *comm, &spec, &o);
  auto model = models::MakeModel(spec);
  if (previous) {
    const auto* prev = dynamic_cast<const models::GradientModel*>(previous->model.get());
    ESCALA_CHECK(prev != nullptr && prev->kind() == model->kind() &&
                     prev->parameters().size() == model->parameters().size(),
                 kFailedPrecondition, "--init-from {}: its model ({}) does not match this one ({})",
                 f.init_from, previous->model->Describe(), model->Describe());
    std::copy(prev->parameters().begin(), prev->parameters().end(), model->parameters().begin());
    o.initialize = false;
  }
  if (task == models::Task::kRegression) model->SetTargetScaling(target.shift, target.scale);
  if (leader) ESCALA_LOG_INFO("model: {}", model->Describe());
  train::Trainer trainer(*model, o, *comm);
  const train::TrainResult result = trainer.Fit(train_shard, has_valid ? &valid_shard : nullptr);

  if (!leader) return;
  io::ModelBundle bundle;
  bundle.name = f.name;
  bundle.label = f.label;
  bundle.class_names = classes;
  bundle.pipeline = pipeline;
  bundle.model = std::move(model);
  bundle.history = result.history;
  bundle.metrics = cv_metrics;
  for (const auto& [k, v] : result.valid.values) bundle.metrics["valid_" + k] = v;
  bundle.training_config =
      TrainingConfig(f, task, o, pipeline, comm->size(), device.cuda, result.stop_reason);
  SaveOutputs(f, bundle, result);
  fmt::print("trained {} in {:.2f} s ({}): {}\n", bundle.model->Describe(), result.seconds,
             result.stop_reason, has_valid ? "" : "no validation data");
  if (has_valid) fmt::print("validation: {}\n", result.valid.ToString());
}

struct EvalFlags {
  std::string model;
  std::vector<std::string> data;
  std::string label;
  DataFlags data_flags;
  float threshold = 0.5f;
};

void RunEvaluate(const EvalFlags& f) {
  ESCALA_CHECK(f.threshold >= 0 && f.threshold <= 1, kInvalidArgument,
               "--threshold must be in [0, 1], got {}", f.threshold);
  auto comm = MakeWorkerCommunicator();
  const auto bundle = std::make_shared<const io::ModelBundle>(io::ModelBundle::Load(f.model));
  const std::string label = f.label.empty() ? bundle->label : f.label;
  ESCALA_CHECK(!label.empty(), kInvalidArgument, "--label is required (the bundle names none)");
  const data::Table t = ReadShard(f.data, f.data_flags, *comm, "evaluation data", label);
  const std::vector<float> y = EncodeLabels(t, label, bundle->class_names);
  io::Predictor predictor(bundle);
  MatrixF p;
  predictor.PredictTable(t, &p);
  const auto m = train::EvaluateDistributed(bundle->model->task(), std::as_const(p).view(), y,
                                            *comm, f.threshold);
  if (comm->rank() != 0) return;
  fmt::print("{} rows\n", m.count);
  for (const auto& [k, v] : m.values) fmt::print("{:<20} {:.6f}\n", k, v);
  if (m.confusion.size() > kMaxConfusionClasses) {
    fmt::print("confusion matrix omitted: {} classes (more than {})\n", m.confusion.size(),
               kMaxConfusionClasses);
  } else if (!m.confusion.empty()) {
    fmt::print("confusion matrix (rows: true, columns: predicted):\n");
    for (std::size_t i = 0; i < m.confusion.size(); ++i) {
      fmt::print("  {:<12}",
                 i < bundle->class_names.size() ? bundle->class_names[i] : std::to_string(i));
      for (auto c : m.confusion[i]) fmt::print(" {:>8}", c);
      fmt::print("\n");
    }
  }
}

}  // namespace

void RegisterTrain(CLI::App& app) {
  auto f = std::make_shared<TrainFlags>();
  auto* cmd = app.add_subcommand("train", "Fit a feature pipeline and train a model into a bundle");
  cmd->add_option("--data", f->data, "Training data: files, globs or directories")->required();
  cmd->add_option("--label", f->label, "Label column")->required();
  cmd->add_option("--valid", f->valid, "Validation data (files, globs or directories)");
  cmd->add_option("--valid-fraction", f->valid_fraction,
                  "Hold out this fraction of the training rows for validation (by row identity: "
                  "the same split for any number of workers)");
  cmd->add_option("--model", f->model, "linear, logistic, softmax or mlp")->capture_default_str();
  cmd->add_option("--task", f->task, "For mlp: auto, regression, binary or multiclass")
      ->capture_default_str();
  cmd->add_option("--hidden", f->hidden, "MLP hidden layer widths")->capture_default_str();
  cmd->add_option("--activation", f->activation, "MLP activation: relu, tanh, sigmoid, gelu")
      ->capture_default_str();
  cmd->add_option("--dropout", f->dropout, "MLP dropout rate")->capture_default_str();
  cmd->add_option("--optimizer", f->optimizer,
                  "sgd, momentum, nesterov, adam, adamw or lbfgs (default: lbfgs for linear "
                  "models, adam for mlp)");
  cmd->add_option("--lr", f->lr, "Learning rate (default: 1e-3 for adam/adamw, 1e-2 otherwise)");
  cmd->add_option("--epochs", f->epochs,
                  "Epochs (minibatch optimizers; default: at most 200, stopping when the loss has "
                  "not improved by 1e-4 for 10 epochs)");
  cmd->add_option("--batch-size", f->batch_size, "Global batch size, over all workers")
      ->capture_default_str();
  cmd->add_option("--l2", f->l2,
                  "L2 penalty on the mean loss (default: 1/n for linear models, as scikit-learn's "
                  "C=1; 0 for mlp)");
  cmd->add_option("--l1", f->l1, "L1 penalty (OWL-QN with lbfgs, proximal steps otherwise)")
      ->capture_default_str();
  cmd->add_option("--weight-decay", f->weight_decay, "Decoupled weight decay (adamw)");
  cmd->add_option("--momentum", f->momentum, "Momentum (momentum, nesterov)");
  cmd->add_option("--schedule", f->schedule,
                  "Learning-rate schedule: constant, step, cosine, linear")
      ->capture_default_str();
  cmd->add_option("--warmup-steps", f->warmup_steps, "Linear warm-up steps");
  cmd->add_option("--clip-norm", f->clip_norm, "Clip the gradient to this global L2 norm");
  cmd->add_option("--early-stopping", f->early_stopping,
                  "Stop after this many epochs without improvement of --metric (0: off)");
  cmd->add_option("--min-delta", f->min_delta, "Smallest improvement that counts");
  cmd->add_option("--metric", f->metric,
                  "Validation metric monitored for early stopping and selection (default: "
                  "logloss, or rmse for regression)");
  cmd->add_option(
      "--pipeline", f->pipeline,
      std::string("Feature pipeline spec, or 'none' for numeric features as they are (default: '") +
          kDefaultPipeline + "')");
  cmd->add_option("--pipeline-file", f->pipeline_file, "Read the pipeline spec from a file");
  cmd->add_option("--cv", f->cv, "k-fold cross-validation before the final fit");
  cmd->add_option("--search", f->search,
                  "Hyperparameter search space, e.g. 'lr=1e-3,1e-2;l2=0,1e-4' (grid)");
  cmd->add_option("--search-samples", f->search_samples,
                  "Random search: try this many points of the space instead of the whole grid");
  cmd->add_option("--checkpoint-dir", f->checkpoint_dir, "Write checkpoints here");
  cmd->add_option("--checkpoint-every-steps", f->checkpoint_every_steps,
                  "Also checkpoint every N steps (default: at epoch ends only)");
  cmd->add_flag("--resume", f->resume, "Continue from the checkpoint in --checkpoint-dir");
  cmd->add_option("--init-from", f->init_from,
                  "Warm-start from an earlier bundle (its pipeline, classes and weights)");
  cmd->add_flag("--refit-pipeline", f->refit_pipeline,
                "With --init-from: refit the pipeline on this data instead of reusing it");
  cmd->add_option("--lbfgs-iterations", f->lbfgs_iterations, "L-BFGS iteration limit")
      ->capture_default_str();
  cmd->add_option("--tol", f->tol,
                  "L-BFGS stops when the largest gradient component is at most tol x "
                  "max(1, |objective|)")
      ->capture_default_str();
  cmd->add_option("--bucket-kb", f->bucket_kb,
                  "Distributed training: all-reduce gradients in buckets of this many KiB, "
                  "overlapped with the backward pass (0: one all-reduce per step)")
      ->capture_default_str();
  cmd->add_option("--out", f->out, "Write the model bundle here");
  cmd->add_option("--history", f->history, "Write per-epoch history (.csv or .json)");
  cmd->add_option("--name", f->name, "Model name stored in the bundle");
  cmd->add_option("--seed", f->seed, "Random seed")->capture_default_str();
  cmd->add_flag("--drop-missing-labels", f->drop_missing_labels,
                "Drop rows whose label is missing (otherwise they are an error)");
  cmd->add_option("--device", f->device,
                  "Where to train: cpu, cuda (the GPU of this worker's local rank) or cuda:N")
      ->capture_default_str();
  cmd->add_option("--precision", f->precision,
                  "GPU GEMM precision: fp32, or tf32 (tensor cores, ~1e-3 relative error)")
      ->capture_default_str();
  f->data_flags.Register(cmd);
  cmd->callback([f] { RunTrain(*f); });
}

void RegisterEvaluate(CLI::App& app) {
  auto f = std::make_shared<EvalFlags>();
  auto* cmd = app.add_subcommand("evaluate", "Print a bundle's metrics on labelled data");
  cmd->add_option("--model", f->model, "Model bundle")->required();
  cmd->add_option("--data", f->data, "Labelled data: files, globs or directories")->required();
  cmd->add_option("--label", f->label, "Label column (default: the bundle's)");
  cmd->add_option("--threshold", f->threshold, "Binary decision threshold")->capture_default_str();
  f->data_flags.Register(cmd);
  cmd->callback([f] { RunEvaluate(*f); });
}

}  // namespace escala::cli
