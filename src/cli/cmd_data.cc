// `escala convert` and `escala datagen`.
#include <chrono>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "escala/core/error.h"
#include "escala/core/file_util.h"
#include "escala/core/logging.h"
#include "escala/core/progress.h"
#include "escala/data/datagen.h"
#include "escala/data/dataset.h"
#include "escala/data/npy.h"
#include "escala/data/stream.h"

namespace escala::cli {
namespace {

struct ConvertArgs {
  std::vector<std::string> data;
  std::string out;
  std::string label;
  std::vector<std::string> exclude;
  bool zero_based = false;
  DataFlags data_flags;  // format, CSV dialect, types, bad-row policy: as every command reads
};

std::string LabelsPath(const std::string& out) {
  std::string stem = out;
  if (stem.size() >= 4 && stem.compare(stem.size() - 4, 4, ".npy") == 0)
    stem.resize(stem.size() - 4);
  return stem + ".labels.npy";
}

// Values that NPY output stores as NaN or inf, counted so that convert can say so.
struct NonFinite {
  std::int64_t overflow = 0;      // features beyond float32's range, written as inf
  std::int64_t nan_features = 0;  // missing features, written as NaN
  std::int64_t bad_labels = 0;    // missing or infinite labels

  void Count(const data::DenseData& d) {
    const float* v = d.features.data();
    const std::int64_t n = d.features.rows() * d.features.cols();
    for (std::int64_t i = 0; i < n; ++i) {
      overflow += std::isinf(v[i]) ? 1 : 0;
      nan_features += std::isnan(v[i]) ? 1 : 0;
    }
    for (float l : d.labels) bad_labels += std::isfinite(l) ? 0 : 1;
  }
  void Warn(const std::string& label) const {
    if (overflow > 0) {
      ESCALA_LOG_WARN("{} feature value(s) are infinite or beyond float32's range (written as inf)",
                      overflow);
    }
    if (nan_features > 0)
      ESCALA_LOG_INFO("{} feature value(s) are missing (written as NaN)", nan_features);
    if (bad_labels > 0) {
      ESCALA_LOG_WARN(
          "{} value(s) of the label '{}' are missing or infinite (written as NaN or "
          "inf): training on this file will refuse them",
          bad_labels, label);
    }
  }
};

void RunConvert(const ConvertArgs& a) {
  ESCALA_CHECK(a.out.size() >= 4 && a.out.compare(a.out.size() - 4, 4, ".npy") == 0,
               kInvalidArgument, "--out must name a .npy file, got '{}'", a.out);
  data::DatasetOptions options = a.data_flags.ToOptions();
  options.csv.row_ids = false;
  options.csv.float_type = data::DataType::kFloat32;
  options.libsvm.on_error = options.csv.on_error;
  options.libsvm.zero_based = a.zero_based;
  const auto t0 = std::chrono::steady_clock::now();
  const data::Dataset ds = data::Dataset::Open(a.data, options);
  std::vector<std::string> inputs = a.data;
  for (const auto& f : ds.files()) inputs.push_back(f.path);
  CheckOutputIsNotInput(a.out, "--out", inputs);
  CheckOutputIsNotInput(LabelsPath(a.out), "--out (its labels file)", inputs);
  data::DenseSpec spec;
  spec.label = a.label;
  spec.exclude = a.exclude;
  std::int64_t rows = 0, cols = 0;
  data::ReadReport report;
  bool labels = false;
  if (ds.format() == data::Format::kLibsvm) {
    ESCALA_CHECK(a.label.empty() || a.label == "label", kInvalidArgument,
                 "LIBSVM files carry their label in the first column; omit --label");
    const data::DenseData d = ds.ReadDense({}, {}, &report);
    data::WriteNpy(a.out, d.features.view());
    data::WriteNpy(LabelsPath(a.out), std::span<const float>(d.labels));
    rows = d.rows();
    cols = d.cols();
    labels = true;
  } else {
    data::DatasetStream stream(ds);
    data::DenseData chunk;
    data::DenseSpec feature_spec = spec;
    if (ds.format() == data::Format::kNpy) feature_spec.label.clear();  // from .labels.npy
    const auto width =
        static_cast<std::int64_t>(data::ResolveFeatures(ds.schema(), feature_spec).size());
    NonFinite nonfinite;
    data::NpyWriter x(a.out, width);
    std::unique_ptr<data::NpyWriter> y;
    if (!a.label.empty()) y = std::make_unique<data::NpyWriter>(LabelsPath(a.out), 0);
    ProgressReporter progress("convert", ds.total_bytes(), ProgressOptions{.unit = "bytes"});
    while (stream.NextDense(spec, &chunk)) {
      x.Append(chunk.features.view());
      if (y) y->Append(std::span<const float>(chunk.labels));
      nonfinite.Count(chunk);
      progress.Update(static_cast<std::uint64_t>(stream.report().bytes));
    }
    progress.Finish();
    x.Close();
    if (y) y->Close();
    rows = x.rows();
    cols = width;
    labels = y != nullptr;
    report = stream.report();
    nonfinite.Warn(a.label);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double mb = static_cast<double>(report.bytes) / 1e6;
  fmt::print("rows {}  columns {}  {:.1f} MB in {:.2f} s ({:.0f} MB/s)\n", rows, cols, mb, secs,
             secs > 0 ? mb / secs : 0.0);
  fmt::print("wrote {}{}\n", a.out, labels ? fmt::format(" and {}", LabelsPath(a.out)) : "");
  if (report.skipped_rows > 0) {
    fmt::print("skipped {} malformed rows (--on-error skip); first: {}\n", report.skipped_rows,
               report.skipped_examples.empty() ? "" : report.skipped_examples.front());
  }
  if (report.empty_files > 0) fmt::print("ignored {} empty files\n", report.empty_files);
}

struct DatagenArgs {
  std::string task = "classification";
  std::int64_t rows = 1000;
  std::int64_t start_row = 0;
  int features = 20;
  int informative = 10;
  int classes = 2;
  double noise = 0.0;
  std::uint64_t seed = 42;
  std::string out;
};

void RunDatagen(const DatagenArgs& a) {
  data::SynthOptions o;
  if (a.task == "classification") {
    o.task = data::SynthTask::kClassification;
  } else if (a.task == "regression") {
    o.task = data::SynthTask::kRegression;
  } else {
    Throw(ErrorCode::kInvalidArgument, "--task must be classification or regression, got '{}'",
          a.task);
  }
  o.rows = a.rows;
  o.start_row = a.start_row;
  o.features = a.features;
  o.informative = a.informative;
  o.classes = a.classes;
  o.noise = a.noise;
  o.seed = a.seed;
  ProgressReporter progress("datagen", static_cast<std::uint64_t>(a.rows),
                            ProgressOptions{.unit = "rows"});
  const data::SynthWriteStats s = data::WriteSynthetic(
      o, a.out, [&](std::int64_t done) { progress.Update(static_cast<std::uint64_t>(done)); });
  progress.Finish();
  fmt::print("rows {}  features {}  {:.1f} MB in {:.2f} s ({:.0f} MB/s) -> {}\n", s.rows,
             a.features, static_cast<double>(s.bytes) / 1e6, s.seconds,
             s.seconds > 0 ? static_cast<double>(s.bytes) / 1e6 / s.seconds : 0.0, a.out);
}

}  // namespace

void RegisterConvert(CLI::App& app) {
  auto args = std::make_shared<ConvertArgs>();
  auto* cmd = app.add_subcommand(
      "convert", "Parse CSV, LIBSVM or NPY data (files, globs or directories) once into NPY");
  cmd->add_option("--data", args->data, "Input files, globs or directories")->required();
  cmd->add_option("--out", args->out, "Output .npy (features); labels go to <stem>.labels.npy")
      ->required();
  cmd->add_option("--label", args->label, "Label column (CSV)");
  cmd->add_option("--exclude", args->exclude, "Columns to leave out (CSV)");
  args->data_flags.Register(cmd);
  cmd->add_flag("--zero-based", args->zero_based, "LIBSVM indices start at 0");
  cmd->callback([args] { RunConvert(*args); });
}

void RegisterDatagen(CLI::App& app) {
  auto args = std::make_shared<DatagenArgs>();
  auto* cmd = app.add_subcommand(
      "datagen", "Write a synthetic classification or regression dataset (streamed, seeded)");
  cmd->add_option("--task", args->task, "classification or regression");
  cmd->add_option("--rows", args->rows, "Rows to write")->check(CLI::NonNegativeNumber);
  cmd->add_option("--start-row", args->start_row,
                  "First row index (a test set is a later range of the same seed)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--features", args->features, "Feature columns");
  cmd->add_option("--informative", args->informative, "Features that carry the signal");
  cmd->add_option("--classes", args->classes, "Classes (classification)");
  cmd->add_option("--noise", args->noise,
                  "Fraction of labels replaced at random (classification) or noise std "
                  "(regression)");
  cmd->add_option("--seed", args->seed, "Random seed (fixes the model and every row)");
  cmd->add_option("--out", args->out, "Output: .csv, .csv.gz or .npy")->required();
  cmd->callback([args] { RunDatagen(*args); });
}

}  // namespace escala::cli
