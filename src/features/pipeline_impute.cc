// impute(mean|median|most_frequent|constant, value=V, indicator=true, cols...)
#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "escala/core/error.h"
#include "features/pipeline_steps.h"

namespace escala::features::internal {

namespace {

constexpr std::array<std::string_view, 4> kStrategies = {"mean", "median", "most_frequent",
                                                         "constant"};

bool IsStrategy(const std::string& word) {
  return std::find(kStrategies.begin(), kStrategies.end(), word) != kStrategies.end();
}

// The strategy may come first among the arguments ("impute(median, a)") or as strategy=.
std::string Strategy(const StepDef& d) {
  std::string strategy = "mean";
  if (!d.positional.empty() && IsStrategy(d.positional[0])) strategy = d.positional[0];
  return d.get("strategy", strategy);
}

std::vector<std::string> NamedColumns(const StepDef& d) {
  std::vector<std::string> named = d.positional;
  if (!named.empty() && IsStrategy(named[0])) named.erase(named.begin());
  return named;
}

// The mode of a categorical column (never the missing marker), or the constant= value.
std::string CategoryFill(StepFitter& f, const std::string& col, const std::string& strategy,
                         const FrequentItems* categories) {
  if (strategy == "constant") return f.def.get("value", "missing");
  for (const auto& item : categories->Top(2)) {
    if (item.key != kMissingName) return item.key;
  }
  Throw(ErrorCode::kInvalidArgument,
        "pipeline step '{}': column '{}' has no values to take the most frequent from", f.def.text,
        col);
}

double MostFrequentNumber(StepFitter& f, const std::string& col, const FrequentItems& items) {
  ESCALA_CHECK(!items.saturated(), kInvalidArgument,
               "pipeline step '{}': column '{}' has too many distinct values for most_frequent; "
               "use median",
               f.def.text, col);
  const auto top = items.Top(1);
  ESCALA_CHECK(!top.empty(), kInvalidArgument, "pipeline step '{}': column '{}' has no values",
               f.def.text, col);
  // Ties resolve to the smallest value, as scikit-learn's SimpleImputer does.
  double best = std::stod(top[0].key);
  for (const auto& item : items.Top(4096)) {
    if (item.count == top[0].count) best = std::min(best, std::stod(item.key));
  }
  return best;
}

// The statistics that a strategy needs, computed in one pass for all the columns: by numeric
// column (sums, sketches, modes) and by categorical column (categories).
struct ImputeStats {
  std::vector<NumericSummary> sums;
  std::vector<QuantileSketch> sketches;
  std::vector<FrequentItems> modes;
  std::vector<FrequentItems> categories;

  ImputeStats(StepFitter& f, const std::string& strategy, const std::vector<std::string>& num_cols,
              const std::vector<std::string>& cat_cols) {
    if (strategy == "mean") sums = f.Summaries(num_cols);
    if (strategy == "median") sketches = f.Sketches(num_cols);
    if (strategy == "most_frequent") {
      if (!num_cols.empty()) modes = f.FrequentNumbers(num_cols);
      if (!cat_cols.empty()) categories = f.Categories(cat_cols);
    }
  }
};

double NumberFill(StepFitter& f, const std::string& col, const std::string& strategy,
                  const ImputeStats& stats, std::size_t i) {
  if (strategy == "mean") {
    f.RequireValues(col, stats.sums[i]);
    return stats.sums[i].mean();
  }
  if (strategy == "median") {
    f.RequireValues(col, stats.sketches[i]);
    return stats.sketches[i].Quantile(0.5);
  }
  if (strategy == "constant") return f.def.number("value", 0.0);
  return MostFrequentNumber(f, col, stats.modes[i]);
}

void FitImpute(StepFitter& f) {
  const StepDef& d = f.def;
  const std::string strategy = Strategy(d);
  f.step.options["strategy"] = strategy;
  f.step.options["indicator"] = d.flag("indicator", false) ? "true" : "false";
  // Unnamed columns: numbers for mean/median, categories for most_frequent/constant (a
  // continuous column has no useful mode); named columns may be either for the latter.
  const bool any_type = strategy == "most_frequent" || strategy == "constant";
  const bool named =
      d.positional.size() > (d.positional.empty() ? 0 : (d.positional[0] == strategy ? 1u : 0u));
  f.step.columns = f.Resolve(NamedColumns(d), !any_type || named, any_type);
  std::vector<std::string> num_cols, cat_cols;
  for (const auto& c : f.step.columns) (f.IsCategorical(c) ? cat_cols : num_cols).push_back(c);
  const ImputeStats stats(f, strategy, num_cols, cat_cols);
  std::size_t ni = 0, ci = 0;
  for (const auto& c : f.step.columns) {
    pb::ColumnParams p;
    p.set_column(c);
    if (f.IsCategorical(c)) {
      const FrequentItems* cats = stats.categories.empty() ? nullptr : &stats.categories[ci++];
      p.set_text(CategoryFill(f, c, strategy, cats));
      f.AddCategoryName(p.text());
    } else {
      p.add_values(NumberFill(f, c, strategy, stats, ni++));
    }
    f.step.params.push_back(std::move(p));
  }
}

void CompileImpute(StepCompiler& c) {
  const bool indicator = c.OptionIs("indicator", "true");
  for (std::size_t i = 0; i < c.step.columns.size(); ++i) {
    const int id = c.SlotOf(c.step.columns[i]);
    const auto& p = c.Param(i);
    const bool cat = c.slot(id).categorical;
    if (indicator) {
      Op ind = c.NewOp(OpKind::kIndicator, id);
      ind.out = c.AddSlot(c.step.columns[i] + "_missing", false);
      c.InsertLiveAfter(id, ind.out);
      c.Emit(std::move(ind));
    }
    Op op = c.NewOp(cat ? OpKind::kImputeCat : OpKind::kImputeNum, id);
    if (cat) {
      op.hash = CatHash(p.text());
      op.fill = p.text();
    } else {
      op.a = c.Value(p, 0);
    }
    c.Emit(std::move(op));
    // A numeric slot no longer holds the raw values. A categorical one still does wherever a
    // value was present (only missing ones were filled, with a known category), which is all
    // that messages about unseen categories quote.
    if (!cat) c.slot(id).source = -1;
  }
}

}  // namespace

const StepKind kImputeStep = {
    .name = "impute", .check = nullptr, .fit = FitImpute, .compile = CompileImpute};

}  // namespace escala::features::internal
