// The numeric maps of a column onto itself: clip(q=LO,HI | iqr=K | z=K | min=A,max=B),
// standardize, minmax(range=A,B), robust (affine maps), and log1p, log, sqrt, abs.
#include <cmath>
#include <limits>

#include "escala/core/error.h"
#include "features/pipeline_steps.h"

namespace escala::features::internal {

namespace {

// ---- clip --------------------------------------------------------------------------------------

void CheckClip(const StepDef& d) {
  if (d.has("iqr")) {
    const double k = d.number("iqr", 1.5);
    ESCALA_CHECK(std::isfinite(k) && k >= 0, kInvalidArgument,
                 "pipeline step '{}': iqr must be >= 0, got {}", d.text, k);
  }
  if (d.has("z")) {
    const double k = d.number("z", 3);
    ESCALA_CHECK(std::isfinite(k) && k > 0, kInvalidArgument,
                 "pipeline step '{}': z must be > 0, got {}", d.text, k);
  }
}

// Bounds at quantiles lo and hi of each column.
void FitClipQuantiles(StepFitter& f, const std::vector<double>& q) {
  ESCALA_CHECK(q.size() == 2 && q[0] >= 0 && q[0] < q[1] && q[1] <= 1, kInvalidArgument,
               "pipeline step '{}': q=LO,HI needs 0 <= LO < HI <= 1", f.def.text);
  const auto& cols = f.step.columns;
  const auto sks = f.Sketches(cols);
  for (std::size_t i = 0; i < cols.size(); ++i) {
    const double qs[] = {q[0], q[1]};
    const auto v = sks[i].Quantiles(qs);
    f.AddParams(cols[i], {v[0], v[1]});
  }
}

// Tukey's fences: k interquartile ranges beyond the quartiles.
void FitClipIqr(StepFitter& f, double k) {
  const auto& cols = f.step.columns;
  const auto sks = f.Sketches(cols);
  for (std::size_t i = 0; i < cols.size(); ++i) {
    const double qs[] = {0.25, 0.75};
    const auto v = sks[i].Quantiles(qs);
    const double iqr = v[1] - v[0];
    f.AddParams(cols[i], {v[0] - k * iqr, v[1] + k * iqr});
  }
}

void FitClipZ(StepFitter& f, double k) {
  const auto& cols = f.step.columns;
  const auto sums = f.Summaries(cols);
  for (std::size_t i = 0; i < cols.size(); ++i) {
    f.RequireValues(cols[i], sums[i]);
    const double sd = std::sqrt(sums[i].population_variance());
    f.AddParams(cols[i], {sums[i].mean() - k * sd, sums[i].mean() + k * sd});
  }
}

void FitClipRange(StepFitter& f) {
  const StepDef& d = f.def;
  const double lo = d.number("min", -std::numeric_limits<double>::infinity());
  const double hi = d.number("max", std::numeric_limits<double>::infinity());
  ESCALA_CHECK(d.has("min") || d.has("max"), kInvalidArgument,
               "pipeline step '{}': give q=LO,HI, iqr=K, z=K or min=/max=", d.text);
  ESCALA_CHECK(lo <= hi, kInvalidArgument, "pipeline step '{}': min > max", d.text);
  for (const auto& c : f.step.columns) f.AddParams(c, {lo, hi});
}

void FitClip(StepFitter& f) {
  const StepDef& d = f.def;
  f.step.columns = f.Resolve(true, false);
  const auto q = d.numbers("q");
  if (!q.empty()) return FitClipQuantiles(f, q);
  if (d.has("iqr")) return FitClipIqr(f, d.number("iqr", 1.5));
  if (d.has("z")) return FitClipZ(f, d.number("z", 3));
  FitClipRange(f);
}

// ---- the scalers: x -> (x - center) * scale + offset ----------------------------------------

void FitStandardize(StepFitter& f) {
  const auto& cols = f.step.columns = f.Resolve(true, false);
  const auto sums = f.Summaries(cols);
  for (std::size_t i = 0; i < cols.size(); ++i) {
    f.RequireValues(cols[i], sums[i]);
    const double sd = std::sqrt(sums[i].population_variance());
    // A constant column is centred but not scaled (as scikit-learn does).
    f.AddParams(cols[i], {sums[i].mean(), sd > 0 ? 1.0 / sd : 1.0, 0.0});
  }
}

void FitMinMax(StepFitter& f) {
  const auto& cols = f.step.columns = f.Resolve(true, false);
  auto range = f.def.numbers("range");
  if (range.empty()) range = {0.0, 1.0};
  ESCALA_CHECK(range.size() == 2 && range[0] < range[1], kInvalidArgument,
               "pipeline step '{}': range=A,B needs A < B", f.def.text);
  const auto sums = f.Summaries(cols);
  for (std::size_t i = 0; i < cols.size(); ++i) {
    f.RequireValues(cols[i], sums[i]);
    const double span = sums[i].max() - sums[i].min();
    f.AddParams(cols[i], {sums[i].min(), span > 0 ? (range[1] - range[0]) / span : 1.0, range[0]});
  }
}

void FitRobust(StepFitter& f) {
  const auto& cols = f.step.columns = f.Resolve(true, false);
  const auto sks = f.Sketches(cols);
  for (std::size_t i = 0; i < cols.size(); ++i) {
    f.RequireValues(cols[i], sks[i]);
    const double qs[] = {0.25, 0.5, 0.75};
    const auto v = sks[i].Quantiles(qs);
    const double iqr = v[2] - v[0];
    f.AddParams(cols[i], {v[1], iqr > 0 ? 1.0 / iqr : 1.0, 0.0});
  }
}

// One op per column from its stored parameters: kClip (lo, hi) or kAffine (center, scale,
// offset).
template <OpKind kKind>
void CompileColumnMap(StepCompiler& c) {
  for (std::size_t i = 0; i < c.step.columns.size(); ++i) {
    Op op = c.NewOp(kKind, c.SlotOf(c.step.columns[i]));
    const auto& p = c.Param(i);
    op.a = c.Value(p, 0);
    op.b = c.Value(p, 1);
    op.c = kKind == OpKind::kClip ? 0.0f : c.Value(p, 2);
    c.Emit(std::move(op));
  }
}

// ---- log1p, log, sqrt, abs ---------------------------------------------------------------------

void FitUnary(StepFitter& f) {
  f.step.columns = f.Resolve(true, false);
}

template <UnaryFn kFn>
void CompileUnary(StepCompiler& c) {
  for (const auto& col : c.step.columns) {
    Op op = c.NewOp(OpKind::kUnary, c.SlotOf(col));
    op.fn = kFn;
    c.Emit(std::move(op));
  }
}

}  // namespace

const StepKind kClipStep = {
    .name = "clip", .check = CheckClip, .fit = FitClip, .compile = CompileColumnMap<OpKind::kClip>};
const StepKind kStandardizeStep = {.name = "standardize",
                                   .check = nullptr,
                                   .fit = FitStandardize,
                                   .compile = CompileColumnMap<OpKind::kAffine>};
const StepKind kMinMaxStep = {.name = "minmax",
                              .check = nullptr,
                              .fit = FitMinMax,
                              .compile = CompileColumnMap<OpKind::kAffine>};
const StepKind kRobustStep = {.name = "robust",
                              .check = nullptr,
                              .fit = FitRobust,
                              .compile = CompileColumnMap<OpKind::kAffine>};
const StepKind kLog1pStep = {.name = "log1p",
                             .check = CheckColumnsNamed,
                             .fit = FitUnary,
                             .compile = CompileUnary<UnaryFn::kLog1p>};
const StepKind kLogStep = {.name = "log",
                           .check = CheckColumnsNamed,
                           .fit = FitUnary,
                           .compile = CompileUnary<UnaryFn::kLog>};
const StepKind kSqrtStep = {.name = "sqrt",
                            .check = CheckColumnsNamed,
                            .fit = FitUnary,
                            .compile = CompileUnary<UnaryFn::kSqrt>};
const StepKind kAbsStep = {.name = "abs",
                           .check = CheckColumnsNamed,
                           .fit = FitUnary,
                           .compile = CompileUnary<UnaryFn::kAbs>};

}  // namespace escala::features::internal
