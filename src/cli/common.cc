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
  if (env.local_world_size > 1 && std::getenv("ESCALA_NUM_THREADS") == nullptr) {
    SetNumThreads(std::max(1, HardwareConcurrency() / env.local_world_size));
  }
  return comm;
}

data::Table ReadShard(const std::vector<std::string>& files, const DataFlags& flags,
                      const Communicator& comm, const std::string& what, const std::string& label) {
  data::DatasetOptions options = flags.ToOptions();
  if (!label.empty()) options.label_column = label;
  const auto dataset = data::Dataset::Open(files, options);
  data::ReadReport report;
  data::Table t = dataset.ReadTable(data::Shard{comm.rank(), comm.size()}, &report);
  ESCALA_LOG_INFO("{}: {} ({} file(s))", what, report.Summary(), dataset.files().size());
  return t;
}

std::string ShortList(const std::vector<std::string>& items, std::size_t most) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < most; ++i) {
    out += (i ? ", " : "") + items[i];
  }
  if (items.size() > most) out += fmt::format(", ... {} in all", items.size());
  return out;
}

std::vector<std::string> InputPaths(const std::vector<std::string>& specs, const DataFlags& flags) {
  std::vector<std::string> paths = specs;
  const auto files = data::Dataset::ResolvePaths(specs, data::ParseFormat(flags.format));
  paths.insert(paths.end(), files.begin(), files.end());
  return paths;
}

namespace {

bool LooksNumeric(std::string_view s) {
  double v = 0;
  const auto [end, ec] = fast_float::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

void WarnIfLabelLooksWrong(const data::Table& table, const std::string& label, Communicator& comm) {
  const data::Column& col = table.column(label);
  features::FrequentItems seen(1 << 16);
  std::int64_t numeric = 0, other = 0, first_other = -1;
  const bool categorical = col.type() == data::DataType::kCategorical;
  for (std::int64_t i = 0; i < col.size(); ++i) {
    if (col.is_missing(i)) continue;
    if (!categorical) {
      seen.AddNumber(col.GetDouble(i));
      continue;
    }
    seen.Add(col.category(i));
    if (LooksNumeric(col.category(i))) {
      ++numeric;
    } else if (other++ == 0) {
      first_other = i;
    }
  }
  seen = features::AllMerge(seen, comm);
  std::array<std::int64_t, 2> counts = {numeric, other};
  comm.AllReduce(std::span<std::int64_t>(counts), ReduceOp::kSum);
  if (comm.rank() != 0) return;
  if (counts[1] > 0 && counts[0] >= 9 * counts[1]) {
    ESCALA_LOG_WARN(
        "label '{}' is categorical because of {} non-numeric value(s) among {} numbers{}: a "
        "header or count line read as data? (see --skip-lines, --no-header, --comment)",
        label, counts[1], counts[0],
        first_other >= 0
            ? fmt::format(" (first: '{}', row {})", col.category(first_other), first_other)
            : "");
  }
  if (!seen.exact()) return;
  std::vector<std::string> once;
  for (const auto& item : seen.Top(1 << 16)) {
    if (item.count == 1) once.push_back(item.key);
  }
  if (!once.empty() && once.size() * 10 < static_cast<std::size_t>(seen.total())) {
    ESCALA_LOG_WARN(
        "label '{}': {} class(es) appear only once ({}{}): a stray row or a header "
        "read as data?",
        label, once.size(),
        fmt::join(once.begin(), once.begin() + std::min<std::size_t>(once.size(), 5), ", "),
        once.size() > 5 ? ", ..." : "");
  }
}

std::vector<std::string> ClassNames(const data::Table& table, const std::string& label,
                                    Communicator& comm) {
  const data::Column& col = table.column(label);
  features::FrequentItems seen(1 << 16);
  const bool categorical = col.type() == data::DataType::kCategorical;
  for (std::int64_t i = 0; i < col.size(); ++i) {
    if (col.is_missing(i)) continue;
    if (categorical) {
      seen.Add(col.category(i));
    } else {
      const double v = col.GetDouble(i);
      ESCALA_CHECK(std::isfinite(v), kInvalidArgument,
                   "row {}: label '{}' is {}; a class label must be a finite number or a name", i,
                   label, v);
      seen.Add(fmt::format("{}", v));
    }
  }
  seen = features::AllMerge(seen, comm);
  ESCALA_CHECK(seen.exact(), kInvalidArgument,
               "label '{}' has more than 65536 distinct values: is it a regression target?", label);
  std::vector<std::string> names;
  for (const auto& item : seen.Top(1 << 16)) names.push_back(item.key);
  if (categorical) {
    std::sort(names.begin(), names.end());
  } else {
    std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
      return std::stod(a) < std::stod(b);
    });
  }
  return names;
}

std::vector<float> EncodeLabels(const data::Table& table, const std::string& label,
                                const std::vector<std::string>& class_names) {
  const data::Column& col = table.column(label);
  std::vector<float> y(static_cast<std::size_t>(col.size()));
  const bool categorical = col.type() == data::DataType::kCategorical;
  std::vector<int> code_to_class;
  if (categorical) {
    ESCALA_CHECK(!class_names.empty(), kInvalidArgument,
                 "label '{}' is categorical: a regression model needs a numeric label", label);
    for (const auto& s : col.dictionary()) {
      auto it = std::lower_bound(class_names.begin(), class_names.end(), s);
      code_to_class.push_back(
          it != class_names.end() && *it == s ? static_cast<int>(it - class_names.begin()) : -1);
    }
  }
  std::vector<double> numeric_classes;
  for (const auto& c : class_names) {
    if (categorical) break;
    double v = 0;
    const auto [end, ec] = fast_float::from_chars(c.data(), c.data() + c.size(), v);
    ESCALA_CHECK(ec == std::errc() && end == c.data() + c.size(), kInvalidArgument,
                 "label '{}' is numeric in this data, but the model's classes are names ({}): "
                 "was it trained on another label column?",
                 label, ShortList(class_names));
    numeric_classes.push_back(v);
  }
  for (std::int64_t i = 0; i < col.size(); ++i) {
    ESCALA_CHECK(!col.is_missing(i), kInvalidArgument,
                 "label '{}' is missing in row {} (drop such rows or fill the label)", label, i);
    float& out = y[static_cast<std::size_t>(i)];
    if (categorical) {
      const int cls =
          code_to_class[static_cast<std::size_t>(col.codes()[static_cast<std::size_t>(i)])];
      ESCALA_CHECK(cls >= 0, kInvalidArgument, "row {}: label '{}' is not a known class", i,
                   col.category(i));
      out = static_cast<float>(cls);
    } else if (class_names.empty()) {
      const double v = col.GetDouble(i);
      ESCALA_CHECK(std::isfinite(v), kInvalidArgument, "row {}: label '{}' is not finite ({})", i,
                   label, v);
      out = static_cast<float>(v);
    } else {
      const double v = col.GetDouble(i);
      auto it = std::find(numeric_classes.begin(), numeric_classes.end(), v);
      ESCALA_CHECK(it != numeric_classes.end(), kInvalidArgument,
                   "row {}: label {} is not one of the known classes", i, v);
      out = static_cast<float>(it - numeric_classes.begin());
    }
  }
  return y;
}

std::vector<std::int64_t> ParseIntList(const std::string& text, const std::string& what) {
  std::vector<std::int64_t> out;
  if (text.empty()) return out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = text.find(',', start);
    const std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (...) {
      used = 0;
    }
    ESCALA_CHECK(!item.empty() && used == item.size() && v > 0 && v <= (1LL << 24),
                 kInvalidArgument,
                 "{} '{}': item {} ('{}') is not a positive integer up to 16777216", what, text,
                 out.size() + 1, item);
    out.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace escala::cli
