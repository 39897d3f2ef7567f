#include "serving/json_codec.h"

#include <charconv>
#include <cstdint>
#include <cstring>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "escala/core/error.h"
#include "serving/codec.h"

namespace escala::serving::internal {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;  // responses keep the protocol's member order
using Input = inference::ModelInferRequest::InferInputTensor;
using Parameters = google::protobuf::Map<std::string, inference::InferParameter>;

constexpr std::size_t kMaxRank = 16;

[[noreturn]] void Bad(std::string_view where, std::string_view what) {
  Throw(ErrorCode::kInvalidArgument, "{}: {}", where, what);
}

// "[json.exception.parse_error.101] parse error at line 1, column 7: ..." -> from "parse error".
Json ParseBody(std::string_view body) {
  try {
    return Json::parse(body);
  } catch (const Json::exception& e) {
    const std::string_view what = e.what();
    const std::size_t tag_end = what.find("] ");
    Bad("request body",
        fmt::format("not valid JSON: {}",
                    tag_end == std::string_view::npos ? what : what.substr(tag_end + 2)));
  }
}

std::string Dump(const OrderedJson& j) {
  return j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

void RequireObject(const Json& j, std::string_view where) {
  if (!j.is_object()) Bad(where, fmt::format("must be a JSON object, got {}", j.type_name()));
}

const Json& Required(const Json& obj, const char* key, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end()) Bad(where, fmt::format("'{}' is missing", key));
  return *it;
}

const std::string& Text(const Json& j, std::string_view where) {
  if (!j.is_string()) Bad(where, fmt::format("must be a string, got {}", j.type_name()));
  return j.get_ref<const std::string&>();
}

std::string ShapeText(const google::protobuf::RepeatedField<std::int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ","));
}

// ---- Request: parameters, shape, data -----------------------------------------------------

inference::InferParameter ParameterOf(const Json& v, std::string_view where) {
  inference::InferParameter p;
  if (v.is_boolean()) {
    p.set_bool_param(v.get<bool>());
  } else if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      p.set_int64_param(static_cast<std::int64_t>(u));
    } else {
      p.set_uint64_param(u);
    }
  } else if (v.is_number_integer()) {
    p.set_int64_param(v.get<std::int64_t>());
  } else if (v.is_number_float()) {
    p.set_double_param(v.get<double>());
  } else if (v.is_string()) {
    p.set_string_param(v.get<std::string>());
  } else {
    Bad(where, fmt::format("must be a bool, number or string, got {}", v.type_name()));
  }
  return p;
}

void ParseParameters(const Json& j, const std::string& where, Parameters* out) {
  RequireObject(j, where);
  for (const auto& [key, value] : j.items()) (*out)[key] = ParameterOf(value, where + "." + key);
}

void ParseShape(const Json& j, const std::string& where, Input* t) {
  if (!j.is_array()) Bad(where, fmt::format("must be an array, got {}", j.type_name()));
  if (j.size() > kMaxRank)
    Bad(where, fmt::format("{} dimensions (at most {})", j.size(), kMaxRank));
  for (std::size_t d = 0; d < j.size(); ++d) {
    const Json& v = j[d];
    if (!v.is_number_unsigned()) {
      Bad(fmt::format("{}[{}]", where, d),
          fmt::format("must be a non-negative integer, got {}", v.dump()));
    }
    const auto n = v.get<std::uint64_t>();
    if (n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      Bad(fmt::format("{}[{}]", where, d), fmt::format("{} is too large", n));
    }
    t->add_shape(static_cast<std::int64_t>(n));
  }
}

// The element count of a shape, saturating (a huge shape is simply more than any body holds).
std::int64_t Elements(const google::protobuf::RepeatedField<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (const std::int64_t d : shape) {
    if (d != 0 && n > std::numeric_limits<std::int64_t>::max() / d) {
      return std::numeric_limits<std::int64_t>::max();
    }
    n *= d;
  }
  return n;
}

// Where a datatype's elements go in InferTensorContents, and the range of an integer type.
enum class Slot { kBool, kInt, kInt64, kUint, kUint64, kFp32, kFp64, kBytes };
struct ElementType {
  std::string_view name;
  Slot slot;
  std::int64_t min = 0;
  std::uint64_t max = 0;
};

constexpr ElementType kElementTypes[] = {
    {"BOOL", Slot::kBool},
    {"UINT8", Slot::kUint, 0, 255},
    {"UINT16", Slot::kUint, 0, 65535},
    {"UINT32", Slot::kUint, 0, 4294967295u},
    {"UINT64", Slot::kUint64, 0, std::numeric_limits<std::uint64_t>::max()},
    {"INT8", Slot::kInt, -128, 127},
    {"INT16", Slot::kInt, -32768, 32767},
    {"INT32", Slot::kInt, std::numeric_limits<std::int32_t>::min(),
     std::numeric_limits<std::int32_t>::max()},
    {"INT64", Slot::kInt64, std::numeric_limits<std::int64_t>::min(),
     std::numeric_limits<std::int64_t>::max()},
    {"FP32", Slot::kFp32},
    {"FP64", Slot::kFp64},
    {"BYTES", Slot::kBytes},
};

const ElementType& ElementTypeOf(const std::string& datatype, const std::string& where) {
  for (const ElementType& e : kElementTypes) {
    if (e.name == datatype) return e;
  }
  if (datatype == "FP16" || datatype == "BF16") {
    Bad(where, fmt::format("{} has no JSON form (send FP32)", datatype));
  }
  Bad(where, fmt::format("unknown datatype '{}' (BOOL, UINT8..UINT64, INT8..INT64, FP32, FP64 "
                         "or BYTES)",
                         datatype));
}

[[noreturn]] void BadElement(const Json& v, const ElementType& e, std::string_view where,
                             std::string_view expected) {
  Bad(where, fmt::format("expected {} for {}, got {}", expected, e.name,
                         v.is_primitive() ? v.dump() : std::string(v.type_name())));
}

void AppendInteger(const Json& v, const ElementType& e, std::string_view where,
                   inference::InferTensorContents* c) {
  if (!v.is_number_integer()) BadElement(v, e, where, "an integer");
  const bool negative = !v.is_number_unsigned();
  if (negative ? v.get<std::int64_t>() < e.min : v.get<std::uint64_t>() > e.max) {
    Bad(where, fmt::format("{} is out of range for {}", v.dump(), e.name));
  }
  if (e.slot == Slot::kInt) c->add_int_contents(v.get<std::int32_t>());
  if (e.slot == Slot::kInt64) c->add_int64_contents(v.get<std::int64_t>());
  if (e.slot == Slot::kUint) c->add_uint_contents(v.get<std::uint32_t>());
  if (e.slot == Slot::kUint64) c->add_uint64_contents(v.get<std::uint64_t>());
}

void AppendElement(const Json& v, const ElementType& e, std::string_view where,
                   inference::InferTensorContents* c) {
  switch (e.slot) {
    case Slot::kBool:
      if (!v.is_boolean()) BadElement(v, e, where, "true or false");
      return c->add_bool_contents(v.get<bool>());
    case Slot::kFp32:  // null: a missing value (NaN), which JSON numbers cannot spell
      if (!v.is_number() && !v.is_null()) BadElement(v, e, where, "a number or null");
      return c->add_fp32_contents(v.is_null() ? std::numeric_limits<float>::quiet_NaN()
                                              : static_cast<float>(v.get<double>()));
    case Slot::kFp64:
      if (!v.is_number() && !v.is_null()) BadElement(v, e, where, "a number or null");
      return c->add_fp64_contents(v.is_null() ? std::numeric_limits<double>::quiet_NaN()
                                              : v.get<double>());
    case Slot::kBytes:  // null: a missing value, as the empty string
      if (!v.is_string() && !v.is_null()) BadElement(v, e, where, "a string or null");
      return c->add_bytes_contents(v.is_null() ? std::string() : v.get_ref<const std::string&>());
    default:
      return AppendInteger(v, e, where, c);
  }
}

// Appends the leaves of `data` (nested arrays, at most `depth` deep) in row-major order.
void Flatten(const Json& data, const ElementType& e, const std::string& where, std::size_t depth,
             std::int64_t* count, inference::InferTensorContents* c) {
  for (const Json& v : data) {
    if (!v.is_array()) {
      AppendElement(v, e, fmt::format("{}[{}]", where, *count), c);
      ++*count;
    } else if (depth <= 1) {
      Bad(where, "nested deeper than the shape");
    } else {
      Flatten(v, e, where, depth - 1, count, c);
    }
  }
}

void ParseData(const Json& data, const std::string& where, const ElementType& e, Input* t) {
  if (!data.is_array()) Bad(where, fmt::format("must be an array, got {}", data.type_name()));
  std::int64_t count = 0;
  const std::size_t depth = std::max<std::size_t>(1, static_cast<std::size_t>(t->shape_size()));
  Flatten(data, e, where, depth, &count, t->mutable_contents());
  if (count != Elements(t->shape())) {
    Bad(where, fmt::format("{} values for shape {}", count, ShapeText(t->shape())));
  }
}

// ---- Request: the binary tensor data extension --------------------------------------------

// The bytes after the JSON, taken input by input.
struct BinaryData {
  std::string_view bytes;
  std::size_t taken = 0;
  std::string_view Take(std::int64_t n, const std::string& where) {
    if (static_cast<std::uint64_t>(n) > bytes.size() - taken) {
      Bad(where, fmt::format("{} bytes, but {} of the body's binary data remain "
                             "(Inference-Header-Content-Length)",
                             n, bytes.size() - taken));
    }
    const std::string_view out = bytes.substr(taken, static_cast<std::size_t>(n));
    taken += static_cast<std::size_t>(n);
    return out;
  }
};

// An input's parameters.binary_data_size; -1 when its data is in the JSON.
std::int64_t BinarySize(const Input& t, const std::string& where) {
  const auto it = t.parameters().find("binary_data_size");
  if (it == t.parameters().end()) return -1;
  if (it->second.parameter_choice_case() != inference::InferParameter::kInt64Param ||
      it->second.int64_param() < 0) {
    Bad(where, "must be a non-negative integer");
  }
  return it->second.int64_param();
}

template <typename Wire, typename Field>
void AppendWire(std::string_view bytes, Field* field) {
  for (std::size_t i = 0; i + sizeof(Wire) <= bytes.size(); i += sizeof(Wire)) {
    Wire v;
    std::memcpy(&v, bytes.data() + i, sizeof(Wire));
    field->Add(v);
  }
}

void AppendBinaryStrings(std::string_view bytes, const std::string& where, Input* t) {
  auto* out = t->mutable_contents()->mutable_bytes_contents();
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    std::uint32_t len = 0;
    if (bytes.size() - pos >= 4) {
      for (std::size_t b = 0; b < 4; ++b) {
        len |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[pos + b])) << (8 * b);
      }
    }
    if (bytes.size() - pos < 4 || bytes.size() - pos - 4 < len) {
      Bad(where,
          fmt::format("the BYTES element at byte {} runs past its {} bytes", pos, bytes.size()));
    }
    out->Add(std::string(bytes.substr(pos + 4, len)));
    pos += 4 + len;
  }
}

// The input's binary data as its typed contents.
void ParseBinary(std::string_view bytes, const std::string& where, const ElementType& e, Input* t) {
  const std::int64_t n = Elements(t->shape());
  auto* c = t->mutable_contents();
  if (e.slot == Slot::kBytes) {
    AppendBinaryStrings(bytes, where, t);
    if (c->bytes_contents_size() != n) {
      Bad(where, fmt::format("{} BYTES elements for shape {}", c->bytes_contents_size(),
                             ShapeText(t->shape())));
    }
    return;
  }
  const auto size = static_cast<std::uint64_t>(ElementSize(t->datatype()));
  if (static_cast<std::uint64_t>(n) > bytes.size() / size || bytes.size() != n * size) {
    Bad(where, fmt::format("{} bytes for shape {} of {}", bytes.size(), ShapeText(t->shape()),
                           t->datatype()));
  }
  const std::string& dt = t->datatype();
  if (dt == "BOOL") AppendWire<std::uint8_t>(bytes, c->mutable_bool_contents());
  if (dt == "INT8") AppendWire<std::int8_t>(bytes, c->mutable_int_contents());
  if (dt == "INT16") AppendWire<std::int16_t>(bytes, c->mutable_int_contents());
  if (dt == "INT32") AppendWire<std::int32_t>(bytes, c->mutable_int_contents());
  if (dt == "INT64") AppendWire<std::int64_t>(bytes, c->mutable_int64_contents());
  if (dt == "UINT8") AppendWire<std::uint8_t>(bytes, c->mutable_uint_contents());
  if (dt == "UINT16") AppendWire<std::uint16_t>(bytes, c->mutable_uint_contents());
  if (dt == "UINT32") AppendWire<std::uint32_t>(bytes, c->mutable_uint_contents());
  if (dt == "UINT64") AppendWire<std::uint64_t>(bytes, c->mutable_uint64_contents());
  if (dt == "FP32") AppendWire<float>(bytes, c->mutable_fp32_contents());
  if (dt == "FP64") AppendWire<double>(bytes, c->mutable_fp64_contents());
}

void ParseInput(const Json& j, const std::string& where, BinaryData* binary, Input* t) {
  RequireObject(j, where);
  t->set_name(Text(Required(j, "name", where), where + ".name"));
  t->set_datatype(Text(Required(j, "datatype", where), where + ".datatype"));
  const ElementType& e = ElementTypeOf(t->datatype(), where + ".datatype");
  ParseShape(Required(j, "shape", where), where + ".shape", t);
  if (const auto p = j.find("parameters"); p != j.end()) {
    ParseParameters(*p, where + ".parameters", t->mutable_parameters());
  }
  const std::string size_where = where + ".parameters.binary_data_size";
  const std::int64_t size = BinarySize(*t, size_where);
  if (size < 0) return ParseData(Required(j, "data", where), where + ".data", e, t);
  if (j.contains("data"))
    Bad(where, "both data and parameters.binary_data_size (one or the other)");
  ParseBinary(binary->Take(size, size_where), size_where, e, t);
}

void ParseOutputs(const Json& j, inference::ModelInferRequest* out) {
  if (!j.is_array()) Bad("outputs", fmt::format("must be an array, got {}", j.type_name()));
  for (std::size_t i = 0; i < j.size(); ++i) {
    const std::string where = fmt::format("outputs[{}]", i);
    RequireObject(j[i], where);
    auto* o = out->add_outputs();
    o->set_name(Text(Required(j[i], "name", where), where + ".name"));
    if (const auto p = j[i].find("parameters"); p != j[i].end()) {
      ParseParameters(*p, where + ".parameters", o->mutable_parameters());
    }
  }
}

// ---- Response ------------------------------------------------------------------------------

// The double nearest the float's shortest decimal form, so that 0.1f prints as 0.1 (and reads
// back as the same float).
double ShortestDouble(float f) {
  char buf[32];
  const auto end = std::to_chars(buf, buf + sizeof(buf), f).ptr;
  double d = f;
  std::from_chars(buf, end, d);
  return d;
}

template <typename T>
void AppendRaw(const std::string& raw, OrderedJson* out) {
  const std::size_t n = raw.size() / sizeof(T);
  for (std::size_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, raw.data() + i * sizeof(T), sizeof(T));
    if constexpr (std::is_same_v<T, float>) {
      out->push_back(ShortestDouble(v));
    } else if constexpr (std::is_same_v<T, std::uint8_t>) {
      out->push_back(static_cast<unsigned>(v));
    } else if constexpr (std::is_same_v<T, std::int8_t>) {
      out->push_back(static_cast<int>(v));
    } else {
      out->push_back(v);
    }
  }
}

// BYTES elements: a 4-byte little-endian length, then the bytes.
void AppendRawStrings(const std::string& raw, OrderedJson* out) {
  std::size_t pos = 0;
  while (raw.size() - pos >= 4) {
    std::uint32_t len = 0;
    for (std::size_t b = 0; b < 4; ++b) {
      len |= static_cast<std::uint32_t>(static_cast<unsigned char>(raw[pos + b])) << (8 * b);
    }
    pos += 4;
    ESCALA_ASSERT(raw.size() - pos >= len);
    out->push_back(raw.substr(pos, len));
    pos += len;
  }
}

OrderedJson RawToJson(const std::string& dt, const std::string& raw) {
  OrderedJson out = OrderedJson::array();
  if (dt == "FP32") AppendRaw<float>(raw, &out);
  if (dt == "FP64") AppendRaw<double>(raw, &out);
  if (dt == "INT64") AppendRaw<std::int64_t>(raw, &out);
  if (dt == "INT32") AppendRaw<std::int32_t>(raw, &out);
  if (dt == "INT16") AppendRaw<std::int16_t>(raw, &out);
  if (dt == "INT8") AppendRaw<std::int8_t>(raw, &out);
  if (dt == "UINT64") AppendRaw<std::uint64_t>(raw, &out);
  if (dt == "UINT32") AppendRaw<std::uint32_t>(raw, &out);
  if (dt == "UINT16") AppendRaw<std::uint16_t>(raw, &out);
  if (dt == "UINT8") AppendRaw<std::uint8_t>(raw, &out);
  if (dt == "BOOL") {
    for (const char b : raw) out.push_back(b != 0);
  }
  if (dt == "BYTES") AppendRawStrings(raw, &out);
  return out;
}

OrderedJson ContentsToJson(const std::string& dt, const inference::InferTensorContents& c) {
  OrderedJson out = OrderedJson::array();
  const auto add = [&](const auto& field) {
    for (const auto& v : field) out.push_back(v);
  };
  if (dt == "FP32") {
    for (const float v : c.fp32_contents()) out.push_back(ShortestDouble(v));
  }
  if (dt == "FP64") add(c.fp64_contents());
  if (dt == "INT64") add(c.int64_contents());
  if (dt == "INT32" || dt == "INT16" || dt == "INT8") add(c.int_contents());
  if (dt == "UINT64") add(c.uint64_contents());
  if (dt == "UINT32" || dt == "UINT16" || dt == "UINT8") add(c.uint_contents());
  if (dt == "BOOL") add(c.bool_contents());
  if (dt == "BYTES") add(c.bytes_contents());
  return out;
}

OrderedJson ParametersToJson(const Parameters& params) {
  OrderedJson out = OrderedJson::object();
  for (const auto& [key, p] : params) {
    switch (p.parameter_choice_case()) {
      case inference::InferParameter::kBoolParam:
        out[key] = p.bool_param();
        break;
      case inference::InferParameter::kInt64Param:
        out[key] = p.int64_param();
        break;
      case inference::InferParameter::kUint64Param:
        out[key] = p.uint64_param();
        break;
      case inference::InferParameter::kDoubleParam:
        out[key] = p.double_param();
        break;
      default:
        out[key] = p.string_param();
    }
  }
  return out;
}

template <typename Tensor>
OrderedJson TensorHead(const Tensor& t) {
  OrderedJson j = OrderedJson::object();
  j["name"] = t.name();
  j["datatype"] = t.datatype();
  j["shape"] = OrderedJson::array();
  for (const std::int64_t d : t.shape()) j["shape"].push_back(d);
  return j;
}

OrderedJson StatDuration(const inference::StatisticDuration& d) {
  OrderedJson j = OrderedJson::object();
  j["count"] = d.count();
  j["ns"] = d.ns();
  return j;
}

OrderedJson ModelStatsToJson(const inference::ModelStatistics& m) {
  OrderedJson j = OrderedJson::object();
  j["name"] = m.name();
  j["version"] = m.version();
  j["last_inference"] = m.last_inference();
  j["inference_count"] = m.inference_count();
  j["execution_count"] = m.execution_count();
  const auto& s = m.inference_stats();
  OrderedJson& is = j["inference_stats"] = OrderedJson::object();
  is["success"] = StatDuration(s.success());
  is["fail"] = StatDuration(s.fail());
  is["queue"] = StatDuration(s.queue());
  is["compute_input"] = StatDuration(s.compute_input());
  is["compute_infer"] = StatDuration(s.compute_infer());
  is["compute_output"] = StatDuration(s.compute_output());
  j["batch_stats"] = OrderedJson::array();
  return j;
}

bool BoolParameter(const Parameters& params, const char* key, bool* value) {
  const auto it = params.find(key);
  if (it == params.end()) return false;
  *value = it->second.parameter_choice_case() == inference::InferParameter::kBoolParam &&
           it->second.bool_param();
  return true;
}

// outputs[i].parameters.binary_data for the output, else parameters.binary_data_output.
bool WantsBinary(const inference::ModelInferRequest& request, const std::string& output) {
  bool binary = false;
  for (const auto& o : request.outputs()) {
    if (o.name() == output && BoolParameter(o.parameters(), "binary_data", &binary)) return binary;
  }
  BoolParameter(request.parameters(), "binary_data_output", &binary);
  return binary;
}

}  // namespace

void ParseInferRequest(std::string_view json, std::string_view binary,
                       inference::ModelInferRequest* out) {
  const Json j = ParseBody(json);
  RequireObject(j, "request body");
  if (const auto id = j.find("id"); id != j.end()) out->set_id(Text(*id, "id"));
  if (const auto p = j.find("parameters"); p != j.end()) {
    ParseParameters(*p, "parameters", out->mutable_parameters());
  }
  const Json& inputs = Required(j, "inputs", "request body");
  if (!inputs.is_array())
    Bad("inputs", fmt::format("must be an array, got {}", inputs.type_name()));
  BinaryData data{binary};
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    ParseInput(inputs[i], fmt::format("inputs[{}]", i), &data, out->add_inputs());
  }
  if (data.taken != binary.size()) {
    Bad("request body", fmt::format("{} bytes of binary data follow the inputs' (binary_data_size)",
                                    binary.size() - data.taken));
  }
  if (const auto o = j.find("outputs"); o != j.end()) ParseOutputs(*o, out);
}

ResponseBody InferResponseToBody(const inference::ModelInferResponse& r,
                                 const inference::ModelInferRequest& request) {
  OrderedJson j = OrderedJson::object();
  j["model_name"] = r.model_name();
  j["model_version"] = r.model_version();
  if (!r.id().empty()) j["id"] = r.id();
  if (r.parameters_size() > 0) j["parameters"] = ParametersToJson(r.parameters());
  OrderedJson& outputs = j["outputs"] = OrderedJson::array();
  std::string binary;
  for (int i = 0; i < r.outputs_size(); ++i) {
    const auto& o = r.outputs(i);
    OrderedJson t = TensorHead(o);
    if (o.parameters_size() > 0) t["parameters"] = ParametersToJson(o.parameters());
    const bool raw = i < r.raw_output_contents_size();
    if (raw && WantsBinary(request, o.name())) {
      t["parameters"]["binary_data_size"] = r.raw_output_contents(i).size();
      binary += r.raw_output_contents(i);
    } else {
      t["data"] = raw ? RawToJson(o.datatype(), r.raw_output_contents(i))
                      : ContentsToJson(o.datatype(), o.contents());
    }
    outputs.push_back(std::move(t));
  }
  ResponseBody body{Dump(j), 0};
  body.json_size = body.bytes.size();
  body.bytes += binary;
  return body;
}

std::string InferResponseToJson(const inference::ModelInferResponse& r) {
  return InferResponseToBody(r, inference::ModelInferRequest()).bytes;
}

std::string ServerMetadataToJson(const inference::ServerMetadataResponse& r) {
  OrderedJson j = OrderedJson::object();
  j["name"] = r.name();
  j["version"] = r.version();
  j["extensions"] = OrderedJson::array();
  for (const auto& e : r.extensions()) j["extensions"].push_back(e);
  return Dump(j);
}

std::string ModelMetadataToJson(const inference::ModelMetadataResponse& r) {
  OrderedJson j = OrderedJson::object();
  j["name"] = r.name();
  j["versions"] = OrderedJson::array();
  for (const auto& v : r.versions()) j["versions"].push_back(v);
  j["platform"] = r.platform();
  j["inputs"] = OrderedJson::array();
  for (const auto& t : r.inputs()) j["inputs"].push_back(TensorHead(t));
  j["outputs"] = OrderedJson::array();
  for (const auto& t : r.outputs()) j["outputs"].push_back(TensorHead(t));
  return Dump(j);
}

std::string ModelStatisticsToJson(const inference::ModelStatisticsResponse& r) {
  OrderedJson j = OrderedJson::object();
  j["model_stats"] = OrderedJson::array();
  for (const auto& m : r.model_stats()) j["model_stats"].push_back(ModelStatsToJson(m));
  return Dump(j);
}

std::string RepositoryIndexToJson(const inference::RepositoryIndexResponse& r) {
  OrderedJson j = OrderedJson::array();
  for (const auto& m : r.models()) {
    OrderedJson e = OrderedJson::object();
    e["name"] = m.name();
    e["version"] = m.version();
    e["state"] = m.state();
    e["reason"] = m.reason();
    j.push_back(std::move(e));
  }
  return Dump(j);
}

bool ParseRepositoryIndexReady(std::string_view body) {
  if (body.empty()) return false;
  const Json j = ParseBody(body);
  RequireObject(j, "request body");
  const auto ready = j.find("ready");
  if (ready == j.end()) return false;
  if (!ready->is_boolean()) {
    Bad("ready", fmt::format("must be true or false, got {}", ready->type_name()));
  }
  return ready->get<bool>();
}

void CheckJsonObject(std::string_view body) {
  if (!body.empty()) RequireObject(ParseBody(body), "request body");
}

std::string ErrorJson(std::string_view message) {
  OrderedJson j = OrderedJson::object();
  j["error"] = message;
  return Dump(j);
}

}  // namespace escala::serving::internal
