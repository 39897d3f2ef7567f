// The steps that add or remove columns: poly(degree=D, interaction_only=true, cols...),
// expr(name = expression), drop(cols...).
#include <algorithm>
#include <memory>

#include "escala/core/error.h"
#include "escala/features/expression.h"
#include "features/pipeline_steps.h"

namespace escala::features::internal {

namespace {

// ---- poly --------------------------------------------------------------------------------------

void FitPoly(StepFitter& f) {
  const StepDef& d = f.def;
  f.step.columns = f.Resolve(true, false);
  const int degree = static_cast<int>(d.number("degree", 2));
  ESCALA_CHECK(degree >= 2 && degree <= 4, kInvalidArgument,
               "pipeline step '{}': degree must be 2, 3 or 4", d.text);
  ESCALA_CHECK(f.step.columns.size() <= 64, kInvalidArgument,
               "pipeline step '{}': too many columns ({}) for polynomial features", d.text,
               f.step.columns.size());
  f.step.options["degree"] = std::to_string(degree);
  f.step.options["interaction_only"] = d.flag("interaction_only", false) ? "true" : "false";
}

// The monomials that extend `term` by up to `remaining` factors from index `start` on, each of
// degree >= 2 becoming a term of `op` with an output slot named "a*b*...".
void AddMonomials(StepCompiler& c, Op& op, std::vector<int>& term, int start, int remaining,
                  bool interaction_only) {
  if (term.size() >= 2) {
    op.terms.push_back(term);
    std::string name;
    for (std::size_t k = 0; k < term.size(); ++k) {
      name += (k ? "*" : "") + c.slot(op.ins[static_cast<std::size_t>(term[k])]).name;
    }
    op.outs.push_back(c.AddSlot(name, false));
  }
  if (remaining == 0) return;
  for (int j = start; j < static_cast<int>(op.ins.size()); ++j) {
    term.push_back(j);
    AddMonomials(c, op, term, interaction_only ? j + 1 : j, remaining - 1, interaction_only);
    term.pop_back();
  }
}

// All monomials of degree 2..degree over the inputs, in lexicographic order of indices, appended
// to the live columns.
void CompilePoly(StepCompiler& c) {
  const int degree = c.StoredInt("degree", 2, 4);
  Op op = c.NewOp(OpKind::kPoly);
  for (const auto& col : c.step.columns) op.ins.push_back(c.SlotOf(col));
  std::vector<int> term;
  AddMonomials(c, op, term, 0, degree, c.OptionIs("interaction_only", "true"));
  c.live().insert(c.live().end(), op.outs.begin(), op.outs.end());
  c.Emit(std::move(op));
}

// ---- expr --------------------------------------------------------------------------------------

void CheckExpr(const StepDef& d) {
  Expression::Parse(d.raw);
}

void FitExpr(StepFitter& f) {
  f.step.options["expression"] = f.def.raw;
}

// The expression's target replaces a live column of that name in place, or is appended.
void CompileExpr(StepCompiler& c) {
  auto e = std::make_shared<const Expression>(Expression::Parse(c.step.options.at("expression")));
  Op op = c.NewOp(OpKind::kExpr);
  for (const auto& col : e->inputs()) {
    const int id = c.FindSlot(col);
    ESCALA_CHECK(id >= 0, kInvalidArgument,
                 "pipeline step '{}': expression uses unknown column '{}' (columns: {})",
                 c.step.spec, col, c.LiveList());
    ESCALA_CHECK(!c.slot(id).categorical, kInvalidArgument,
                 "pipeline step '{}': expression uses categorical column '{}'; encode it first",
                 c.step.spec, col);
    op.ins.push_back(id);
  }
  const int existing = c.FindSlot(e->target());
  op.out = c.AddSlot(e->target(), false);
  if (existing >= 0) {
    c.ReplaceLive(existing, {op.out});
  } else {
    c.live().push_back(op.out);
  }
  op.expr = std::move(e);
  c.Emit(std::move(op));
}

// ---- drop --------------------------------------------------------------------------------------

void FitDrop(StepFitter& f) {
  f.step.columns = f.Resolve(true, true);
}

void CompileDrop(StepCompiler& c) {
  for (const auto& col : c.step.columns) c.EraseLive(c.SlotOf(col));
}

}  // namespace

const StepKind kPolyStep = {
    .name = "poly", .check = nullptr, .fit = FitPoly, .compile = CompilePoly};
const StepKind kExprStep = {.name = "expr",
                            .check = CheckExpr,
                            .fit = FitExpr,
                            .compile = CompileExpr,
                            .raw_argument = true};
const StepKind kDropStep = {
    .name = "drop", .check = CheckColumnsNamed, .fit = FitDrop, .compile = CompileDrop};

}  // namespace escala::features::internal
