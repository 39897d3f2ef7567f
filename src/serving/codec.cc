#include "serving/codec.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "escala/core/error.h"
#include "escala/models/onnx.h"
#include "escala/models/tree_ensemble.h"

namespace escala::serving::internal {

namespace {

using Kind = features::RawColumn::Kind;

bool HasContents(const inference::InferTensorContents& c) {
  return c.bool_contents_size() || c.int_contents_size() || c.int64_contents_size() ||
         c.uint_contents_size() || c.uint64_contents_size() || c.fp32_contents_size() ||
         c.fp64_contents_size() || c.bytes_contents_size();
}

std::string ShapeText(const google::protobuf::RepeatedField<std::int64_t>& shape) {
  std::string s = "[";
  for (int i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

[[noreturn]] void Bad(std::size_t index, std::string_view name, std::string_view what) {
  Throw(ErrorCode::kInvalidArgument, "inputs[{}] ('{}'): {}", index, name, what);
}

std::int64_t Elements(std::size_t index, const inference::ModelInferRequest::InferInputTensor& t) {
  std::int64_t n = 1;
  for (auto d : t.shape()) {
    if (d < 0)
      Bad(index, t.name(), fmt::format("negative dimension in shape {}", ShapeText(t.shape())));
    if (d > kMaxRows * 1024)
      Bad(index, t.name(), fmt::format("shape {} is too large", ShapeText(t.shape())));
    n *= d;
    if (n > kMaxRows * 1024)
      Bad(index, t.name(), fmt::format("shape {} is too large", ShapeText(t.shape())));
  }
  return n;
}

// The numeric element pointer of a raw tensor, copied into scratch when the wire bytes are not
// aligned for the element type.
template <typename T>
const T* AlignedRaw(const std::string& raw, DecodeScratch& s) {
  if (reinterpret_cast<std::uintptr_t>(raw.data()) % alignof(T) == 0) {
    return reinterpret_cast<const T*>(raw.data());
  }
  auto& buf = s.aligned.emplace_back((raw.size() + sizeof(float) - 1) / sizeof(float));
  std::memcpy(buf.data(), raw.data(), raw.size());
  return reinterpret_cast<const T*>(buf.data());
}

}  // namespace

int ElementSize(std::string_view dt) {
  if (dt == "BOOL" || dt == "UINT8" || dt == "INT8") return 1;
  if (dt == "UINT16" || dt == "INT16" || dt == "FP16" || dt == "BF16") return 2;
  if (dt == "UINT32" || dt == "INT32" || dt == "FP32") return 4;
  if (dt == "UINT64" || dt == "INT64" || dt == "FP64") return 8;
  if (dt == "BYTES") return 0;
  return -1;
}

const std::string& ModelSignature::WireName(const std::string& canonical) const {
  for (const auto& [c, w] : output_names) {
    if (c == canonical) return w;
  }
  return canonical;
}

const std::string& ModelSignature::Canonical(const std::string& wire) const {
  for (const auto& [c, w] : output_names) {
    if (w == wire) return c;
  }
  return wire;
}

namespace {

ModelSignature BundleSignature(const io::ModelBundle& bundle);

std::string DatatypeOf(models::OnnxType t) {
  switch (t) {
    case models::OnnxType::kFloat:
      return "FP32";
    case models::OnnxType::kInt64:
      return "INT64";
    case models::OnnxType::kBool:
      return "BOOL";
    case models::OnnxType::kString:
      return "BYTES";
  }
  return "FP32";
}

// An ONNX graph's own names, dtypes and shapes on top of the bundle's signature.
void AddGraphSignature(const models::OnnxModel& m, ModelSignature& sig) {
  sig.platform = "onnx";
  const auto& g = m.graph();
  for (const auto& in : g.inputs()) {
    sig.graph_inputs.push_back({in.name, DatatypeOf(in.type), in.shape});
    sig.graph_inputs.back().shape[0] = -1;
  }
  if (g.inputs().size() == 1 && g.inputs()[0].shape.size() == 2) {
    sig.matrix_name = g.inputs()[0].name;
  }
  const bool reg = sig.task == models::Task::kRegression;
  sig.output_names.emplace_back(reg ? "prediction" : "probabilities", m.prediction_output());
  for (const auto& out : g.outputs()) {
    if (out.name == m.prediction_output() && reg) sig.prediction_shape = out.shape;
    if (out.name != m.label_output()) continue;
    sig.output_names.emplace_back("label", out.name);
    if (out.type != models::OnnxType::kInt64) continue;
    for (const std::string& c : sig.class_names) {
      char* end = nullptr;
      sig.label_values.push_back(std::strtoll(c.c_str(), &end, 10));
      if (end == c.c_str() || *end != '\0') sig.label_values.clear();  // not int64 labels
      if (sig.label_values.empty()) break;
    }
  }
  for (auto& [wire, dtype] : sig.outputs) {
    if (wire == "label" && !sig.label_values.empty()) dtype = "INT64";
    wire = sig.WireName(wire);
  }
}

}  // namespace

ModelSignature SignatureOf(const io::ModelBundle& bundle) {
  ModelSignature sig = BundleSignature(bundle);
  if (const auto* onnx = dynamic_cast<const models::OnnxModel*>(bundle.model.get())) {
    AddGraphSignature(*onnx, sig);
  }
  return sig;
}

namespace {

ModelSignature BundleSignature(const io::ModelBundle& bundle) {
  ModelSignature sig;
  sig.inputs = bundle.input_schema();
  sig.matrix_input = sig.inputs.num_fields() > 0;
  for (const auto& f : sig.inputs.fields()) {
    if (f.type == data::DataType::kCategorical) sig.matrix_input = false;
  }
  sig.task = bundle.model->task();
  const auto* trees = dynamic_cast<const models::TreeEnsemble*>(bundle.model.get());
  if (trees != nullptr && trees->HasStats()) {
    sig.contribution_width = trees->num_outputs() * (trees->num_features() + 1);
  }
  if (sig.task == models::Task::kRegression) {
    sig.outputs = {{"prediction", "FP32"}};
    if (sig.contribution_width > 0) sig.outputs.emplace_back("contributions", "FP32");
    return sig;
  }
  sig.num_classes = sig.task == models::Task::kBinary ? 2 : bundle.model->num_outputs();
  sig.class_names = bundle.class_names;
  if (static_cast<std::int64_t>(sig.class_names.size()) != sig.num_classes) {
    sig.class_names.clear();
    for (std::int64_t c = 0; c < sig.num_classes; ++c) sig.class_names.push_back(std::to_string(c));
  }
  sig.outputs = {{"probabilities", "FP32"}, {"label", "BYTES"}, {"class_index", "INT64"}};
  if (sig.contribution_width > 0) sig.outputs.emplace_back("contributions", "FP32");
  return sig;
}

}  // namespace

void FillMetadata(const ModelSignature& sig, const std::string& name,
                  const std::vector<std::string>& versions, inference::ModelMetadataResponse* out) {
  out->set_name(name);
  for (const auto& v : versions) out->add_versions(v);
  out->set_platform(sig.platform);
  for (const auto& in : sig.graph_inputs) {
    auto* t = out->add_inputs();
    t->set_name(in.name);
    t->set_datatype(in.datatype);
    for (auto d : in.shape) t->add_shape(d);
  }
  // One tensor per raw column, by name: clients match their columns by name, never by position
  // (the "features" matrix form stays accepted for all-numeric models; docs/serving.md).
  for (const auto& f : sig.inputs.fields()) {
    if (!sig.graph_inputs.empty()) break;
    auto* t = out->add_inputs();
    t->set_name(f.name);
    t->set_datatype(f.type == data::DataType::kCategorical ? "BYTES"
                    : f.type == data::DataType::kInt64     ? "INT64"
                    : f.type == data::DataType::kFloat64   ? "FP64"
                                                           : "FP32");
    t->add_shape(-1);
  }
  for (const auto& [oname, dtype] : sig.outputs) {
    auto* t = out->add_outputs();
    t->set_name(oname);
    t->set_datatype(dtype);
    const std::string& canonical = sig.Canonical(oname);
    if (canonical == "prediction") {
      for (auto d : sig.prediction_shape) t->add_shape(d);
      continue;
    }
    t->add_shape(-1);
    if (canonical == "probabilities") t->add_shape(sig.num_classes);
    if (canonical == "contributions") t->add_shape(sig.contribution_width);
  }
}

namespace {

using Input = inference::ModelInferRequest::InferInputTensor;

// Empties the scratch of the previous call, keeping its capacity.
void ResetScratch(DecodeScratch& scratch, int n_inputs) {
  scratch.strings.clear();
  scratch.missing.clear();
  scratch.aligned.clear();
  scratch.strings.reserve(static_cast<std::size_t>(n_inputs));
  scratch.missing.reserve(static_cast<std::size_t>(n_inputs));
  scratch.aligned.reserve(static_cast<std::size_t>(n_inputs));
}

// Whether the request sends raw_input_contents; throws unless it uses exactly one form.
bool UsesRawContents(const inference::ModelInferRequest& req) {
  const int n_inputs = req.inputs_size();
  ESCALA_CHECK(n_inputs > 0, kInvalidArgument, "inputs: the request has no input tensors");
  if (req.raw_input_contents_size() == 0) return false;
  ESCALA_CHECK(req.raw_input_contents_size() == n_inputs, kInvalidArgument,
               "raw_input_contents: {} entries for {} inputs (one per input, in order)",
               req.raw_input_contents_size(), n_inputs);
  for (int i = 0; i < n_inputs; ++i) {
    if (HasContents(req.inputs(i).contents())) {
      Bad(static_cast<std::size_t>(i), req.inputs(i).name(),
          "contents is set although the request uses raw_input_contents (use one or the other)");
    }
  }
  return true;
}

// ---- The matrix form: one numeric tensor "features" [batch, n] ---------------------------------

// The first element of the matrix, FP32 or FP64 (`kind`), checked against its element count.
const void* MatrixValues(const inference::ModelInferRequest& req, bool raw, std::int64_t count,
                         Kind* kind, DecodeScratch& scratch) {
  const Input& t = req.inputs(0);
  const std::string& dt = t.datatype();
  if (dt != "FP32" && dt != "FP64") {
    Bad(0, t.name(),
        fmt::format("datatype '{}' is not supported for features (use FP32 or FP64)", dt));
  }
  const bool fp32 = dt == "FP32";
  *kind = fp32 ? Kind::kFloat32 : Kind::kFloat64;
  const std::int64_t esize = fp32 ? 4 : 8;
  if (raw) {
    const std::string& r = req.raw_input_contents(0);
    if (static_cast<std::int64_t>(r.size()) != count * esize) {
      Bad(0, t.name(),
          fmt::format("raw_input_contents[0] has {} bytes; shape {} of {} needs {}", r.size(),
                      ShapeText(t.shape()), dt, count * esize));
    }
    return fp32 ? static_cast<const void*>(AlignedRaw<float>(r, scratch))
                : static_cast<const void*>(AlignedRaw<double>(r, scratch));
  }
  const std::int64_t have =
      fp32 ? t.contents().fp32_contents_size() : t.contents().fp64_contents_size();
  if (have != count) {
    Bad(0, t.name(),
        fmt::format("contents.{}_contents has {} values; shape {} needs {}", fp32 ? "fp32" : "fp64",
                    have, ShapeText(t.shape()), count));
  }
  return fp32 ? static_cast<const void*>(t.contents().fp32_contents().data())
              : static_cast<const void*>(t.contents().fp64_contents().data());
}

features::RawBatch DecodeMatrix(const inference::ModelInferRequest& req, const ModelSignature& sig,
                                bool raw, DecodeScratch& scratch) {
  const Input& t = req.inputs(0);
  ESCALA_CHECK(sig.matrix_input, kInvalidArgument,
               "inputs[0] ('features'): this model has categorical inputs; send one tensor per "
               "column ({})",
               sig.inputs.ToString());
  const std::int64_t cols = sig.inputs.num_fields();
  if (t.shape_size() != 2 || t.shape(1) != cols) {
    Bad(0, t.name(), fmt::format("shape {} does not match [-1, {}]", ShapeText(t.shape()), cols));
  }
  const std::int64_t rows = t.shape(0);
  ESCALA_CHECK(rows <= kMaxRows, kInvalidArgument,
               "inputs[0] ('features'): {} rows exceed the limit of {}", rows, kMaxRows);
  Kind kind;
  const void* base = MatrixValues(req, raw, Elements(0, t), &kind, scratch);
  features::RawBatch batch;
  batch.columns.resize(static_cast<std::size_t>(cols));
  batch.rows = rows;
  const std::size_t esize = kind == Kind::kFloat32 ? 4 : 8;
  for (std::int64_t j = 0; j < cols; ++j) {
    features::RawColumn& c = batch.columns[static_cast<std::size_t>(j)];
    c.kind = kind;
    // No rows: no values, and no offset from a null pointer (UBSan, found by fuzz_oip_request).
    c.values = base == nullptr
                   ? nullptr
                   : static_cast<const char*>(base) + static_cast<std::size_t>(j) * esize;
    c.stride = cols;
  }
  return batch;
}

// ---- The column form: one tensor per input column ----------------------------------------------

// The schema field input `i` feeds; throws for an unknown or repeated name.
int FieldOf(std::size_t i, const Input& t, const ModelSignature& sig, std::vector<int>& seen) {
  const int field = sig.inputs.Find(t.name());
  if (field < 0) {
    Bad(i, t.name(),
        fmt::format("unknown input; the model takes {}{}", sig.inputs.ToString(),
                    sig.matrix_input ? fmt::format(" (or one tensor 'features' [-1, {}])",
                                                   sig.inputs.num_fields())
                                     : ""));
  }
  int& first = seen[static_cast<std::size_t>(field)];
  if (first >= 0) Bad(i, t.name(), fmt::format("given twice (also inputs[{}])", first));
  first = static_cast<int>(i);
  return field;
}

// The rows of column input `i` ([batch] or [batch, 1]); `rows` is that of the earlier inputs, or
// -1.
std::int64_t ColumnRows(std::size_t i, const Input& t, std::int64_t rows) {
  if (t.shape_size() == 0 || t.shape_size() > 2 || (t.shape_size() == 2 && t.shape(1) != 1)) {
    Bad(i, t.name(), fmt::format("shape {} must be [batch] or [batch, 1]", ShapeText(t.shape())));
  }
  const std::int64_t n = Elements(i, t);
  ESCALA_CHECK(n <= kMaxRows, kInvalidArgument, "inputs[{}] ('{}'): {} rows exceed the limit of {}",
               i, t.name(), n, kMaxRows);
  if (rows >= 0 && n != rows) {
    Bad(i, t.name(), fmt::format("has {} rows but earlier inputs have {}", n, rows));
  }
  return n;
}

// Splits raw BYTES contents: each element is a 4-byte little-endian length, then the bytes.
void SplitRawStrings(std::size_t i, const Input& t, const std::string& r,
                     std::vector<std::string_view>& views) {
  std::size_t pos = 0;
  while (pos < r.size()) {
    if (r.size() - pos < 4) {
      Bad(i, t.name(),
          fmt::format("raw_input_contents[{}]: truncated length prefix at byte {}", i, pos));
    }
    std::uint32_t len = 0;
    for (std::size_t b = 0; b < 4; ++b) {
      len |= static_cast<std::uint32_t>(static_cast<unsigned char>(r[pos + b])) << (8 * b);
    }
    pos += 4;
    if (r.size() - pos < len) {
      Bad(i, t.name(),
          fmt::format("raw_input_contents[{}]: element of {} bytes runs past the end", i, len));
    }
    views.emplace_back(r.data() + pos, len);
    pos += len;
  }
}

// A categorical column: BYTES elements, an empty string being a missing value.
features::RawColumn DecodeStrings(const inference::ModelInferRequest& req, std::size_t i,
                                  std::int64_t n, bool raw, DecodeScratch& scratch) {
  const Input& t = req.inputs(static_cast<int>(i));
  if (t.datatype() != "BYTES") {
    Bad(i, t.name(),
        fmt::format("datatype {} but the column is categorical (send BYTES)", t.datatype()));
  }
  auto& views = scratch.strings.emplace_back();
  auto& miss = scratch.missing.emplace_back();
  views.reserve(static_cast<std::size_t>(n));
  if (raw) {
    SplitRawStrings(i, t, req.raw_input_contents(static_cast<int>(i)), views);
  } else {
    for (const auto& s : t.contents().bytes_contents()) views.emplace_back(s);
  }
  if (static_cast<std::int64_t>(views.size()) != n) {
    Bad(i, t.name(),
        fmt::format("{} BYTES elements; shape {} needs {}", views.size(), ShapeText(t.shape()), n));
  }
  miss.resize(views.size());
  bool any = false;
  for (std::size_t k = 0; k < views.size(); ++k) {
    miss[k] = views[k].empty() ? 1 : 0;
    any |= miss[k] != 0;
  }
  features::RawColumn c;
  c.kind = Kind::kStrings;
  c.values = views.data();
  c.missing = any ? miss.data() : nullptr;
  return c;
}

// The element kind of a numeric column's datatype, and its size in bytes.
int NumericKind(std::size_t i, const Input& t, Kind* kind) {
  static constexpr std::pair<std::string_view, Kind> kKinds[] = {{"FP32", Kind::kFloat32},
                                                                 {"FP64", Kind::kFloat64},
                                                                 {"INT64", Kind::kInt64},
                                                                 {"INT32", Kind::kInt32}};
  const std::string& dt = t.datatype();
  for (const auto& [name, k] : kKinds) {
    if (dt == name) {
      *kind = k;
      return ElementSize(dt);
    }
  }
  Bad(i, t.name(),
      fmt::format("datatype {} is not supported for a numeric column (use FP32, FP64, INT64 "
                  "or INT32)",
                  dt));
}

// The typed contents of a numeric column and their count.
const void* TypedValues(const inference::InferTensorContents& ct, Kind kind, std::int64_t* have) {
  switch (kind) {
    case Kind::kFloat32:
      *have = ct.fp32_contents_size();
      return ct.fp32_contents().data();
    case Kind::kFloat64:
      *have = ct.fp64_contents_size();
      return ct.fp64_contents().data();
    case Kind::kInt64:
      *have = ct.int64_contents_size();
      return ct.int64_contents().data();
    case Kind::kInt32:
      *have = ct.int_contents_size();
      return ct.int_contents().data();
    default:
      *have = 0;
      return nullptr;
  }
}

features::RawColumn DecodeNumeric(const inference::ModelInferRequest& req, std::size_t i,
                                  std::int64_t n, bool raw, DecodeScratch& scratch) {
  const Input& t = req.inputs(static_cast<int>(i));
  features::RawColumn c;
  const int esize = NumericKind(i, t, &c.kind);
  if (raw) {
    const std::string& r = req.raw_input_contents(static_cast<int>(i));
    if (static_cast<std::int64_t>(r.size()) != n * esize) {
      Bad(i, t.name(),
          fmt::format("raw_input_contents[{}] has {} bytes; shape {} of {} needs {}", i, r.size(),
                      ShapeText(t.shape()), t.datatype(), n * esize));
    }
    c.values = esize == 8 ? static_cast<const void*>(AlignedRaw<double>(r, scratch))
                          : static_cast<const void*>(AlignedRaw<float>(r, scratch));
    return c;
  }
  std::int64_t have = 0;
  c.values = TypedValues(t.contents(), c.kind, &have);
  if (have != n) {
    Bad(i, t.name(),
        fmt::format("contents has {} values of {}; shape {} needs {}", have, t.datatype(),
                    ShapeText(t.shape()), n));
  }
  return c;
}

features::RawBatch DecodeColumns(const inference::ModelInferRequest& req, const ModelSignature& sig,
                                 bool raw, DecodeScratch& scratch) {
  features::RawBatch batch;
  batch.columns.resize(static_cast<std::size_t>(sig.inputs.num_fields()));
  std::vector<int> seen(static_cast<std::size_t>(sig.inputs.num_fields()), -1);
  std::int64_t rows = -1;
  for (int k = 0; k < req.inputs_size(); ++k) {
    const auto i = static_cast<std::size_t>(k);
    const Input& t = req.inputs(k);
    const int field = FieldOf(i, t, sig, seen);
    rows = ColumnRows(i, t, rows);
    const bool categorical = sig.inputs.field(field).type == data::DataType::kCategorical;
    batch.columns[static_cast<std::size_t>(field)] =
        categorical ? DecodeStrings(req, i, rows, raw, scratch)
                    : DecodeNumeric(req, i, rows, raw, scratch);
  }
  for (std::size_t f = 0; f < seen.size(); ++f) {
    ESCALA_CHECK(seen[f] >= 0, kInvalidArgument,
                 "inputs: missing required input '{}' (the model takes {})",
                 sig.inputs.field(static_cast<int>(f)).name, sig.inputs.ToString());
  }
  batch.rows = rows;
  return batch;
}

}  // namespace

features::RawBatch DecodeRequest(const inference::ModelInferRequest& req, const ModelSignature& sig,
                                 DecodeScratch& scratch) {
  ResetScratch(scratch, req.inputs_size());
  const bool raw = UsesRawContents(req);
  if (req.inputs_size() == 1 &&
      (req.inputs(0).name() == "features" ||
       (!sig.matrix_name.empty() && req.inputs(0).name() == sig.matrix_name))) {
    return DecodeMatrix(req, sig, raw, scratch);
  }
  return DecodeColumns(req, sig, raw, scratch);
}

OutputSelection SelectOutputs(const inference::ModelInferRequest& req, const ModelSignature& sig) {
  OutputSelection sel;
  if (req.outputs_size() == 0) {
    const bool reg = sig.task == models::Task::kRegression;
    sel.prediction = reg;
    sel.probabilities = sel.label = sel.class_index = !reg;
    return sel;
  }
  for (int i = 0; i < req.outputs_size(); ++i) {
    const std::string& name = req.outputs(i).name();
    bool known = false;
    for (const auto& [o, dt] : sig.outputs) known |= o == name;
    if (!known) {
      std::string names;
      for (const auto& [o, dt] : sig.outputs) names += (names.empty() ? "" : ", ") + o;
      Throw(ErrorCode::kInvalidArgument, "outputs[{}]: unknown output '{}' (the model produces {})",
            i, name, names);
    }
    const std::string& canonical = sig.Canonical(name);
    if (canonical == "probabilities") sel.probabilities = true;
    if (canonical == "label") sel.label = true;
    if (canonical == "class_index") sel.class_index = true;
    if (canonical == "prediction") sel.prediction = true;
    if (canonical == "contributions") sel.contributions = true;
  }
  return sel;
}

namespace {

// Appends an output tensor's head to the response; returns its raw contents to fill.
std::string* AddOutput(inference::ModelInferResponse* resp, const std::string& name,
                       const std::string& datatype, const std::vector<std::int64_t>& shape) {
  auto* o = resp->add_outputs();
  o->set_name(name);
  o->set_datatype(datatype);
  for (auto d : shape) o->add_shape(d);
  return resp->add_raw_output_contents();
}

// [n] for escala's own models; a graph's [n, K] or [n] as it declares.
void EncodePrediction(const ModelSignature& sig, ConstMatrixViewF p,
                      inference::ModelInferResponse* resp) {
  const std::int64_t n = p.rows(), k = p.cols();
  std::vector<std::int64_t> shape = sig.prediction_shape;
  shape[0] = n;
  std::string* raw = AddOutput(resp, sig.WireName("prediction"), "FP32", shape);
  raw->resize(static_cast<std::size_t>(n * k) * 4);
  for (std::int64_t i = 0; i < n; ++i) {
    std::memcpy(raw->data() + i * k * 4, p.row(i), static_cast<std::size_t>(k) * 4);
  }
}

void EncodeProbabilities(const ModelSignature& sig, ConstMatrixViewF p,
                         inference::ModelInferResponse* resp) {
  const std::int64_t n = p.rows(), k = sig.num_classes;
  std::string* raw = AddOutput(resp, sig.WireName("probabilities"), "FP32", {n, k});
  raw->resize(static_cast<std::size_t>(n * k) * 4);
  auto* out = raw->data();
  for (std::int64_t i = 0; i < n; ++i) {
    if (sig.task == models::Task::kBinary) {
      const float p1 = p(i, 0), p0 = 1.0f - p1;
      std::memcpy(out + (i * 2) * 4, &p0, 4);
      std::memcpy(out + (i * 2 + 1) * 4, &p1, 4);
    } else {
      std::memcpy(out + i * k * 4, p.row(i), static_cast<std::size_t>(k) * 4);
    }
  }
}

// The predicted class of each row: p >= 0.5 for binary, the first argmax otherwise.
std::vector<std::int64_t> ClassesOf(const ModelSignature& sig, ConstMatrixViewF p) {
  std::vector<std::int64_t> cls(static_cast<std::size_t>(p.rows()));
  for (std::int64_t i = 0; i < p.rows(); ++i) {
    const float* r = p.row(i);
    cls[static_cast<std::size_t>(i)] = sig.task == models::Task::kBinary
                                           ? (r[0] >= 0.5f ? 1 : 0)
                                           : std::max_element(r, r + sig.num_classes) - r;
  }
  return cls;
}

// The class labels: a graph's int64 labels as INT64, else the class names as BYTES.
void EncodeLabels(const ModelSignature& sig, const std::vector<std::int64_t>& cls,
                  inference::ModelInferResponse* resp) {
  const auto n = static_cast<std::int64_t>(cls.size());
  if (!sig.label_values.empty()) {
    std::string* raw = AddOutput(resp, sig.WireName("label"), "INT64", {n});
    raw->resize(static_cast<std::size_t>(n) * 8);
    for (std::size_t i = 0; i < cls.size(); ++i) {
      const std::int64_t v = sig.label_values[static_cast<std::size_t>(cls[i])];
      std::memcpy(raw->data() + i * 8, &v, 8);
    }
    return;
  }
  std::string* raw = AddOutput(resp, sig.WireName("label"), "BYTES", {n});
  for (std::int64_t c : cls) {
    const std::string& s = sig.class_names[static_cast<std::size_t>(c)];
    const auto len = static_cast<std::uint32_t>(s.size());
    const char prefix[4] = {static_cast<char>(len & 0xff), static_cast<char>((len >> 8) & 0xff),
                            static_cast<char>((len >> 16) & 0xff),
                            static_cast<char>((len >> 24) & 0xff)};
    raw->append(prefix, 4);
    raw->append(s);
  }
}

}  // namespace

void EncodeOutputs(const ModelSignature& sig, const OutputSelection& sel, ConstMatrixViewF p,
                   inference::ModelInferResponse* resp, const MatrixF* contributions) {
  const std::int64_t n = p.rows();
  io::Predictor::CheckFinite(p);
  if (sel.contributions && contributions != nullptr) {
    ESCALA_ASSERT(contributions->rows() == n && contributions->cols() == sig.contribution_width);
    std::string* raw = AddOutput(resp, "contributions", "FP32", {n, sig.contribution_width});
    raw->assign(reinterpret_cast<const char*>(contributions->data()),
                static_cast<std::size_t>(contributions->size()) * 4);
  }
  if (sel.prediction) EncodePrediction(sig, p, resp);
  if (sig.task == models::Task::kRegression) return;
  if (sel.probabilities) EncodeProbabilities(sig, p, resp);
  if (!sel.label && !sel.class_index) return;
  const std::vector<std::int64_t> cls = ClassesOf(sig, p);
  if (sel.label) EncodeLabels(sig, cls, resp);
  if (sel.class_index) {
    std::string* raw = AddOutput(resp, "class_index", "INT64", {n});
    raw->resize(static_cast<std::size_t>(n) * 8);
    std::memcpy(raw->data(), cls.data(), raw->size());
  }
}

}  // namespace escala::serving::internal
