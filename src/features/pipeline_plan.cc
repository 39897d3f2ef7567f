// Pipeline::Plan(): the compiled ops as plain values (escala/features/pipeline_plan.h), with the
// fused elementwise runs (FuseElementwise) split back into one op per slot.
#include "escala/features/pipeline_plan.h"

#include <string_view>

#include "escala/core/error.h"
#include "features/pipeline_impl.h"

namespace escala::features {

namespace {

using internal::Op;
using internal::OpKind;
using Kind = PlanOp::Kind;

static_assert(std::string_view(internal::kMissingName) == kMissingCategory);

Kind PlanKind(OpKind k) {
  switch (k) {
    case OpKind::kInputNum:
    case OpKind::kInputNumMany:
      return Kind::kInputNum;
    case OpKind::kInputCat:
      return Kind::kInputCat;
    case OpKind::kIndicator:
      return Kind::kIndicator;
    case OpKind::kImputeNum:
    case OpKind::kImputeNumMany:
      return Kind::kImputeNum;
    case OpKind::kImputeCat:
      return Kind::kImputeCat;
    case OpKind::kAffine:
    case OpKind::kAffineMany:
      return Kind::kAffine;
    case OpKind::kClip:
      return Kind::kClip;
    case OpKind::kUnary:
      return Kind::kUnary;
    case OpKind::kOneHot:
      return Kind::kOneHot;
    case OpKind::kOrdinal:
      return Kind::kOrdinal;
    case OpKind::kHash:
      return Kind::kHash;
    case OpKind::kBucketize:
      return Kind::kBucketize;
    case OpKind::kPoly:
      return Kind::kPoly;
    case OpKind::kExpr:
      return Kind::kExpr;
  }
  return Kind::kExpr;
}

// The encoders' categories by output index (vocab_names is in that order).
void CopyEncoder(const Op& op, PlanOp* p) {
  p->categories = op.vocab_names;
  p->other_index = op.other_index;
  p->unknown = static_cast<PlanOp::Unknown>(op.unknown);
}

PlanOp Single(const Op& op, const std::string& step) {
  PlanOp p;
  p.kind = PlanKind(op.kind);
  p.step = step;
  p.input =
      op.kind == OpKind::kInputNum || op.kind == OpKind::kInputCat ? static_cast<int>(op.c) : -1;
  p.in = op.in;
  p.out = op.out;
  p.ins = op.ins;
  p.outs = op.outs;
  p.a = op.a;
  p.b = op.b;
  p.c = op.kind == OpKind::kInputNum || op.kind == OpKind::kInputCat ? 0.0f : op.c;
  p.fn = static_cast<PlanOp::Unary>(op.fn);
  p.fill = op.fill;
  if (op.kind == OpKind::kOneHot || op.kind == OpKind::kOrdinal) CopyEncoder(op, &p);
  p.boundaries = op.boundaries;
  p.terms = op.terms;
  p.expr = op.expr;
  return p;
}

// One single-slot op per entry of a fused op, as RunFusedOp runs them.
void Unfuse(const Op& op, const std::string& step, std::vector<PlanOp>* out) {
  for (std::size_t k = 0; k < op.ins.size(); ++k) {
    PlanOp p;
    p.kind = PlanKind(op.kind);
    p.step = step;
    if (op.kind == OpKind::kInputNumMany) {
      p.input = op.ins[k];
      p.out = op.outs[k];
    } else {
      p.in = op.ins[k];
      p.a = op.p0[k];
      if (op.kind == OpKind::kAffineMany) {
        p.b = op.p1[k];
        p.c = op.p2[k];
      }
    }
    out->push_back(std::move(p));
  }
}

bool IsFused(OpKind k) {
  return k == OpKind::kInputNumMany || k == OpKind::kImputeNumMany || k == OpKind::kAffineMany;
}

}  // namespace

PipelinePlan Pipeline::Plan() const {
  ESCALA_CHECK(impl_->fitted, kFailedPrecondition, "pipeline is not fitted");
  PipelinePlan plan;
  for (const auto& s : impl_->slots) plan.slots.push_back(PlanSlot{s.name, s.categorical});
  for (const Op& op : impl_->ops) {
    const std::string step = impl_->StepText(op.step);
    if (IsFused(op.kind)) {
      Unfuse(op, step, &plan.ops);
    } else {
      plan.ops.push_back(Single(op, step));
    }
  }
  plan.outputs = impl_->output_slots;
  plan.keep_missing = impl_->keep_missing;
  return plan;
}

}  // namespace escala::features
