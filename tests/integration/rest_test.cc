// The Open Inference Protocol over HTTP/REST, in process: a PredictionServer on 127.0.0.1, raw
// HTTP/1.1 requests with JSON bodies, and the escala Client over gRPC for the same requests: every
// endpoint, each class of error, and REST and gRPC giving the same answers.
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "escala/config.h"
#include "escala/core/error.h"
#include "escala/serving/client.h"
#include "escala/serving/server.h"
#include "test_util/bundles.h"
#include "test_util/http_client.h"
#include "test_util/temp_dir.h"

namespace escala::serving {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

struct Reply {
  int status = 0;
  std::string body;
  std::string allow, retry_after, content_type;
  Json json() const { return Json::parse(body); }
  std::string error() const { return json().value("error", ""); }
};

// One request on its own connection; `head` replaces the generated Content-Length header.
Reply Send(int port, const std::string& method, const std::string& path,
           const std::string& body = "", const std::string* head = nullptr) {
  testing::RawConnection c(port, 5s);
  const std::string length = "Content-Length: " + std::to_string(body.size()) + "\r\n";
  c.Send(method + " " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
         (head ? *head : length) + "\r\n" + body);
  const auto r = c.Read(10s, method == "HEAD");
  return Reply{r.status, r.body, r.Header("Allow"), r.Header("Retry-After"),
               r.Header("Content-Type")};
}

Reply Get(int port, const std::string& path) {
  return Send(port, "GET", path);
}
Reply Post(int port, const std::string& path, const std::string& body) {
  return Send(port, "POST", path, body);
}

std::unique_ptr<PredictionServer> Start(std::shared_ptr<const io::ModelBundle> bundle,
                                        RestOptions rest = RestOptions(), bool batching = false) {
  PredictionServer::Builder b;
  b.SetGrpcAddress("127.0.0.1:0").SetHttpAddress("127.0.0.1:0").AddModel("m", std::move(bundle));
  b.SetRestOptions(rest);
  if (batching) b.EnableBatching(1000, 1s);
  return b.Build();
}

Client GrpcClient(const PredictionServer& server) {
  return Client("127.0.0.1:" + std::to_string(server.grpc_port()));
}

// A JSON request for the mixed model (x, y numeric; color categorical).
std::string MixedRequest(const std::string& extra = "") {
  return R"({"id": "r7", "inputs": [
      {"name": "x", "datatype": "FP64", "shape": [3], "data": [0.5, 1.0, -2]},
      {"name": "y", "datatype": "FP64", "shape": [3, 1], "data": [[0.0], [2.0], [1.5]]},
      {"name": "color", "datatype": "BYTES", "shape": [3], "data": ["green", "purple", ""]}])" +
         extra + "}";
}
std::vector<Tensor> MixedTensors() {
  return {Tensor::Fp64("x", {0.5, 1.0, -2}), Tensor::Fp64("y", {0.0, 2.0, 1.5}),
          Tensor::Bytes("color", {"green", "purple", ""})};
}

// The REST outputs as the client's tensors, for comparison with a gRPC answer.
void ExpectSameOutputs(const Json& rest, const InferResult& grpc) {
  ASSERT_EQ(rest["outputs"].size(), grpc.outputs.size()) << rest.dump();
  for (const Json& o : rest["outputs"]) {
    const Tensor& g = grpc.output(o["name"].get<std::string>());
    EXPECT_EQ(o["datatype"], g.datatype);
    EXPECT_EQ(o["shape"].get<std::vector<std::int64_t>>(), g.shape);
    if (g.datatype == "FP32") {
      std::vector<float> v;
      for (const Json& x : o["data"]) v.push_back(static_cast<float>(x.get<double>()));
      EXPECT_EQ(v, g.fp32) << o["name"];  // bit for bit: the JSON text reads back exactly
    } else if (g.datatype == "INT64") {
      EXPECT_EQ(o["data"].get<std::vector<std::int64_t>>(), g.int64);
    } else {
      EXPECT_EQ(o["data"].get<std::vector<std::string>>(), g.bytes);
    }
  }
}

TEST(Rest, ServerAndModelMetadataMatchGrpc) {
  auto server = Start(testing::MixedSoftmaxBundle());
  const int port = server->http_port();
  auto client = GrpcClient(*server);
  const Reply meta = Get(port, "/v2");
  ASSERT_EQ(meta.status, 200) << meta.body;
  EXPECT_EQ(meta.content_type, "application/json");
  EXPECT_EQ(meta.json()["name"], "escala");
  EXPECT_EQ(meta.json()["version"], ESCALA_VERSION_STRING);
  EXPECT_EQ(meta.json()["extensions"].size(), 3u);
  const ModelInfo info = client.ModelMetadata("m");
  for (const std::string path : {"/v2/models/m", "/v2/models/m/versions/1", "/v2/models/%6D/"}) {
    const Reply r = Get(port, path);
    ASSERT_EQ(r.status, 200) << path << ": " << r.body;
    const Json j = r.json();
    EXPECT_EQ(j["name"], "m");
    EXPECT_EQ(j["versions"], Json::parse(R"(["1"])"));
    EXPECT_EQ(j["platform"], info.platform);
    ASSERT_EQ(j["inputs"].size(), info.inputs.size());
    for (std::size_t i = 0; i < info.inputs.size(); ++i) {
      EXPECT_EQ(j["inputs"][i]["name"], info.inputs[i].name);
      EXPECT_EQ(j["inputs"][i]["datatype"], info.inputs[i].datatype);
      EXPECT_EQ(j["inputs"][i]["shape"].get<std::vector<std::int64_t>>(), info.inputs[i].shape);
    }
    ASSERT_EQ(j["outputs"].size(), info.outputs.size());
    EXPECT_EQ(j["outputs"][0]["shape"].get<std::vector<std::int64_t>>(), info.outputs[0].shape);
  }
  const Reply head = Send(port, "HEAD", "/v2/models/m");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  server->Shutdown(1s);
}

TEST(Rest, ReadyAndHealth) {
  auto server = Start(testing::NumericLogisticBundle(4));
  const int port = server->http_port();
  EXPECT_EQ(Get(port, "/v2/health/live").status, 200);
  EXPECT_EQ(Get(port, "/v2/health/ready").status, 200);
  EXPECT_EQ(Get(port, "/v2/models/m/ready").status, 200);
  EXPECT_EQ(Get(port, "/v2/models/m/versions/1/ready").status, 200);
  const Reply unknown = Get(port, "/v2/models/nope/ready");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_NE(unknown.error().find("nope"), std::string::npos) << unknown.body;
  EXPECT_EQ(Get(port, "/v2/models/m/versions/9/ready").status, 404);
  server->Shutdown(1s);
}

// The same request over REST and gRPC: the same outputs, bit for bit, and the same metrics.
TEST(Rest, InferGivesTheSameOutputsAsGrpc) {
  for (const bool batching : {false, true}) {
    auto server = Start(testing::MixedSoftmaxBundle(), RestOptions(), batching);
    const int port = server->http_port();
    auto client = GrpcClient(*server);
    const InferResult grpc = client.Infer("m", MixedTensors());
    const Reply r = Post(port, "/v2/models/m/infer", MixedRequest());
    ASSERT_EQ(r.status, 200) << r.body;
    const Json j = r.json();
    EXPECT_EQ(j["model_name"], "m");
    EXPECT_EQ(j["model_version"], "1");
    EXPECT_EQ(j["id"], "r7");
    ExpectSameOutputs(j, grpc);
    // A subset of outputs, and an explicit version.
    const Reply sub = Post(port, "/v2/models/m/versions/1/infer",
                           MixedRequest(R"(, "outputs": [{"name": "label"}])"));
    ASSERT_EQ(sub.status, 200) << sub.body;
    ASSERT_EQ(sub.json()["outputs"].size(), 1u);
    EXPECT_EQ(sub.json()["outputs"][0]["data"].get<std::vector<std::string>>(),
              grpc.output("label").bytes);
    EXPECT_NE(server->MetricsText().find(
                  "escala_inference_request_success_total{model=\"m\",version=\"1\"} 3"),
              std::string::npos)
        << server->MetricsText();
    server->Shutdown(1s);
  }
}

TEST(Rest, TheFeaturesMatrixFormMatchesGrpc) {
  auto server = Start(testing::NumericLogisticBundle(4));
  auto client = GrpcClient(*server);
  const InferResult grpc =
      client.Infer("m", {Tensor::Fp32("features", {2, 4}, {1, 2, 3, 4, -1, 0, 0.5f, 2})});
  const Reply r = Post(server->http_port(), "/v2/models/m/infer",
                       R"({"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 4],
                           "data": [[1, 2, 3, 4], [-1, 0, 0.5, 2]]}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  ExpectSameOutputs(r.json(), grpc);
  server->Shutdown(1s);
}

// Triton's binary tensor data extension: tensors after the JSON, in and out.
TEST(Rest, BinaryTensorDataMatchesGrpc) {
  auto server = Start(testing::NumericLogisticBundle(4));
  auto client = GrpcClient(*server);
  const std::vector<float> x = {1, 2, 3, 4, -1, 0, 0.5f, 2};
  const InferResult grpc = client.Infer("m", {Tensor::Fp32("features", {2, 4}, x)});
  const std::string json =
      R"({"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 4],
                      "parameters": {"binary_data_size": 32}}],
          "outputs": [{"name": "probabilities", "parameters": {"binary_data": true}},
                      {"name": "label"}]})";
  const std::string body = json + std::string(reinterpret_cast<const char*>(x.data()), 32);
  testing::RawConnection c(server->http_port());
  c.Send("POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nInference-Header-Content-Length: " + std::to_string(json.size()) + "\r\n\r\n" + body);
  const auto r = c.Read(5s);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("Content-Type"), "application/octet-stream");
  const std::size_t json_size = std::stoul(r.Header("Inference-Header-Content-Length"));
  const Json j = Json::parse(r.body.substr(0, json_size));
  ASSERT_EQ(j["outputs"].size(), 2u);
  EXPECT_EQ(j["outputs"][0]["parameters"]["binary_data_size"], 16);
  std::vector<float> probs(4);
  ASSERT_EQ(r.body.size() - json_size, 16u);
  std::memcpy(probs.data(), r.body.data() + json_size, 16);
  EXPECT_EQ(probs, grpc.output("probabilities").fp32);
  EXPECT_EQ(j["outputs"][1]["data"].get<std::vector<std::string>>(), grpc.output("label").bytes);
  // A header length past the body is refused, naming the header.
  c.Send(
      "POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 2\r\n"
      "Inference-Header-Content-Length: 3\r\n\r\n{}");
  const auto bad = c.Read(5s);
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("Inference-Header-Content-Length: '3'"), std::string::npos) << bad.body;
  server->Shutdown(1s);
}

// Each error class: its status, and a message naming where, the same words as over gRPC.
TEST(Rest, ErrorsCarryTheProtocolsStatusAndNameTheField) {
  RestOptions small;
  small.max_body_bytes = 4096;
  auto server = Start(testing::MixedSoftmaxBundle(), small);
  const int port = server->http_port();
  auto client = GrpcClient(*server);
  const auto expect = [&](const Reply& r, int status, const std::string& words) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.content_type, "application/json") << r.body;
    EXPECT_NE(r.error().find(words), std::string::npos) << r.body << "\n  want: " << words;
  };
  expect(Post(port, "/v2/models/m/infer", "{not json"), 400, "request body: not valid JSON");
  expect(Post(port, "/v2/models/m/infer",
              R"({"inputs": [{"name": "color", "datatype": "FP32", "shape": [1], "data": [1]}]})"),
         400, "inputs[0] ('color'): datatype FP32 but the column is categorical (send BYTES)");
  expect(
      Post(
          port, "/v2/models/m/infer",
          R"({"inputs": [{"name": "x", "datatype": "FP64", "shape": [2,3], "data": [1,2,3,4,5]}]})"),
      400, "inputs[0].data: 5 values for shape [2,3]");
  expect(Post(port, "/v2/models/m/infer",
              R"({"inputs": [{"name": "x", "datatype": "FP64", "shape": [4000000000,4000000000],
                  "data": [1]}]})"),
         400, "inputs[0].data: 1 values for shape [4000000000,4000000000]");
  expect(Post(port, "/v2/models/nope/infer", MixedRequest()), 404, "nope");
  expect(Post(port, "/v2/models/m/versions/7/infer", MixedRequest()), 404, "7");
  expect(Get(port, "/v2/models/nope"), 404, "nope");
  expect(Post(port, "/v2/models/m/infer", MixedRequest(R"(, "outputs": [{"name": "z"}])")), 400,
         "outputs[0]: unknown output 'z'");
  expect(Get(port, "/v2/nothing"), 404, "no such endpoint: GET /v2/nothing");
  const Reply wrong_method = Get(port, "/v2/models/m/infer");
  expect(wrong_method, 405, "method not allowed (use POST)");
  EXPECT_EQ(wrong_method.allow, "POST");
  const std::string no_length;
  expect(Send(port, "POST", "/v2/models/m/infer", "", &no_length), 411, "Content-Length");
  expect(Post(port, "/v2/models/m/infer", MixedRequest() + std::string(5000, ' ')), 413,
         "exceeds the limit of 4096 bytes");
  // The same invalid request over gRPC fails with the same words.
  try {
    client.Infer("m", {Tensor::Fp32("color", {1}, {1})});
    ADD_FAILURE() << "gRPC accepted it";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "inputs[0] ('color'): datatype FP32 but the column is categorical"),
              std::string::npos);
  }
  // Keep-alive survives a 4xx answer: the next request on the connection is served.
  testing::RawConnection c(port);
  const std::string bad = "{";
  c.Send("POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 1\r\n\r\n" + bad +
         "GET /v2/models/m/ready HTTP/1.1\r\n\r\n");
  EXPECT_EQ(c.Read().status, 400);
  EXPECT_EQ(c.Read().status, 200);
  server->Shutdown(1s);
}

// Inference runs off the endpoint's thread: a probe answers while a request waits in the batcher,
// and requests past max_inflight are refused with 503 and Retry-After.
TEST(Rest, ProbesDoNotWaitBehindInferenceAndInflightIsBounded) {
  RestOptions one;
  one.max_inflight = 1;
  auto server = Start(testing::MixedSoftmaxBundle(), one, /*batching=*/true);  // waits 1 s
  const int port = server->http_port();
  auto slow = std::async(std::launch::async,
                         [&] { return Post(port, "/v2/models/m/infer", MixedRequest()); });
  std::this_thread::sleep_for(200ms);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Get(port, "/v2/health/live").status, 200);
  EXPECT_EQ(Get(port, "/v2/models/m").status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
  const Reply busy = Post(port, "/v2/models/m/infer", MixedRequest());
  EXPECT_EQ(busy.status, 503) << busy.body;
  EXPECT_EQ(busy.retry_after, "1");
  EXPECT_NE(busy.error().find("http_max_inflight"), std::string::npos) << busy.body;
  EXPECT_EQ(slow.get().status, 200);
  server->Shutdown(1s);
}

// While the server drains, REST refuses new inference with 503 (as gRPC with UNAVAILABLE) and
// the request in flight still finishes.
TEST(Rest, DrainingRefusesNewRequestsWith503) {
  auto server = Start(testing::MixedSoftmaxBundle(), RestOptions(), /*batching=*/true);
  const int port = server->http_port();
  auto slow = std::async(std::launch::async,
                         [&] { return Post(port, "/v2/models/m/infer", MixedRequest()); });
  std::this_thread::sleep_for(200ms);
  auto shutdown = std::async(std::launch::async, [&] { server->Shutdown(5s); });
  std::this_thread::sleep_for(100ms);
  const Reply refused = Post(port, "/v2/models/m/infer", MixedRequest());
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_NE(refused.error().find("shutting down"), std::string::npos) << refused.body;
  EXPECT_EQ(Get(port, "/v2/models/m/ready").status, 503);
  EXPECT_EQ(Get(port, "/v2/health/ready").status, 503);
  EXPECT_EQ(slow.get().status, 200);
  shutdown.get();
}

TEST(Rest, StatisticsAndRepositoryExtension) {
  testing::TempDir repo;
  std::filesystem::create_directories(repo.path() / "m" / "1");
  testing::NumericLogisticBundle(4)->Save((repo.path() / "m" / "1" / "model.bundle").string());
  auto server = PredictionServer::Builder()
                    .SetGrpcAddress("127.0.0.1:0")
                    .SetHttpAddress("127.0.0.1:0")
                    .SetModelRepository(repo.path().string())
                    .Build();
  const int port = server->http_port();
  const std::string features =
      R"({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 4], "data": [1,2,3,4]}]})";
  ASSERT_EQ(Post(port, "/v2/models/m/infer", features).status, 200);
  const Reply stats = Get(port, "/v2/models/m/stats");
  ASSERT_EQ(stats.status, 200) << stats.body;
  EXPECT_EQ(stats.json()["model_stats"][0]["inference_count"], 1);
  EXPECT_EQ(stats.json()["model_stats"][0]["inference_stats"]["success"]["count"], 1);
  EXPECT_EQ(Get(port, "/v2/models/stats").status, 200);
  const Reply index = Post(port, "/v2/repository/index", R"({"ready": true})");
  ASSERT_EQ(index.status, 200) << index.body;
  EXPECT_EQ(index.json(),
            Json::parse(R"([{"name":"m","version":"1","state":"READY","reason":""}])"));
  EXPECT_EQ(Post(port, "/v2/repository/models/m/unload", "").status, 200);
  EXPECT_EQ(Get(port, "/v2/models/m/ready").status, 404);
  EXPECT_EQ(Get(port, "/v2/health/ready").status, 503);
  EXPECT_EQ(Post(port, "/v2/repository/models/m/load", "{}").status, 200);
  EXPECT_EQ(Get(port, "/v2/models/m/ready").status, 200);
  EXPECT_EQ(Post(port, "/v2/repository/models/absent/load", "").status, 404);
  EXPECT_EQ(Post(port, "/v2/repository/models/m/load", "[1]").status, 400);
  server->Shutdown(1s);
}

}  // namespace
}  // namespace escala::serving
