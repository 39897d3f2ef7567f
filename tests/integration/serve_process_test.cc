// `escala serve` as a real process: a Python grpcio client calling every RPC, curl and Python's
// urllib speaking the REST API, SIGTERM draining, and two replicas behind nginx absorbing the loss
// of one.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <signal.h>
#include <sstream>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "escala/core/error.h"
#include "escala/serving/client.h"
#include "test_util/process.h"
#include "test_util/temp_dir.h"

namespace escala {
namespace {

using namespace std::chrono_literals;
using testing::CliPath;
using testing::RunCommand;
using testing::SourcePath;
using testing::TempDir;

// Trains the penguin species model into <dir>/repo/penguins/1/model.bundle.
std::string TrainPenguins(const TempDir& dir) {
  const auto version = dir.path() / "repo" / "penguins" / "1";
  std::filesystem::create_directories(version);
  const std::string bundle = (version / "model.bundle").string();
  std::string out;
  const int rc =
      RunCommand(CliPath() + " train --data " + SourcePath("examples/data/penguins.csv") +
                     " --label species --model softmax --out " + bundle,
                 &out);
  EXPECT_EQ(rc, 0) << out;
  return bundle;
}

// `escala score` of the penguins with `bundle` into `out_csv`.
void ScorePenguins(const std::string& bundle, const std::string& out_csv) {
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() + " score --model " + bundle + " --data " +
                           SourcePath("examples/data/penguins.csv") + " --out " + out_csv,
                       &out),
            0)
      << out;
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

serving::Tensor Features(float x) {
  return serving::Tensor::Fp32("features", {1, 4}, {x, 1, 2, 3});
}

TEST(ServeProcess, PythonGrpcClientCallsEveryRpc) {
  if (RunCommand("/usr/bin/python3 -c 'import grpc, google.protobuf'") != 0 ||
      !std::filesystem::exists("/usr/bin/grpc_python_plugin")) {
    GTEST_SKIP() << "python3-grpcio or protoc's Python gRPC plugin is not installed";
  }
  TempDir dir;
  const std::string bundle = TrainPenguins(dir);
  std::string out;
  ASSERT_NO_FATAL_FAILURE(ScorePenguins(bundle, dir.File("scores.csv")));
  const std::string stubs = dir.File("stubs");
  std::filesystem::create_directories(stubs);
  ASSERT_EQ(
      RunCommand("protoc -I " + SourcePath("proto") + " -I " + SourcePath("tests/python/protos") +
                     " --python_out=" + stubs + " --grpc_python_out=" + stubs +
                     " --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin"
                     " inference/open_inference.proto health.proto",
                 &out),
      0)
      << out;
  auto serve = testing::StartServe({"--model-repository", (dir.path() / "repo").string()},
                                   dir.File("serve.log"));
  const int rc =
      RunCommand("/usr/bin/python3 " + SourcePath("tests/python/grpc_client_test.py") + " " +
                     stubs + " " + std::to_string(serve.grpc_port) + " penguins " +
                     dir.File("scores.csv") + " " + SourcePath("examples/data/penguins.csv"),
                 &out);
  EXPECT_EQ(rc, 0) << out;
  serve.process->Signal(SIGTERM);
  EXPECT_EQ(serve.process->Wait(15s), 0);
}

// The REST API to clients the project did not write: curl, and Python's urllib (every endpoint,
// predictions checked against `escala score`).
TEST(ServeProcess, CurlAndPythonUrllibSpeakTheRestApi) {
  const bool has_curl = std::filesystem::exists("/usr/bin/curl");
  const bool has_python = std::filesystem::exists("/usr/bin/python3");
  if (!has_curl && !has_python) GTEST_SKIP() << "neither curl nor python3 is installed";
  TempDir dir;
  const std::string bundle = TrainPenguins(dir);
  std::string out;
  ASSERT_NO_FATAL_FAILURE(ScorePenguins(bundle, dir.File("scores.csv")));
  auto serve = testing::StartServe({"--model-repository", (dir.path() / "repo").string()},
                                   dir.File("serve.log"));
  const std::string base = "http://127.0.0.1:" + std::to_string(serve.http_port);
  if (has_curl) {
    const std::string curl = "/usr/bin/curl -sS -w ' %{http_code}' ";
    ASSERT_EQ(RunCommand(curl + base + "/v2/models/penguins", &out), 0) << out;
    EXPECT_NE(out.find(R"("name":"penguins","versions":["1"],"platform":"escala_bundle")"),
              std::string::npos)
        << out;
    EXPECT_TRUE(out.ends_with(" 200")) << out;
    std::ofstream(dir.File("request.json"))
        << R"({"inputs": [{"name": "island", "datatype": "BYTES", "shape": [1], "data": ["Biscoe"]},)"
        << R"({"name": "bill_length_mm", "datatype": "FP32", "shape": [1], "data": [45.2]},)"
        << R"({"name": "bill_depth_mm", "datatype": "FP32", "shape": [1], "data": [14.8]},)"
        << R"({"name": "flipper_length_mm", "datatype": "FP32", "shape": [1], "data": [212]},)"
        << R"({"name": "body_mass_g", "datatype": "FP32", "shape": [1], "data": [5200]},)"
        << R"({"name": "sex", "datatype": "BYTES", "shape": [1], "data": ["female"]},)"
        << R"({"name": "year", "datatype": "FP32", "shape": [1], "data": [2009]}],)"
        << R"("outputs": [{"name": "label"}]})";
    ASSERT_EQ(RunCommand(curl + "-H 'Content-Type: application/json' --data-binary @" +
                             dir.File("request.json") + " " + base + "/v2/models/penguins/infer",
                         &out),
              0)
        << out;
    EXPECT_NE(out.find(R"("outputs":[{"name":"label","datatype":"BYTES","shape":[1],"data":[")"),
              std::string::npos)
        << out;
    EXPECT_TRUE(out.ends_with(" 200")) << out;
    ASSERT_EQ(
        RunCommand(curl + "--data-binary '{\"inputs\": 1}' " + base + "/v2/models/penguins/infer",
                   &out),
        0);
    EXPECT_EQ(out, R"({"error":"inputs: must be an array, got number"} 400)");
  }
  if (has_python) {
    EXPECT_EQ(
        RunCommand("/usr/bin/python3 " + SourcePath("tests/python/rest_client_test.py") + " " +
                       std::to_string(serve.http_port) + " penguins " + dir.File("scores.csv") +
                       " " + SourcePath("examples/data/penguins.csv"),
                   &out),
        0)
        << out;
  }
  serve.process->Signal(SIGTERM);
  EXPECT_EQ(serve.process->Wait(15s), 0);
}

// --version-policy reaches the server: each of the four policies serves its versions of a
// repository holding versions 1, 2, 3 and 5 of one model.
TEST(ServeProcess, VersionPolicyFlagChoosesTheServedVersions) {
  TempDir dir;
  const std::string bundle = TrainPenguins(dir);
  for (int v : {2, 3, 5}) {
    const auto version = dir.path() / "repo" / "penguins" / std::to_string(v);
    std::filesystem::create_directories(version);
    std::filesystem::copy_file(bundle, version / "model.bundle");
  }
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"latest", {"5"}},
      {"latest:2", {"3", "5"}},
      {"all", {"1", "2", "3", "5"}},
      {"specific:2,4", {"2"}}};
  for (const auto& [policy, versions] : cases) {
    auto serve = testing::StartServe({"--model-repository", (dir.path() / "repo").string(),
                                      "--version-policy", policy, "--no-http"},
                                     dir.File("serve.log"));
    serving::Client client("127.0.0.1:" + std::to_string(serve.grpc_port));
    EXPECT_EQ(client.ModelMetadata("penguins").versions, versions) << policy;
    serve.process->Signal(SIGTERM);
    EXPECT_EQ(serve.process->Wait(15s), 0) << policy;
  }
}

// A model trained by XGBoost (tests/python/xgboost_models.py), scored by `escala score` from its
// JSON file and served by `escala serve` from its UBJSON file, gives XGBoost's own predictions.
TEST(ServeProcess, XgboostModelsAreScoredAndServedAsXgboostPredicts) {
  TempDir dir;
  std::string out;
  const int rc = RunCommand(
      "/usr/bin/python3 " + SourcePath("tests/python/xgboost_models.py") + " " + dir.File(""),
      &out);
  if (rc == 77 || rc == 127) GTEST_SKIP() << "python3 with XGBoost is absent";
  ASSERT_EQ(rc, 0) << out;
  ASSERT_EQ(RunCommand(CliPath() + " score --model " + dir.File("bin.json") + " --data " +
                           dir.File("x.csv") + " --out " + dir.File("s.csv"),
                       &out),
            0)
      << out;
  std::ifstream scores(dir.File("s.csv")), ref(dir.File("bin.pred.csv")), x(dir.File("x.csv"));
  std::string line, want, row;
  std::getline(scores, line);  // header: p_0,p_1,label
  std::getline(x, row);
  std::vector<float> first_row, first_pred;
  for (int i = 0; std::getline(scores, line) && std::getline(ref, want); ++i) {
    const auto c0 = line.find(','), c1 = line.find(',', c0 + 1);
    const double p = std::stod(line.substr(c0 + 1, c1 - c0 - 1));
    ASSERT_NEAR(p, std::stod(want), 1e-5) << "row " << i;
    if (i == 0) first_pred.push_back(static_cast<float>(std::stod(want)));
  }
  std::getline(x, row);
  std::stringstream cells(row);
  for (std::string cell; std::getline(cells, cell, ',');) {
    first_row.push_back(cell.empty() ? NAN : std::stof(cell));
  }
  auto serve = testing::StartServe({"--model", "xgb=" + dir.File("bin.ubj"), "--no-http"},
                                   dir.File("serve.log"));
  serving::Client client("127.0.0.1:" + std::to_string(serve.grpc_port));
  const auto result = client.Infer("xgb", {serving::Tensor::Fp32("features", {1, 6}, first_row)});
  EXPECT_NEAR(result.output("probabilities").fp32.at(1), first_pred.at(0), 1e-5);
  serve.process->Signal(SIGTERM);
  EXPECT_EQ(serve.process->Wait(15s), 0);
}

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<float> Floats(const std::string& path) {
  std::vector<float> v;
  for (const auto& line : Lines(path)) v.push_back(std::stof(line));
  return v;
}

// ONNX models (tests/python/onnx_models.py: a PyTorch MLP, a linear classifier with a ZipMap)
// served from a repository beside one the runtime cannot run: the broken one is refused with its
// reason and the others are served under their graphs' own names, over gRPC and REST, with the
// outputs PyTorch and numpy computed.
TEST(ServeProcess, OnnxModelsAreServedUnderTheirOwnNames) {
  int rc = 0;
  std::string out;
  const std::string ref =
      testing::ScriptOutputDir("tests/python/onnx_models.py", "onnx", &rc, &out);
  if (rc == 77 || rc == 127) GTEST_SKIP() << "python3 with onnx and torch is absent";
  ASSERT_EQ(rc, 0) << out;
  TempDir dir;
  const auto repo = dir.path() / "repo";
  for (const auto& [name, file] : {std::pair{"mlp", ref + "/torch_mlp_64_256_256_1/model.onnx"},
                                   std::pair{"cls", ref + "/linear_classifier/model.onnx"},
                                   std::pair{"broken", ref + "/bad/unsupported_op.onnx"}}) {
    std::filesystem::create_directories(repo / name / "1");
    std::filesystem::copy_file(file, repo / name / "1" / "model.onnx");
  }
  auto serve = testing::StartServe({"--model-repository", repo.string()}, dir.File("serve.log"));
  serving::Client client("127.0.0.1:" + std::to_string(serve.grpc_port));
  const serving::ModelInfo info = client.ModelMetadata("mlp");
  EXPECT_EQ(info.platform, "onnx");
  ASSERT_EQ(info.inputs.size(), 1u);
  EXPECT_EQ(info.inputs[0].name, "input");
  EXPECT_EQ(info.inputs[0].shape, (std::vector<std::int64_t>{-1, 64}));
  ASSERT_EQ(info.outputs.size(), 1u);
  EXPECT_EQ(info.outputs[0].name, "output");
  EXPECT_EQ(info.outputs[0].shape, (std::vector<std::int64_t>{-1, 1}));
  const std::vector<float> x = Floats(ref + "/torch_mlp_64_256_256_1/input_0.txt");
  const std::vector<float> y = Floats(ref + "/torch_mlp_64_256_256_1/output_0.txt");
  const auto got = client.Infer("mlp", {serving::Tensor::Fp32("input", {32, 64}, x)});
  ASSERT_EQ(got.output("output").fp32.size(), y.size());
  for (std::size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(got.output("output").fp32[i], y[i], 1e-5);
  const auto cls = client.Infer(
      "cls", {serving::Tensor::Fp32("x", {4, 3}, Floats(ref + "/linear_classifier/input_0.txt"))});
  EXPECT_EQ(cls.output("label").bytes, Lines(ref + "/linear_classifier/output_0.txt"));
  const std::vector<float> zip = Floats(ref + "/linear_classifier/output_1.txt");
  for (std::size_t i = 0; i < zip.size(); ++i)
    EXPECT_NEAR(cls.output("zip").fp32.at(i), zip[i], 1e-5);
  EXPECT_THROW(client.ModelMetadata("broken"), Error);
  // REST: the same model by curl, one JSON row.
  std::string body =
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,64],\"datatype\":\"FP32\",\"data\":[";
  for (int j = 0; j < 64; ++j)
    body += (j ? "," : "") + std::to_string(x[static_cast<std::size_t>(j)]);
  body += "]}]}";
  testing::WriteFile(dir.File("req.json"), body);
  const std::string url =
      "http://127.0.0.1:" + std::to_string(serve.http_port) + "/v2/models/mlp/infer";
  if (RunCommand("curl --version > /dev/null") == 0) {
    ASSERT_EQ(RunCommand("curl -sf -H 'Content-Type: application/json' --data-binary @" +
                             dir.File("req.json") + " " + url,
                         &out),
              0)
        << out;
    EXPECT_NE(out.find("\"name\":\"output\""), std::string::npos) << out;
    EXPECT_NE(out.find("\"shape\":[1,1]"), std::string::npos) << out;
  }
  serve.process->Signal(SIGTERM);
  EXPECT_EQ(serve.process->Wait(15s), 0);
  EXPECT_NE(testing::ReadFile(dir.File("serve.log")).find("Sin"), std::string::npos);
}

TEST(ServeProcess, SigtermDrainsInFlightRequestsAndRefusesNewOnes) {
  TempDir dir;
  auto bundle_dir = dir.path() / "b";
  std::filesystem::create_directories(bundle_dir);
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() +
                           " datagen --task classification --rows 500 --features 4 --informative 3 "
                           "--classes 2 --seed 1 --out " +
                           dir.File("d.csv"),
                       &out),
            0)
      << out;
  ASSERT_EQ(RunCommand(CliPath() + " train --data " + dir.File("d.csv") +
                           " --label label --model logistic --out " + dir.File("m.bundle"),
                       &out),
            0)
      << out;
  // Requests wait up to 2 s in the batching queue: certainly in flight at SIGTERM.
  auto serve = testing::StartServe({"--model", "m=" + dir.File("m.bundle"), "--max-batch", "1000",
                                    "--max-queue-delay-us", "2000000", "--drain-grace-secs", "10"},
                                   dir.File("serve.log"));
  serving::ClientOptions no_retry;
  no_retry.max_attempts = 1;
  serving::Client client("127.0.0.1:" + std::to_string(serve.grpc_port), no_retry);
  ASSERT_TRUE(client.ServerReady());  // the connection is up before the requests go out
  std::vector<std::future<serving::InferResult>> inflight;
  for (int i = 0; i < 6; ++i)
    inflight.push_back(client.InferAsync("m", {Features(static_cast<float>(i))}));
  std::this_thread::sleep_for(500ms);
  serve.process->Signal(SIGTERM);
  std::this_thread::sleep_for(50ms);
  try {
    client.Infer("m", {Features(9)});
    ADD_FAILURE() << "a request after SIGTERM was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable) << e.what();
  }
  for (auto& f : inflight) EXPECT_NO_THROW(f.get());
  EXPECT_EQ(serve.process->Wait(15s), 0);
}

TEST(ServeProcess, TwoReplicasBehindNginxAbsorbTheLossOfOne) {
  if (!std::filesystem::exists("/usr/sbin/nginx")) GTEST_SKIP() << "nginx is not installed";
  TempDir dir;
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() +
                           " datagen --task classification --rows 500 --features 4 --informative 3 "
                           "--classes 2 --seed 1 --out " +
                           dir.File("d.csv"),
                       &out),
            0)
      << out;
  ASSERT_EQ(RunCommand(CliPath() + " train --data " + dir.File("d.csv") +
                           " --label label --model logistic --out " + dir.File("m.bundle"),
                       &out),
            0)
      << out;
  auto a = testing::StartServe({"--model", "m=" + dir.File("m.bundle"), "--drain-grace-secs", "2"},
                               dir.File("a.log"));
  auto b = testing::StartServe({"--model", "m=" + dir.File("m.bundle"), "--drain-grace-secs", "2"},
                               dir.File("b.log"));
  const int port = FreePort();
  const std::string prefix = dir.File("nginx");
  std::filesystem::create_directories(prefix + "/logs");
  std::ofstream(prefix + "/nginx.conf")
      << "daemon off;\nmaster_process off;\nerror_log " << prefix << "/logs/error.log warn;\n"
      << "pid " << prefix << "/nginx.pid;\nevents { worker_connections 256; }\n"
      << "http {\n  access_log off;\n"
      << "  client_body_temp_path " << prefix << "/tmp;\n"
      << "  upstream escala {\n    server 127.0.0.1:" << a.grpc_port
      << " max_fails=1 fail_timeout=10s;\n"
      << "    server 127.0.0.1:" << b.grpc_port << " max_fails=1 fail_timeout=10s;\n  }\n"
      << "  server {\n    listen 127.0.0.1:" << port << " http2;\n"
      << "    location / {\n      grpc_pass grpc://escala;\n"
      << "      grpc_next_upstream error timeout;\n      grpc_connect_timeout 1s;\n    }\n  }\n}\n";
  testing::Subprocess nginx({"/usr/sbin/nginx", "-p", prefix, "-c", prefix + "/nginx.conf"},
                            prefix + "/stderr.log");
  serving::Client client("127.0.0.1:" + std::to_string(port));
  // Wait for nginx to accept.
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    try {
      up = client.ServerLive();
    } catch (const Error&) {
      std::this_thread::sleep_for(50ms);
    }
  }
  ASSERT_TRUE(up) << testing::ReadFile(prefix + "/stderr.log");
  int ok = 0, failed = 0;
  std::string last_error;
  const auto deadline = std::chrono::steady_clock::now() + 30s;  // bounded
  for (int i = 0; i < 300 && std::chrono::steady_clock::now() < deadline; ++i) {
    if (i == 100) a.process->Signal(SIGTERM);  // one replica leaves mid-run
    try {
      client.Infer("m", {Features(static_cast<float>(i))});
      ++ok;
    } catch (const Error& e) {
      ++failed;
      last_error = e.what();
    }
  }
  EXPECT_EQ(failed, 0) << last_error;
  EXPECT_EQ(ok, 300);
  EXPECT_EQ(a.process->Wait(15s), 0);
  nginx.Signal(SIGQUIT);
  nginx.Wait(10s);
  b.process->Signal(SIGTERM);
  EXPECT_EQ(b.process->Wait(15s), 0);
}

}  // namespace
}  // namespace escala
