#include "escala/features/expression.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include <fast_float/fast_float.h>

#include "escala/core/error.h"

namespace escala::features {

namespace {

using Op = Expression::Op;
using Instr = Expression::Instr;

class Parser {
 public:
  Parser(std::string_view text, std::size_t base, std::string_view whole)
      : s_(text), base_(base), whole_(whole) {}

  std::vector<Instr> ParseAll(std::vector<std::string>* inputs) {
    inputs_ = inputs;
    Expr();
    Skip();
    if (pos_ < s_.size()) Fail(pos_, fmt::format("unexpected '{}'", s_[pos_]));
    return std::move(out_);
  }

 private:
  [[noreturn]] void Fail(std::size_t at, const std::string& what) const {
    Throw(ErrorCode::kInvalidArgument, "expression '{}': position {}: {}", whole_, base_ + at + 1,
          what);
  }
  void Skip() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool Eat(std::string_view tok) {
    Skip();
    if (s_.substr(pos_, tok.size()) == tok) {
      // Word operators must not be a prefix of a longer identifier ("order").
      if (std::isalpha(static_cast<unsigned char>(tok[0])) && pos_ + tok.size() < s_.size() &&
          (std::isalnum(static_cast<unsigned char>(s_[pos_ + tok.size()])) ||
           s_[pos_ + tok.size()] == '_')) {
        return false;
      }
      pos_ += tok.size();
      return true;
    }
    return false;
  }
  void Expect(std::string_view tok) {
    if (!Eat(tok)) Fail(pos_, fmt::format("expected '{}'", tok));
  }
  void Emit(Op op, int arg = 0, float value = 0) { out_.push_back(Instr{op, arg, value}); }

  void Expr() { Or(); }
  void Or() {
    And();
    while (Eat("||") || Eat("or")) {
      And();
      Emit(Op::kOr);
    }
  }
  void And() {
    Not();
    while (Eat("&&") || Eat("and")) {
      Not();
      Emit(Op::kAnd);
    }
  }
  void Not() {
    if (Eat("not")) {
      Not();
      Emit(Op::kNot);
      return;
    }
    Cmp();
  }
  void Cmp() {
    Add();
    Skip();
    static constexpr std::pair<std::string_view, Op> kOps[] = {{"<=", Op::kLe}, {">=", Op::kGe},
                                                               {"==", Op::kEq}, {"!=", Op::kNe},
                                                               {"<", Op::kLt},  {">", Op::kGt}};
    for (const auto& [tok, op] : kOps) {
      if (Eat(tok)) {
        Add();
        Emit(op);
        return;
      }
    }
  }
  void Add() {
    Mul();
    for (;;) {
      if (Eat("+")) {
        Mul();
        Emit(Op::kAdd);
      } else if (Eat("-")) {
        Mul();
        Emit(Op::kSub);
      } else {
        return;
      }
    }
  }
  void Mul() {
    Unary();
    for (;;) {
      if (Eat("*")) {
        Unary();
        Emit(Op::kMul);
      } else if (Eat("/")) {
        Unary();
        Emit(Op::kDiv);
      } else if (Eat("%")) {
        Unary();
        Emit(Op::kMod);
      } else {
        return;
      }
    }
  }
  void Unary() {
    if (Eat("-")) {
      Unary();
      Emit(Op::kNeg);
    } else if (Eat("+")) {
      Unary();
    } else if (Skip(), pos_ < s_.size() && s_[pos_] == '!' &&
                           (pos_ + 1 >= s_.size() || s_[pos_ + 1] != '=')) {
      ++pos_;
      Unary();
      Emit(Op::kNot);
    } else {
      Power();
    }
  }
  void Power() {
    Primary();
    if (Eat("^")) {
      Unary();  // right-associative, binds tighter than unary minus on its left
      Emit(Op::kPow);
    }
  }
  void Primary() {
    Skip();
    if (pos_ >= s_.size()) Fail(pos_, "unexpected end of expression");
    const char c = s_[pos_];
    if (c == '(') {
      ++pos_;
      Expr();
      Expect(")");
      return;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      double v = 0;
      const auto r = fast_float::from_chars(s_.data() + pos_, s_.data() + s_.size(), v);
      if (r.ec != std::errc()) Fail(pos_, "invalid number");
      pos_ = static_cast<std::size_t>(r.ptr - s_.data());
      Emit(Op::kConst, 0, static_cast<float>(v));
      return;
    }
    if (c == '`') {
      const std::size_t start = pos_;
      const std::size_t end = s_.find('`', pos_ + 1);
      if (end == std::string_view::npos) Fail(start, "unterminated `quoted` column name");
      Column(std::string(s_.substr(pos_ + 1, end - pos_ - 1)));
      pos_ = end + 1;
      return;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      const std::size_t start = pos_;
      while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) ||
                                  s_[pos_] == '_' || s_[pos_] == '.')) {
        ++pos_;
      }
      const std::string name(s_.substr(start, pos_ - start));
      Skip();
      if (pos_ < s_.size() && s_[pos_] == '(') {
        ++pos_;
        Call(name, start);
        return;
      }
      if (name == "nan") {
        Emit(Op::kConst, 0, std::numeric_limits<float>::quiet_NaN());
        return;
      }
      if (name == "true" || name == "false") {
        Emit(Op::kConst, 0, name == "true" ? 1.0f : 0.0f);
        return;
      }
      Column(name);
      return;
    }
    Fail(pos_, fmt::format("unexpected '{}'", c));
  }
  void Column(const std::string& name) {
    auto it = std::find(inputs_->begin(), inputs_->end(), name);
    int idx = static_cast<int>(it - inputs_->begin());
    if (it == inputs_->end()) inputs_->push_back(name);
    Emit(Op::kColumn, idx);
  }
  void Call(const std::string& fn, std::size_t at) {
    int argc = 0;
    Skip();
    if (!Eat(")")) {
      do {
        Expr();
        ++argc;
      } while (Eat(","));
      Expect(")");
    }
    struct Fn {
      std::string_view name;
      Op op;
      int min_args, max_args;
    };
    static constexpr Fn kFns[] = {
        {"log", Op::kLog, 1, 1},   {"exp", Op::kExp, 1, 1},     {"sqrt", Op::kSqrt, 1, 1},
        {"abs", Op::kAbs, 1, 1},   {"log1p", Op::kLog1p, 1, 1}, {"floor", Op::kFloor, 1, 1},
        {"ceil", Op::kCeil, 1, 1}, {"isnan", Op::kIsNan, 1, 1}, {"pow", Op::kPow, 2, 2},
        {"min", Op::kMin, 2, 64},  {"max", Op::kMax, 2, 64},    {"clip", Op::kClip, 3, 3},
        {"if", Op::kIf, 3, 3}};
    for (const auto& f : kFns) {
      if (f.name != fn) continue;
      if (argc < f.min_args || argc > f.max_args) {
        Fail(at, fmt::format("{}() takes {} argument{}, got {}", fn,
                             f.min_args == f.max_args ? std::to_string(f.min_args)
                                                      : fmt::format("at least {}", f.min_args),
                             f.max_args == 1 ? "" : "s", argc));
      }
      Emit(f.op, argc);
      return;
    }
    Fail(at, fmt::format("unknown function '{}' (available: log exp sqrt abs log1p floor ceil "
                         "isnan pow min max clip if)",
                         fn));
  }

  std::string_view s_;
  std::size_t base_;
  std::string_view whole_;
  std::size_t pos_ = 0;
  std::vector<Instr> out_;
  std::vector<std::string>* inputs_ = nullptr;
};

int StackEffect(const Instr& in) {
  switch (in.op) {
    case Op::kColumn:
    case Op::kConst:
      return 1;
    case Op::kNeg:
    case Op::kNot:
    case Op::kLog:
    case Op::kExp:
    case Op::kSqrt:
    case Op::kAbs:
    case Op::kLog1p:
    case Op::kFloor:
    case Op::kCeil:
    case Op::kIsNan:
      return 0;
    case Op::kMin:
    case Op::kMax:
      return 1 - in.arg;
    case Op::kClip:
    case Op::kIf:
      return -2;
    default:
      return -1;  // binary operators
  }
}

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

inline float Bool(bool b) {
  return b ? 1.0f : 0.0f;
}
inline float Cmp(float a, float b, bool r) {
  return std::isnan(a) || std::isnan(b) ? kNaN : Bool(r);
}

// The stack machine: one column of `len` values per stack entry; `top` indexes the top entry.
// Each instruction runs over the whole column, so dispatch is per instruction, not per value.
struct Stack {
  std::vector<std::vector<float>>& entries;
  std::size_t len;
  int top = -1;

  float* at(int i) { return entries[static_cast<std::size_t>(i)].data(); }
};

template <typename F>
void MapUnary(float* a, std::size_t len, F f) {
  for (std::size_t i = 0; i < len; ++i) a[i] = f(a[i]);
}

template <typename F>
void MapBinary(float* a, const float* b, std::size_t len, F f) {
  for (std::size_t i = 0; i < len; ++i) a[i] = f(a[i], b[i]);
}

void ApplyUnary(Op op, float* a, std::size_t len) {
  switch (op) {
    case Op::kNeg:
      return MapUnary(a, len, [](float x) { return -x; });
    case Op::kNot:
      return MapUnary(a, len, [](float x) { return std::isnan(x) ? kNaN : Bool(x == 0); });
    case Op::kLog:
      return MapUnary(a, len, [](float x) { return std::log(x); });
    case Op::kExp:
      return MapUnary(a, len, [](float x) { return std::exp(x); });
    case Op::kSqrt:
      return MapUnary(a, len, [](float x) { return std::sqrt(x); });
    case Op::kAbs:
      return MapUnary(a, len, [](float x) { return std::fabs(x); });
    case Op::kLog1p:
      return MapUnary(a, len, [](float x) { return std::log1p(x); });
    case Op::kFloor:
      return MapUnary(a, len, [](float x) { return std::floor(x); });
    case Op::kCeil:
      return MapUnary(a, len, [](float x) { return std::ceil(x); });
    case Op::kIsNan:
      return MapUnary(a, len, [](float x) { return Bool(std::isnan(x)); });
    default:
      return;
  }
}

void ApplyArithmetic(Op op, float* a, const float* b, std::size_t len) {
  switch (op) {
    case Op::kAdd:
      return MapBinary(a, b, len, [](float x, float y) { return x + y; });
    case Op::kSub:
      return MapBinary(a, b, len, [](float x, float y) { return x - y; });
    case Op::kMul:
      return MapBinary(a, b, len, [](float x, float y) { return x * y; });
    case Op::kDiv:
      return MapBinary(a, b, len, [](float x, float y) { return x / y; });
    case Op::kMod:
      return MapBinary(a, b, len, [](float x, float y) { return std::fmod(x, y); });
    case Op::kPow:
      return MapBinary(a, b, len, [](float x, float y) { return std::pow(x, y); });
    default:
      return;
  }
}

// Comparisons and logic: 1 or 0, NaN when either side is.
void ApplyComparison(Op op, float* a, const float* b, std::size_t len) {
  switch (op) {
    case Op::kLt:
      return MapBinary(a, b, len, [](float x, float y) { return Cmp(x, y, x < y); });
    case Op::kLe:
      return MapBinary(a, b, len, [](float x, float y) { return Cmp(x, y, x <= y); });
    case Op::kGt:
      return MapBinary(a, b, len, [](float x, float y) { return Cmp(x, y, x > y); });
    case Op::kGe:
      return MapBinary(a, b, len, [](float x, float y) { return Cmp(x, y, x >= y); });
    case Op::kEq:
      return MapBinary(a, b, len, [](float x, float y) { return Cmp(x, y, x == y); });
    case Op::kNe:
      return MapBinary(a, b, len, [](float x, float y) { return Cmp(x, y, x != y); });
    case Op::kAnd:
      return MapBinary(a, b, len, [](float x, float y) { return Cmp(x, y, x != 0 && y != 0); });
    case Op::kOr:
      return MapBinary(a, b, len, [](float x, float y) { return Cmp(x, y, x != 0 || y != 0); });
    default:
      return ApplyArithmetic(op, a, b, len);
  }
}

// min/max of the top `argc` entries into the first of them; NaN when any is.
void ApplyMinMax(const Instr& in, Stack& st) {
  const int first = st.top - in.arg + 1;
  float* d = st.at(first);
  for (int k = first + 1; k <= st.top; ++k) {
    if (in.op == Op::kMin) {
      MapBinary(d, st.at(k), st.len, [](float x, float y) {
        return std::isnan(x) || std::isnan(y) ? kNaN : std::min(x, y);
      });
    } else {
      MapBinary(d, st.at(k), st.len, [](float x, float y) {
        return std::isnan(x) || std::isnan(y) ? kNaN : std::max(x, y);
      });
    }
  }
  st.top = first;
}

// clip(x, lo, hi) and if(cond, a, b): NaN when x (cond) is.
void ApplyTernary(Op op, Stack& st) {
  float* a = st.at(st.top - 2);
  const float* b = st.at(st.top - 1);
  const float* c = st.at(st.top);
  if (op == Op::kClip) {
    for (std::size_t i = 0; i < st.len; ++i)
      a[i] = std::isnan(a[i]) ? kNaN : std::min(std::max(a[i], b[i]), c[i]);
  } else {
    for (std::size_t i = 0; i < st.len; ++i)
      a[i] = std::isnan(a[i]) ? kNaN : (a[i] != 0 ? b[i] : c[i]);
  }
  st.top -= 2;
}

void Execute(const Instr& in, std::span<const float* const> columns, Stack& st) {
  switch (in.op) {
    case Op::kColumn:
      std::copy_n(columns[static_cast<std::size_t>(in.arg)], st.len, st.at(++st.top));
      return;
    case Op::kConst:
      std::fill_n(st.at(++st.top), st.len, in.value);
      return;
    case Op::kMin:
    case Op::kMax:
      return ApplyMinMax(in, st);
    case Op::kClip:
    case Op::kIf:
      return ApplyTernary(in.op, st);
    default:
      break;
  }
  if (StackEffect(in) == 0) return ApplyUnary(in.op, st.at(st.top), st.len);
  ApplyComparison(in.op, st.at(st.top - 1), st.at(st.top), st.len);
  --st.top;
}

}  // namespace

Expression Expression::Parse(std::string_view text, bool require_target) {
  Expression e;
  e.text_ = std::string(text);
  std::string_view body = text;
  std::size_t base = 0;
  // "name = expr": the first '=' that is not part of ==, <=, >=, !=.
  std::size_t eq = std::string_view::npos;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '=') continue;
    const bool prev_op = i > 0 && (text[i - 1] == '=' || text[i - 1] == '<' || text[i - 1] == '>' ||
                                   text[i - 1] == '!');
    const bool next_eq = i + 1 < text.size() && text[i + 1] == '=';
    if (next_eq) {
      ++i;
      continue;
    }
    if (!prev_op) {
      eq = i;
      break;
    }
  }
  if (eq != std::string_view::npos) {
    std::string_view name = text.substr(0, eq);
    while (!name.empty() && std::isspace(static_cast<unsigned char>(name.front())))
      name.remove_prefix(1);
    while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back())))
      name.remove_suffix(1);
    if (name.size() >= 2 && name.front() == '`' && name.back() == '`')
      name = name.substr(1, name.size() - 2);
    ESCALA_CHECK(!name.empty(), kInvalidArgument,
                 "expression '{}': position 1: missing the name before '='", text);
    e.target_ = std::string(name);
    body = text.substr(eq + 1);
    base = eq + 1;
  } else {
    ESCALA_CHECK(!require_target, kInvalidArgument, "expression '{}': expected 'name = expression'",
                 text);
  }
  Parser p(body, base, text);
  e.program_ = p.ParseAll(&e.inputs_);
  int depth = 0;
  for (const auto& in : e.program_) {
    depth += StackEffect(in);
    e.max_depth_ = std::max(e.max_depth_, depth);
  }
  ESCALA_ASSERT(depth == 1);
  return e;
}

void Expression::Evaluate(std::span<const float* const> columns, std::int64_t n, float* out,
                          ExpressionScratch& scratch) const {
  ESCALA_CHECK(columns.size() == inputs_.size(), kInvalidArgument,
               "expression '{}' needs {} input column(s), got {}", text_, inputs_.size(),
               columns.size());
  const auto len = static_cast<std::size_t>(n);
  if (scratch.stack.size() < static_cast<std::size_t>(max_depth_)) {
    scratch.stack.resize(static_cast<std::size_t>(max_depth_));
  }
  for (auto& s : scratch.stack) {
    if (s.size() < len) s.resize(len);
  }
  Stack stack{scratch.stack, len};
  for (const Instr& in : program_) Execute(in, columns, stack);
  std::copy_n(scratch.stack[0].data(), len, out);
}

float Expression::EvaluateRow(std::span<const float> values) const {
  std::vector<const float*> cols;
  for (const float& v : values) cols.push_back(&v);
  ExpressionScratch scratch;
  float out = 0;
  Evaluate(cols, 1, &out, scratch);
  return out;
}

}  // namespace escala::features
