// A prediction server with its REST endpoint alone (no gRPC): every thread in it is escala's own
// (the epoll endpoint, the REST workers, the batcher, the model manager), so ThreadSanitizer can
// check the serving path end to end with Debian's uninstrumented gRPC (scripts/tsan-tests.sh).
// Clients post requests from several threads while versions are swapped in, with batching on.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/serving/server.h"
#include "test_util/bundles.h"
#include "test_util/http_client.h"

namespace escala::serving {
namespace {

using namespace std::chrono_literals;

constexpr char kRequest[] =
    R"({"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 4],
                    "data": [1, 2, 3, 4, -1, 0, 0.5, 2]}]})";

testing::HttpResponse Post(int port, const std::string& path, const std::string& body) {
  testing::RawConnection c(port, 5s);
  c.Send("POST " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body);
  return c.Read(10s);
}

TEST(RestOnly, ServesWithoutAGrpcPort) {
  auto server = PredictionServer::Builder()
                    .SetGrpcAddress("")
                    .SetHttpAddress("127.0.0.1:0")
                    .AddModel("m", testing::NumericLogisticBundle(4))
                    .Build();
  EXPECT_EQ(server->grpc_port(), 0);
  ASSERT_GT(server->http_port(), 0);
  EXPECT_EQ(testing::HttpGet(server->http_port(), "/v2/health/ready").status, 200);
  const auto r = Post(server->http_port(), "/v2/models/m/infer", kRequest);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"probabilities\",\"datatype\":\"FP32\",\"shape\":[2,2]"),
            std::string::npos)
      << r.body;
  server->Shutdown(std::chrono::milliseconds(0));
  EXPECT_THROW(PredictionServer::Builder().SetGrpcAddress("").SetHttpAddress("").Build(), Error);
}

// Four clients, 40 requests each, against batching and 20 version swaps: every request is
// answered 200 by some version.
TEST(RestOnly, ConcurrentRequestsDuringVersionSwapsAllSucceed) {
  auto server = PredictionServer::Builder()
                    .SetGrpcAddress("")
                    .SetHttpAddress("127.0.0.1:0")
                    .EnableBatching(16, 2ms)
                    .AddModel("m", testing::NumericLogisticBundle(4, 1))
                    .Build();
  const int port = server->http_port();
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < 40; ++i) {
        const auto r = Post(port, "/v2/models/m/infer", kRequest);
        (r.status == 200 ? ok : failed).fetch_add(1);
      }
    });
  }
  for (int v = 2; v <= 21; ++v) {
    server->AddModel("m", testing::NumericLogisticBundle(4, static_cast<std::uint64_t>(v)), v);
    std::this_thread::sleep_for(1ms);
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(ok.load(), 160);
  server->Shutdown(std::chrono::milliseconds(100));
}

}  // namespace
}  // namespace escala::serving
