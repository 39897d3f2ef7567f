// The fitted pipeline as ONNX nodes: its compiled plan (escala/features/pipeline_plan.h), op by
// op, each slot a tensor. Numeric slots are float [N, 1] tensors (or a column of a wider one, as
// a one-hot step makes them, taken out only where an op reads it alone); categorical slots are the
// string input with the category that imputation fills in for the missing (empty) string.
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "escala/core/error.h"
#include "escala/features/pipeline_plan.h"
#include "io/onnx_export_internal.h"

namespace escala::io::onnx_internal {

namespace {

using features::PlanOp;
using Kind = PlanOp::Kind;

constexpr std::int64_t kFloat = onnx::TensorProto_DataType_FLOAT;

class PipelineExporter {
 public:
  PipelineExporter(const features::Pipeline& pipeline, GraphBuilder& g)
      : pipeline_(pipeline), plan_(pipeline.Plan()), g_(g) {}

  std::string Run() {
    AddInputs();
    num_.resize(plan_.slots.size());
    cat_.resize(plan_.slots.size());
    for (const PlanOp& op : plan_.ops) RunOp(op);
    return Concatenate();
  }

 private:
  // A numeric slot: the [N, 1] tensor, or column `col` of the [N, K] tensor.
  struct NumRef {
    std::string tensor;
    int col = -1;
    int width = 1;
  };
  // A categorical slot: the string tensor; `fill` replaces the missing (empty) string.
  struct CatRef {
    std::string tensor;
    std::optional<std::string> fill;
  };

  void AddInputs();
  void RunOp(const PlanOp& op);
  void RunElementwise(const PlanOp& op);
  std::string Num(int slot);
  void SetNum(int slot, std::string t) { num_[static_cast<std::size_t>(slot)] = {std::move(t)}; }
  const CatRef& Cat(int slot) const { return cat_[static_cast<std::size_t>(slot)]; }
  std::string Zeros();
  std::string Indicator(const PlanOp& op);
  std::string Affine(const PlanOp& op);
  std::string Clip(const PlanOp& op);
  std::string Unary(const PlanOp& op);
  std::string Bucketize(const PlanOp& op);
  void Encode(const PlanOp& op);
  onnx::NodeProto& CategoryIndex(const PlanOp& op);
  void Poly(const PlanOp& op);
  void Expr(const PlanOp& op);
  std::string Concatenate();

  const features::Pipeline& pipeline_;
  const features::PipelinePlan plan_;
  GraphBuilder& g_;
  std::vector<NumRef> num_;
  std::vector<CatRef> cat_;
  std::string zeros_;
};

void PipelineExporter::AddInputs() {
  const data::Schema& schema = pipeline_.input_schema();
  for (int i = 0; i < schema.num_fields(); ++i) {
    const auto& f = schema.field(i);
    const bool cat = f.type == data::DataType::kCategorical;
    g_.Reserve(f.name);
    AddValueInfo(g_.graph().mutable_input(), f.name,
                 cat ? onnx::TensorProto_DataType_STRING : onnx::TensorProto_DataType_FLOAT, 1);
  }
}

std::string PipelineExporter::Num(int slot) {
  NumRef& r = num_[static_cast<std::size_t>(slot)];
  if (r.col >= 0) {
    auto& gather = g_.Node("Gather", {r.tensor, g_.Ints({r.col}, {1})}, "column");
    SetAttr(gather, "axis", std::int64_t{1});
    r = {gather.output(0)};
  }
  return r.tensor;
}

// [N, 1] zeros from the first input: Cast(IsNaN(x)) * 0, or a string input's LabelEncoder to 0.
std::string PipelineExporter::Zeros() {
  if (!zeros_.empty()) return zeros_;
  const auto& f = pipeline_.input_schema().field(0);
  if (f.type == data::DataType::kCategorical) {
    auto& n = g_.Node("LabelEncoder", {f.name}, "zeros", kMlDomain);
    SetAttr(n, "keys_strings", std::vector<std::string>{""});
    SetAttr(n, "values_floats", std::vector<float>{0.0f});
    SetAttr(n, "default_float", 0.0f);
    return zeros_ = n.output(0);
  }
  auto& cast = g_.Node("Cast", {g_.Op("IsNaN", {f.name})}, "isnan");
  SetAttr(cast, "to", kFloat);
  return zeros_ = g_.Op("Mul", {cast.output(0), g_.Scalar(0.0f)}, "zeros");
}

void PipelineExporter::RunOp(const PlanOp& op) {
  const auto& schema = pipeline_.input_schema();
  switch (op.kind) {
    case Kind::kInputNum:
      return SetNum(op.out, schema.field(op.input).name);
    case Kind::kInputCat:
      cat_[static_cast<std::size_t>(op.out)] = {schema.field(op.input).name, std::nullopt};
      return;
    case Kind::kImputeCat:
      cat_[static_cast<std::size_t>(op.in)].fill = Cat(op.in).fill.value_or(op.fill);
      return;
    case Kind::kIndicator:
      return SetNum(op.out, Indicator(op));
    case Kind::kOneHot:
    case Kind::kOrdinal:
      return Encode(op);
    case Kind::kHash:
      Refuse(fmt::format("pipeline step '{}'", op.step),
             "hash() buckets categories by escala's own hash function, which the ONNX operators "
             "cannot compute; use onehot() or ordinal()");
    case Kind::kPoly:
      return Poly(op);
    case Kind::kExpr:
      return Expr(op);
    default:
      return RunElementwise(op);
  }
}

void PipelineExporter::RunElementwise(const PlanOp& op) {
  switch (op.kind) {
    case Kind::kImputeNum: {
      const std::string x = Num(op.in);
      return SetNum(op.in, g_.Op("Where", {g_.Op("IsNaN", {x}), g_.Scalar(op.a), x}, "imputed"));
    }
    case Kind::kAffine:
      return SetNum(op.in, Affine(op));
    case Kind::kClip:
      return SetNum(op.in, Clip(op));
    case Kind::kUnary:
      return SetNum(op.in, Unary(op));
    case Kind::kBucketize:
      return SetNum(op.in, Bucketize(op));
    default:
      ESCALA_ASSERT(false);
  }
}

// Numeric: IsNaN. Categorical: the empty string, unless imputation filled it.
std::string PipelineExporter::Indicator(const PlanOp& op) {
  if (!plan_.slots[static_cast<std::size_t>(op.in)].categorical) {
    auto& cast = g_.Node("Cast", {g_.Op("IsNaN", {Num(op.in)})}, "missing");
    SetAttr(cast, "to", kFloat);
    return cast.output(0);
  }
  auto& n = g_.Node("LabelEncoder", {Cat(op.in).tensor}, "missing", kMlDomain);
  SetAttr(n, "keys_strings", std::vector<std::string>{""});
  SetAttr(n, "values_floats", std::vector<float>{Cat(op.in).fill ? 0.0f : 1.0f});
  SetAttr(n, "default_float", 0.0f);
  return n.output(0);
}

// (x - a) * b + c, in Transform()'s order of operations.
std::string PipelineExporter::Affine(const PlanOp& op) {
  const std::string centred = g_.Op("Sub", {Num(op.in), g_.Scalar(op.a)}, "centred");
  const std::string scaled = g_.Op("Mul", {centred, g_.Scalar(op.b)}, "scaled");
  return g_.Op("Add", {scaled, g_.Scalar(op.c)}, "affine");
}

std::string PipelineExporter::Clip(const PlanOp& op) {
  const std::string x = Num(op.in);
  const std::string clipped = g_.Op("Clip", {x, g_.Scalar(op.a), g_.Scalar(op.b)}, "clipped");
  return g_.Op("Where", {g_.Op("IsNaN", {x}), x, clipped}, "clipped");
}

std::string PipelineExporter::Unary(const PlanOp& op) {
  const std::string x = Num(op.in);
  switch (op.fn) {
    case PlanOp::Unary::kLog1p:
      return Log1p(x, g_);
    case PlanOp::Unary::kLog:
      return g_.Op("Log", {x}, "log");
    case PlanOp::Unary::kSqrt:
      return g_.Op("Sqrt", {x}, "sqrt");
    case PlanOp::Unary::kAbs:
      return g_.Op("Abs", {x}, "abs");
  }
  return x;
}

// The number of boundaries <= x: K - sum(x < b), NaN kept.
std::string PipelineExporter::Bucketize(const PlanOp& op) {
  const std::string x = Num(op.in);
  const auto k = static_cast<std::int64_t>(op.boundaries.size());
  std::string bucket = Zeros();
  if (k > 0) {
    auto& below = g_.Node("Cast", {g_.Op("Less", {x, g_.Floats(op.boundaries, {1, k})})}, "below");
    SetAttr(below, "to", kFloat);
    auto& sum = g_.Node("ReduceSum", {below.output(0), g_.Ints({1}, {1})}, "below_count");
    SetAttr(sum, "keepdims", std::int64_t{1});
    bucket = g_.Op("Sub", {g_.Scalar(static_cast<float>(k)), sum.output(0)}, "bucket");
  }
  return g_.Op("Where", {g_.Op("IsNaN", {x}), x, bucket}, "bucket");
}

// A LabelEncoder from the category string to its index (one-hot: int64; ordinal: float, with the
// unknown value as default). The empty string is the missing value: the imputed category's index
// when imputation filled it, else the missing category's when the vocabulary has it.
onnx::NodeProto& PipelineExporter::CategoryIndex(const PlanOp& op) {
  const bool onehot = op.kind == Kind::kOneHot;
  const CatRef& in = Cat(op.in);
  const std::string missing_as = in.fill.value_or(features::kMissingCategory);
  std::vector<std::string> keys{""};
  std::vector<std::int64_t> index{-1};
  if (onehot && op.unknown == PlanOp::Unknown::kOther) index[0] = op.other_index;
  const std::int64_t unknown = index[0];
  for (std::size_t k = 0; k < op.categories.size(); ++k) {
    const std::string& name = op.categories[k];
    const bool is_missing = name == features::kMissingCategory;
    if (name == missing_as && (is_missing == !in.fill)) index[0] = static_cast<std::int64_t>(k);
    if (is_missing || name.empty()) continue;
    keys.push_back(name);
    index.push_back(static_cast<std::int64_t>(k));
  }
  auto& n = g_.Node("LabelEncoder", {in.tensor}, onehot ? "category" : "ordinal", kMlDomain);
  SetAttr(n, "keys_strings", keys);
  if (onehot) {
    SetAttr(n, "values_int64s", index);
    SetAttr(n, "default_int64", unknown);
    return n;
  }
  std::vector<float> codes(index.begin(), index.end());
  for (auto& c : codes) c = c < 0 ? op.a : c;
  SetAttr(n, "values_floats", codes);
  SetAttr(n, "default_float", op.a);
  return n;
}

// One-hot: Equal(index, [0 .. K-1]) as float, [N, K]; its columns are the output slots.
void PipelineExporter::Encode(const PlanOp& op) {
  const std::string index = CategoryIndex(op).output(0);
  if (op.kind == Kind::kOrdinal) return SetNum(op.outs[0], index);
  const auto width = static_cast<std::int64_t>(op.outs.size());
  std::vector<std::int64_t> range(static_cast<std::size_t>(width));
  for (std::int64_t k = 0; k < width; ++k) range[static_cast<std::size_t>(k)] = k;
  auto& onehot = g_.Node("Cast", {g_.Op("Equal", {index, g_.Ints(range, {1, width})})}, "onehot");
  SetAttr(onehot, "to", kFloat);
  for (std::size_t k = 0; k < op.outs.size(); ++k) {
    num_[static_cast<std::size_t>(op.outs[k])] = {onehot.output(0), static_cast<int>(k),
                                                  static_cast<int>(width)};
  }
}

void PipelineExporter::Poly(const PlanOp& op) {
  for (std::size_t t = 0; t < op.terms.size(); ++t) {
    const auto& term = op.terms[t];
    std::string product = Num(op.ins[static_cast<std::size_t>(term[0])]);
    for (std::size_t k = 1; k < term.size(); ++k) {
      product = g_.Op("Mul", {product, Num(op.ins[static_cast<std::size_t>(term[k])])}, "poly");
    }
    SetNum(op.outs[t], product);
  }
}

void PipelineExporter::Expr(const PlanOp& op) {
  std::vector<std::string> cols;
  for (int id : op.ins) cols.push_back(Num(id));
  SetNum(op.out, ExportExpression(
                     *op.expr, cols, op.step, [this] { return Zeros(); }, g_));
}

// The output slots side by side; a one-hot block that reaches the output whole, in order, is
// concatenated as one tensor.
std::string PipelineExporter::Concatenate() {
  std::vector<std::string> parts;
  const auto& outs = plan_.outputs;
  for (std::size_t i = 0; i < outs.size();) {
    const NumRef r = num_[static_cast<std::size_t>(outs[i])];
    bool whole = r.col == 0 && i + static_cast<std::size_t>(r.width) <= outs.size();
    for (int k = 0; whole && k < r.width; ++k) {
      const NumRef& o = num_[static_cast<std::size_t>(outs[i + static_cast<std::size_t>(k)])];
      whole = o.tensor == r.tensor && o.col == k;
    }
    parts.push_back(whole ? r.tensor : Num(outs[i]));
    i += whole ? static_cast<std::size_t>(r.width) : 1;
  }
  if (parts.size() == 1) return parts[0];
  auto& cat = g_.Node("Concat", parts, "features");
  SetAttr(cat, "axis", std::int64_t{1});
  return cat.output(0);
}

}  // namespace

std::string ExportPipeline(const features::Pipeline& pipeline, GraphBuilder& g) {
  return PipelineExporter(pipeline, g).Run();
}

std::string Log1p(const std::string& x, GraphBuilder& g) {
  const std::string u = g.Op("Add", {x, g.Scalar(1.0f)}, "log1p_u");
  const std::string um1 = g.Op("Sub", {u, g.Scalar(1.0f)}, "log1p_u1");
  const std::string ratio = g.Op("Div", {x, um1}, "log1p_ratio");
  const std::string approx = g.Op("Mul", {g.Op("Log", {u}, "log1p_log"), ratio}, "log1p");
  return g.Op("Where", {g.Op("Equal", {u, g.Scalar(1.0f)}), x, approx}, "log1p");
}

std::string NanWhere(const std::string& x, const std::string& value, GraphBuilder& g) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  return g.Op("Where", {g.Op("IsNaN", {x}), g.Scalar(nan), value}, "nan_kept");
}

}  // namespace escala::io::onnx_internal
