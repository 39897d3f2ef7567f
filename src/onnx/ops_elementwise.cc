// Element-wise kernels: unary maps, numpy-broadcast binary arithmetic and comparisons, Where,
// Clip, Cast, Identity and Dropout (inference).
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include <Eigen/Core>

#include "onnx/ops.h"

namespace escala::models::onnxrt {
namespace {

constexpr std::size_t kMaxRank = 8;

using Index = std::array<std::int64_t, 3>;

// Calls row(offsets, steps, out_offset, length) for every run of the last dimension of
// `out_shape`, with each input's offset and step (0 where it broadcasts).
template <std::size_t K, typename Row>
void ForEachRow(const std::array<const std::vector<std::int64_t>*, K>& shapes,
                const std::vector<std::int64_t>& out_shape, Row&& row) {
  const std::size_t r = out_shape.size();
  ESCALA_CHECK(r <= kMaxRank, kInvalidArgument, "rank {} is over the supported {}", r, kMaxRank);
  std::array<std::array<std::int64_t, kMaxRank>, K> stride{};
  for (std::size_t k = 0; k < K; ++k) {
    const auto& s = *shapes[k];
    std::int64_t step = 1;
    for (std::size_t d = r; d-- > 0;) {
      const std::size_t pad = r - s.size();
      const std::int64_t dim = d < pad ? 1 : s[d - pad];
      stride[k][d] = dim == 1 ? 0 : step;
      step *= dim;
    }
  }
  if (r == 0) {
    row(std::array<std::int64_t, K>{}, std::array<std::int64_t, K>{}, 0, 1);
    return;
  }
  const std::int64_t len = out_shape[r - 1];
  std::int64_t outer = 1;
  for (std::size_t d = 0; d + 1 < r; ++d) outer *= out_shape[d];
  std::array<std::int64_t, kMaxRank> counter{};
  std::array<std::int64_t, K> offset{}, step{};
  for (std::size_t k = 0; k < K; ++k) step[k] = stride[k][r - 1];
  for (std::int64_t o = 0; o < outer && len > 0; ++o) {
    row(offset, step, o * len, len);
    for (std::size_t d = r - 1; d-- > 0;) {
      for (std::size_t k = 0; k < K; ++k) offset[k] += stride[k][d];
      if (++counter[d] < out_shape[d]) break;
      for (std::size_t k = 0; k < K; ++k) offset[k] -= stride[k][d] * out_shape[d];
      counter[d] = 0;
    }
  }
}

template <typename T>
const std::vector<T>& Data(const OnnxTensor& t);
template <>
const std::vector<float>& Data(const OnnxTensor& t) {
  return t.f;
}
template <>
const std::vector<std::int64_t>& Data(const OnnxTensor& t) {
  return t.i;
}
template <>
const std::vector<std::uint8_t>& Data(const OnnxTensor& t) {
  return t.b;
}
template <typename T>
std::vector<T>& Data(OnnxTensor& t) {
  return const_cast<std::vector<T>&>(Data<T>(static_cast<const OnnxTensor&>(t)));
}

template <typename T>
constexpr OnnxType TypeOf() {
  if constexpr (std::is_same_v<T, float>) return OnnxType::kFloat;
  if constexpr (std::is_same_v<T, std::int64_t>) return OnnxType::kInt64;
  return OnnxType::kBool;
}

// out[i] = f(a[i], b[i]) under broadcasting, R the result's element type.
template <typename T, typename R, typename F>
void Binary(const OnnxTensor& a, const OnnxTensor& b, OnnxTensor& out, F f) {
  thread_local std::vector<std::int64_t> shape;
  BroadcastShapeInto(a.shape, b.shape, shape);
  out.Resize(TypeOf<R>(), shape);
  const T* pa = Data<T>(a).data();
  const T* pb = Data<T>(b).data();
  R* po = Data<R>(out).data();
  ForEachRow<2>({&a.shape, &b.shape}, shape, [&](auto off, auto step, std::int64_t o, auto len) {
    const T* x = pa + off[0];
    const T* y = pb + off[1];
    for (std::int64_t k = 0; k < len; ++k) po[o + k] = f(x[k * step[0]], y[k * step[1]]);
  });
}

enum class Arith { kAdd, kSub, kMul, kDiv, kMax, kMin };

template <typename T>
void ApplyArith(Arith op, const OnnxTensor& a, const OnnxTensor& b, OnnxTensor& out) {
  switch (op) {
    case Arith::kAdd:
      return Binary<T, T>(a, b, out, [](T x, T y) { return x + y; });
    case Arith::kSub:
      return Binary<T, T>(a, b, out, [](T x, T y) { return x - y; });
    case Arith::kMul:
      return Binary<T, T>(a, b, out, [](T x, T y) { return x * y; });
    case Arith::kDiv:
      return Binary<T, T>(a, b, out, [](T x, T y) {
        if constexpr (std::is_integral_v<T>) {
          ESCALA_CHECK(y != 0, kInvalidArgument, "integer division by zero");
        }
        return x / y;
      });
    case Arith::kMax:
      return Binary<T, T>(a, b, out, [](T x, T y) {
        if constexpr (std::is_floating_point_v<T>) {
          if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<T>::quiet_NaN();
        }
        return std::max(x, y);
      });
    case Arith::kMin:
      return Binary<T, T>(a, b, out, [](T x, T y) {
        if constexpr (std::is_floating_point_v<T>) {
          if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<T>::quiet_NaN();
        }
        return std::min(x, y);
      });
  }
}

// Add, Sub, Mul, Div (two inputs); Max, Min (one or more, folded left to right).
class ArithOp final : public Op {
 public:
  ArithOp(Arith op, std::string name) : op_(op), name_(std::move(name)) {}
  void Run(In in, Out out) const override {
    const OnnxTensor& first = *in[0];
    ESCALA_CHECK(first.type == OnnxType::kFloat || first.type == OnnxType::kInt64, kInvalidArgument,
                 "{} takes float or int64, got {}", name_, OnnxTypeName(first.type));
    if (in.size() == 1) {
      *out[0] = first;
      return;
    }
    if (in.size() == 2) return Apply(first, *in[1], *out[0]);
    OnnxTensor acc = first, next;  // variadic Max/Min: rare, temporaries allowed
    for (std::size_t k = 1; k < in.size(); ++k) {
      ExpectType(*in[k], first.type, name_, static_cast<int>(k));
      Apply(acc, *in[k], k + 1 == in.size() ? *out[0] : next);
      std::swap(acc, next);
    }
  }

 private:
  void Apply(const OnnxTensor& a, const OnnxTensor& b, OnnxTensor& o) const {
    ExpectType(b, a.type, name_, 1);
    if (a.type == OnnxType::kFloat) return ApplyArith<float>(op_, a, b, o);
    ApplyArith<std::int64_t>(op_, a, b, o);
  }
  Arith op_;
  std::string name_;
};

template <Arith A>
std::unique_ptr<Op> MakeArith(const NodeContext& ctx) {
  for (int k = 0; k < ctx.num_inputs(); ++k) {
    if (!ctx.HasInput(k)) ctx.Fail("input {} is empty", k);
  }
  if (ctx.num_inputs() < 1) ctx.Fail("needs at least one input");
  const bool binary = A != Arith::kMax && A != Arith::kMin;
  if (binary && ctx.num_inputs() != 2) ctx.Fail("takes two inputs, got {}", ctx.num_inputs());
  if (binary && ctx.opset() < 7 && ctx.Int("broadcast", 0) != 0) ctx.Fail("legacy broadcast");
  return std::make_unique<ArithOp>(A, ctx.node().op_type());
}

// Pow: float base, float or int64 exponent.
class PowOp final : public Op {
 public:
  void Run(In in, Out out) const override {
    ExpectType(*in[0], OnnxType::kFloat, "Pow", 0);
    const OnnxTensor& e = *in[1];
    if (e.type == OnnxType::kFloat) {
      return Binary<float, float>(*in[0], e, *out[0], [](float x, float y) {
        return y == 2.0f ? x * x : y == 0.5f ? std::sqrt(x) : std::pow(x, y);
      });
    }
    ExpectType(e, OnnxType::kInt64, "Pow", 1);
    thread_local std::vector<std::int64_t> shape;
    BroadcastShapeInto(in[0]->shape, e.shape, shape);
    out[0]->Resize(OnnxType::kFloat, shape);
    const float* a = in[0]->f.data();
    const std::int64_t* b = e.i.data();
    float* o = out[0]->f.data();
    ForEachRow<2>({&in[0]->shape, &e.shape}, shape, [&](auto off, auto step, auto at, auto len) {
      for (std::int64_t k = 0; k < len; ++k) {
        o[at + k] = std::pow(a[off[0] + k * step[0]], static_cast<float>(b[off[1] + k * step[1]]));
      }
    });
  }
};

enum class Compare { kGreater, kLess, kEqual };

class CompareOp final : public Op {
 public:
  explicit CompareOp(Compare c) : c_(c) {}
  void Run(In in, Out out) const override {
    const OnnxTensor& a = *in[0];
    ExpectType(*in[1], a.type, "comparison", 1);
    if (a.type == OnnxType::kFloat) return Apply<float>(a, *in[1], *out[0]);
    if (a.type == OnnxType::kInt64) return Apply<std::int64_t>(a, *in[1], *out[0]);
    ESCALA_CHECK(a.type == OnnxType::kBool && c_ == Compare::kEqual, kInvalidArgument,
                 "comparison of {} tensors is not supported", OnnxTypeName(a.type));
    Apply<std::uint8_t>(a, *in[1], *out[0]);
  }

 private:
  template <typename T>
  void Apply(const OnnxTensor& a, const OnnxTensor& b, OnnxTensor& o) const {
    switch (c_) {
      case Compare::kGreater:
        return Binary<T, std::uint8_t>(a, b, o, [](T x, T y) -> std::uint8_t { return x > y; });
      case Compare::kLess:
        return Binary<T, std::uint8_t>(a, b, o, [](T x, T y) -> std::uint8_t { return x < y; });
      case Compare::kEqual:
        return Binary<T, std::uint8_t>(a, b, o, [](T x, T y) -> std::uint8_t { return x == y; });
    }
  }
  Compare c_;
};

template <Compare C>
std::unique_ptr<Op> MakeCompare(const NodeContext& ctx) {
  if (ctx.num_inputs() != 2) ctx.Fail("takes two inputs");
  return std::make_unique<CompareOp>(C);
}

// Where(condition, x, y) under three-way broadcasting.
class WhereOp final : public Op {
 public:
  void Run(In in, Out out) const override {
    ExpectType(*in[0], OnnxType::kBool, "Where", 0);
    ExpectType(*in[2], in[1]->type, "Where", 2);
    thread_local std::vector<std::int64_t> pair, shape;
    BroadcastShapeInto(in[0]->shape, in[1]->shape, pair);
    BroadcastShapeInto(pair, in[2]->shape, shape);
    switch (in[1]->type) {
      case OnnxType::kFloat:
        return Apply<float>(in, shape, *out[0]);
      case OnnxType::kInt64:
        return Apply<std::int64_t>(in, shape, *out[0]);
      case OnnxType::kBool:
        return Apply<std::uint8_t>(in, shape, *out[0]);
      case OnnxType::kString:
        Throw(ErrorCode::kInvalidArgument, "Where on strings is not supported");
    }
  }

 private:
  template <typename T>
  static void Apply(In in, const std::vector<std::int64_t>& shape, OnnxTensor& o) {
    o.Resize(TypeOf<T>(), shape);
    const std::uint8_t* c = in[0]->b.data();
    const T* x = Data<T>(*in[1]).data();
    const T* y = Data<T>(*in[2]).data();
    T* po = Data<T>(o).data();
    ForEachRow<3>({&in[0]->shape, &in[1]->shape, &in[2]->shape}, shape,
                  [&](auto off, auto step, auto at, auto len) {
                    for (std::int64_t k = 0; k < len; ++k) {
                      po[at + k] = c[off[0] + k * step[0]] ? x[off[1] + k * step[1]]
                                                           : y[off[2] + k * step[2]];
                    }
                  });
  }
};

// ---- Unary maps
// ----------------------------------------------------------------------------------

using ArrayMap = Eigen::Map<Eigen::ArrayXf>;
using ConstArrayMap = Eigen::Map<const Eigen::ArrayXf>;

enum class Unary {
  kRelu,
  kLeakyRelu,
  kSigmoid,
  kTanh,
  kErf,
  kSqrt,
  kExp,
  kLog,
  kAbs,
  kNeg,
  kFloor
};

class UnaryOp final : public Op {
 public:
  UnaryOp(Unary u, float alpha) : u_(u), alpha_(alpha) {}
  void Run(In in, Out out) const override {
    const OnnxTensor& x = *in[0];
    OnnxTensor& o = *out[0];
    if (x.type == OnnxType::kInt64 && (u_ == Unary::kAbs || u_ == Unary::kNeg)) {
      o.Resize(OnnxType::kInt64, x.shape);
      for (std::size_t k = 0; k < x.i.size(); ++k) {
        o.i[k] = u_ == Unary::kAbs ? std::abs(x.i[k]) : -x.i[k];
      }
      return;
    }
    ExpectType(x, OnnxType::kFloat, "unary op", 0);
    o.Resize(OnnxType::kFloat, x.shape);
    const auto n = static_cast<Eigen::Index>(x.f.size());
    Apply(ConstArrayMap(x.f.data(), n), ArrayMap(o.f.data(), n));
  }

 private:
  void Apply(ConstArrayMap a, ArrayMap o) const {
    switch (u_) {
      case Unary::kRelu:
        o = a.max(0.0f);
        return;
      case Unary::kLeakyRelu:
        o = (a >= 0.0f).select(a, a * alpha_);
        return;
      case Unary::kSigmoid:
        o = 1.0f / (1.0f + (-a).exp());
        return;
      case Unary::kTanh:
        o = a.tanh();
        return;
      case Unary::kErf:
        for (Eigen::Index k = 0; k < a.size(); ++k) o[k] = std::erf(a[k]);
        return;
      case Unary::kSqrt:
        o = a.sqrt();
        return;
      case Unary::kExp:
        o = a.exp();
        return;
      case Unary::kLog:
        o = a.log();
        return;
      case Unary::kAbs:
        o = a.abs();
        return;
      case Unary::kNeg:
        o = -a;
        return;
      case Unary::kFloor:
        o = a.floor();
        return;
    }
  }
  Unary u_;
  float alpha_;
};

template <Unary U>
std::unique_ptr<Op> MakeUnary(const NodeContext& ctx) {
  if (ctx.num_inputs() != 1) ctx.Fail("takes one input");
  return std::make_unique<UnaryOp>(U, ctx.Float("alpha", 0.01f));
}

class IsNaNOp final : public Op {
 public:
  void Run(In in, Out out) const override {
    ExpectType(*in[0], OnnxType::kFloat, "IsNaN", 0);
    out[0]->Resize(OnnxType::kBool, in[0]->shape);
    for (std::size_t k = 0; k < in[0]->f.size(); ++k) out[0]->b[k] = std::isnan(in[0]->f[k]);
  }
};

std::unique_ptr<Op> MakeIsNaN(const NodeContext&) {
  return std::make_unique<IsNaNOp>();
}

// Identity, and Dropout in inference form (its optional mask output all true).
class IdentityOp final : public Op {
 public:
  void Run(In in, Out out) const override {
    *out[0] = *in[0];
    if (out.size() > 1 && out[1] != nullptr) {
      out[1]->Resize(OnnxType::kBool, in[0]->shape);
      std::fill(out[1]->b.begin(), out[1]->b.end(), 1);
    }
  }
};

std::unique_ptr<Op> MakeIdentity(const NodeContext&) {
  return std::make_unique<IdentityOp>();
}

std::unique_ptr<Op> MakeDropout(const NodeContext& ctx) {
  if (ctx.HasInput(2)) {
    const OnnxTensor* mode = ctx.Constant(2);
    if (mode == nullptr || mode->type != OnnxType::kBool || mode->b.size() != 1 || mode->b[0]) {
      ctx.Fail("only inference mode (training_mode a constant false) is supported");
    }
  }
  if (ctx.opset() < 7 && ctx.Int("is_test", 0) == 0) ctx.Fail("is_test must be 1 for inference");
  return std::make_unique<IdentityOp>();
}

class ClipOp final : public Op {
 public:
  ClipOp(float lo, float hi) : lo_(lo), hi_(hi) {}
  void Run(In in, Out out) const override {
    const OnnxTensor& x = *in[0];
    float lo = lo_, hi = hi_;
    if (in.size() > 1 && in[1] != nullptr) lo = Scalar(*in[1], "min");
    if (in.size() > 2 && in[2] != nullptr) hi = Scalar(*in[2], "max");
    OnnxTensor& o = *out[0];
    if (x.type == OnnxType::kInt64) {
      o.Resize(OnnxType::kInt64, x.shape);
      // Bounds as int64, saturating (an infinite or huge float bound clamps nothing).
      const auto bound = [](double b) {
        return b <= -9.2e18  ? std::numeric_limits<std::int64_t>::min()
               : b >= 9.2e18 ? std::numeric_limits<std::int64_t>::max()
                             : static_cast<std::int64_t>(b);
      };
      const std::int64_t low = bound(std::ceil(lo)), high = bound(std::floor(hi));
      ESCALA_CHECK(!std::isnan(lo) && !std::isnan(hi) && low <= high, kInvalidArgument,
                   "Clip bounds [{}, {}] are empty", lo, hi);
      for (std::size_t k = 0; k < x.i.size(); ++k) o.i[k] = std::clamp(x.i[k], low, high);
      return;
    }
    ExpectType(x, OnnxType::kFloat, "Clip", 0);
    o.Resize(OnnxType::kFloat, x.shape);
    const auto n = static_cast<Eigen::Index>(x.f.size());
    ArrayMap(o.f.data(), n) = ConstArrayMap(x.f.data(), n).max(lo).min(hi);
  }

 private:
  static float Scalar(const OnnxTensor& t, std::string_view what) {
    ESCALA_CHECK(t.size() == 1, kInvalidArgument, "Clip {} must be a scalar, got {}", what,
                 t.ShapeText());
    if (t.type == OnnxType::kInt64) return static_cast<float>(t.i[0]);
    ExpectType(t, OnnxType::kFloat, "Clip", what == "min" ? 1 : 2);
    return t.f[0];
  }
  float lo_, hi_;
};

std::unique_ptr<Op> MakeClip(const NodeContext& ctx) {
  const float inf = std::numeric_limits<float>::infinity();
  if (ctx.opset() < 11) {
    return std::make_unique<ClipOp>(ctx.Float("min", -inf), ctx.Float("max", inf));
  }
  return std::make_unique<ClipOp>(-inf, inf);
}

class CastOp final : public Op {
 public:
  explicit CastOp(OnnxType to) : to_(to) {}
  void Run(In in, Out out) const override {
    const OnnxTensor& x = *in[0];
    OnnxTensor& o = *out[0];
    if (x.type == to_) {
      o = x;
      return;
    }
    ESCALA_CHECK(x.type != OnnxType::kString && to_ != OnnxType::kString, kInvalidArgument,
                 "Cast between strings and numbers is not supported");
    o.Resize(to_, x.shape);
    const auto n = static_cast<std::size_t>(x.size());
    for (std::size_t k = 0; k < n; ++k) Store(o, k, Load(x, k));
  }

 private:
  static double Load(const OnnxTensor& t, std::size_t k) {
    return t.type == OnnxType::kFloat   ? t.f[k]
           : t.type == OnnxType::kInt64 ? static_cast<double>(t.i[k])
                                        : t.b[k];
  }
  static void Store(OnnxTensor& t, std::size_t k, double v) {
    if (t.type == OnnxType::kFloat) t.f[k] = static_cast<float>(v);
    if (t.type == OnnxType::kBool) t.b[k] = v != 0.0;
    if (t.type == OnnxType::kInt64) {
      ESCALA_CHECK(std::isfinite(v) && std::abs(v) < 9.2e18, kInvalidArgument,
                   "Cast of {} to int64 is out of range", v);
      t.i[k] = static_cast<std::int64_t>(v);
    }
  }
  OnnxType to_;
};

std::unique_ptr<Op> MakeCast(const NodeContext& ctx) {
  const auto to = static_cast<int>(ctx.Int("to", 0));
  OnnxType type;
  if (!FromProtoType(to, &type)) {
    ctx.Fail("Cast to {} is not supported (float, int64, bool, string)",
             onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(to)));
  }
  return std::make_unique<CastOp>(type);
}

std::unique_ptr<Op> MakePow(const NodeContext&) {
  return std::make_unique<PowOp>();
}
std::unique_ptr<Op> MakeWhere(const NodeContext& ctx) {
  if (ctx.num_inputs() != 3) ctx.Fail("takes three inputs");
  return std::make_unique<WhereOp>();
}

constexpr OpEntry kOps[] = {
    {"", "Add", MakeArith<Arith::kAdd>},
    {"", "Sub", MakeArith<Arith::kSub>},
    {"", "Mul", MakeArith<Arith::kMul>},
    {"", "Div", MakeArith<Arith::kDiv>},
    {"", "Max", MakeArith<Arith::kMax>},
    {"", "Min", MakeArith<Arith::kMin>},
    {"", "Pow", MakePow},
    {"", "Greater", MakeCompare<Compare::kGreater>},
    {"", "Less", MakeCompare<Compare::kLess>},
    {"", "Equal", MakeCompare<Compare::kEqual>},
    {"", "Where", MakeWhere},
    {"", "Relu", MakeUnary<Unary::kRelu>},
    {"", "LeakyRelu", MakeUnary<Unary::kLeakyRelu>},
    {"", "Sigmoid", MakeUnary<Unary::kSigmoid>},
    {"", "Tanh", MakeUnary<Unary::kTanh>},
    {"", "Erf", MakeUnary<Unary::kErf>},
    {"", "Sqrt", MakeUnary<Unary::kSqrt>},
    {"", "Exp", MakeUnary<Unary::kExp>},
    {"", "Log", MakeUnary<Unary::kLog>},
    {"", "Abs", MakeUnary<Unary::kAbs>},
    {"", "Neg", MakeUnary<Unary::kNeg>},
    {"", "Floor", MakeUnary<Unary::kFloor>},
    {"", "IsNaN", MakeIsNaN},
    {"", "Identity", MakeIdentity},
    {"", "Dropout", MakeDropout},
    {"", "Clip", MakeClip},
    {"", "Cast", MakeCast},
};

}  // namespace

std::span<const OpEntry> ElementwiseOps() {
  return kOps;
}

}  // namespace escala::models::onnxrt
