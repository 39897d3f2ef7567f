#include "escala/train/labels.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <set>

#include <fast_float/fast_float.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "escala/core/error.h"
#include "escala/core/logging.h"
#include "escala/features/sketches.h"
#include "escala/models/factory.h"

namespace escala::train {

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

namespace {

// "auto": a categorical label, or one with at most 20 distinct integer values, is a class label.
models::Task InferTask(const data::Table& t, const std::string& label, Communicator& comm) {
  const data::Column& col = t.column(label);
  const bool categorical = col.type() == data::DataType::kCategorical;
  bool integral = !categorical;
  for (std::int64_t i = 0; integral && i < col.size(); ++i) {
    const double v = col.GetDouble(i);
    if (!std::isnan(v) && v != std::floor(v)) integral = false;
  }
  // Every rank must take part in ClassNames's merge, whatever its own rows say.
  integral = comm.AllReduceScalar<std::int64_t>(integral ? 1 : 0, ReduceOp::kMin) == 1;
  if (!categorical && !integral) return models::Task::kRegression;
  const auto names = ClassNames(t, label, comm);
  if (!categorical && names.size() > 20) return models::Task::kRegression;
  return names.size() <= 2 ? models::Task::kBinary : models::Task::kMulticlass;
}

models::Task ParseTask(std::string_view kind, std::string_view task, const data::Table& t,
                       const std::string& label, Communicator& comm) {
  // A kind that implies its task (linear, logistic, softmax) takes it; the others (mlp, gbdt)
  // take the one asked for, or the label's.
  const models::Task implied = models::TaskForKind(kind, models::Task::kBinary);
  if (implied == models::TaskForKind(kind, models::Task::kRegression)) return implied;
  if (task == "regression") return models::Task::kRegression;
  if (task == "binary") return models::Task::kBinary;
  if (task == "multiclass") return models::Task::kMulticlass;
  ESCALA_CHECK(task == "auto", kInvalidArgument,
               "task must be auto, regression, binary or multiclass, got '{}'", task);
  return InferTask(t, label, comm);
}

void CheckClasses(models::Task task, const std::string& label,
                  const std::vector<std::string>& classes) {
  if (task == models::Task::kBinary) {
    ESCALA_CHECK(classes.size() == 2, kInvalidArgument,
                 "label '{}' has {} class(es) ({}); binary models need exactly 2{}", label,
                 classes.size(), ShortList(classes),
                 classes.size() > 20  ? " (a regression target? use --model linear)"
                 : classes.size() > 2 ? " (use --model softmax or --task multiclass)"
                                      : "");
  } else {
    ESCALA_CHECK(classes.size() >= 2, kInvalidArgument,
                 "label '{}' has {} class(es); classification needs at least 2", label,
                 classes.size());
  }
}

}  // namespace

models::Task ResolveTask(std::string_view kind, std::string_view task, const data::Table& t,
                         const std::string& label, Communicator& comm,
                         std::vector<std::string>* classes) {
  const models::Task resolved = ParseTask(kind, task, t, label, comm);
  classes->clear();
  if (resolved == models::Task::kRegression) {
    ESCALA_CHECK(t.column(label).type() != data::DataType::kCategorical, kInvalidArgument,
                 "label '{}' is categorical; a regression model needs a numeric label", label);
    return resolved;
  }
  WarnIfLabelLooksWrong(t, label, comm);
  *classes = ClassNames(t, label, comm);
  CheckClasses(resolved, label, *classes);
  return resolved;
}

namespace {

constexpr std::size_t kMaxScannedLabels = (1 << 16) + 1;

// The distinct label values seen so far: names, or numbers (keeping a fractional one past the
// cap, so that a regression target is still recognised as one).
struct LabelValues {
  std::set<std::string> names;
  std::set<double> numbers;
  bool fractional = false;

  void Add(const data::Column& col) {
    const bool categorical = col.type() == data::DataType::kCategorical;
    for (std::int64_t i = 0; i < col.size(); ++i) {
      if (col.is_missing(i)) continue;
      if (categorical) {
        if (names.size() < kMaxScannedLabels) names.emplace(col.category(i));
        continue;
      }
      const double v = col.GetDouble(i);
      const bool fraction = std::isfinite(v) && v != std::floor(v);
      if (numbers.size() < kMaxScannedLabels || (fraction && !fractional)) numbers.insert(v);
      fractional = fractional || fraction;
    }
  }

  data::Column ToColumn(const std::string& label, data::DataType type) const {
    if (type == data::DataType::kCategorical) {
      data::Column c(label, type, static_cast<std::int64_t>(names.size()));
      auto& dict = c.mutable_dictionary();
      dict.assign(names.begin(), names.end());
      auto codes = c.mutable_codes();
      for (std::size_t i = 0; i < names.size(); ++i) codes[i] = static_cast<std::int32_t>(i);
      return c;
    }
    data::Column c(label, data::DataType::kFloat64, static_cast<std::int64_t>(numbers.size()));
    std::copy(numbers.begin(), numbers.end(), c.mutable_f64().begin());
    return c;
  }
};

}  // namespace

LabelScan ScanLabels(data::TableChunks& chunks, const std::string& label) {
  const auto& field = chunks.schema().field(chunks.schema().Index(label));
  LabelValues values;
  LabelScan scan;
  std::vector<double> numbers;
  chunks.ForEachChunk([&](const data::Table& chunk) {
    scan.rows += chunk.num_rows();
    const data::Column& col = chunk.column(label);
    values.Add(col);
    if (col.type() == data::DataType::kCategorical) return;
    numbers.clear();
    for (std::int64_t i = 0; i < col.size(); ++i) {
      if (!col.is_missing(i)) numbers.push_back(col.GetDouble(i));
    }
    scan.values.AddBatch(numbers);
  });
  std::vector<data::Column> cols;
  cols.push_back(values.ToColumn(label, field.type));
  scan.distinct = data::Table(std::move(cols));
  return scan;
}

void LabelledRows::ForEachChunk(const std::function<void(const data::Table&)>& visit) {
  dropped_ = 0;
  inner_.ForEachChunk([&](const data::Table& chunk) {
    const data::Column& col = chunk.column(label_);
    std::vector<std::int64_t> keep;
    for (std::int64_t i = 0; i < chunk.num_rows(); ++i) {
      if (!col.is_missing(i)) keep.push_back(i);
    }
    if (keep.size() == static_cast<std::size_t>(chunk.num_rows())) return visit(chunk);
    dropped_ += chunk.num_rows() - static_cast<std::int64_t>(keep.size());
    visit(chunk.Take(keep));
  });
}

}  // namespace escala::train
