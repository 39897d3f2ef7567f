// Tensors, TensorProto conversion, node attributes and the kernel lookup of the ONNX runtime.
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "escala/models/onnx.h"
#include "onnx/ops.h"

namespace escala::models {

std::string_view OnnxTypeName(OnnxType t) {
  switch (t) {
    case OnnxType::kFloat:
      return "float";
    case OnnxType::kInt64:
      return "int64";
    case OnnxType::kBool:
      return "bool";
    case OnnxType::kString:
      return "string";
  }
  return "?";
}

std::int64_t OnnxTensor::size() const {
  return onnxrt::Elements(shape);
}

void OnnxTensor::Resize(OnnxType t, std::span<const std::int64_t> dims) {
  type = t;
  shape.assign(dims.begin(), dims.end());
  const auto n = static_cast<std::size_t>(onnxrt::Elements(dims));
  switch (t) {
    case OnnxType::kFloat:
      f.resize(n);
      break;
    case OnnxType::kInt64:
      i.resize(n);
      break;
    case OnnxType::kBool:
      b.resize(n);
      break;
    case OnnxType::kString:
      s.resize(n);
      break;
  }
}

std::string OnnxTensor::ShapeText() const {
  return onnxrt::ShapeText(shape);
}

namespace onnxrt {

std::int64_t Elements(std::span<const std::int64_t> shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) {
    ESCALA_CHECK(d >= 0, kInvalidArgument, "negative dimension {} in shape {}", d,
                 ShapeText(shape));
    ESCALA_CHECK(d == 0 || n <= kMaxTensorElements / d, kResourceExhausted,
                 "shape {} has more than 2^31 elements", ShapeText(shape));
    n *= d;
  }
  return n;
}

std::string ShapeText(std::span<const std::int64_t> shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

int NormalizeAxis(std::int64_t axis, std::int64_t rank, std::string_view what) {
  const std::int64_t a = axis < 0 ? axis + rank : axis;
  ESCALA_CHECK(a >= 0 && a < rank, kInvalidArgument, "{} {} is out of range for rank {}", what,
               axis, rank);
  return static_cast<int>(a);
}

void BroadcastShapeInto(std::span<const std::int64_t> a, std::span<const std::int64_t> b,
                        std::vector<std::int64_t>& out) {
  const std::size_t rank = std::max(a.size(), b.size());
  out.resize(rank);
  for (std::size_t k = 0; k < rank; ++k) {
    const std::int64_t da = k < rank - a.size() ? 1 : a[k - (rank - a.size())];
    const std::int64_t db = k < rank - b.size() ? 1 : b[k - (rank - b.size())];
    ESCALA_CHECK(da == db || da == 1 || db == 1, kInvalidArgument,
                 "shapes {} and {} do not broadcast", ShapeText(a), ShapeText(b));
    out[k] = da == 1 ? db : da;
  }
}

void ExpectType(const OnnxTensor& t, OnnxType type, std::string_view op, int index) {
  ESCALA_CHECK(t.type == type, kInvalidArgument, "{} input {} is {}, expected {}", op, index,
               OnnxTypeName(t.type), OnnxTypeName(type));
}

const std::vector<std::int64_t>& IntValues(const OnnxTensor& t) {
  ESCALA_CHECK(t.type == OnnxType::kInt64 && t.shape.size() <= 1, kInvalidArgument,
               "expected a 1-D int64 tensor, got {} {}", OnnxTypeName(t.type), t.ShapeText());
  return t.i;
}

bool FromProtoType(int data_type, OnnxType* out) {
  switch (data_type) {
    case onnx::TensorProto::FLOAT:
      *out = OnnxType::kFloat;
      return true;
    case onnx::TensorProto::INT64:
      *out = OnnxType::kInt64;
      return true;
    case onnx::TensorProto::BOOL:
      *out = OnnxType::kBool;
      return true;
    case onnx::TensorProto::STRING:
      *out = OnnxType::kString;
      return true;
    default:
      return false;
  }
}

namespace {

// Copies `count` little-endian elements of `raw` into `out`, checking the byte count.
template <typename T, typename Dst>
void CopyRaw(const std::string& raw, std::int64_t count, Dst& out, std::string_view what) {
  ESCALA_CHECK(raw.size() == static_cast<std::size_t>(count) * sizeof(T), kInvalidArgument,
               "{}: raw_data holds {} bytes, the shape needs {}", what, raw.size(),
               count * static_cast<std::int64_t>(sizeof(T)));
  for (std::int64_t k = 0; k < count; ++k) {
    T v;
    std::memcpy(&v, raw.data() + k * static_cast<std::int64_t>(sizeof(T)), sizeof(T));
    out[static_cast<std::size_t>(k)] = static_cast<typename Dst::value_type>(v);
  }
}

template <typename Field, typename Dst>
void CopyField(const Field& field, std::int64_t count, Dst& out, std::string_view what) {
  ESCALA_CHECK(field.size() == count, kInvalidArgument, "{}: holds {} values, its shape needs {}",
               what, field.size(), count);
  for (std::int64_t k = 0; k < count; ++k) {
    out[static_cast<std::size_t>(k)] =
        static_cast<typename Dst::value_type>(field.Get(static_cast<int>(k)));
  }
}

}  // namespace

OnnxTensor FromProto(const onnx::TensorProto& t, std::string_view what) {
  OnnxType type;
  ESCALA_CHECK(
      FromProtoType(t.data_type(), &type), kInvalidArgument,
      "{}: element type {} is not supported (float, int64, bool, string)", what,
      onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(t.data_type())));
  ESCALA_CHECK(t.data_location() != onnx::TensorProto::EXTERNAL, kInvalidArgument,
               "{}: external data is not supported (save the model with its weights inside)", what);
  std::vector<std::int64_t> dims(t.dims().begin(), t.dims().end());
  for (std::int64_t d : dims) {
    ESCALA_CHECK(d >= 0 && d <= (std::int64_t{1} << 31), kInvalidArgument,
                 "{}: dimension {} in shape {}", what, d, ShapeText(dims));
  }
  std::int64_t n = 0;
  try {
    n = Elements(dims);
  } catch (const Error& e) {
    Throw(ErrorCode::kInvalidArgument, "{}: {}", what, e.message());
  }
  const bool raw = t.has_raw_data();
  // Sizes are checked against the data present before anything is allocated.
  const std::int64_t have = raw                        ? -1
                            : type == OnnxType::kFloat ? t.float_data_size()
                            : type == OnnxType::kInt64 ? t.int64_data_size()
                            : type == OnnxType::kBool  ? t.int32_data_size()
                                                       : t.string_data_size();
  const std::int64_t esize = type == OnnxType::kFloat ? 4 : type == OnnxType::kInt64 ? 8 : 1;
  ESCALA_CHECK(raw ? static_cast<std::int64_t>(t.raw_data().size()) == n * esize : have == n,
               kInvalidArgument, "{}: holds {} {}, its shape {} needs {}", what,
               raw ? static_cast<std::int64_t>(t.raw_data().size()) : have,
               raw ? "bytes" : "values", ShapeText(dims), raw ? n * esize : n);
  OnnxTensor out;
  out.Resize(type, dims);
  switch (type) {
    case OnnxType::kFloat:
      raw ? CopyRaw<float>(t.raw_data(), n, out.f, what)
          : CopyField(t.float_data(), n, out.f, what);
      break;
    case OnnxType::kInt64:
      raw ? CopyRaw<std::int64_t>(t.raw_data(), n, out.i, what)
          : CopyField(t.int64_data(), n, out.i, what);
      break;
    case OnnxType::kBool:
      raw ? CopyRaw<std::uint8_t>(t.raw_data(), n, out.b, what)
          : CopyField(t.int32_data(), n, out.b, what);
      break;
    case OnnxType::kString:
      ESCALA_CHECK(t.string_data_size() == n, kInvalidArgument,
                   "{}: holds {} strings, its shape needs {}", what, t.string_data_size(), n);
      for (std::int64_t k = 0; k < n; ++k) {
        out.s[static_cast<std::size_t>(k)] = t.string_data(static_cast<int>(k));
      }
      break;
  }
  return out;
}

const OnnxTensor* NodeContext::Constant(int i) const {
  return i < static_cast<int>(constants_.size()) ? constants_[static_cast<std::size_t>(i)]
                                                 : nullptr;
}

const onnx::AttributeProto* NodeContext::Attr(std::string_view name) const {
  for (const auto& a : node_.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

std::int64_t NodeContext::Int(std::string_view name, std::int64_t fallback) const {
  const auto* a = Attr(name);
  return a == nullptr ? fallback : a->i();
}

float NodeContext::Float(std::string_view name, float fallback) const {
  const auto* a = Attr(name);
  return a == nullptr ? fallback : a->f();
}

std::string NodeContext::String(std::string_view name, std::string_view fallback) const {
  const auto* a = Attr(name);
  return a == nullptr ? std::string(fallback) : a->s();
}

std::vector<std::int64_t> NodeContext::Ints(std::string_view name) const {
  const auto* a = Attr(name);
  return a == nullptr ? std::vector<std::int64_t>{}
                      : std::vector<std::int64_t>(a->ints().begin(), a->ints().end());
}

std::vector<float> NodeContext::Floats(std::string_view name) const {
  const auto* a = Attr(name);
  return a == nullptr ? std::vector<float>{}
                      : std::vector<float>(a->floats().begin(), a->floats().end());
}

std::vector<std::string> NodeContext::Strings(std::string_view name) const {
  const auto* a = Attr(name);
  return a == nullptr ? std::vector<std::string>{}
                      : std::vector<std::string>(a->strings().begin(), a->strings().end());
}

OnnxTensor NodeContext::TensorAttr(std::string_view name) const {
  const auto* a = Attr(name);
  if (a == nullptr || !a->has_t()) Fail("attribute '{}' (a tensor) is missing", name);
  return FromProto(a->t(), fmt::format("attribute '{}'", name));
}

OpMaker FindOp(std::string_view domain, std::string_view op_type) {
  for (auto table : {ElementwiseOps(), TensorOps(), MlOps()}) {
    for (const OpEntry& e : table) {
      if (e.domain == domain && e.op_type == op_type) return e.make;
    }
  }
  return nullptr;
}

}  // namespace onnxrt
}  // namespace escala::models
