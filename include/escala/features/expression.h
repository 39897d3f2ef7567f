// Expression features: a small, safe language for derived columns, e.g.
//
//   ratio = income / (debt + 1)
//   big   = log(x) > 3
//   bmi   = body_mass_g / (flipper_length_mm * flipper_length_mm)
//
// Numbers, column names (`back-quoted` when they contain other characters), + - * / % ^,
// comparisons < <= > >= == != (1 for true, 0 for false), and / or / not (also && || !), and the
// functions log exp sqrt abs log1p floor ceil pow(a, b) min(a, b, ...) max(a, b, ...)
// clip(x, lo, hi) if(cond, a, b) isnan(x). Missing values (NaN) propagate through arithmetic,
// comparisons and if(); isnan() turns them into 0/1.
//
// An expression is parsed once and evaluated column-wise on blocks of rows with a small stack
// machine; scratch buffers are reused, so evaluation allocates nothing per block. Parse errors
// name the position: "position 17: expected ')'".
//
// Thread-safety: a parsed Expression is immutable and may be evaluated from many threads, each
// with its own ExpressionScratch.
#ifndef ESCALA_FEATURES_EXPRESSION_H_
#define ESCALA_FEATURES_EXPRESSION_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace escala::features {

struct ExpressionScratch {
  std::vector<std::vector<float>> stack;
};

class Expression {
 public:
  // Parses "name = expr" (require_target) or a bare expression. Throws kInvalidArgument with the
  // 1-based position of the problem.
  static Expression Parse(std::string_view text, bool require_target = true);

  const std::string& text() const { return text_; }
  const std::string& target() const { return target_; }
  // The distinct columns referenced, in order of first use; Evaluate() takes them in this order.
  const std::vector<std::string>& inputs() const { return inputs_; }

  // out[i] = value of the expression on row i, for rows [0, n); columns[k][i] is inputs()[k].
  void Evaluate(std::span<const float* const> columns, std::int64_t n, float* out,
                ExpressionScratch& scratch) const;
  // Convenience for one row.
  float EvaluateRow(std::span<const float> values) const;

  enum class Op : std::uint8_t {
    kColumn,
    kConst,
    kNeg,
    kNot,
    kAdd,
    kSub,
    kMul,
    kDiv,
    kMod,
    kPow,
    kLt,
    kLe,
    kGt,
    kGe,
    kEq,
    kNe,
    kAnd,
    kOr,
    kLog,
    kExp,
    kSqrt,
    kAbs,
    kLog1p,
    kFloor,
    kCeil,
    kIsNan,
    kMin,
    kMax,
    kClip,
    kIf
  };
  struct Instr {
    Op op;
    int arg = 0;      // column index, or argument count for min/max
    float value = 0;  // constant
  };
  // The program in postfix order, as Evaluate() runs it on its stack (for translators).
  const std::vector<Instr>& program() const { return program_; }

 private:
  std::string text_;
  std::string target_;
  std::vector<std::string> inputs_;
  std::vector<Instr> program_;  // postfix
  int max_depth_ = 0;
};

}  // namespace escala::features

#endif  // ESCALA_FEATURES_EXPRESSION_H_
