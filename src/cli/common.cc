#include "cli/common.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <set>
#include <string_view>

#include <fast_float/fast_float.h>
#include <fmt/format.h>

#include "escala/core/error.h"
#include "escala/core/logging.h"
#include "escala/core/parallel.h"
#include "escala/distributed/connect.h"
#include "escala/distributed/process_tuning.h"
#include "escala/features/sketches.h"

namespace escala::cli {

void DataFlags::Register(CLI::App* cmd) {
  cmd->add_option("--format", format, "Input format: auto, csv, libsvm or npy")
      ->capture_default_str();
  cmd->add_option("--delimiter", delimiter, "CSV field delimiter")->capture_default_str();
  cmd->add_flag("--no-header", no_header, "CSV files have no header line (columns c0, c1, ...)");
  cmd->add_option("--skip-lines", skip_lines,
                  "CSV: skip this many lines before the header (e.g. a count line)")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--comment", comment, "CSV: lines starting with this character are ignored");
  cmd->add_option("--on-error", on_error,
                  "Malformed rows: fail (stop with an error) or skip (count and report them)")
      ->capture_default_str();
  cmd->add_option("--na-values", na_values,
                  "Field texts that mean missing (default: empty, NA, NaN, null, ?)");
  cmd->add_option("--column-type", types,
                  "Override an inferred column type: NAME:float32|float64|int64|categorical");
}

DataFlags DataFlags::WithCategoricalInputs(const data::Schema& inputs,
                                           const std::vector<std::string>& files) const {
  DataFlags out = *this;
  const data::Schema inferred = data::Dataset::Open(files, ToOptions()).schema();
  for (const auto& field : inputs.fields()) {
    const int at = inferred.Find(field.name);
    if (field.type != data::DataType::kCategorical || at < 0 ||
        inferred.field(at).type == data::DataType::kCategorical) {
      continue;
    }
    const bool named = std::any_of(types.begin(), types.end(), [&](const std::string& t) {
      return t.rfind(field.name + ":", 0) == 0 &&
             t.find(':', field.name.size() + 1) == std::string::npos;
    });
    if (!named) out.types.push_back(field.name + ":categorical");
  }
  return out;
}

data::DatasetOptions DataFlags::ToOptions() const {
  data::DatasetOptions o;
  o.format = data::ParseFormat(format);
  const bool tab = delimiter == "\\t" || delimiter == "tab";
  ESCALA_CHECK(delimiter.size() == 1 || tab, kInvalidArgument,
               "--delimiter must be one character (or \\t, tab), got '{}'", delimiter);
  o.csv.delimiter = tab ? '\t' : delimiter[0];
  o.csv.header = !no_header;
  o.csv.skip_lines = skip_lines;
  ESCALA_CHECK(comment.size() <= 1, kInvalidArgument, "--comment must be one character, got '{}'",
               comment);
  o.csv.comment = comment.empty() ? '\0' : comment[0];
  o.csv.on_error = data::ParseOnError(on_error);
  if (!na_values.empty()) o.csv.missing_values = na_values;
  for (const auto& t : types) {
    const std::size_t colon = t.rfind(':');
    ESCALA_CHECK(colon != std::string::npos && colon > 0, kInvalidArgument,
                 "--column-type '{}': expected NAME:TYPE", t);
    o.csv.column_types.push_back({t.substr(0, colon), data::ParseDataType(t.substr(colon + 1))});
  }
  o.csv.row_ids = true;
  return o;
}

std::unique_ptr<Communicator> MakeWorkerCommunicator() {
  const distributed::WorkerEnv env = distributed::WorkerEnv::FromEnvironment();
  if (env.world_size == 1) return MakeSelfCommunicator();
  SetLogTag(fmt::format("rank {}/{}", env.rank, env.world_size));
  ESCALA_LOG_INFO("joining {}", env.Describe());
  // The process is a training worker: opt in to the data plane's process-wide settings (gRPC's
  // poll engine, malloc thresholds) before gRPC starts; see escala/distributed/process_tuning.h.
  const auto tuning = distributed::TuneProcessForDataPlane();
  ESCALA_LOG_DEBUG("process tuned for the data plane: gRPC engine {}, malloc {}",
                   tuning.grpc_engine, tuning.malloc_tuned ? "tuned" : "as configured");
  auto comm = distributed::Connect(env, distributed::ConnectOptions::FromEnvironment());
  // Parallel loops share the node's cores with the other local workers.
  if (env.local_world_size > 1 && !NumThreadsIsExplicit()) {
    SetNumThreads(std::max(1, HardwareConcurrency() / env.local_world_size));
  }
  return comm;
}

data::Dataset OpenDataset(const std::vector<std::string>& files, const DataFlags& flags,
                          const std::string& label, bool float32_numbers) {
  data::DatasetOptions options = flags.ToOptions();
  if (!label.empty()) options.label_column = label;
  options.float32_numbers = float32_numbers;
  return data::Dataset::Open(files, options);
}

data::Table ReadShard(const data::Dataset& dataset, const Communicator& comm,
                      const std::string& what) {
  data::ReadReport report;
  data::Table t = dataset.ReadTable(data::Shard{comm.rank(), comm.size()}, &report);
  ESCALA_LOG_INFO("{}: {} ({} file(s))", what, report.Summary(), dataset.files().size());
  return t;
}

data::Table ReadShard(const std::vector<std::string>& files, const DataFlags& flags,
                      const Communicator& comm, const std::string& what, const std::string& label) {
  return ReadShard(OpenDataset(files, flags, label), comm, what);
}

std::vector<std::string> InputPaths(const std::vector<std::string>& specs, const DataFlags& flags) {
  std::vector<std::string> paths = specs;
  const auto files = data::Dataset::ResolvePaths(specs, data::ParseFormat(flags.format));
  paths.insert(paths.end(), files.begin(), files.end());
  return paths;
}

}  // namespace escala::cli
