// The REST (JSON) bodies <-> the protocol's messages: every datatype, flat and nested data, the
// errors that name their field, responses from raw and typed contents, and random bodies.
#include "serving/json_codec.h"

#include <cmath>
#include <cstring>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "escala/core/error.h"

namespace escala::serving::internal {
namespace {

using inference::ModelInferRequest;
using Json = nlohmann::json;

ModelInferRequest Parse(const std::string& body) {
  ModelInferRequest req;
  ParseInferRequest(body, &req);
  return req;
}

// The message of the kInvalidArgument error that parsing `body` throws.
std::string ErrorOf(const std::string& body) {
  try {
    Parse(body);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    return e.message();
  }
  return "no error";
}

std::string OneInput(const std::string& datatype, const std::string& shape,
                     const std::string& data) {
  return R"({"inputs":[{"name":"x","datatype":")" + datatype + R"(","shape":)" + shape +
         R"(,"data":)" + data + "}]}";
}

TEST(JsonCodec, ParsesTensorsParametersAndOutputs) {
  const auto req = Parse(R"({
    "id": "r1", "parameters": {"a": true, "b": -3, "c": 2.5, "d": "s", "e": 18446744073709551615},
    "inputs": [
      {"name": "f", "datatype": "FP32", "shape": [2, 3], "data": [[1, 2, 3], [4.5, 5, 6]]},
      {"name": "g", "datatype": "BYTES", "shape": [2], "data": ["x", ""],
       "parameters": {"p": 1}},
      {"name": "h", "datatype": "INT64", "shape": [2, 1], "data": [-9007199254740993, 7]}],
    "outputs": [{"name": "label", "parameters": {"binary_data": false}}]})");
  EXPECT_EQ(req.id(), "r1");
  EXPECT_TRUE(req.parameters().at("a").bool_param());
  EXPECT_EQ(req.parameters().at("b").int64_param(), -3);
  EXPECT_EQ(req.parameters().at("c").double_param(), 2.5);
  EXPECT_EQ(req.parameters().at("d").string_param(), "s");
  EXPECT_EQ(req.parameters().at("e").uint64_param(), 18446744073709551615u);
  ASSERT_EQ(req.inputs_size(), 3);
  const auto& f = req.inputs(0);
  EXPECT_EQ(f.name(), "f");
  EXPECT_EQ(f.shape_size(), 2);
  EXPECT_EQ(
      std::vector<float>(f.contents().fp32_contents().begin(), f.contents().fp32_contents().end()),
      (std::vector<float>{1, 2, 3, 4.5f, 5, 6}));
  EXPECT_EQ(req.inputs(1).contents().bytes_contents(1), "");
  EXPECT_EQ(req.inputs(1).parameters().at("p").int64_param(), 1);
  EXPECT_EQ(req.inputs(2).contents().int64_contents(0), -9007199254740993);
  ASSERT_EQ(req.outputs_size(), 1);
  EXPECT_EQ(req.outputs(0).name(), "label");
  EXPECT_EQ(req.raw_input_contents_size(), 0);
}

TEST(JsonCodec, EveryDatatypeGoesToItsTypedField) {
  EXPECT_EQ(Parse(OneInput("BOOL", "[2]", "[true,false]")).inputs(0).contents().bool_contents(0),
            true);
  EXPECT_EQ(Parse(OneInput("INT8", "[2]", "[-128,127]")).inputs(0).contents().int_contents(0),
            -128);
  EXPECT_EQ(Parse(OneInput("INT32", "[1]", "[-5]")).inputs(0).contents().int_contents(0), -5);
  EXPECT_EQ(Parse(OneInput("UINT8", "[1]", "[255]")).inputs(0).contents().uint_contents(0), 255u);
  EXPECT_EQ(Parse(OneInput("UINT64", "[1]", "[18446744073709551615]"))
                .inputs(0)
                .contents()
                .uint64_contents(0),
            18446744073709551615u);
  EXPECT_EQ(Parse(OneInput("FP64", "[1]", "[0.1]")).inputs(0).contents().fp64_contents(0), 0.1);
  EXPECT_EQ(Parse(OneInput("FP32", "[0]", "[]")).inputs(0).contents().fp32_contents_size(), 0);
  EXPECT_TRUE(
      std::isnan(Parse(OneInput("FP64", "[1]", "[null]")).inputs(0).contents().fp64_contents(0)));
  // A scalar: shape [] holds one element.
  EXPECT_EQ(Parse(OneInput("FP32", "[]", "[3]")).inputs(0).contents().fp32_contents(0), 3.0f);
}

TEST(JsonCodec, ErrorsNameTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"inputs\": [", "request body: not valid JSON: parse error at line 1, column 13"},
      {"[1]", "request body: must be a JSON object, got array"},
      {"{}", "request body: 'inputs' is missing"},
      {R"({"inputs": {}})", "inputs: must be an array, got object"},
      {R"({"inputs": [{"name": "x", "shape": [1], "data": [1]}]})",
       "inputs[0]: 'datatype' is missing"},
      {R"({"id": 5, "inputs": []})", "id: must be a string, got number"},
      {OneInput("FP32", "[2,3]", "[1,2,3,4,5]"), "inputs[0].data: 5 values for shape [2,3]"},
      {OneInput("FP32", "[1000000000000,1000000000000]", "[1]"),
       "inputs[0].data: 1 values for shape [1000000000000,1000000000000]"},
      {OneInput("FP32", "[2,-1]", "[1,2]"),
       "inputs[0].shape[1]: must be a non-negative integer, got -1"},
      {OneInput("FP32", "[1.5]", "[1]"),
       "inputs[0].shape[0]: must be a non-negative integer, got 1.5"},
      {OneInput("FP32", "[2]", "[1,\"a\"]"),
       "inputs[0].data[1]: expected a number or null for FP32, got \"a\""},
      {OneInput("BYTES", "[1]", "[1]"),
       "inputs[0].data[0]: expected a string or null for BYTES, got 1"},
      {OneInput("INT8", "[1]", "[300]"), "inputs[0].data[0]: 300 is out of range for INT8"},
      {OneInput("UINT32", "[1]", "[-1]"), "inputs[0].data[0]: -1 is out of range for UINT32"},
      {OneInput("INT64", "[1]", "[1.5]"),
       "inputs[0].data[0]: expected an integer for INT64, got 1.5"},
      {OneInput("BOOL", "[1]", "[1]"), "inputs[0].data[0]: expected true or false for BOOL, got 1"},
      {OneInput("FLOAT", "[1]", "[1]"), "inputs[0].datatype: unknown datatype 'FLOAT'"},
      {OneInput("FP16", "[1]", "[1]"), "inputs[0].datatype: FP16 has no JSON form"},
      {OneInput("FP32", "[2]", "[[[1]],[2]]"), "inputs[0].data: nested deeper than the shape"},
      {OneInput("FP32", "[1]", "{}"), "inputs[0].data: must be an array, got object"},
      {R"({"parameters": {"p": [1]}, "inputs": []})",
       "parameters.p: must be a bool, number or string, got array"},
      {R"({"inputs": [], "outputs": [{"parameters": {}}]})", "outputs[0]: 'name' is missing"},
  };
  for (const auto& [body, expected] : cases) {
    EXPECT_NE(ErrorOf(body).find(expected), std::string::npos)
        << body << "\n  gave: " << ErrorOf(body) << "\n  want: " << expected;
  }
}

TEST(JsonCodec, ResponsesFromRawAndTypedContents) {
  inference::ModelInferResponse r;
  r.set_model_name("m");
  r.set_model_version("2");
  r.set_id("q");
  auto add = [&](const char* name, const char* dt, std::vector<std::int64_t> shape) {
    auto* o = r.add_outputs();
    o->set_name(name);
    o->set_datatype(dt);
    for (auto d : shape) o->add_shape(d);
    return o;
  };
  add("p", "FP32", {1, 2});
  const float p[2] = {0.1f, 0.9f};
  r.add_raw_output_contents(std::string(reinterpret_cast<const char*>(p), sizeof(p)));
  add("label", "BYTES", {2});
  r.add_raw_output_contents(std::string("\x01\0\0\0a\x02\0\0\0bc", 11));
  add("i", "INT64", {1});
  const std::int64_t i = -7;
  r.add_raw_output_contents(std::string(reinterpret_cast<const char*>(&i), 8));
  EXPECT_EQ(InferResponseToJson(r),
            R"({"model_name":"m","model_version":"2","id":"q","outputs":[)"
            R"({"name":"p","datatype":"FP32","shape":[1,2],"data":[0.1,0.9]},)"
            R"({"name":"label","datatype":"BYTES","shape":[2],"data":["a","bc"]},)"
            R"({"name":"i","datatype":"INT64","shape":[1],"data":[-7]}]})");
  // Typed contents, when no raw contents are given.
  inference::ModelInferResponse typed;
  auto* o = typed.add_outputs();
  o->set_name("b");
  o->set_datatype("BOOL");
  o->add_shape(2);
  o->mutable_contents()->add_bool_contents(true);
  o->mutable_contents()->add_bool_contents(false);
  const Json j = Json::parse(InferResponseToJson(typed));
  EXPECT_EQ(j["outputs"][0]["data"], Json::parse("[true,false]"));
  EXPECT_FALSE(j.contains("id"));
}

TEST(JsonCodec, MetadataIndexAndErrors) {
  inference::ModelMetadataResponse m;
  m.set_name("m");
  m.add_versions("1");
  m.set_platform("escala_bundle");
  auto* t = m.add_inputs();
  t->set_name("f0");
  t->set_datatype("FP32");
  t->add_shape(-1);
  EXPECT_EQ(ModelMetadataToJson(m),
            R"({"name":"m","versions":["1"],"platform":"escala_bundle",)"
            R"("inputs":[{"name":"f0","datatype":"FP32","shape":[-1]}],"outputs":[]})");
  EXPECT_FALSE(ParseRepositoryIndexReady(""));
  EXPECT_TRUE(ParseRepositoryIndexReady(R"({"ready": true})"));
  EXPECT_THROW(ParseRepositoryIndexReady(R"({"ready": 1})"), Error);
  EXPECT_THROW(CheckJsonObject("[]"), Error);
  EXPECT_NO_THROW(CheckJsonObject(""));
  EXPECT_EQ(ErrorJson("a \"quoted\"\nline"), R"({"error":"a \"quoted\"\nline"})");
  EXPECT_EQ(ErrorJson("bad \xff byte"), "{\"error\":\"bad \xEF\xBF\xBD byte\"}");
}

template <typename T>
std::string Wire(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// Triton's binary tensor data extension: inputs' data after the JSON, outputs' data likewise.
TEST(JsonCodec, BinaryTensorDataInAndOut) {
  const std::string json = R"({"inputs": [
      {"name": "f", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 8}},
      {"name": "j", "datatype": "FP64", "shape": [1], "data": [0.5]},
      {"name": "s", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": 11}},
      {"name": "i", "datatype": "INT8", "shape": [2], "parameters": {"binary_data_size": 2}}]})";
  const std::string binary = Wire<float>({1.5f, -2}) + std::string("\x01\0\0\0a\x02\0\0\0bc", 11) +
                             Wire<std::int8_t>({-3, 4});
  ModelInferRequest req;
  ParseInferRequest(json, binary, &req);
  ASSERT_EQ(req.inputs_size(), 4);
  EXPECT_EQ(req.inputs(0).contents().fp32_contents(1), -2.0f);
  EXPECT_EQ(req.inputs(1).contents().fp64_contents(0), 0.5);
  EXPECT_EQ(req.inputs(2).contents().bytes_contents(1), "bc");
  EXPECT_EQ(req.inputs(3).contents().int_contents(0), -3);
  const auto error = [&](const std::string& j, const std::string& b) {
    try {
      ModelInferRequest r;
      ParseInferRequest(j, b, &r);
    } catch (const Error& e) {
      return e.message();
    }
    return std::string("no error");
  };
  const std::string one = R"({"inputs": [{"name": "f", "datatype": "FP32", "shape": [2],
                                           "parameters": {"binary_data_size": 8}}]})";
  EXPECT_EQ(error(one, Wire<float>({1})),
            "inputs[0].parameters.binary_data_size: 8 bytes, but 4 of the body's binary data "
            "remain (Inference-Header-Content-Length)");
  EXPECT_EQ(error(one, Wire<float>({1, 2, 3})),
            "request body: 4 bytes of binary data follow the inputs' (binary_data_size)");
  EXPECT_EQ(error(R"({"inputs": [{"name": "f", "datatype": "FP32", "shape": [3],
                                  "parameters": {"binary_data_size": 8}}]})",
                  Wire<float>({1, 2})),
            "inputs[0].parameters.binary_data_size: 8 bytes for shape [3] of FP32");
  EXPECT_EQ(error(R"({"inputs": [{"name": "f", "datatype": "BYTES", "shape": [1],
                                  "parameters": {"binary_data_size": 6}}]})",
                  std::string("\x09\0\0\0ab", 6)),
            "inputs[0].parameters.binary_data_size: the BYTES element at byte 0 runs past its 6 "
            "bytes");
  EXPECT_NE(error(R"({"inputs": [{"name": "f", "datatype": "FP32", "shape": [1], "data": [1],
                                  "parameters": {"binary_data_size": 4}}]})",
                  Wire<float>({1}))
                .find("both data and parameters.binary_data_size"),
            std::string::npos);
  // Outputs: the ones asked for in binary form carry binary_data_size and follow the JSON.
  inference::ModelInferResponse resp;
  resp.set_model_name("m");
  for (const char* name : {"p", "label"}) {
    auto* o = resp.add_outputs();
    o->set_name(name);
    o->set_datatype(std::string(name) == "p" ? "FP32" : "BYTES");
    o->add_shape(1);
  }
  resp.add_raw_output_contents(Wire<float>({0.25f}));
  resp.add_raw_output_contents(std::string("\x01\0\0\0z", 5));
  ModelInferRequest asked;
  (*asked.mutable_parameters())["binary_data_output"].set_bool_param(true);
  (*asked.add_outputs()->mutable_parameters())["binary_data"].set_bool_param(false);
  asked.mutable_outputs(0)->set_name("label");
  const ResponseBody body = InferResponseToBody(resp, asked);
  const Json j = Json::parse(body.bytes.substr(0, body.json_size));
  EXPECT_EQ(j["outputs"][0]["parameters"]["binary_data_size"], 4);
  EXPECT_FALSE(j["outputs"][0].contains("data"));
  EXPECT_EQ(j["outputs"][1]["data"], Json::parse(R"(["z"])"));
  EXPECT_EQ(body.bytes.substr(body.json_size), Wire<float>({0.25f}));
}

// Random and mutated bodies: parsed, or refused with kInvalidArgument; nothing else.
TEST(JsonCodec, RandomAndMutatedBodiesNeverCrash) {
  const std::string valid = R"({"id":"a","inputs":[{"name":"x","datatype":"FP32","shape":[2,2],)"
                            R"("data":[[1,2],[3,4]]},{"name":"s","datatype":"BYTES","shape":[1],)"
                            R"("data":["z"]}],"outputs":[{"name":"label"}]})";
  std::mt19937 rng(11);
  const std::string alphabet = "{}[],:\"0123456789.-eEtrufalsn \\x";
  int parsed = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string body = valid;
    for (int m = 0; m < 1 + i % 4; ++m)
      body[rng() % body.size()] = alphabet[rng() % alphabet.size()];
    if (i % 5 == 0) body.resize(rng() % body.size());
    try {
      Parse(body);
      ++parsed;
    } catch (const Error& e) {
      ASSERT_EQ(e.code(), ErrorCode::kInvalidArgument) << body << ": " << e.what();
    }
  }
  EXPECT_GT(parsed, 0);
  // Deep nesting is refused without recursion.
  EXPECT_NE(ErrorOf(OneInput("FP32", "[1]", std::string(100000, '[') + std::string(100000, ']')))
                .find("nested deeper"),
            std::string::npos);
}

}  // namespace
}  // namespace escala::serving::internal
