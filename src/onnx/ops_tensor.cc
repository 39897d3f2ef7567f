// Kernels that move or contract tensors: Gemm, MatMul, Softmax, LogSoftmax, Flatten, Reshape,
// Squeeze, Unsqueeze, Transpose, Concat, Constant, Shape, Gather, BatchNormalization, ArgMax,
// ReduceSum.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/simd/products.h"
#include "onnx/ops.h"

namespace escala::models::onnxrt {
namespace {

std::int64_t Product(std::span<const std::int64_t> dims, std::size_t from, std::size_t to) {
  std::int64_t p = 1;
  for (std::size_t d = from; d < to && d < dims.size(); ++d) p *= dims[d];
  return p;
}

// Copies `count` elements of any type from src[at] to dst[to] (same type; dst sized).
void CopyElements(const OnnxTensor& src, std::int64_t at, OnnxTensor& dst, std::int64_t to,
                  std::int64_t count) {
  const auto a = static_cast<std::size_t>(at), t = static_cast<std::size_t>(to);
  const auto n = static_cast<std::size_t>(count);
  switch (src.type) {
    case OnnxType::kFloat:
      std::copy_n(src.f.begin() + static_cast<std::ptrdiff_t>(a), n,
                  dst.f.begin() + static_cast<std::ptrdiff_t>(t));
      return;
    case OnnxType::kInt64:
      std::copy_n(src.i.begin() + static_cast<std::ptrdiff_t>(a), n,
                  dst.i.begin() + static_cast<std::ptrdiff_t>(t));
      return;
    case OnnxType::kBool:
      std::copy_n(src.b.begin() + static_cast<std::ptrdiff_t>(a), n,
                  dst.b.begin() + static_cast<std::ptrdiff_t>(t));
      return;
    case OnnxType::kString:
      std::copy_n(src.s.begin() + static_cast<std::ptrdiff_t>(a), n,
                  dst.s.begin() + static_cast<std::ptrdiff_t>(t));
      return;
  }
}

// The same elements under a new shape.
void Reshaped(const OnnxTensor& x, std::span<const std::int64_t> shape, OnnxTensor& o) {
  if (&x != &o) {
    o.Resize(x.type, shape);
    CopyElements(x, 0, o, 0, x.size());
  }
  o.shape.assign(shape.begin(), shape.end());
}

// ---- Gemm, MatMul ------------------------------------------------------------------------------

// y (m x n) = alpha * op(a) * op(b), op a transpose when asked: escala's dispatched GEMM (the
// AVX2 or AVX-512 build of the product where the CPU has it; a one-row product is a GEMV).
void MatrixProduct(const float* a, const float* b, float* y, std::int64_t m, std::int64_t k,
                   std::int64_t n, bool ta, bool tb, float alpha) {
  const ConstMatrixViewF av(a, ta ? k : m, ta ? m : k), bv(b, tb ? n : k, tb ? k : n);
  MatrixViewF yv(y, m, n);
  if (m == 1 && !ta) {
    // y^T = op(b)^T a^T: a matrix-vector product over b.
    simd::MatVec(bv, !tb, std::span<const float>(a, static_cast<std::size_t>(k)),
                 std::span<float>(y, static_cast<std::size_t>(n)), false);
  } else {
    simd::MatMul(av, ta, bv, tb, yv, false);
  }
  if (alpha != 1.0f) {
    for (std::int64_t t = 0; t < m * n; ++t) y[t] *= alpha;
  }
}

class GemmOp final : public Op {
 public:
  GemmOp(bool ta, bool tb, float alpha, float beta)
      : ta_(ta), tb_(tb), alpha_(alpha), beta_(beta) {}
  void Run(In in, Out out) const override {
    const OnnxTensor& a = *in[0];
    const OnnxTensor& b = *in[1];
    ExpectType(a, OnnxType::kFloat, "Gemm", 0);
    ExpectType(b, OnnxType::kFloat, "Gemm", 1);
    ESCALA_CHECK(a.shape.size() == 2 && b.shape.size() == 2, kInvalidArgument,
                 "Gemm takes 2-D inputs, got {} and {}", a.ShapeText(), b.ShapeText());
    const std::int64_t m = a.shape[ta_ ? 1 : 0], k = a.shape[ta_ ? 0 : 1];
    const std::int64_t kb = b.shape[tb_ ? 1 : 0], n = b.shape[tb_ ? 0 : 1];
    ESCALA_CHECK(k == kb, kInvalidArgument,
                 "Gemm of {}{} by {}{}: inner dimensions {} and {} differ", a.ShapeText(),
                 ta_ ? "^T" : "", b.ShapeText(), tb_ ? "^T" : "", k, kb);
    OnnxTensor& y = *out[0];
    y.Resize(OnnxType::kFloat, {m, n});
    MatrixProduct(a.f.data(), b.f.data(), y.f.data(), m, k, n, ta_, tb_, alpha_);
    if (in.size() > 2 && in[2] != nullptr) AddBias(*in[2], y, m, n);
  }

 private:
  void AddBias(const OnnxTensor& c, OnnxTensor& y, std::int64_t m, std::int64_t n) const {
    ExpectType(c, OnnxType::kFloat, "Gemm", 2);
    thread_local std::vector<std::int64_t> shape;
    BroadcastShapeInto(c.shape, y.shape, shape);
    ESCALA_CHECK(shape == y.shape, kInvalidArgument, "Gemm bias {} does not broadcast to [{}, {}]",
                 c.ShapeText(), m, n);
    const std::int64_t rows = c.shape.size() == 2 ? c.shape[0] : 1;
    const std::int64_t cols = c.shape.empty() ? 1 : c.shape.back();
    for (std::int64_t i = 0; i < m; ++i) {
      const float* cr = c.f.data() + (rows == 1 ? 0 : i) * cols;
      float* yr = y.f.data() + i * n;
      if (cols == 1) {
        for (std::int64_t j = 0; j < n; ++j) yr[j] += beta_ * cr[0];
      } else {
        for (std::int64_t j = 0; j < n; ++j) yr[j] += beta_ * cr[j];
      }
    }
  }
  bool ta_, tb_;
  float alpha_, beta_;
};

std::unique_ptr<Op> MakeGemm(const NodeContext& ctx) {
  if (ctx.num_inputs() < 2) ctx.Fail("takes A, B and optionally C");
  if (ctx.opset() < 7 && ctx.Int("broadcast", 1) == 0) ctx.Fail("legacy broadcast=0");
  return std::make_unique<GemmOp>(ctx.Int("transA", 0) != 0, ctx.Int("transB", 0) != 0,
                                  ctx.Float("alpha", 1.0f), ctx.Float("beta", 1.0f));
}

// numpy matmul: 1-D operands are promoted and their dimension dropped; leading (batch)
// dimensions broadcast.
class MatMulOp final : public Op {
 public:
  void Run(In in, Out out) const override {
    ExpectType(*in[0], OnnxType::kFloat, "MatMul", 0);
    ExpectType(*in[1], OnnxType::kFloat, "MatMul", 1);
    // Shapes in thread_local vectors: no allocation per call once warm.
    thread_local std::vector<std::int64_t> as, bs, abatch, bbatch, shape;
    as = in[0]->shape;
    bs = in[1]->shape;
    ESCALA_CHECK(!as.empty() && !bs.empty(), kInvalidArgument, "MatMul of a scalar");
    const bool a1 = as.size() == 1, b1 = bs.size() == 1;
    if (a1) as.insert(as.begin(), 1);
    if (b1) bs.push_back(1);
    const std::int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
    ESCALA_CHECK(bs[bs.size() - 2] == k, kInvalidArgument,
                 "MatMul of {} by {}: inner dimensions {} and {} differ", in[0]->ShapeText(),
                 in[1]->ShapeText(), k, bs[bs.size() - 2]);
    abatch.assign(as.begin(), as.end() - 2);
    bbatch.assign(bs.begin(), bs.end() - 2);
    BroadcastShapeInto(abatch, bbatch, shape);
    const std::int64_t batches = Product(shape, 0, shape.size());
    shape.push_back(m);
    shape.push_back(n);
    OnnxTensor& y = *out[0];
    y.Resize(OnnxType::kFloat, shape);
    if (bbatch.empty() || Product(bbatch, 0, bbatch.size()) == 1) {
      // One right operand: every batch of a is one tall matrix.
      const std::int64_t rows = Product(as, 0, as.size() - 1);
      ESCALA_CHECK(Product(abatch, 0, abatch.size()) == batches, kInvalidArgument,
                   "MatMul batch dimensions do not broadcast");
      MatrixProduct(in[0]->f.data(), in[1]->f.data(), y.f.data(), rows, k, n, false, false, 1.0f);
    } else {
      Batched(in, abatch, bbatch, shape, m, k, n, y);
    }
    DropPromoted(y, a1, b1);
  }

 private:
  static void Batched(In in, const std::vector<std::int64_t>& abatch,
                      const std::vector<std::int64_t>& bbatch,
                      const std::vector<std::int64_t>& shape, std::int64_t m, std::int64_t k,
                      std::int64_t n, OnnxTensor& y) {
    const std::size_t r = shape.size() - 2;
    const std::int64_t batches = Product(shape, 0, r);
    for (std::int64_t t = 0; t < batches; ++t) {
      std::int64_t rest = t, ai = 0, bi = 0, astep = 1, bstep = 1;
      for (std::size_t d = r; d-- > 0;) {
        const std::int64_t idx = rest % shape[d];
        rest /= shape[d];
        const std::size_t pa = r - abatch.size(), pb = r - bbatch.size();
        const std::int64_t da = d < pa ? 1 : abatch[d - pa], db = d < pb ? 1 : bbatch[d - pb];
        ai += (da == 1 ? 0 : idx) * astep;
        bi += (db == 1 ? 0 : idx) * bstep;
        astep *= da;
        bstep *= db;
      }
      MatrixProduct(in[0]->f.data() + ai * m * k, in[1]->f.data() + bi * k * n,
                    y.f.data() + t * m * n, m, k, n, false, false, 1.0f);
    }
  }
  static void DropPromoted(OnnxTensor& y, bool a1, bool b1) {
    if (b1) y.shape.pop_back();
    if (a1) y.shape.erase(y.shape.end() - (b1 ? 1 : 2));
  }
};

std::unique_ptr<Op> MakeMatMul(const NodeContext&) {
  return std::make_unique<MatMulOp>();
}

// ---- Softmax, LogSoftmax -----------------------------------------------------------------------

class SoftmaxOp final : public Op {
 public:
  SoftmaxOp(std::int64_t axis, bool coerce_2d, bool log)
      : axis_(axis), coerce_2d_(coerce_2d), log_(log) {}
  void Run(In in, Out out) const override {
    const OnnxTensor& x = *in[0];
    ExpectType(x, OnnxType::kFloat, "Softmax", 0);
    const auto rank = static_cast<std::int64_t>(x.shape.size());
    ESCALA_CHECK(rank > 0, kInvalidArgument, "Softmax of a scalar");
    const auto a = static_cast<std::size_t>(NormalizeAxis(axis_, rank, "axis"));
    const std::int64_t outer = Product(x.shape, 0, a);
    const std::int64_t n =
        coerce_2d_ ? Product(x.shape, a, x.shape.size()) : (x.shape.empty() ? 1 : x.shape[a]);
    const std::int64_t inner = coerce_2d_ ? 1 : Product(x.shape, a + 1, x.shape.size());
    OnnxTensor& y = *out[0];
    y.Resize(OnnxType::kFloat, x.shape);
    for (std::int64_t o = 0; o < outer; ++o) {
      for (std::int64_t i = 0; i < inner; ++i) {
        Normalize(x.f.data() + o * n * inner + i, y.f.data() + o * n * inner + i, n, inner);
      }
    }
  }

 private:
  void Normalize(const float* x, float* y, std::int64_t n, std::int64_t stride) const {
    float hi = -std::numeric_limits<float>::infinity();
    for (std::int64_t j = 0; j < n; ++j) hi = std::max(hi, x[j * stride]);
    double sum = 0.0;
    for (std::int64_t j = 0; j < n; ++j) sum += std::exp(static_cast<double>(x[j * stride] - hi));
    const double log_sum = std::log(sum);
    for (std::int64_t j = 0; j < n; ++j) {
      const double z = static_cast<double>(x[j * stride] - hi) - log_sum;
      y[j * stride] = static_cast<float>(log_ ? z : std::exp(z));
    }
  }
  std::int64_t axis_;
  bool coerce_2d_, log_;
};

template <bool Log>
std::unique_ptr<Op> MakeSoftmax(const NodeContext& ctx) {
  const bool old = ctx.opset() < 13;
  return std::make_unique<SoftmaxOp>(ctx.Int("axis", old ? 1 : -1), old, Log);
}

// ---- Shape manipulation ------------------------------------------------------------------------

class FlattenOp final : public Op {
 public:
  explicit FlattenOp(std::int64_t axis) : axis_(axis) {}
  void Run(In in, Out out) const override {
    const OnnxTensor& x = *in[0];
    const auto rank = static_cast<std::int64_t>(x.shape.size());
    std::int64_t a = axis_ < 0 ? axis_ + rank : axis_;
    ESCALA_CHECK(a >= 0 && a <= rank, kInvalidArgument, "Flatten axis {} for rank {}", axis_, rank);
    const std::int64_t shape[2] = {Product(x.shape, 0, static_cast<std::size_t>(a)),
                                   Product(x.shape, static_cast<std::size_t>(a), x.shape.size())};
    Reshaped(x, shape, *out[0]);
  }

 private:
  std::int64_t axis_;
};

std::unique_ptr<Op> MakeFlatten(const NodeContext& ctx) {
  return std::make_unique<FlattenOp>(ctx.Int("axis", 1));
}

class ReshapeOp final : public Op {
 public:
  explicit ReshapeOp(bool allow_zero) : allow_zero_(allow_zero) {}
  void Run(In in, Out out) const override {
    const OnnxTensor& x = *in[0];
    thread_local std::vector<std::int64_t> shape;
    shape = IntValues(*in[1]);
    std::int64_t known = 1;
    int infer = -1;
    for (std::size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] == 0 && !allow_zero_) {
        ESCALA_CHECK(d < x.shape.size(), kInvalidArgument,
                     "Reshape of {} to {}: a 0 copies a dimension the input lacks", x.ShapeText(),
                     ShapeText(shape));
        shape[d] = x.shape[d];
      }
      if (shape[d] == -1) {
        ESCALA_CHECK(infer < 0, kInvalidArgument, "Reshape to {}: more than one -1",
                     ShapeText(shape));
        infer = static_cast<int>(d);
        continue;
      }
      ESCALA_CHECK(shape[d] >= 0, kInvalidArgument, "Reshape to {}: negative dimension",
                   ShapeText(shape));
      ESCALA_CHECK(shape[d] == 0 || known <= kMaxTensorElements / shape[d], kInvalidArgument,
                   "Reshape of {} to {} is impossible", x.ShapeText(), ShapeText(shape));
      known *= shape[d];
    }
    const std::int64_t n = x.size();
    if (infer >= 0) {
      ESCALA_CHECK(known > 0 && n % known == 0, kInvalidArgument,
                   "Reshape of {} to {}: {} elements do not divide into the shape", x.ShapeText(),
                   ShapeText(shape), n);
      shape[static_cast<std::size_t>(infer)] = n / known;
    }
    ESCALA_CHECK(Elements(shape) == n, kInvalidArgument,
                 "Reshape of {} ({} elements) to {} is impossible", x.ShapeText(), n,
                 ShapeText(shape));
    Reshaped(x, shape, *out[0]);
  }

 private:
  bool allow_zero_;
};

std::unique_ptr<Op> MakeReshape(const NodeContext& ctx) {
  if (ctx.num_inputs() != 2) ctx.Fail("takes data and shape (opset 5+)");
  return std::make_unique<ReshapeOp>(ctx.Int("allowzero", 0) != 0);
}

class SqueezeOp final : public Op {
 public:
  SqueezeOp(std::vector<std::int64_t> axes, bool from_input)
      : axes_(std::move(axes)), from_input_(from_input) {}
  void Run(In in, Out out) const override {
    const OnnxTensor& x = *in[0];
    const auto rank = static_cast<std::int64_t>(x.shape.size());
    const std::vector<std::int64_t>& axes =
        from_input_ && in.size() > 1 && in[1] != nullptr ? IntValues(*in[1]) : axes_;
    thread_local std::vector<char> drop;
    drop.assign(x.shape.size(), 0);
    for (std::int64_t a : axes) {
      const int d = NormalizeAxis(a, rank, "Squeeze axis");
      ESCALA_CHECK(x.shape[static_cast<std::size_t>(d)] == 1, kInvalidArgument,
                   "Squeeze axis {} of {} is not 1", a, x.ShapeText());
      drop[static_cast<std::size_t>(d)] = true;
    }
    thread_local std::vector<std::int64_t> shape;
    shape.clear();
    for (std::size_t d = 0; d < x.shape.size(); ++d) {
      if (!(axes.empty() ? x.shape[d] == 1 : drop[d] != 0)) shape.push_back(x.shape[d]);
    }
    Reshaped(x, shape, *out[0]);
  }

 private:
  std::vector<std::int64_t> axes_;
  bool from_input_;
};

std::unique_ptr<Op> MakeSqueeze(const NodeContext& ctx) {
  return std::make_unique<SqueezeOp>(ctx.Ints("axes"), ctx.opset() >= 13);
}

class UnsqueezeOp final : public Op {
 public:
  UnsqueezeOp(std::vector<std::int64_t> axes, bool from_input)
      : axes_(std::move(axes)), from_input_(from_input) {}
  void Run(In in, Out out) const override {
    const OnnxTensor& x = *in[0];
    const std::vector<std::int64_t>& axes = from_input_ ? IntValues(*in[1]) : axes_;
    const auto rank = static_cast<std::int64_t>(x.shape.size() + axes.size());
    thread_local std::vector<char> added;
    added.assign(static_cast<std::size_t>(rank), 0);
    for (std::int64_t a : axes) {
      const auto d = static_cast<std::size_t>(NormalizeAxis(a, rank, "Unsqueeze axis"));
      ESCALA_CHECK(added[d] == 0, kInvalidArgument, "Unsqueeze axis {} given twice", a);
      added[d] = 1;
    }
    thread_local std::vector<std::int64_t> shape;
    shape.clear();
    std::size_t src = 0;
    for (std::size_t d = 0; d < added.size(); ++d) {
      shape.push_back(added[d] != 0 ? 1 : x.shape[src++]);
    }
    Reshaped(x, shape, *out[0]);
  }

 private:
  std::vector<std::int64_t> axes_;
  bool from_input_;
};

std::unique_ptr<Op> MakeUnsqueeze(const NodeContext& ctx) {
  const bool from_input = ctx.opset() >= 13;
  if (from_input && !ctx.HasInput(1)) ctx.Fail("needs the axes input");
  if (!from_input && ctx.Ints("axes").empty()) ctx.Fail("needs the axes attribute");
  return std::make_unique<UnsqueezeOp>(ctx.Ints("axes"), from_input);
}

class TransposeOp final : public Op {
 public:
  explicit TransposeOp(std::vector<std::int64_t> perm) : perm_(std::move(perm)) {}
  void Run(In in, Out out) const override {
    const OnnxTensor& x = *in[0];
    const std::size_t r = x.shape.size();
    thread_local std::vector<std::int64_t> perm, stride, shape, in_stride, counter;
    thread_local std::vector<char> seen;
    perm = perm_;
    if (perm.empty()) {
      for (std::size_t d = r; d-- > 0;) perm.push_back(static_cast<std::int64_t>(d));
    }
    ESCALA_CHECK(perm.size() == r, kInvalidArgument, "Transpose perm of {} axes for rank {}",
                 perm.size(), r);
    stride.assign(r, 1);
    shape.assign(r, 0);
    in_stride.assign(r, 0);
    for (std::size_t d = r; d-- > 1;) stride[d - 1] = stride[d] * x.shape[d];
    seen.assign(r, 0);
    for (std::size_t d = 0; d < r; ++d) {
      const auto p = static_cast<std::size_t>(
          NormalizeAxis(perm[d], static_cast<std::int64_t>(r), "Transpose perm entry"));
      ESCALA_CHECK(seen[p] == 0, kInvalidArgument, "Transpose perm repeats axis {}", p);
      seen[p] = 1;
      shape[d] = x.shape[p];
      in_stride[d] = stride[p];
    }
    OnnxTensor& y = *out[0];
    y.Resize(x.type, shape);
    counter.assign(r, 0);
    std::int64_t src = 0;
    const std::int64_t n = y.size();
    for (std::int64_t k = 0; k < n; ++k) {
      CopyElements(x, src, y, k, 1);
      for (std::size_t d = r; d-- > 0;) {
        src += in_stride[d];
        if (++counter[d] < shape[d]) break;
        src -= in_stride[d] * shape[d];
        counter[d] = 0;
      }
    }
  }

 private:
  std::vector<std::int64_t> perm_;
};

std::unique_ptr<Op> MakeTranspose(const NodeContext& ctx) {
  return std::make_unique<TransposeOp>(ctx.Ints("perm"));
}

class ConcatOp final : public Op {
 public:
  explicit ConcatOp(std::int64_t axis) : axis_(axis) {}
  void Run(In in, Out out) const override {
    const OnnxTensor& first = *in[0];
    const auto rank = static_cast<std::int64_t>(first.shape.size());
    const auto a = static_cast<std::size_t>(NormalizeAxis(axis_, rank, "Concat axis"));
    thread_local std::vector<std::int64_t> shape;
    shape = first.shape;
    shape[a] = 0;
    for (std::size_t k = 0; k < in.size(); ++k) {
      const OnnxTensor& t = *in[k];
      ExpectType(t, first.type, "Concat", static_cast<int>(k));
      bool ok = t.shape.size() == first.shape.size();
      for (std::size_t d = 0; ok && d < t.shape.size(); ++d)
        ok = d == a || t.shape[d] == first.shape[d];
      ESCALA_CHECK(ok, kInvalidArgument, "Concat input {} has shape {}, input 0 {} (axis {})", k,
                   t.ShapeText(), first.ShapeText(), axis_);
      shape[a] += t.shape[a];
    }
    OnnxTensor& y = *out[0];
    y.Resize(first.type, shape);
    const std::int64_t outer = Product(shape, 0, a), inner = Product(shape, a + 1, shape.size());
    std::int64_t at = 0;
    for (const OnnxTensor* t : in) {
      const std::int64_t block = t->shape[a] * inner;
      for (std::int64_t o = 0; o < outer; ++o) {
        CopyElements(*t, o * block, y, o * shape[a] * inner + at, block);
      }
      at += block;
    }
  }

 private:
  std::int64_t axis_;
};

std::unique_ptr<Op> MakeConcat(const NodeContext& ctx) {
  if (ctx.Attr("axis") == nullptr) ctx.Fail("needs the axis attribute");
  for (int k = 0; k < ctx.num_inputs(); ++k) {
    if (!ctx.HasInput(k)) ctx.Fail("input {} is empty", k);
  }
  return std::make_unique<ConcatOp>(ctx.Int("axis", 0));
}

class ConstantOp final : public Op {
 public:
  explicit ConstantOp(OnnxTensor value) : value_(std::move(value)) {}
  void Run(In, Out out) const override { *out[0] = value_; }

 private:
  OnnxTensor value_;
};

std::unique_ptr<Op> MakeConstant(const NodeContext& ctx) {
  OnnxTensor t;
  if (ctx.Attr("value") != nullptr) return std::make_unique<ConstantOp>(ctx.TensorAttr("value"));
  if (const auto* a = ctx.Attr("value_float")) {
    t.Resize(OnnxType::kFloat, {});
    t.f[0] = a->f();
  } else if (const auto* v = ctx.Attr("value_int")) {
    t.Resize(OnnxType::kInt64, {});
    t.i[0] = v->i();
  } else if (ctx.Attr("value_floats") != nullptr) {
    t.f = ctx.Floats("value_floats");
    t.type = OnnxType::kFloat;
    t.shape = {static_cast<std::int64_t>(t.f.size())};
  } else if (ctx.Attr("value_ints") != nullptr) {
    t.i = ctx.Ints("value_ints");
    t.type = OnnxType::kInt64;
    t.shape = {static_cast<std::int64_t>(t.i.size())};
  } else if (const auto* s = ctx.Attr("value_string")) {
    t.Resize(OnnxType::kString, {});
    t.s[0] = s->s();
  } else {
    ctx.Fail("needs a value attribute (sparse values are not supported)");
  }
  return std::make_unique<ConstantOp>(std::move(t));
}

class ShapeOp final : public Op {
 public:
  ShapeOp(std::int64_t start, std::int64_t end) : start_(start), end_(end) {}
  void Run(In in, Out out) const override {
    const auto& s = in[0]->shape;
    const auto r = static_cast<std::int64_t>(s.size());
    auto clampi = [r](std::int64_t v) { return std::clamp<std::int64_t>(v < 0 ? v + r : v, 0, r); };
    const std::int64_t b = clampi(start_), e = std::max(b, clampi(end_));
    out[0]->Resize(OnnxType::kInt64, {e - b});
    std::copy(s.begin() + b, s.begin() + e, out[0]->i.begin());
  }

 private:
  std::int64_t start_, end_;
};

std::unique_ptr<Op> MakeShape(const NodeContext& ctx) {
  return std::make_unique<ShapeOp>(ctx.Int("start", 0),
                                   ctx.Int("end", std::numeric_limits<std::int32_t>::max()));
}

class GatherOp final : public Op {
 public:
  explicit GatherOp(std::int64_t axis) : axis_(axis) {}
  void Run(In in, Out out) const override {
    const OnnxTensor& x = *in[0];
    const OnnxTensor& idx = *in[1];
    ExpectType(idx, OnnxType::kInt64, "Gather", 1);
    const auto rank = static_cast<std::int64_t>(x.shape.size());
    ESCALA_CHECK(rank > 0, kInvalidArgument, "Gather on a scalar");
    const auto a = static_cast<std::size_t>(NormalizeAxis(axis_, rank, "Gather axis"));
    thread_local std::vector<std::int64_t> shape;
    shape.assign(x.shape.begin(), x.shape.begin() + static_cast<std::ptrdiff_t>(a));
    shape.insert(shape.end(), idx.shape.begin(), idx.shape.end());
    shape.insert(shape.end(), x.shape.begin() + static_cast<std::ptrdiff_t>(a) + 1, x.shape.end());
    OnnxTensor& y = *out[0];
    y.Resize(x.type, shape);
    const std::int64_t outer = Product(x.shape, 0, a),
                       inner = Product(x.shape, a + 1, x.shape.size());
    const std::int64_t n = x.shape[a], m = static_cast<std::int64_t>(idx.i.size());
    for (std::int64_t j = 0; j < m; ++j) {
      std::int64_t k = idx.i[static_cast<std::size_t>(j)];
      ESCALA_CHECK(k >= -n && k < n, kInvalidArgument, "Gather index {} out of range [{}, {})", k,
                   -n, n);
      if (k < 0) k += n;
      for (std::int64_t o = 0; o < outer; ++o) {
        CopyElements(x, (o * n + k) * inner, y, (o * m + j) * inner, inner);
      }
    }
  }

 private:
  std::int64_t axis_;
};

std::unique_ptr<Op> MakeGather(const NodeContext& ctx) {
  return std::make_unique<GatherOp>(ctx.Int("axis", 0));
}

// y = (x - mean) / sqrt(var + epsilon) * scale + bias, per channel (axis 1).
class BatchNormOp final : public Op {
 public:
  explicit BatchNormOp(float epsilon) : epsilon_(epsilon) {}
  void Run(In in, Out out) const override {
    const OnnxTensor& x = *in[0];
    ExpectType(x, OnnxType::kFloat, "BatchNormalization", 0);
    ESCALA_CHECK(x.shape.size() >= 2, kInvalidArgument,
                 "BatchNormalization of {}: needs [N, C, ...]", x.ShapeText());
    const std::int64_t c = x.shape[1];
    for (int k = 1; k < 5; ++k) {
      ExpectType(*in[static_cast<std::size_t>(k)], OnnxType::kFloat, "BatchNormalization", k);
      ESCALA_CHECK(in[static_cast<std::size_t>(k)]->size() == c, kInvalidArgument,
                   "BatchNormalization input {} has {} values for {} channels", k,
                   in[static_cast<std::size_t>(k)]->size(), c);
    }
    const std::int64_t outer = x.shape[0], inner = Product(x.shape, 2, x.shape.size());
    OnnxTensor& y = *out[0];
    y.Resize(OnnxType::kFloat, x.shape);
    for (std::int64_t ch = 0; ch < c; ++ch) {
      const auto u = static_cast<std::size_t>(ch);
      const float mul = in[1]->f[u] / std::sqrt(in[4]->f[u] + epsilon_);
      const float add = in[2]->f[u] - in[3]->f[u] * mul;
      for (std::int64_t o = 0; o < outer; ++o) {
        const std::int64_t base = (o * c + ch) * inner;
        for (std::int64_t k = 0; k < inner; ++k)
          y.f[static_cast<std::size_t>(base + k)] =
              x.f[static_cast<std::size_t>(base + k)] * mul + add;
      }
    }
  }

 private:
  float epsilon_;
};

std::unique_ptr<Op> MakeBatchNorm(const NodeContext& ctx) {
  if (ctx.num_inputs() != 5) ctx.Fail("takes X, scale, B, mean and var");
  if (ctx.Int("training_mode", 0) != 0) ctx.Fail("training_mode is not supported (inference only)");
  if (ctx.node().output_size() > 1)
    ctx.Fail("training outputs (running mean/var) are not supported");
  if (ctx.opset() < 9 && ctx.Int("spatial", 1) == 0) ctx.Fail("spatial=0 is not supported");
  return std::make_unique<BatchNormOp>(ctx.Float("epsilon", 1e-5f));
}

// ArgMax and ReduceSum: a reduction along one axis (ArgMax) or several (ReduceSum).
class ArgMaxOp final : public Op {
 public:
  ArgMaxOp(std::int64_t axis, bool keep, bool last) : axis_(axis), keep_(keep), last_(last) {}
  void Run(In in, Out out) const override {
    const OnnxTensor& x = *in[0];
    ExpectType(x, OnnxType::kFloat, "ArgMax", 0);
    const auto rank = static_cast<std::int64_t>(x.shape.size());
    const auto a = static_cast<std::size_t>(NormalizeAxis(axis_, rank, "ArgMax axis"));
    thread_local std::vector<std::int64_t> shape;
    shape = x.shape;
    if (keep_)
      shape[a] = 1;
    else
      shape.erase(shape.begin() + static_cast<std::ptrdiff_t>(a));
    const std::int64_t outer = Product(x.shape, 0, a), n = x.shape[a];
    const std::int64_t inner = Product(x.shape, a + 1, x.shape.size());
    ESCALA_CHECK(n > 0, kInvalidArgument, "ArgMax over an empty axis");
    OnnxTensor& y = *out[0];
    y.Resize(OnnxType::kInt64, shape);
    for (std::int64_t o = 0; o < outer; ++o) {
      for (std::int64_t i = 0; i < inner; ++i) {
        const float* p = x.f.data() + o * n * inner + i;
        std::int64_t best = 0;
        for (std::int64_t j = 1; j < n; ++j) {
          if (p[j * inner] > p[best * inner] || (last_ && p[j * inner] == p[best * inner]))
            best = j;
        }
        y.i[static_cast<std::size_t>(o * inner + i)] = best;
      }
    }
  }

 private:
  std::int64_t axis_;
  bool keep_, last_;
};

std::unique_ptr<Op> MakeArgMax(const NodeContext& ctx) {
  return std::make_unique<ArgMaxOp>(ctx.Int("axis", 0), ctx.Int("keepdims", 1) != 0,
                                    ctx.Int("select_last_index", 0) != 0);
}

class ReduceSumOp final : public Op {
 public:
  ReduceSumOp(std::vector<std::int64_t> axes, bool from_input, bool keep, bool noop_empty)
      : axes_(std::move(axes)), from_input_(from_input), keep_(keep), noop_empty_(noop_empty) {}
  void Run(In in, Out out) const override {
    const OnnxTensor& x = *in[0];
    ExpectType(x, OnnxType::kFloat, "ReduceSum", 0);
    const std::vector<std::int64_t>& axes =
        from_input_ && in.size() > 1 && in[1] != nullptr ? IntValues(*in[1]) : axes_;
    if (axes.empty() && noop_empty_) {
      *out[0] = x;
      return;
    }
    const std::size_t r = x.shape.size();
    thread_local std::vector<char> reduce;
    thread_local std::vector<std::int64_t> kept, shape, counter, ostride;
    reduce.assign(r, axes.empty() ? 1 : 0);
    for (std::int64_t a : axes) {
      reduce[static_cast<std::size_t>(
          NormalizeAxis(a, static_cast<std::int64_t>(r), "ReduceSum axis"))] = 1;
    }
    kept.assign(r, 0);
    shape.clear();
    for (std::size_t d = 0; d < r; ++d) {
      kept[d] = reduce[d] != 0 ? 1 : x.shape[d];
      if (reduce[d] == 0 || keep_) shape.push_back(kept[d]);
    }
    OnnxTensor& y = *out[0];
    y.Resize(OnnxType::kFloat, kept);
    std::fill(y.f.begin(), y.f.end(), 0.0f);
    counter.assign(r, 0);
    ostride.assign(r, 1);
    for (std::size_t d = r; d-- > 1;) ostride[d - 1] = ostride[d] * kept[d];
    const std::int64_t n = x.size();
    for (std::int64_t k = 0; k < n; ++k) {
      std::int64_t o = 0;
      for (std::size_t d = 0; d < r; ++d) o += reduce[d] != 0 ? 0 : counter[d] * ostride[d];
      y.f[static_cast<std::size_t>(o)] += x.f[static_cast<std::size_t>(k)];
      for (std::size_t d = r; d-- > 0;) {
        if (++counter[d] < x.shape[d]) break;
        counter[d] = 0;
      }
    }
    y.shape = shape;
  }

 private:
  std::vector<std::int64_t> axes_;
  bool from_input_, keep_, noop_empty_;
};

std::unique_ptr<Op> MakeReduceSum(const NodeContext& ctx) {
  return std::make_unique<ReduceSumOp>(ctx.Ints("axes"), ctx.opset() >= 13,
                                       ctx.Int("keepdims", 1) != 0,
                                       ctx.Int("noop_with_empty_axes", 0) != 0);
}

constexpr OpEntry kOps[] = {
    {"", "Gemm", MakeGemm},
    {"", "MatMul", MakeMatMul},
    {"", "Softmax", MakeSoftmax<false>},
    {"", "LogSoftmax", MakeSoftmax<true>},
    {"", "Flatten", MakeFlatten},
    {"", "Reshape", MakeReshape},
    {"", "Squeeze", MakeSqueeze},
    {"", "Unsqueeze", MakeUnsqueeze},
    {"", "Transpose", MakeTranspose},
    {"", "Concat", MakeConcat},
    {"", "Constant", MakeConstant},
    {"", "Shape", MakeShape},
    {"", "Gather", MakeGather},
    {"", "BatchNormalization", MakeBatchNorm},
    {"", "ArgMax", MakeArgMax},
    {"", "ReduceSum", MakeReduceSum},
};

}  // namespace

std::span<const OpEntry> TensorOps() {
  return kOps;
}

}  // namespace escala::models::onnxrt
