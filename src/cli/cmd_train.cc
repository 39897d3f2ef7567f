// `escala train` and `escala evaluate`.
#include <array>
#include <cmath>
#include <filesystem>
#include <optional>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/param_flags.h"
#include "escala/core/error.h"
#include "escala/core/file_util.h"
#include "escala/core/logging.h"
#include "escala/core/memory_info.h"
#include "escala/data/split.h"
#include "escala/data/stream.h"
#include "escala/distributed/connect.h"
#include "escala/distributed/worker_env.h"
#include "escala/features/pipeline.h"
#include "escala/gpu/device.h"
#include "escala/gpu/nccl.h"
#include "escala/gpu/train.h"
#include "escala/io/bundle.h"
#include "escala/io/model_file.h"
#include "escala/models/factory.h"
#include "escala/train/estimator.h"
#include "escala/train/labels.h"
#include "escala/train/metrics.h"
#include "escala/train/params.h"
#include "escala/train/selection.h"
#include "escala/train/trainer.h"

namespace escala::cli {

namespace {

// `escala evaluate` prints the confusion matrix up to this many classes.
constexpr std::size_t kMaxConfusionClasses = 50;

struct TrainFlags {
  // The declared training parameters (escala/train/params.h), set flag by flag.
  std::shared_ptr<train::TrainSpec> spec = std::make_shared<train::TrainSpec>();
  // What the command reads and writes, and where it trains.
  std::vector<std::string> data;
  std::vector<std::string> valid;
  std::string pipeline_file;
  std::string init_from;
  std::string out;
  std::string history;
  std::string device = "cpu";
  std::string precision = "fp32";
  std::string memory_budget = "auto";
  DataFlags data_flags;
};

// Reading a CSV shard whole takes about this many bytes of memory per input byte (the typed
// table, then the feature matrix beside it): measured on W0, 1.0 GiB at peak for 588 MB.
constexpr std::uint64_t kInMemoryBytesPerInputByte = 2;
// Input bytes per chunk when a CSV shard is read into memory (see train::TrainChunks).
constexpr std::size_t kChunkBytes = std::size_t{32} << 20;

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

// The memory budget when training would stream (--memory-budget, or by default half the memory
// available shared by this machine's workers), or none when the shard fits in it read whole.
std::optional<train::StreamSpec> StreamingFor(const TrainFlags& f, const train::TrainSpec& spec,
                                              const data::Dataset& dataset,
                                              const Communicator& comm) {
  const bool automatic = f.memory_budget == "auto";
  std::uint64_t budget = 0;
  if (automatic) {
    const int local = std::max(1, distributed::WorkerEnv::FromEnvironment().local_world_size);
    budget = AvailableMemoryBytes() / 2 / static_cast<std::uint64_t>(local);
    if (budget == 0) return std::nullopt;  // no /proc/meminfo: read whole, as asked
  } else {
    budget = distributed::ParseByteSize(f.memory_budget, "--memory-budget");
  }
  const std::uint64_t need =
      dataset.total_bytes() / static_cast<std::uint64_t>(comm.size()) * kInMemoryBytesPerInputByte;
  if (need <= budget) return std::nullopt;
  std::string refusal = train::StreamingRefusal(spec);
  if (refusal.empty() && dataset.format() == data::Format::kLibsvm) {
    refusal = "LIBSVM data does not stream (convert it to NPY or CSV)";
  }
  const auto mib = [](std::uint64_t bytes) { return fmt::format("{:.1f} MiB", bytes / 1048576.0); };
  const std::string what = fmt::format(
      "reading this worker's share of the training data whole would take about {}, "
      "more than {} {}",
      mib(need), automatic ? "half the available memory," : "--memory-budget", mib(budget));
  ESCALA_CHECK(automatic || refusal.empty(), kInvalidArgument, "{}; it cannot stream: {}", what,
               refusal);
  if (!refusal.empty()) {
    if (comm.rank() == 0) ESCALA_LOG_WARN("{}; reading it whole anyway: {}", what, refusal);
    return std::nullopt;
  }
  if (comm.rank() == 0) ESCALA_LOG_INFO("{}: training streamed", what);
  return train::StreamSpec{.memory_budget = static_cast<std::size_t>(budget)};
}

// This rank's shard as the chunks a stream reads (CSV, NPY), or as one table (LIBSVM).
std::vector<data::Table> ReadChunks(const data::Dataset& dataset, const Communicator& comm) {
  std::vector<data::Table> chunks;
  if (dataset.format() == data::Format::kLibsvm) {
    chunks.push_back(ReadShard(dataset, comm, "training data"));
    return chunks;
  }
  data::DatasetStream stream(dataset, data::Shard{comm.rank(), comm.size()},
                             {.block_bytes = kChunkBytes});
  data::Table chunk;
  while (stream.Next(&chunk)) {
    if (chunk.num_rows() > 0) chunks.push_back(std::move(chunk));
  }
  ESCALA_LOG_INFO("training data: {} ({} file(s))", stream.report().Summary(),
                  dataset.files().size());
  return chunks;
}

// Trains on this rank's shard of --data (and of --valid): read whole, or streamed. CSV numbers
// are held as float32, which the features are anyway.
train::TrainOutcome Train(const TrainFlags& f, const train::TrainSpec& spec, Communicator& comm) {
  const data::Dataset dataset = OpenDataset(f.data, f.data_flags, spec.label, true);
  const auto stream = StreamingFor(f, spec, dataset, comm);
  std::optional<data::Table> valid;
  if (!f.valid.empty()) {
    valid =
        ReadShard(OpenDataset(f.valid, f.data_flags, spec.label, true), comm, "validation data");
  }
  const data::Shard shard{comm.rank(), comm.size()};
  if (stream) return train::TrainStreamed(spec, dataset, shard, std::move(valid), comm, *stream);
  std::vector<data::Table> chunks = ReadChunks(dataset, comm);
  // NPY and LIBSVM tables add their label column to the dataset's schema.
  data::Schema schema = chunks.empty() ? dataset.table_schema() : chunks[0].schema();
  return train::TrainChunks(spec, std::move(chunks), std::move(schema), std::move(valid), comm,
                            dataset.schema());
}

// `escala train`'s flags as the library's spec: the declared parameters as parsed, the pipeline
// from --pipeline-file, the warm start and the device. The CLI is a mapping of flags onto it.
train::TrainSpec SpecFromFlags(const TrainFlags& f, const gpu::DeviceSpec& device,
                               gpu::Precision precision, int cuda_device,
                               const io::ModelBundle* previous) {
  train::TrainSpec s = *f.spec;
  if (!f.pipeline_file.empty()) {
    s.pipeline = ReadFileToString(f.pipeline_file);
    try {
      features::Pipeline::FromSpec(s.pipeline);
    } catch (const Error& e) {
      throw e.WithContext("--pipeline-file " + f.pipeline_file);
    }
  }
  s.init_from = previous;
  if (device.cuda) {
    gpu::CudaTrainOptions co;
    co.device = cuda_device;
    co.precision = precision;
    s.options.backend = gpu::CudaBackend(co);
  }
  return s;
}

// The cross-validation table (rank 0).
void PrintSelection(const train::SelectionResult& sel, int folds) {
  fmt::print("cross-validation ({} folds, {}):\n", folds, sel.metric);
  for (std::size_t i = 0; i < sel.candidates.size(); ++i) {
    const auto& c = sel.candidates[i];
    std::string desc;
    for (const auto& [k, v] : c.params) {
      desc += fmt::format("{}{}={}", desc.empty() ? "" : " ", k, v);
    }
    fmt::print("  {} {:<40} {:.5f} +/- {:.5f}\n", static_cast<int>(i) == sel.best ? "*" : " ",
               desc.empty() ? "(defaults)" : desc, c.mean, c.stddev);
  }
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
  ESCALA_CHECK(f.valid.empty() || f.spec->valid_fraction == 0, kInvalidArgument,
               "give --valid or --valid-fraction, not both");
  CheckOutputs(f);
  // Warm start: the earlier bundle supplies the pipeline (unless refitted), classes and weights.
  std::optional<io::ModelBundle> previous;
  if (!f.init_from.empty()) previous = io::LoadModelFile(f.init_from);
  const train::TrainSpec spec =
      SpecFromFlags(f, device, precision, cuda_device, previous ? &*previous : nullptr);
  train::Validate(spec);
  train::TrainOutcome out = Train(f, spec, *comm);
  if (comm->rank() != 0) return;
  ESCALA_LOG_INFO("peak memory {} MiB", PeakResidentBytes() >> 20);
  if (out.selection) PrintSelection(*out.selection, spec.cv > 0 ? spec.cv : 5);
  auto& config = out.bundle.training_config;
  config["device"] = f.device;
  config["precision"] = device.cuda ? f.precision : "fp32";
  config["data"] = fmt::format("{}", fmt::join(f.data, " "));
  config["init_from"] = f.init_from;
  SaveOutputs(f, out.bundle, out.result);
  fmt::print("trained {} in {:.2f} s ({}): {}\n", out.bundle.model->Describe(), out.result.seconds,
             out.result.stop_reason, out.has_validation ? "" : "no validation data");
  if (out.has_validation) fmt::print("validation: {}\n", out.result.valid.ToString());
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
  const auto bundle = std::make_shared<const io::ModelBundle>(io::LoadModelFile(f.model));
  const std::string label = f.label.empty() ? bundle->label : f.label;
  ESCALA_CHECK(!label.empty(), kInvalidArgument, "--label is required (the bundle names none)");
  const data::Table t =
      ReadShard(f.data, f.data_flags.WithCategoricalInputs(bundle->input_schema(), f.data), *comm,
                "evaluation data", label);
  const std::vector<float> y = train::EncodeLabels(t, label, bundle->class_names);
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
  cmd->add_option("--valid", f->valid, "Validation data (files, globs or directories)");
  AddParamFlags(cmd, train::TrainParams(), f->spec);
  cmd->get_option("--label")->required();
  cmd->add_option("--pipeline-file", f->pipeline_file, "Read the pipeline spec from a file");
  cmd->add_option("--init-from", f->init_from,
                  "Warm-start from an earlier bundle (its pipeline, classes and weights; gbdt: "
                  "boosting continues from its trees, an XGBoost .json / .ubj too)");
  cmd->add_option("--out", f->out, "Write the model bundle here");
  cmd->add_option("--history", f->history, "Write per-epoch history (.csv or .json)");
  cmd->add_option("--device", f->device,
                  "Where to train: cpu, cuda (the GPU of this worker's local rank) or cuda:N")
      ->capture_default_str();
  cmd->add_option("--precision", f->precision,
                  "GPU GEMM precision: fp32, or tf32 (tensor cores, ~1e-3 relative error)")
      ->capture_default_str();
  cmd->add_option("--memory-budget", f->memory_budget,
                  "Memory for the training data per worker (e.g. 512MiB); a shard larger than "
                  "this trains streamed (linear models). auto: half the available memory")
      ->capture_default_str();
  f->data_flags.Register(cmd);
  cmd->callback([f] { RunTrain(*f); });
}

void RegisterEvaluate(CLI::App& app) {
  auto f = std::make_shared<EvalFlags>();
  auto* cmd = app.add_subcommand("evaluate", "Print a bundle's metrics on labelled data");
  cmd->add_option("--model", f->model, "Model bundle (or an XGBoost model .json / .ubj)")
      ->required();
  cmd->add_option("--data", f->data, "Labelled data: files, globs or directories")->required();
  cmd->add_option("--label", f->label, "Label column (default: the bundle's)");
  cmd->add_option("--threshold", f->threshold, "Binary decision threshold")->capture_default_str();
  f->data_flags.Register(cmd);
  cmd->callback([f] { RunEvaluate(*f); });
}

}  // namespace escala::cli
