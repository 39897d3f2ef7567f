// An expression's postfix program (escala/features/expression.h) as ONNX nodes: the stack machine
// run once at export time over tensor names instead of values. Every operator keeps Evaluate()'s
// semantics: comparisons and logic give 1 or 0 and NaN when an operand is NaN; min, max, clip and
// if give NaN when (the first) operand is.
#include <limits>

#include <fmt/format.h>

#include "escala/core/error.h"
#include "io/onnx_export_internal.h"

namespace escala::io::onnx_internal {

namespace {

using features::Expression;
using ExprOp = Expression::Op;

// A stack entry: a tensor, and whether it varies by row ([N, 1]) or is a constant (rank 0).
struct Value {
  std::string t;
  bool rows = false;
};

class ExpressionExporter {
 public:
  ExpressionExporter(const Expression& expr, const std::vector<std::string>& columns,
                     std::string_view step, GraphBuilder& g)
      : expr_(expr), columns_(columns), step_(step), g_(g) {}

  Value Run() {
    for (const auto& in : expr_.program()) Execute(in);
    ESCALA_ASSERT(stack_.size() == 1);
    return stack_.back();
  }

 private:
  void Execute(const Expression::Instr& in);
  Value Pop() {
    Value v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  void Push(std::string t, bool rows) { stack_.push_back(Value{std::move(t), rows}); }
  std::string Op(std::string_view type, const std::vector<std::string>& ins) {
    return g_.Op(type, ins, "expr");
  }
  std::string Bool(const std::string& cond, bool when_true) {
    return Op("Where",
              {cond, g_.Scalar(when_true ? 1.0f : 0.0f), g_.Scalar(when_true ? 0.f : 1.f)});
  }
  std::string IsZero(const std::string& x) { return Op("Equal", {x, g_.Scalar(0.0f)}); }
  void Unary(ExprOp op);
  std::string Binary(ExprOp op, const std::string& a, const std::string& b);
  std::string Comparison(ExprOp op, const std::string& a, const std::string& b);
  void MinMax(const Expression::Instr& in);
  void Ternary(ExprOp op);
  [[noreturn]] void Unsupported(std::string_view what) {
    Refuse(fmt::format("pipeline step '{}'", step_),
           fmt::format("expression '{}' uses {}, which the ONNX operators escala exports cannot "
                       "compute exactly",
                       expr_.text(), what));
  }

  const Expression& expr_;
  const std::vector<std::string>& columns_;
  std::string_view step_;
  GraphBuilder& g_;
  std::vector<Value> stack_;
};

void ExpressionExporter::Execute(const Expression::Instr& in) {
  switch (in.op) {
    case ExprOp::kColumn:
      return Push(columns_[static_cast<std::size_t>(in.arg)], true);
    case ExprOp::kConst:
      return Push(g_.Scalar(in.value), false);
    case ExprOp::kMin:
    case ExprOp::kMax:
      return MinMax(in);
    case ExprOp::kClip:
    case ExprOp::kIf:
      return Ternary(in.op);
    case ExprOp::kNeg:
    case ExprOp::kNot:
    case ExprOp::kLog:
    case ExprOp::kExp:
    case ExprOp::kSqrt:
    case ExprOp::kAbs:
    case ExprOp::kLog1p:
    case ExprOp::kFloor:
    case ExprOp::kCeil:
    case ExprOp::kIsNan:
      return Unary(in.op);
    default:
      break;
  }
  const Value b = Pop();
  const Value a = Pop();
  Push(Binary(in.op, a.t, b.t), a.rows || b.rows);
}

void ExpressionExporter::Unary(ExprOp op) {
  Value v = Pop();
  const std::string& x = v.t;
  std::string r;
  switch (op) {
    case ExprOp::kNeg:
      r = Op("Neg", {x});
      break;
    case ExprOp::kNot:
      r = NanWhere(x, Bool(IsZero(x), true), g_);
      break;
    case ExprOp::kLog:
      r = Op("Log", {x});
      break;
    case ExprOp::kExp:
      r = Op("Exp", {x});
      break;
    case ExprOp::kSqrt:
      r = Op("Sqrt", {x});
      break;
    case ExprOp::kAbs:
      r = Op("Abs", {x});
      break;
    case ExprOp::kLog1p:
      r = Log1p(x, g_);
      break;
    case ExprOp::kFloor:
      r = Op("Floor", {x});
      break;
    case ExprOp::kCeil:  // ceil(x) = -floor(-x), exactly
      r = Op("Neg", {Op("Floor", {Op("Neg", {x})})});
      break;
    default:  // kIsNan
      r = Bool(Op("IsNaN", {x}), true);
      break;
  }
  Push(r, v.rows);
}

std::string ExpressionExporter::Binary(ExprOp op, const std::string& a, const std::string& b) {
  switch (op) {
    case ExprOp::kAdd:
      return Op("Add", {a, b});
    case ExprOp::kSub:
      return Op("Sub", {a, b});
    case ExprOp::kMul:
      return Op("Mul", {a, b});
    case ExprOp::kDiv:
      return Op("Div", {a, b});
    case ExprOp::kPow:
      return Op("Pow", {a, b});
    case ExprOp::kMod:
      Unsupported("the % operator (fmod)");
    default:
      return NanWhere(a, NanWhere(b, Comparison(op, a, b), g_), g_);
  }
}

// 1 or 0 (NaN operands are handled by the caller).
std::string ExpressionExporter::Comparison(ExprOp op, const std::string& a, const std::string& b) {
  switch (op) {
    case ExprOp::kLt:
      return Bool(Op("Less", {a, b}), true);
    case ExprOp::kLe:
      return Bool(Op("Greater", {a, b}), false);
    case ExprOp::kGt:
      return Bool(Op("Greater", {a, b}), true);
    case ExprOp::kGe:
      return Bool(Op("Less", {a, b}), false);
    case ExprOp::kEq:
      return Bool(Op("Equal", {a, b}), true);
    case ExprOp::kNe:
      return Bool(Op("Equal", {a, b}), false);
    case ExprOp::kAnd:  // a != 0 && b != 0
      return Op("Where", {IsZero(a), g_.Scalar(0.0f), Bool(IsZero(b), false)});
    case ExprOp::kOr:  // a != 0 || b != 0
      return Op("Where", {IsZero(a), Bool(IsZero(b), false), g_.Scalar(1.0f)});
    default:
      Unsupported(fmt::format("operator #{}", static_cast<int>(op)));
  }
}

// min/max of the top `arg` entries, NaN when any is.
void ExpressionExporter::MinMax(const Expression::Instr& in) {
  const std::string_view type = in.op == ExprOp::kMin ? "Min" : "Max";
  std::vector<Value> args(static_cast<std::size_t>(in.arg));
  for (auto it = args.rbegin(); it != args.rend(); ++it) *it = Pop();
  Value acc = args[0];
  for (std::size_t k = 1; k < args.size(); ++k) {
    const std::string& b = args[k].t;
    acc.t = NanWhere(acc.t, NanWhere(b, Op(type, {acc.t, b}), g_), g_);
    acc.rows = acc.rows || args[k].rows;
  }
  stack_.push_back(acc);
}

// clip(x, lo, hi) = min(max(x, lo), hi); if(c, a, b) = c != 0 ? a : b; NaN where x (c) is.
void ExpressionExporter::Ternary(ExprOp op) {
  const Value c = Pop();
  const Value b = Pop();
  const Value a = Pop();
  const bool rows = a.rows || b.rows || c.rows;
  if (op == ExprOp::kClip) {
    const std::string clipped = Op("Min", {Op("Max", {a.t, b.t}), c.t});
    return Push(NanWhere(a.t, clipped, g_), rows);
  }
  Push(NanWhere(a.t, Op("Where", {IsZero(a.t), c.t, b.t}), g_), rows);
}

}  // namespace

std::string ExportExpression(const features::Expression& expr,
                             const std::vector<std::string>& columns, std::string_view step,
                             const std::function<std::string()>& zeros, GraphBuilder& g) {
  const Value v = ExpressionExporter(expr, columns, step, g).Run();
  // A constant expression is a column all the same.
  return v.rows ? v.t : g.Op("Add", {zeros(), v.t}, "expr");
}

}  // namespace escala::io::onnx_internal
