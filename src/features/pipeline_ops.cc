// The op kernels of the compiled plan, and the compilation of fitted steps into ops.
//
// Every kernel runs one op over a range of rows (a block while transforming, a chunk of the shard
// while fitting): dispatch is per op and range, never per row.
#include <algorithm>
#include <cmath>

#include "escala/core/error.h"
#include "features/pipeline_impl.h"
#include "features/pipeline_steps.h"

namespace escala::features {

using internal::kMissingCat;
using internal::Op;
using internal::OpKind;
using internal::RunContext;
using internal::Store;
using internal::UnaryFn;
using internal::Unknown;

namespace {

float* Num(const Store& st, int slot) {
  return st.num[static_cast<std::size_t>(slot)];
}
std::uint64_t* Cat(const Store& st, int slot) {
  return st.cat[static_cast<std::size_t>(slot)];
}

void RunIndicator(const Op& op, bool categorical, const Store& st) {
  float* out = Num(st, op.out);
  if (categorical) {
    const std::uint64_t* in = Cat(st, op.in);
    for (std::int64_t i = 0; i < st.n; ++i) out[i] = in[i] == kMissingCat ? 1.0f : 0.0f;
  } else {
    const float* in = Num(st, op.in);
    for (std::int64_t i = 0; i < st.n; ++i) out[i] = std::isnan(in[i]) ? 1.0f : 0.0f;
  }
}

void RunImputeNum(const Op& op, const Store& st) {
  float* x = Num(st, op.in);
  for (std::int64_t i = 0; i < st.n; ++i) x[i] = std::isnan(x[i]) ? op.a : x[i];
}

void RunImputeCat(const Op& op, const Store& st) {
  std::uint64_t* x = Cat(st, op.in);
  for (std::int64_t i = 0; i < st.n; ++i) x[i] = x[i] == kMissingCat ? op.hash : x[i];
}

void RunAffine(const Op& op, const Store& st) {
  float* x = Num(st, op.in);
  const float center = op.a, scale = op.b, offset = op.c;
  for (std::int64_t i = 0; i < st.n; ++i) x[i] = (x[i] - center) * scale + offset;
}

void RunClip(const Op& op, const Store& st) {
  float* x = Num(st, op.in);
  for (std::int64_t i = 0; i < st.n; ++i) {
    x[i] = std::isnan(x[i]) ? x[i] : std::min(std::max(x[i], op.a), op.b);
  }
}

template <typename F>
void Map(float* x, std::int64_t n, F f) {
  for (std::int64_t i = 0; i < n; ++i) x[i] = f(x[i]);
}

void RunUnary(const Op& op, const Store& st) {
  float* x = Num(st, op.in);
  switch (op.fn) {
    case UnaryFn::kLog1p:
      return Map(x, st.n, [](float v) { return std::log1p(v); });
    case UnaryFn::kLog:
      return Map(x, st.n, [](float v) { return std::log(v); });
    case UnaryFn::kSqrt:
      return Map(x, st.n, [](float v) { return std::sqrt(v); });
    case UnaryFn::kAbs:
      return Map(x, st.n, [](float v) { return std::fabs(v); });
  }
}

// Signed feature hashing: each present category adds +-1 to one bucket.
void RunHash(const Op& op, const Store& st) {
  const auto buckets = static_cast<std::uint64_t>(op.outs.size());
  for (int o : op.outs) std::fill_n(Num(st, o), st.n, 0.0f);
  for (std::size_t k = 0; k < op.ins.size(); ++k) {
    const std::uint64_t* in = Cat(st, op.ins[k]);
    const std::uint64_t ch = op.col_hashes[k];
    for (std::int64_t i = 0; i < st.n; ++i) {
      if (in[i] == kMissingCat) continue;
      const std::uint64_t h =
          HashBytes(std::string_view(reinterpret_cast<const char*>(&in[i]), 8), ch);
      const float sign = (h >> 63) != 0 ? -1.0f : 1.0f;
      Num(st, op.outs[static_cast<std::size_t>(h % buckets)])[i] += sign;
    }
  }
}

void RunBucketize(const Op& op, const Store& st) {
  float* x = Num(st, op.in);
  for (std::int64_t i = 0; i < st.n; ++i) {
    if (std::isnan(x[i])) continue;
    x[i] = static_cast<float>(std::upper_bound(op.boundaries.begin(), op.boundaries.end(), x[i]) -
                              op.boundaries.begin());
  }
}

void RunPoly(const Op& op, const Store& st) {
  for (std::size_t t = 0; t < op.terms.size(); ++t) {
    float* out = Num(st, op.outs[t]);
    const auto& term = op.terms[t];
    std::copy_n(Num(st, op.ins[static_cast<std::size_t>(term[0])]), st.n, out);
    for (std::size_t k = 1; k < term.size(); ++k) {
      const float* f = Num(st, op.ins[static_cast<std::size_t>(term[k])]);
      for (std::int64_t i = 0; i < st.n; ++i) out[i] *= f[i];
    }
  }
}

void RunExpr(const Op& op, const Store& st, const RunContext& ctx) {
  auto& ptrs = *ctx.ptrs;
  ptrs.clear();
  for (int id : op.ins) ptrs.push_back(Num(st, id));
  op.expr->Evaluate(ptrs, st.n, Num(st, op.out), *ctx.expr_scratch);
}

}  // namespace

std::string Pipeline::Impl::RawString(int input, std::int64_t row, const RunContext& ctx) const {
  if (input < 0 || ctx.raw == nullptr) return "?";
  const RawColumn& col = ctx.raw->columns[static_cast<std::size_t>(input)];
  const std::int64_t r = ctx.row_offset + row;
  if (col.kind == RawColumn::Kind::kStrings) {
    return std::string(static_cast<const std::string_view*>(col.values)[r * col.stride]);
  }
  if (col.kind == RawColumn::Kind::kCodes && col.dictionary != nullptr) {
    const std::int32_t code = static_cast<const std::int32_t*>(col.values)[r * col.stride];
    if (code >= 0 && static_cast<std::size_t>(code) < col.dictionary->size()) {
      return (*col.dictionary)[static_cast<std::size_t>(code)];
    }
  }
  return "?";
}

void Pipeline::Impl::ReadInputNum(int input, float* out, std::int64_t n,
                                  const RunContext& ctx) const {
  const RawColumn& col = ctx.raw->columns[static_cast<std::size_t>(input)];
  const std::int64_t off = ctx.row_offset;
  const std::int64_t stride = col.stride;
  switch (col.kind) {
    case RawColumn::Kind::kFloat32: {
      const float* v = static_cast<const float*>(col.values) + off * stride;
      for (std::int64_t i = 0; i < n; ++i) out[i] = v[i * stride];
      break;
    }
    case RawColumn::Kind::kFloat64: {
      const double* v = static_cast<const double*>(col.values) + off * stride;
      for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(v[i * stride]);
      break;
    }
    case RawColumn::Kind::kInt64: {
      const std::int64_t* v = static_cast<const std::int64_t*>(col.values) + off * stride;
      for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(v[i * stride]);
      break;
    }
    case RawColumn::Kind::kInt32: {
      const std::int32_t* v = static_cast<const std::int32_t*>(col.values) + off * stride;
      for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(v[i * stride]);
      break;
    }
    default:
      Throw(ErrorCode::kInvalidArgument, "input '{}' must be numeric", inputs.field(input).name);
  }
  if (col.missing != nullptr) {
    for (std::int64_t i = 0; i < n; ++i) {
      if (col.missing[off + i]) out[i] = internal::kNaN;
    }
  }
}

void Pipeline::Impl::ReadInputCat(const Op& op, Store& st, const RunContext& ctx) const {
  const std::int64_t n = st.n;
  const int input = static_cast<int>(op.c);
  const RawColumn& col = ctx.raw->columns[static_cast<std::size_t>(input)];
  std::uint64_t* out = Cat(st, op.out);
  const std::int64_t off = ctx.row_offset;
  if (col.kind == RawColumn::Kind::kStrings) {
    const auto* v = static_cast<const std::string_view*>(col.values) + off * col.stride;
    for (std::int64_t i = 0; i < n; ++i) out[i] = internal::CatHash(v[i * col.stride]);
  } else if (col.kind == RawColumn::Kind::kCodes) {
    const auto& hashes = (*ctx.dict_hashes)[static_cast<std::size_t>(input)];
    const auto* v = static_cast<const std::int32_t*>(col.values) + off * col.stride;
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int32_t code = v[i * col.stride];
      out[i] = code >= 0 && static_cast<std::size_t>(code) < hashes.size()
                   ? hashes[static_cast<std::size_t>(code)]
                   : kMissingCat;
    }
  } else {
    Throw(ErrorCode::kInvalidArgument, "input '{}' must be categorical (strings)",
          inputs.field(input).name);
  }
  if (col.missing != nullptr) {
    for (std::int64_t i = 0; i < n; ++i) {
      if (col.missing[off + i]) out[i] = kMissingCat;
    }
  }
}

void Pipeline::Impl::ThrowUnknownCategory(const Op& op, std::uint64_t h, std::int64_t row,
                                          const RunContext& ctx) const {
  const Slot& in = slots[static_cast<std::size_t>(op.in)];
  const std::string value = h == kMissingCat ? std::string("a missing value")
                                             : "category '" + RawString(in.source, row, ctx) + "'";
  Throw(ErrorCode::kInvalidArgument,
        "row {}: pipeline step '{}': column '{}' has {} that was not seen when the pipeline was "
        "fitted (known: {}; use unknown=ignore or unknown=other to accept it)",
        ctx.row_offset + row, StepText(op.step), in.name, value,
        internal::JoinNames(op.vocab_names));
}

// onehot and ordinal: the vocabulary index of each row's category, or the unknown= policy's.
void Pipeline::Impl::RunEncoder(const Op& op, Store& st, const RunContext& ctx) const {
  const std::int64_t n = st.n;
  const std::uint64_t* in = Cat(st, op.in);
  const bool onehot = op.kind == OpKind::kOneHot;
  if (onehot) {
    for (int o : op.outs) std::fill_n(Num(st, o), n, 0.0f);
  }
  float* ord = onehot ? nullptr : Num(st, op.outs[0]);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::uint64_t h = in[i];
    auto it =
        std::lower_bound(op.vocab.begin(), op.vocab.end(), std::pair<std::uint64_t, int>(h, -1));
    int idx = it != op.vocab.end() && it->first == h ? it->second : -1;
    if (idx < 0) {
      if (op.unknown == Unknown::kError) ThrowUnknownCategory(op, h, i, ctx);
      if (op.unknown == Unknown::kOther) idx = op.other_index;
    }
    if (onehot) {
      if (idx >= 0) Num(st, op.outs[static_cast<std::size_t>(idx)])[i] = 1.0f;
    } else {
      ord[i] = idx >= 0 ? static_cast<float>(idx) : op.a;
    }
  }
}

// The fused elementwise kinds (FuseElementwise): each entry as its single-slot op would do it.
void Pipeline::Impl::RunFusedOp(const Op& op, Store& st, const RunContext& ctx) const {
  const std::int64_t n = st.n;
  switch (op.kind) {
    case OpKind::kInputNumMany:
      for (std::size_t k = 0; k < op.ins.size(); ++k) {
        ReadInputNum(op.ins[k], st.num[static_cast<std::size_t>(op.outs[k])], n, ctx);
      }
      return;
    case OpKind::kImputeNumMany:
      for (std::size_t k = 0; k < op.ins.size(); ++k) {
        float* x = st.num[static_cast<std::size_t>(op.ins[k])];
        const float fill = op.p0[k];
        for (std::int64_t i = 0; i < n; ++i) x[i] = std::isnan(x[i]) ? fill : x[i];
      }
      return;
    case OpKind::kAffineMany:
      for (std::size_t k = 0; k < op.ins.size(); ++k) {
        float* x = st.num[static_cast<std::size_t>(op.ins[k])];
        const float center = op.p0[k], scale = op.p1[k], offset = op.p2[k];
        for (std::int64_t i = 0; i < n; ++i) x[i] = (x[i] - center) * scale + offset;
      }
      return;
    default:
      ESCALA_ASSERT(false);
  }
}

void Pipeline::Impl::RunOp(const Op& op, Store& st, const RunContext& ctx) const {
  switch (op.kind) {
    case OpKind::kInputNum:
      return ReadInputNum(static_cast<int>(op.c), Num(st, op.out), st.n, ctx);
    case OpKind::kInputNumMany:
    case OpKind::kImputeNumMany:
    case OpKind::kAffineMany:
      return RunFusedOp(op, st, ctx);
    case OpKind::kInputCat:
      return ReadInputCat(op, st, ctx);
    case OpKind::kIndicator:
      return RunIndicator(op, slots[static_cast<std::size_t>(op.in)].categorical, st);
    case OpKind::kImputeNum:
      return RunImputeNum(op, st);
    case OpKind::kImputeCat:
      return RunImputeCat(op, st);
    case OpKind::kAffine:
      return RunAffine(op, st);
    case OpKind::kClip:
      return RunClip(op, st);
    case OpKind::kUnary:
      return RunUnary(op, st);
    case OpKind::kOneHot:
    case OpKind::kOrdinal:
      return RunEncoder(op, st, ctx);
    case OpKind::kHash:
      return RunHash(op, st);
    case OpKind::kBucketize:
      return RunBucketize(op, st);
    case OpKind::kPoly:
      return RunPoly(op, st);
    case OpKind::kExpr:
      return RunExpr(op, st, ctx);
  }
}

// ---- compiling ---------------------------------------------------------------------------------

void Pipeline::Impl::AddInputOps(std::vector<int>* live) {
  for (int i = 0; i < inputs.num_fields(); ++i) {
    const auto& f = inputs.field(i);
    const bool cat = f.type == data::DataType::kCategorical;
    const int id = AddSlot(f.name, cat, i);
    ops.push_back(Op{.kind = cat ? OpKind::kInputCat : OpKind::kInputNum, .out = id});
    ops.back().c = static_cast<float>(i);  // the raw input index
    live->push_back(id);
  }
}

// Builds the ops of one fitted step, updating the live slot list. Used while fitting (one step
// at a time) and when compiling a parsed pipeline, so both run exactly the same ops.
void Pipeline::Impl::CompileStep(int index, const FittedStep& step, std::vector<int>* live) {
  internal::StepCompiler compiler(*this, index, step, *live);
  internal::FindStepKind(step.kind).compile(compiler);
}

void Pipeline::Impl::Compile() {
  slots.clear();
  ops.clear();
  std::vector<int> live;
  AddInputOps(&live);
  for (std::size_t s = 0; s < steps.size(); ++s) CompileStep(static_cast<int>(s), steps[s], &live);
  output_slots = live;
  std::vector<std::string> names;
  for (int id : live) {
    const Slot& sl = slots[static_cast<std::size_t>(id)];
    ESCALA_CHECK(!sl.categorical, kInvalidArgument,
                 "pipeline: categorical column '{}' reaches the end of the pipeline unencoded; add "
                 "onehot({}), ordinal({}) or hash({}), or drop({})",
                 sl.name, sl.name, sl.name, sl.name, sl.name);
    names.push_back(sl.name);
  }
  outputs = std::move(names);
  output_categories.assign(live.size(), 0);
  for (const Op& op : ops) {
    if (op.kind != OpKind::kOrdinal) continue;
    const auto at = std::find(live.begin(), live.end(), op.outs[0]);
    if (at != live.end()) {
      output_categories[static_cast<std::size_t>(at - live.begin())] =
          static_cast<std::int64_t>(op.vocab.size());
    }
  }
  FuseElementwise();
}

// Serving transforms one row at a time, where dispatching an op per column dominates (192 ops
// for 64 columns under the default pipeline). Consecutive ops of one elementwise kind become one
// op over many slots, run in the same order: the same results, three dispatches instead.
void Pipeline::Impl::FuseElementwise() {
  auto fused_kind = [](OpKind k) {
    return k == OpKind::kInputNum    ? OpKind::kInputNumMany
           : k == OpKind::kImputeNum ? OpKind::kImputeNumMany
           : k == OpKind::kAffine    ? OpKind::kAffineMany
                                     : k;
  };
  std::vector<Op> out;
  for (Op& op : ops) {
    const OpKind many = fused_kind(op.kind);
    if (many == op.kind) {
      out.push_back(std::move(op));
      continue;
    }
    if (out.empty() || out.back().kind != many) out.push_back(Op{.kind = many, .step = op.step});
    Op& f = out.back();
    if (many == OpKind::kInputNumMany) {
      f.ins.push_back(static_cast<int>(op.c));
      f.outs.push_back(op.out);
      continue;
    }
    f.ins.push_back(op.in);
    f.p0.push_back(op.a);
    f.p1.push_back(op.b);
    f.p2.push_back(op.c);
  }
  ops = std::move(out);
}

}  // namespace escala::features
