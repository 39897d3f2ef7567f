// The HTTP endpoint (metrics, health, request bodies and the api handler) over real loopback
// sockets: the responses, keep-alive, pipelining, malformed and oversized requests, the deadlines,
// the connection cap, and probes that answer while many connections are held idle or half-sent or
// while the handler holds requests. Short limits keep it fast.
#include "serving/http_endpoint.h"

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "escala/core/error.h"
#include "test_util/http_client.h"
#include "test_util/temp_dir.h"

namespace escala::serving::internal {
namespace {

using namespace std::chrono_literals;
using testing::HttpGet;
using testing::RawConnection;

struct Fixture {
  std::atomic<bool> ready{true};
  std::unique_ptr<HttpEndpoint> endpoint;
  explicit Fixture(HttpLimits limits = HttpLimits(), const std::string& address = "127.0.0.1:0",
                   std::function<void(HttpRequest, HttpResponder)> api = nullptr) {
    endpoint = std::make_unique<HttpEndpoint>(
        address,
        HttpEndpoint::Handlers{[] { return std::string("metric_total 1\n"); },
                               [this] { return ready.load(); }, std::move(api)},
        limits);
  }
  int port() const { return endpoint->port(); }
};

// An api handler that echoes method, path and body at once, or, for paths under /slow, holds
// the request until Release() and answers it from another thread.
struct EchoApi {
  std::mutex mu;
  std::vector<std::pair<HttpRequest, HttpResponder>> held;
  std::vector<std::thread> threads;
  ~EchoApi() {
    for (auto& t : threads) t.join();
  }
  std::function<void(HttpRequest, HttpResponder)> Handler() {
    return [this](HttpRequest req, HttpResponder respond) {
      if (!req.path.starts_with("/slow")) return respond(Echo(req));
      std::lock_guard lock(mu);
      held.emplace_back(std::move(req), std::move(respond));
    };
  }
  static HttpReply Echo(const HttpRequest& req) {
    return HttpReply{200, "text/plain", req.method + " " + req.path + " " + req.body, {}};
  }
  std::size_t Held() {
    std::lock_guard lock(mu);
    return held.size();
  }
  void Release() {
    std::lock_guard lock(mu);
    for (auto& [req, respond] : held) {
      threads.emplace_back(
          [req = std::move(req), respond = std::move(respond)] { respond(Echo(req)); });
    }
    held.clear();
  }
};

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout = 2s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  return done();
}

std::string Get(const std::string& path, const std::string& headers = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n" + headers + "\r\n";
}

TEST(HttpEndpoint, ServesMetricsAndHealthWithTheirBodiesAndTypes) {
  Fixture f;
  auto r = HttpGet(f.port(), "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "metric_total 1\n");
  EXPECT_EQ(r.Header("Content-Type"), "text/plain; version=0.0.4");
  r = HttpGet(f.port(), "/v2/health/live");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "live\n");
  EXPECT_EQ(r.Header("Content-Type"), "text/plain");
  r = HttpGet(f.port(), "/v2/health/ready?verbose=1");  // a query string is ignored
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ready\n");
  f.ready = false;
  r = HttpGet(f.port(), "/v2/health/ready");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "not ready\n");
}

TEST(HttpEndpoint, UnknownPathsAre404AndOtherMethods405) {
  Fixture f;
  EXPECT_EQ(HttpGet(f.port(), "/").status, 404);
  EXPECT_EQ(HttpGet(f.port(), "/v2/health").status, 404);
  RawConnection c(f.port());
  ASSERT_TRUE(c.Send("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  const auto r = c.Read();
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.Header("Allow"), "GET, HEAD");
  // HEAD: the headers of GET, no body (the next response on the connection follows at once).
  ASSERT_TRUE(c.Send("HEAD /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"));
  const auto head = c.Read(2s, /*head_only=*/true);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.Header("Content-Length"), "5");
  ASSERT_TRUE(c.Send(Get("/v2/health/live")));
  EXPECT_EQ(c.Read().body, "live\n");
}

TEST(HttpEndpoint, KeepAliveServesRequestsOneAfterAnotherAndPipelined) {
  Fixture f;
  RawConnection c(f.port());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(c.Send(Get("/v2/health/live")));
    const auto r = c.Read();
    EXPECT_EQ(r.status, 200) << i;
    EXPECT_EQ(r.Header("Connection"), "keep-alive");
  }
  // Three requests in one write, the last cut in two: three responses, in order.
  const std::string three = Get("/metrics") + Get("/nope") + Get("/v2/health/ready");
  ASSERT_TRUE(c.Send(three.substr(0, three.size() - 5)));
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(c.Send(three.substr(three.size() - 5)));
  EXPECT_EQ(c.Read().body, "metric_total 1\n");
  EXPECT_EQ(c.Read().status, 404);
  EXPECT_EQ(c.Read().body, "ready\n");
}

TEST(HttpEndpoint, ConnectionCloseAndHttp10CloseTheConnection) {
  Fixture f;
  for (const std::string& request : {Get("/v2/health/live", "Connection: close\r\n"),
                                     std::string("GET /v2/health/live HTTP/1.0\r\n\r\n")}) {
    RawConnection c(f.port());
    ASSERT_TRUE(c.Send(request));
    const auto r = c.Read();
    EXPECT_EQ(r.status, 200) << request;
    EXPECT_EQ(r.Header("Connection"), "close") << request;
    EXPECT_TRUE(c.WaitClosed(2s)) << request;
  }
  // HTTP/1.0 asking for keep-alive keeps it.
  RawConnection c(f.port());
  ASSERT_TRUE(c.Send("GET /v2/health/live HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  EXPECT_EQ(c.Read().Header("Connection"), "keep-alive");
  ASSERT_TRUE(c.Send(Get("/v2/health/live")));
  EXPECT_EQ(c.Read().status, 200);
}

std::string Post(const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

TEST(HttpEndpoint, BodiesAreReadWholeAndTheConnectionKeptAlive) {
  EchoApi api;
  Fixture f(HttpLimits(), "127.0.0.1:0", api.Handler());
  RawConnection c(f.port());
  // A GET to a built-in path with a body: the body is read and skipped, the connection stays.
  ASSERT_TRUE(c.Send(Get("/v2/health/live", "Content-Length: 3\r\n") + "abc"));
  auto r = c.Read();
  EXPECT_EQ(r.body, "live\n");
  EXPECT_EQ(r.Header("Connection"), "keep-alive");
  // A body sent in pieces, with the head cut too.
  const std::string big(300'000, 'x');
  const std::string request = Post("/v2/echo", big);
  ASSERT_TRUE(c.Send(request.substr(0, 20)));
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(c.Send(request.substr(20, 100'000)));
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(c.Send(request.substr(100'020)));
  r = c.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "POST /v2/echo " + big);
  // Pipelined: two POSTs and a GET in one write, answered in order.
  ASSERT_TRUE(c.Send(Post("/v2/a?q=1", "one") + Post("/v2/b", "") + Get("/v2/c")));
  EXPECT_EQ(c.Read().body, "POST /v2/a one");
  EXPECT_EQ(c.Read().body, "POST /v2/b ");
  EXPECT_EQ(c.Read().body, "GET /v2/c ");
  // HEAD through the handler: its headers, no body.
  ASSERT_TRUE(c.Send("HEAD /v2/h HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(c.Read(2s, /*head_only=*/true).Header("Content-Length"), "11");  // "HEAD /v2/h "
  ASSERT_TRUE(c.Send(Get("/v2/after")));
  EXPECT_EQ(c.Read().body, "GET /v2/after ");
}

// A client that sends Expect: 100-continue gets the go-ahead before it sends the body.
TEST(HttpEndpoint, ExpectContinueIsAnsweredBeforeTheBody) {
  EchoApi api;
  Fixture f(HttpLimits(), "127.0.0.1:0", api.Handler());
  RawConnection c(f.port());
  ASSERT_TRUE(c.Send("POST /v2/e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"));
  EXPECT_EQ(c.Read().status, 100);
  ASSERT_TRUE(c.Send("abc"));
  EXPECT_EQ(c.Read().body, "POST /v2/e abc");
}

TEST(HttpEndpoint, BodiesWithoutALengthAre411AndOverTheLimit413) {
  HttpLimits limits;
  limits.max_body_bytes = 1000;
  EchoApi api;
  Fixture f(limits, "127.0.0.1:0", api.Handler());
  for (const std::string bad :
       {"POST /v2/x HTTP/1.1\r\nHost: x\r\n\r\n", "PUT /v2/x HTTP/1.1\r\nHost: x\r\n\r\n"}) {
    RawConnection c(f.port());
    ASSERT_TRUE(c.Send(bad));
    const auto r = c.Read();
    EXPECT_EQ(r.status, 411) << bad;
    EXPECT_EQ(r.Header("Content-Type"), "application/json");
    EXPECT_NE(r.body.find("\"error\":\"Content-Length: required for a request body (or "
                          "Transfer-Encoding: chunked)"),
              std::string::npos)
        << r.body;
    EXPECT_TRUE(c.WaitClosed(2s)) << bad;
  }
  RawConnection c(f.port());
  ASSERT_TRUE(c.Send(Post("/v2/x", std::string(1001, 'y'))));
  const auto r = c.Read();
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.body, R"({"error":"Content-Length: the body exceeds the limit of 1000 bytes"})");
  EXPECT_TRUE(c.WaitClosed(2s));
  RawConnection huge(f.port());  // a length that does not fit in 64 bits
  ASSERT_TRUE(huge.Send("POST /v2/x HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"));
  EXPECT_EQ(huge.Read().status, 413);
  RawConnection two(f.port());  // two lengths that disagree
  ASSERT_TRUE(two.Send("POST /v2/x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"));
  EXPECT_EQ(two.Read().status, 400);
  RawConnection ok(f.port());
  ASSERT_TRUE(ok.Send(Post("/v2/x", std::string(1000, 'y'))));
  EXPECT_EQ(ok.Read().status, 200);
}

std::string Chunked(const std::string& path, const std::string& chunks,
                    const std::string& headers = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" + headers +
         "\r\n" + chunks;
}

// Chunked bodies (RFC 9112, 7.1) are decoded whatever pieces they arrive in: sizes in either case
// of hex, extensions and trailer fields ignored; what follows the body is the next request.
TEST(HttpEndpoint, ChunkedBodiesAreDecodedInAnyPieces) {
  EchoApi api;
  Fixture f(HttpLimits(), "127.0.0.1:0", api.Handler());
  const std::string big(70'000, 'z');
  const std::string chunks = "5;name=value\r\nhello\r\n1\r\n,\r\n" +
                             fmt::format("{:X}", big.size()) + "\r\n" + big +
                             "\r\n6 ;x\r\n world\r\n0\r\nTrailer: 1\r\nMore: 2\r\n\r\n";
  const std::string want = "POST /v2/c hello," + big + " world";
  const std::string request = Chunked("/v2/c", chunks);
  // Whole, then in pieces of 1 to 13 bytes (every boundary cut somewhere), then in three writes
  // with pauses, all on one keep-alive connection.
  RawConnection c(f.port());
  ASSERT_TRUE(c.Send(request));
  EXPECT_EQ(c.Read().body, want);
  for (std::size_t at = 0, step = 1; at < request.size(); at += step, step = step % 13 + 1) {
    ASSERT_TRUE(c.Send(request.substr(at, step)));
    if (at < 200) std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(c.Read().body, want);
  ASSERT_TRUE(c.Send(request.substr(0, 60)));
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(c.Send(request.substr(60, 40'000)));
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(c.Send(request.substr(40'060)));
  EXPECT_EQ(c.Read().body, want);
  // Pipelined behind a chunked body: a request with a length, then a GET.
  ASSERT_TRUE(
      c.Send(Chunked("/v2/a", "3\r\nabc\r\n0\r\n\r\n") + Post("/v2/b", "xy") + Get("/v2/c")));
  EXPECT_EQ(c.Read().body, "POST /v2/a abc");
  EXPECT_EQ(c.Read().body, "POST /v2/b xy");
  EXPECT_EQ(c.Read().body, "GET /v2/c ");
  // An empty body, and the go-ahead for a client that waits for it.
  ASSERT_TRUE(c.Send(Chunked("/v2/e", "0\r\n\r\n")));
  EXPECT_EQ(c.Read().body, "POST /v2/e ");
  ASSERT_TRUE(c.Send(Chunked("/v2/w", "", "Expect: 100-continue\r\n")));
  EXPECT_EQ(c.Read().status, 100);
  ASSERT_TRUE(c.Send("2\r\nok\r\n0\r\n\r\n"));
  EXPECT_EQ(c.Read().body, "POST /v2/w ok");
}

// Five one-byte chunks, each with a 1000-byte extension.
std::string FiveKilobytesOfExtensions() {
  std::string body;
  for (int i = 0; i < 5; ++i) body += "1;" + std::string(1000, 'e') + "\r\na\r\n";
  return body + "0\r\n\r\n";
}

// A malformed chunked body is 400, one over the limit 413, a coding other than chunked 400 or 501;
// each closes the connection.
TEST(HttpEndpoint, BadChunkedBodiesAndCodingsAreRefused) {
  HttpLimits limits;
  limits.max_body_bytes = 1000;
  EchoApi api;
  Fixture f(limits, "127.0.0.1:0", api.Handler());
  const std::string te = "POST /v2/x HTTP/1.1\r\nTransfer-Encoding: ";
  const std::pair<std::string, int> cases[] = {
      {Chunked("/v2/x", "zz\r\nab\r\n0\r\n\r\n"), 400},                 // not hex
      {Chunked("/v2/x", "\r\n"), 400},                                  // no size
      {Chunked("/v2/x", " 3\r\nabc\r\n0\r\n\r\n"), 400},                // whitespace before it
      {Chunked("/v2/x", "-3\r\nabc\r\n0\r\n\r\n"), 400},                // a sign
      {Chunked("/v2/x", "0x3\r\nabc\r\n0\r\n\r\n"), 400},               // a prefix
      {Chunked("/v2/x", "3\r\nabcd\r\n0\r\n\r\n"), 400},                // data longer than its size
      {Chunked("/v2/x", "3\r\nabc" + std::string(5000, ' ')), 400},     // no CRLF after the data
      {Chunked("/v2/x", "3;" + std::string(5000, 'e') + "\r\n"), 400},  // a line too long
      {Chunked("/v2/x", "0\r\n" + std::string(3000, 'T') + ": 1\r\n" + std::string(3000, 'U') +
                            ": 1\r\n\r\n"),
       400},                               // trailers too long
      {Chunked("/v2/x", "3E9\r\n"), 413},  // 1001 bytes
      {Chunked("/v2/x", "1F4\r\n" + std::string(500, 'a') + "\r\n1F5\r\n"), 413},  // 500 + 501
      {Chunked("/v2/x", "FFFFFFFFFFFFFFFFFFFF\r\n"), 413},                         // beyond 64 bits
      {te + "gzip\r\n\r\n", 400},  // chunked not last
      {te + "chunked, gzip\r\n\r\n", 400},
      {te + "chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400},  // both
      {Chunked("/v2/x", "5;\nX\r\nhello\r\n0\r\n\r\n"), 400},  // a bare LF in an extension
      {Chunked("/v2/x", "3 \r\nabc\r\n0\r\n\r\n"), 400},       // whitespace, no extension
      {Chunked("/v2/x", "0\r\nX\n\r\n"), 400},                 // a bare LF in the trailers
      {Chunked("/v2/x", "0\r\nno colon\r\n\r\n"), 400},        // a trailer that is no field
      {Chunked("/v2/x", FiveKilobytesOfExtensions()), 400},
      {te + "chunked, chunked\r\n\r\n0\r\n\r\n", 400},  // chunked twice
      {te + "\r\nContent-Length: 0\r\n\r\n", 400},      // an empty coding list
      {"POST /v2/x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {te + "gzip, chunked\r\n\r\n", 501},  // a coding not supported
      {te + "gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
  };
  for (const auto& [request, status] : cases) {
    RawConnection c(f.port());
    ASSERT_TRUE(c.Send(request));
    const auto r = c.Read();
    EXPECT_EQ(r.status, status) << request.substr(0, 120);
    EXPECT_TRUE(c.WaitClosed(2s)) << request.substr(0, 120);
  }
  RawConnection over(f.port());
  ASSERT_TRUE(over.Send(Chunked("/v2/x", "3E9\r\n")));
  EXPECT_EQ(over.Read().body,
            R"({"error":"Transfer-Encoding: chunked: the body exceeds the limit of 1000 bytes"})");
  RawConnection ok(f.port());  // exactly the limit, in two chunks
  ASSERT_TRUE(ok.Send(Chunked("/v2/x", "1F4\r\n" + std::string(500, 'a') + "\r\n1f4\r\n" +
                                           std::string(500, 'b') + "\r\n0\r\n\r\n")));
  EXPECT_EQ(ok.Read().status, 200);
}

// The handler's work runs elsewhere: held requests never delay probes or other requests, and
// their replies come back from other threads, in order on their connections.
TEST(HttpEndpoint, HeldRequestsDelayNeitherProbesNorOtherRequests) {
  EchoApi api;
  Fixture f(HttpLimits(), "127.0.0.1:0", api.Handler());
  RawConnection slow(f.port()), slow2(f.port());
  ASSERT_TRUE(slow.Send(Post("/slow/1", "a") + Get("/v2/next")));  // the GET waits behind it
  ASSERT_TRUE(slow2.Send(Post("/slow/2", "b")));
  ASSERT_TRUE(WaitFor([&] { return api.Held() == 2; }));
  EXPECT_EQ(HttpGet(f.port(), "/v2/health/live", 1s).status, 200);
  RawConnection other(f.port());
  ASSERT_TRUE(other.Send(Post("/v2/fast", "c")));
  EXPECT_EQ(other.Read().body, "POST /v2/fast c");
  EXPECT_EQ(slow.Read(100ms).status, 0);  // still held
  api.Release();
  EXPECT_EQ(slow.Read().body, "POST /slow/1 a");
  EXPECT_EQ(slow.Read().body, "GET /v2/next ");
  EXPECT_EQ(slow2.Read().body, "POST /slow/2 b");
}

// A reply for a connection that closed, or that comes after Stop, is dropped.
TEST(HttpEndpoint, RepliesAfterTheClientLeftOrAfterStopAreDropped) {
  EchoApi api;
  auto f = std::make_unique<Fixture>(HttpLimits(), "127.0.0.1:0", api.Handler());
  {
    RawConnection gone(f->port());
    ASSERT_TRUE(gone.Send(Post("/slow/gone", "x")));
    ASSERT_TRUE(WaitFor([&] { return api.Held() == 1; }));
  }
  std::this_thread::sleep_for(50ms);
  api.Release();
  EXPECT_EQ(HttpGet(f->port(), "/v2/health/live").status, 200);
  RawConnection held(f->port());
  ASSERT_TRUE(held.Send(Post("/slow/stop", "x")));
  ASSERT_TRUE(WaitFor([&] { return api.Held() == 1; }));
  const auto start = std::chrono::steady_clock::now();
  f->endpoint->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_TRUE(held.WaitClosed(1s));
  api.Release();  // replies into a stopped endpoint
  f.reset();      // and into a destroyed one
}

TEST(HttpEndpoint, OversizedHeadsAre431AndMalformedRequests400) {
  HttpLimits limits;
  limits.max_header_bytes = 1024;
  Fixture f(limits);
  {
    RawConnection c(f.port());
    ASSERT_TRUE(c.Send("GET /metrics HTTP/1.1\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n"));
    EXPECT_EQ(c.Read().status, 431);
    EXPECT_TRUE(c.WaitClosed(2s));
  }
  for (const std::string bad :
       {"GARBAGE\r\n\r\n", "GET /metrics HTTP/1.1\r\nno colon\r\n\r\n",
        "GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nContent-Length: -1\r\n\r\n"}) {
    RawConnection c(f.port());
    ASSERT_TRUE(c.Send(bad));
    EXPECT_EQ(c.Read().status, 400) << bad;
    EXPECT_TRUE(c.WaitClosed(2s)) << bad;
  }
  RawConnection c(f.port());
  ASSERT_TRUE(c.Send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
  EXPECT_EQ(c.Read().status, 505);
  EXPECT_EQ(HttpGet(f.port(), "/v2/health/live").status, 200);  // still serving
}

TEST(HttpEndpoint, SlowRequestsAndIdleConnectionsAreClosedAtTheirDeadlines) {
  HttpLimits limits;
  limits.request_timeout = 300ms;
  limits.idle_timeout = 600ms;
  Fixture f(limits);
  RawConnection silent(f.port()), half(f.port()), idle(f.port());
  ASSERT_TRUE(half.Send("GET /metrics HTTP/1.1\r\nHo"));
  ASSERT_TRUE(idle.Send(Get("/v2/health/live")));
  EXPECT_EQ(idle.Read().status, 200);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(silent.WaitClosed(2s));
  EXPECT_TRUE(half.WaitClosed(2s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
  EXPECT_TRUE(idle.WaitClosed(2s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 400ms);  // the idle timeout, not 300 ms
}

TEST(HttpEndpoint, AtTheConnectionCapTheOldestIdleConnectionIsClosedFirst) {
  HttpLimits limits;
  limits.max_connections = 3;
  Fixture f(limits);
  RawConnection idle(f.port());
  ASSERT_TRUE(idle.Send(Get("/v2/health/live")));
  ASSERT_EQ(idle.Read().status, 200);  // now idle between requests
  RawConnection a(f.port()), b(f.port());
  std::this_thread::sleep_for(50ms);
  {
    RawConnection probe(f.port());  // the fourth: the idle one makes room, not the older `a`
    ASSERT_TRUE(probe.Send(Get("/v2/health/live", "Connection: close\r\n")));
    EXPECT_EQ(probe.Read().status, 200);
    EXPECT_TRUE(idle.WaitClosed(2s));
    EXPECT_TRUE(probe.WaitClosed(2s));
  }
  // a and b open, no idle connection: the fourth closes the oldest one, a.
  RawConnection c(f.port());
  std::this_thread::sleep_for(50ms);
  RawConnection probe(f.port());
  ASSERT_TRUE(probe.Send(Get("/metrics")));
  EXPECT_EQ(probe.Read().status, 200);
  EXPECT_TRUE(a.WaitClosed(2s));
  ASSERT_TRUE(b.Send(Get("/v2/health/live")));
  EXPECT_EQ(b.Read().status, 200);
}

// The defect this endpoint was written for: cpp-httplib's 8 threads were held by 8 idle or
// half-sent connections, and the liveness probe timed out.
TEST(HttpEndpoint, ProbesAnswerWhileHundredsOfConnectionsAreIdleOrHalfSent) {
  Fixture f;
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 256; ++i) {
    held.push_back(std::make_unique<RawConnection>(f.port(), 500ms));
    ASSERT_TRUE(held.back()->connected()) << i;
    if (i % 2 == 1) held.back()->Send("GET /metrics HTTP/1.1\r\nHost: lo");
  }
  std::this_thread::sleep_for(100ms);
  for (const std::string path : {"/v2/health/live", "/v2/health/ready", "/metrics"}) {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(HttpGet(f.port(), path, 2s).status, 200) << path;
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << path;
  }
}

TEST(HttpEndpoint, RandomAndMutatedRequestsNeverStopIt) {
  HttpLimits limits;
  limits.max_header_bytes = 512;
  Fixture f(limits);
  std::mt19937 rng(7);
  const std::string get = Get("/metrics", "Connection: keep-alive\r\n");
  const std::string chunked =  // read whole, then 405
      "POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;e=1\r\nabcd\r\n0\r\nT: "
      "1\r\n\r\n";
  for (int i = 0; i < 400; ++i) {
    const std::string& valid = i % 2 == 0 ? get : chunked;
    std::string bytes = valid + valid;
    if (i % 3 == 0) {
      bytes.assign(rng() % 1500, '\0');
      for (char& ch : bytes) ch = static_cast<char>(rng());
    } else {
      for (int m = 0; m < 1 + i % 5; ++m) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    RawConnection c(f.port());
    ASSERT_TRUE(c.connected()) << i;
    c.Send(bytes);
    c.ShutdownWrite();
    // Whatever the bytes: valid statuses only, and the connection closed at once after EOF.
    const int status = c.Read(2s).status;
    EXPECT_TRUE(status == 0 || status == 200 || status == 400 || status == 404 || status == 405 ||
                status == 411 || status == 413 || status == 431 || status == 501 || status == 505)
        << i << ": " << status;
    EXPECT_TRUE(c.WaitClosed(2s)) << i;
  }
  EXPECT_EQ(HttpGet(f.port(), "/v2/health/live").status, 200);
}

TEST(HttpEndpoint, BindsIpv4AndIpv6AndRefusesAPortInUse) {
  Fixture any(HttpLimits(), "0.0.0.0:0");
  EXPECT_EQ(HttpGet(any.port(), "/v2/health/live").status, 200);
  try {
    Fixture second(HttpLimits(), "127.0.0.1:" + std::to_string(any.port()));
    ADD_FAILURE() << "a second endpoint bound a port in use";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find("address in use"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Fixture(HttpLimits(), "127.0.0.1:http"), Error);
  const int v6 = ::socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 loop6{};
  loop6.sin6_family = AF_INET6;
  loop6.sin6_addr = in6addr_loopback;
  const bool has_v6 =
      v6 >= 0 && ::bind(v6, reinterpret_cast<sockaddr*>(&loop6), sizeof(loop6)) == 0;
  if (v6 >= 0) ::close(v6);
  if (!has_v6) GTEST_SKIP() << "no IPv6 loopback";
  Fixture dual(HttpLimits(), "[::]:0");
  EXPECT_EQ(HttpGet(dual.port(), "/v2/health/live").status, 200);  // IPv4 on the dual stack
  RawConnection c(dual.port(), 2s, "::1");
  ASSERT_TRUE(c.Send(Get("/v2/health/live")));
  EXPECT_EQ(c.Read().status, 200);
}

TEST(HttpEndpoint, StopIsPromptWithConnectionsOpenAndFreesThePort) {
  auto f = std::make_unique<Fixture>();
  const int port = f->port();
  RawConnection idle(port), half(port);
  ASSERT_TRUE(half.Send("GET /met"));
  std::this_thread::sleep_for(50ms);
  const auto start = std::chrono::steady_clock::now();
  f->endpoint->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_TRUE(idle.WaitClosed(1s));
  EXPECT_TRUE(half.WaitClosed(1s));
  f.reset();
  Fixture again(HttpLimits(), "127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(HttpGet(port, "/v2/health/live").status, 200);
}

TEST(HttpEndpoint, CurlGetsTheSameResponses) {
  if (!std::filesystem::exists("/usr/bin/curl")) GTEST_SKIP() << "curl is not installed";
  Fixture f;
  f.ready = false;
  const std::string base = "http://127.0.0.1:" + std::to_string(f.port());
  // One curl, three URLs: -w prints each status and content type, and num_connects shows the
  // second and third reuse the first connection.
  std::string out;
  const int rc = testing::RunCommand(
      "/usr/bin/curl -sS -w '%{http_code} %{content_type} %{num_connects}\\n' " + base +
          "/v2/health/live " + base + "/v2/health/ready " + base + "/metrics",
      &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out,
            "live\n200 text/plain 1\n"
            "not ready\n503 text/plain 0\n"
            "metric_total 1\n200 text/plain; version=0.0.4 0\n");
  ASSERT_EQ(
      testing::RunCommand(
          "/usr/bin/curl -sS -o /dev/null -w '%{http_code}' " + base + "/nope -X DELETE", &out),
      0);
  EXPECT_EQ(out, "404");
  ASSERT_EQ(testing::RunCommand("/usr/bin/curl -sS -I " + base + "/v2/health/live", &out), 0);
  EXPECT_NE(out.find("HTTP/1.1 200 OK"), std::string::npos) << out;
  EXPECT_NE(out.find("Content-Length: 5"), std::string::npos) << out;
}

// curl sends a chunked body when told the transfer coding: the api handler gets it decoded.
TEST(HttpEndpoint, CurlPostsAChunkedBody) {
  if (!std::filesystem::exists("/usr/bin/curl")) GTEST_SKIP() << "curl is not installed";
  EchoApi api;
  Fixture f(HttpLimits(), "127.0.0.1:0", api.Handler());
  std::string out;
  ASSERT_EQ(testing::RunCommand("/usr/bin/curl -sS -H 'Transfer-Encoding: chunked' "
                                "--data-binary 'sent in chunks' http://127.0.0.1:" +
                                    std::to_string(f.port()) + "/v2/echo",
                                &out),
            0)
      << out;
  EXPECT_EQ(out, "POST /v2/echo sent in chunks");
}

}  // namespace
}  // namespace escala::serving::internal
