// The prediction server end to end, in process: a PredictionServer on 127.0.0.1 and the escala
// Client talking gRPC to it.
#include <atomic>
#include <cmath>
#include <fcntl.h>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <unistd.h>
#include <vector>

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "escala/core/error.h"
#include "escala/core/file_util.h"
#include "escala/serving/client.h"
#include "escala/serving/server.h"
#include "test_util/bundles.h"
#include "test_util/certs.h"
#include "test_util/http_client.h"
#include "test_util/temp_dir.h"

namespace escala::serving {
namespace {

using namespace std::chrono_literals;

std::string HttpGet(int port, const std::string& path, int* status) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "";
  }
  const std::string req =
      "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  (void)::write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  *status = out.size() > 12 ? std::stoi(out.substr(9, 3)) : 0;
  const auto body = out.find("\r\n\r\n");
  return body == std::string::npos ? "" : out.substr(body + 4);
}

std::unique_ptr<PredictionServer> StartWith(std::shared_ptr<const io::ModelBundle> bundle,
                                            bool batching = false) {
  PredictionServer::Builder b;
  b.SetGrpcAddress("127.0.0.1:0").SetHttpAddress("127.0.0.1:0").AddModel("m", std::move(bundle));
  if (batching) b.EnableBatching(16, 2ms);
  return b.Build();
}

TEST(Serving, HealthMetadataAndPredictionsMatchTheBundle) {
  auto bundle = testing::NumericLogisticBundle(4);
  auto server = StartWith(bundle);
  Client client("127.0.0.1:" + std::to_string(server->grpc_port()));
  EXPECT_TRUE(client.ServerLive());
  EXPECT_TRUE(client.ServerReady());
  EXPECT_TRUE(client.ModelReady("m"));
  EXPECT_TRUE(client.ModelReady("m", "1"));
  EXPECT_FALSE(client.ModelReady("nope"));
  const auto info = client.ModelMetadata("m");
  EXPECT_EQ(info.platform, "escala_bundle");
  // Inputs are listed by name (the "features" matrix form is accepted, not advertised).
  ASSERT_EQ(info.inputs.size(), 4u);
  EXPECT_EQ(info.inputs[0].name, "f0");
  EXPECT_EQ(info.inputs[3].name, "f3");
  EXPECT_EQ(info.inputs[0].shape, (std::vector<std::int64_t>{-1}));
  ASSERT_EQ(info.outputs.size(), 3u);

  MatrixF x(3, 4);
  for (std::int64_t i = 0; i < 12; ++i) x.data()[i] = static_cast<float>(i % 5) - 2;
  const auto r = client.InferFeatures("m", std::as_const(x).view());
  EXPECT_EQ(r.model_version, "1");
  io::Predictor predictor(bundle);
  features::RawBatch batch;
  batch.rows = 3;
  for (int j = 0; j < 4; ++j) {
    batch.columns.push_back(features::RawColumn{features::RawColumn::Kind::kFloat32, x.data() + j,
                                                4, nullptr, nullptr});
  }
  io::PredictScratch ps;
  MatrixF p(3, 1);
  predictor.Predict(batch, p.view(), ps);
  const auto& probs = r.output("probabilities");
  ASSERT_EQ(probs.fp32.size(), 6u);
  for (int i = 0; i < 3; ++i)
    EXPECT_FLOAT_EQ(probs.fp32[static_cast<std::size_t>(2 * i + 1)], p(i, 0));
  EXPECT_EQ(r.output("label").bytes.size(), 3u);
  // Per-column form and typed contents give the same answer.
  ClientOptions typed;
  typed.typed_contents = true;
  Client typed_client("127.0.0.1:" + std::to_string(server->grpc_port()), typed);
  std::vector<Tensor> cols;
  for (int j = 0; j < 4; ++j) {
    std::vector<float> v;
    for (int i = 0; i < 3; ++i) v.push_back(x(i, j));
    cols.push_back(Tensor::Fp32("f" + std::to_string(j), {3}, v));
  }
  const auto r2 = typed_client.Infer("m", cols, {"probabilities"});
  ASSERT_EQ(r2.outputs.size(), 1u);
  EXPECT_EQ(r2.output("probabilities").fp32, probs.fp32);

  int status = 0;
  EXPECT_NE(HttpGet(server->http_port(), "/metrics", &status)
                .find("escala_inference_request_success_total{model=\"m\",version=\"1\"} 2"),
            std::string::npos);
  EXPECT_EQ(status, 200);
  HttpGet(server->http_port(), "/v2/health/ready", &status);
  EXPECT_EQ(status, 200);
  server->Shutdown(1s);
}

// A tree bundle advertises a "contributions" output, returns it only when asked, and each row's
// contributions sum to the log-odds of the probability it returns beside them.
TEST(Serving, TreesReturnContributionsWhenAsked) {
  auto bundle = testing::MixedTreesBundle();
  auto server = StartWith(bundle);
  Client client("127.0.0.1:" + std::to_string(server->grpc_port()));
  const auto info = client.ModelMetadata("m");
  const std::int64_t width = bundle->pipeline.num_outputs() + 1;
  bool advertised = false;
  for (const auto& o : info.outputs) {
    if (o.name != "contributions") continue;
    advertised = true;
    EXPECT_EQ(o.shape, (std::vector<std::int64_t>{-1, width}));
  }
  EXPECT_TRUE(advertised);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<Tensor> inputs = {Tensor::Fp64("x", {0.8, -0.8, nan}),
                                      Tensor::Fp64("y", {0.1, 0.2, 0.3}),
                                      Tensor::Bytes("color", {"red", "blue", "green"})};
  EXPECT_EQ(client.Infer("m", inputs).outputs.size(), 3u);  // not unless asked
  const auto r = client.Infer("m", inputs, {"probabilities", "contributions"});
  const auto& phi = r.output("contributions").fp32;
  const auto& p = r.output("probabilities").fp32;
  ASSERT_EQ(phi.size(), static_cast<std::size_t>(3 * width));
  for (std::size_t i = 0; i < 3; ++i) {
    double sum = 0;
    for (std::int64_t j = 0; j < width; ++j) sum += phi[i * static_cast<std::size_t>(width) + j];
    EXPECT_NEAR(sum, std::log(p[2 * i + 1] / p[2 * i]), 1e-3) << "row " << i;
  }
  // The rows follow the trees' rule: x > 0 unless blue, and a missing x is "yes".
  EXPECT_GT(p[1], 0.5f);
  EXPECT_GT(p[3], 0.5f);
  EXPECT_GT(p[5], 0.5f);
  server->Shutdown(1s);
}

// A second server on a port in use fails (gRPC would share it through SO_REUSEPORT, and the
// kernel would split the clients between the two servers).
TEST(Serving, ASecondServerOnAPortInUseFailsWithAddressInUse) {
  auto first = StartWith(testing::NumericLogisticBundle(4));
  const std::string grpc = "127.0.0.1:" + std::to_string(first->grpc_port());
  const std::string http = "127.0.0.1:" + std::to_string(first->http_port());
  for (const auto& [g, h, taken] : {std::tuple{grpc, std::string("127.0.0.1:0"), grpc},
                                    std::tuple{std::string("127.0.0.1:0"), http, http}}) {
    try {
      PredictionServer::Builder().SetGrpcAddress(g).SetHttpAddress(h).Build();
      ADD_FAILURE() << "a second server started on " << taken;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnavailable) << e.what();
      EXPECT_NE(std::string(e.what()).find(taken + ": address in use"), std::string::npos)
          << e.what();
    }
  }
}

// Idle connections and requests sent halfway hold no resource that a probe needs: the liveness
// and readiness probes and a Prometheus scrape still answer at once (with cpp-httplib's pool of 8
// threads, 8 such connections blocked them).
TEST(Serving, HttpProbesAnswerWhileManyConnectionsAreIdleOrHalfSent) {
  auto server = StartWith(testing::NumericLogisticBundle(4));
  const int port = server->http_port();
  std::vector<std::unique_ptr<testing::RawConnection>> held;
  for (int i = 0; i < 128; ++i) {
    auto c = std::make_unique<testing::RawConnection>(port, 500ms);
    if (i % 2 == 1) c->Send("GET /metrics HTTP/1.1\r\nHost: local");  // half a request
    held.push_back(std::move(c));
  }
  std::this_thread::sleep_for(100ms);  // the server has seen them
  for (const std::string path : {"/v2/health/live", "/v2/health/ready", "/metrics"}) {
    const auto start = std::chrono::steady_clock::now();
    const auto r = testing::HttpGet(port, path, 2s);
    EXPECT_EQ(r.status, 200) << path << " did not answer within 2 s";
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << path;
  }
  held.clear();
  server->Shutdown(1s);
}

TEST(Serving, ErrorsMapToGrpcStatusCodes) {
  auto server = StartWith(testing::MixedSoftmaxBundle());
  Client client("127.0.0.1:" + std::to_string(server->grpc_port()));
  auto code_of = [&](const std::function<void()>& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::kOk;
  };
  EXPECT_EQ(code_of([&] { client.Infer("missing", {Tensor::Fp64("x", {1})}); }),
            ErrorCode::kNotFound);
  EXPECT_EQ(code_of([&] { client.Infer("m", {Tensor::Fp64("x", {1})}, {}, "7"); }),
            ErrorCode::kNotFound);
  EXPECT_EQ(code_of([&] { client.Infer("m", {Tensor::Fp64("x", {1})}); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { client.ModelMetadata("missing"); }), ErrorCode::kNotFound);
  // A valid mixed request, with an unseen category (ignored by the pipeline's policy).
  const auto r = client.Infer("m", {Tensor::Fp64("x", {0.5, 1.0}), Tensor::Fp64("y", {0.0, 2.0}),
                                    Tensor::Bytes("color", {"green", "purple"})});
  EXPECT_EQ(r.output("label").bytes.size(), 2u);
  EXPECT_EQ(r.output("probabilities").shape, (std::vector<std::int64_t>{2, 3}));
  server->Shutdown(1s);
}

TEST(Serving, DynamicBatchingMergesConcurrentRequests) {
  auto bundle = testing::NumericLogisticBundle(4);
  auto server = StartWith(bundle, /*batching=*/true);
  Client client("127.0.0.1:" + std::to_string(server->grpc_port()));
  std::vector<std::future<InferResult>> futures;
  for (int i = 0; i < 64; ++i) {
    futures.push_back(client.InferAsync(
        "m", {Tensor::Fp32("features", {1, 4}, {static_cast<float>(i), 1, 2, 3})}));
  }
  io::Predictor predictor(bundle);
  for (int i = 0; i < 64; ++i) {
    const auto r = futures[static_cast<std::size_t>(i)].get();
    const float row[4] = {static_cast<float>(i), 1, 2, 3};
    features::RawBatch batch;
    batch.rows = 1;
    for (int j = 0; j < 4; ++j)
      batch.columns.push_back({features::RawColumn::Kind::kFloat32, row + j, 4, nullptr, nullptr});
    io::PredictScratch ps;
    MatrixF p(1, 1);
    predictor.Predict(batch, p.view(), ps);
    // A batched execution multiplies a larger matrix, whose kernel rounds differently in the
    // last bits of float32 (about 1e-6 relative) than the one-row product.
    EXPECT_NEAR(r.output("probabilities").fp32[1], p(0, 0), 1e-5f * std::abs(p(0, 0)) + 1e-7f) << i;
  }
  const std::string metrics = server->MetricsText();
  const std::string key = "escala_inference_exec_count_total{model=\"m\",version=\"1\"} ";
  const auto pos = metrics.find(key);
  ASSERT_NE(pos, std::string::npos);
  const int executions = std::stoi(metrics.substr(pos + key.size()));
  EXPECT_LT(executions, 64) << "no request was batched with another";
  server->Shutdown(1s);
}

TEST(Serving, HotSwapUnderLoadFailsNoRequest) {
  testing::TempDir repo;
  auto put = [&](int version, const std::string& bytes) {
    const auto dir = repo.path() / "m" / std::to_string(version);
    std::filesystem::create_directories(dir);
    WriteFileAtomic((dir / "model.bundle").string(), bytes);
  };
  put(1, testing::NumericLogisticBundle(4, 1)->SerializeToString());
  auto server = PredictionServer::Builder()
                    .SetGrpcAddress("127.0.0.1:0")
                    .SetHttpAddress("")
                    .SetModelRepository(repo.path().string())
                    .SetPollInterval(30ms)
                    .Build();
  Client client("127.0.0.1:" + std::to_string(server->grpc_port()));
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::string last_error;
  std::set<std::string> versions_seen;
  std::mutex mu;
  std::thread load([&] {
    const auto deadline = std::chrono::steady_clock::now() + 20s;  // bounded
    while (!stop.load() && std::chrono::steady_clock::now() < deadline) {
      try {
        const auto r = client.Infer("m", {Tensor::Fp32("features", {1, 4}, {1, 2, 3, 4})});
        ++ok;
        std::lock_guard lock(mu);
        versions_seen.insert(r.model_version);
      } catch (const Error& e) {
        ++failed;
        std::lock_guard lock(mu);
        last_error = e.what();
      }
    }
  });
  auto wait_for_version = [&](const std::string& v) {
    for (int i = 0; i < 400; ++i) {
      {
        std::lock_guard lock(mu);
        if (versions_seen.count(v)) return true;
      }
      std::this_thread::sleep_for(10ms);
    }
    return false;
  };
  ASSERT_TRUE(wait_for_version("1"));
  put(2, testing::NumericLogisticBundle(4, 2)->SerializeToString());
  EXPECT_TRUE(wait_for_version("2"));
  put(3, testing::NumericLogisticBundle(4, 3)->SerializeToString());
  EXPECT_TRUE(wait_for_version("3"));
  // A corrupt version 4 must not take over: version 3 keeps serving.
  std::string corrupt = testing::NumericLogisticBundle(4, 4)->SerializeToString();
  corrupt[corrupt.size() / 2] ^= 0x55;
  put(4, corrupt);
  std::this_thread::sleep_for(300ms);
  const int ok_before = ok.load();
  std::this_thread::sleep_for(200ms);
  stop = true;
  load.join();
  EXPECT_EQ(failed.load(), 0) << last_error;
  EXPECT_GT(ok.load(), ok_before);
  EXPECT_EQ(client.Infer("m", {Tensor::Fp32("features", {1, 4}, {1, 2, 3, 4})}).model_version, "3");
  EXPECT_NE(server->MetricsText().find("escala_model_load_failures_total{model=\"m\"} 1"),
            std::string::npos)
      << server->MetricsText();
  bool reported = false;
  for (const auto& m : server->Index()) reported |= m.version == "4" && m.state == "UNAVAILABLE";
  EXPECT_TRUE(reported);
  server->Shutdown(1s);
}

// Chaos under load: 50 new versions appear while four clients keep calling; one in five is
// damaged (a flipped byte, cut short, empty, or not a bundle). No request fails, every answer is
// the one its reported version gives, each damaged version is refused (and counted) while the
// previous good one keeps serving, and the last good version ends up served.
TEST(ServingChaos, FiftySwapsOneInFiveDamagedFailNoRequest) {
  constexpr int kVersions = 51;
  testing::TempDir repo;
  auto put = [&](int version, const std::string& bytes) {
    const auto dir = repo.path() / "m" / std::to_string(version);
    std::filesystem::create_directories(dir);
    WriteFileAtomic((dir / "model.bundle").string(), bytes);
  };
  // The expected answer of each version for the one row the clients send.
  const std::vector<float> row = {1, -2, 0.5f, 3};
  std::vector<float> expected(kVersions + 1, -1);
  auto good = [&](int v) {
    auto bundle = testing::NumericLogisticBundle(4, static_cast<std::uint64_t>(v));
    io::Predictor predictor(bundle);
    features::RawBatch batch;
    batch.rows = 1;
    for (int j = 0; j < 4; ++j) {
      batch.columns.push_back(features::RawColumn{features::RawColumn::Kind::kFloat32,
                                                  row.data() + j, 1, nullptr, nullptr});
    }
    io::PredictScratch ps;
    MatrixF p(1, 1);
    predictor.Predict(batch, p.view(), ps);
    expected[static_cast<std::size_t>(v)] = p(0, 0);
    return bundle->SerializeToString();
  };
  auto damaged = [&](int v) {
    std::string bytes = good(v);
    expected[static_cast<std::size_t>(v)] = -1;
    switch ((v / 5) % 4) {
      case 0:
        bytes[bytes.size() / 3] ^= 0x40;
        return bytes;
      case 1:
        return bytes.substr(0, bytes.size() / 2);
      case 2:
        return std::string();
      default:
        return std::string("not a bundle at all\n");
    }
  };
  put(1, good(1));
  auto server = PredictionServer::Builder()
                    .SetGrpcAddress("127.0.0.1:0")
                    .SetHttpAddress("")
                    .SetModelRepository(repo.path().string())
                    .SetPollInterval(20ms)
                    .Build();
  const std::string address = "127.0.0.1:" + std::to_string(server->grpc_port());
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0}, wrong{0}, latest_seen{1};
  std::mutex mu;
  std::string last_problem;
  auto client_loop = [&] {
    Client client(address);
    const auto deadline = std::chrono::steady_clock::now() + 60s;  // bounded
    while (!stop.load() && std::chrono::steady_clock::now() < deadline) {
      try {
        const auto r = client.Infer("m", {Tensor::Fp32("features", {1, 4}, row)});
        const int v = std::stoi(r.model_version);
        const float p = r.output("probabilities").fp32.at(1);
        if (v < 1 || v > kVersions || expected[static_cast<std::size_t>(v)] != p) {
          ++wrong;
          std::lock_guard lock(mu);
          last_problem = fmt::format("version {} answered {}", v, p);
        }
        int seen = latest_seen.load();
        while (v > seen && !latest_seen.compare_exchange_weak(seen, v)) {
        }
        ++ok;
      } catch (const Error& e) {
        ++failed;
        std::lock_guard lock(mu);
        last_problem = e.what();
      }
    }
  };
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) clients.emplace_back(client_loop);
  int damaged_count = 0;
  for (int v = 2; v <= kVersions; ++v) {
    const bool bad = v % 5 == 0;
    put(v, bad ? damaged(v) : good(v));
    damaged_count += bad ? 1 : 0;
    if (bad) {
      // Tried and refused before the next version hides it (the latest policy would skip it).
      auto refused = [&] {
        for (const auto& m : server->Index()) {
          if (m.version == std::to_string(v) && m.state == "UNAVAILABLE") return true;
        }
        return false;
      };
      for (int i = 0; i < 500 && !refused(); ++i) std::this_thread::sleep_for(10ms);
      EXPECT_TRUE(refused()) << "damaged version " << v << " was not refused";
      continue;
    }
    // Each good version is served before the next appears (bounded wait).
    for (int i = 0; i < 500 && latest_seen.load() < v; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_GE(latest_seen.load(), v) << "version " << v << " was not served";
  }
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0) << last_problem;
  EXPECT_EQ(wrong.load(), 0) << last_problem;
  EXPECT_GT(ok.load(), kVersions);
  Client client(address);
  EXPECT_EQ(client.Infer("m", {Tensor::Fp32("features", {1, 4}, row)}).model_version,
            std::to_string(kVersions));
  EXPECT_NE(server->MetricsText().find(
                fmt::format("escala_model_load_failures_total{{model=\"m\"}} {}", damaged_count)),
            std::string::npos)
      << server->MetricsText();
  server->Shutdown(1s);
}

// A server on a free loopback port over `repo`, loading models at start and on request only.
std::unique_ptr<PredictionServer> ServeRepository(const testing::TempDir& repo) {
  return PredictionServer::Builder()
      .SetGrpcAddress("127.0.0.1:0")
      .SetHttpAddress("")
      .SetModelRepository(repo.path().string())
      .Build();
}

TEST(Serving, RepositoryLoadAndUnloadOnRequest) {
  testing::TempDir repo;
  std::filesystem::create_directories(repo.path() / "m" / "1");
  testing::NumericLogisticBundle(4)->Save((repo.path() / "m" / "1" / "model.bundle").string());
  auto server = ServeRepository(repo);
  Client client("127.0.0.1:" + std::to_string(server->grpc_port()));
  EXPECT_TRUE(client.ModelReady("m"));
  client.UnloadModel("m");
  EXPECT_FALSE(client.ModelReady("m"));
  EXPECT_FALSE(client.ServerReady());
  client.LoadModel("m");
  EXPECT_TRUE(client.ModelReady("m"));
  try {
    client.LoadModel("absent");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
  server->Shutdown(1s);
}

// A bundle rewritten in place with the same size and mtime (a copy that preserves times) is a
// new model: an explicit load reloads it (the poller sees its changed ctime).
TEST(Serving, ABundleRewrittenInPlaceWithTheSameSizeAndMtimeIsReloaded) {
  testing::TempDir repo;
  const auto path = repo.path() / "m" / "1" / "model.bundle";
  std::filesystem::create_directories(path.parent_path());
  const std::string a = testing::NumericLogisticBundle(4, 1)->SerializeToString();
  const std::string b = testing::NumericLogisticBundle(4, 2)->SerializeToString();
  ASSERT_EQ(a.size(), b.size());
  ASSERT_NE(a, b);
  testing::WriteFile(path.string(), a);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  auto server = ServeRepository(repo);
  Client client("127.0.0.1:" + std::to_string(server->grpc_port()));
  const auto x = Tensor::Fp32("features", {1, 4}, {1, 2, 3, 4});
  const auto before = client.Infer("m", {x}).outputs[0].fp32;
  // Rewrite in place (same inode), then put the old mtime back.
  testing::WriteFile(path.string(), b);
  const timespec times[2] = {st.st_atim, st.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  client.LoadModel("m");
  const auto after = client.Infer("m", {x}).outputs[0].fp32;
  EXPECT_NE(before, after);
  server->Shutdown(1s);
}

TEST(Serving, ShutdownDrainsInFlightRequestsAndRefusesNewOnes) {
  // A long batching delay keeps requests in flight while the shutdown starts.
  auto server = PredictionServer::Builder()
                    .SetGrpcAddress("127.0.0.1:0")
                    .SetHttpAddress("127.0.0.1:0")
                    .AddModel("m", testing::NumericLogisticBundle(4))
                    .EnableBatching(1000, 2000ms)
                    .Build();
  Client client("127.0.0.1:" + std::to_string(server->grpc_port()));
  ASSERT_TRUE(client.ServerReady());  // connected before the requests go out
  std::vector<std::future<InferResult>> inflight;
  for (int i = 0; i < 8; ++i) {
    inflight.push_back(client.InferAsync("m", {Tensor::Fp32("features", {1, 4}, {1, 2, 3, 4})}));
  }
  std::this_thread::sleep_for(500ms);
  std::thread stopper([&] { server->Shutdown(5s); });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(server->ready());
  try {
    client.Infer("m", {Tensor::Fp32("features", {1, 4}, {1, 2, 3, 4})});
    FAIL() << "a request during the drain was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable) << e.what();
  }
  for (auto& f : inflight) EXPECT_NO_THROW(f.get());
  stopper.join();
}

}  // namespace
}  // namespace escala::serving

namespace escala::serving {
namespace {

TEST(ServingSecurity, TlsAndMutualTls) {
  testing::TempDir dir;
  testing::TestCerts certs;
  std::string why;
  if (!testing::GenerateTestCerts(dir.path().string(), &certs, &why)) GTEST_SKIP() << why;
  auto bundle = testing::NumericLogisticBundle(4);
  TlsOptions tls;
  tls.enabled = true;
  tls.cert_file = certs.cert;
  tls.key_file = certs.key;
  tls.ca_file = certs.ca;
  tls.mutual = true;
  auto server = PredictionServer::Builder()
                    .SetGrpcAddress("127.0.0.1:0")
                    .SetHttpAddress("")
                    .SetTls(tls)
                    .AddModel("m", bundle)
                    .Build();
  const std::string target = "127.0.0.1:" + std::to_string(server->grpc_port());
  ClientOptions good;
  good.tls = tls;  // the same CA, and the same certificate as the client's
  good.max_attempts = 1;
  good.timeout = std::chrono::milliseconds(5000);
  Client client(target, good);
  EXPECT_TRUE(client.ServerReady());
  EXPECT_EQ(client.Infer("m", {Tensor::Fp32("features", {1, 4}, {1, 2, 3, 4})}).model_version, "1");
  // No client certificate: refused by mutual TLS.
  ClientOptions no_cert = good;
  no_cert.tls.mutual = false;
  no_cert.tls.cert_file.clear();
  no_cert.tls.key_file.clear();
  EXPECT_THROW(Client(target, no_cert).ServerReady(), Error);
  // A server certificate from an unknown CA: refused by the client.
  ClientOptions rogue = good;
  rogue.tls.ca_file = certs.rogue_ca;
  EXPECT_THROW(Client(target, rogue).ServerReady(), Error);
  // Plain text to a TLS server fails.
  ClientOptions plain;
  plain.max_attempts = 1;
  plain.timeout = std::chrono::milliseconds(2000);
  EXPECT_THROW(Client(target, plain).ServerReady(), Error);
  server->Shutdown(std::chrono::seconds(1));
}

TEST(ServingLimits, OversizedRequestsAreResourceExhausted) {
  auto server = PredictionServer::Builder()
                    .SetGrpcAddress("127.0.0.1:0")
                    .SetHttpAddress("")
                    .SetMaxMessageBytes(64 << 10)
                    .AddModel("m", testing::NumericLogisticBundle(4))
                    .Build();
  Client client("127.0.0.1:" + std::to_string(server->grpc_port()));
  std::vector<float> big(4 * 40000, 1.0f);  // 640 KB > 64 KB
  try {
    client.Infer("m", {Tensor::Fp32("features", {40000, 4}, big)});
    FAIL() << "an oversized request was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kResourceExhausted) << e.what();
  }
  // The server still serves normal requests.
  EXPECT_NO_THROW(client.Infer("m", {Tensor::Fp32("features", {1, 4}, {1, 2, 3, 4})}));
  server->Shutdown(std::chrono::seconds(1));
}

}  // namespace
}  // namespace escala::serving
