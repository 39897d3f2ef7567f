// The HTTP side of the server: Prometheus metrics, Kubernetes-style health endpoints and the
// Open Inference Protocol's REST API (serving/rest_api.h, through Handlers::api), on a small
// HTTP/1.1 server of its own: one thread, epoll, non-blocking sockets. A connection costs a
// bounded head buffer and its request's body (Content-Length, up to a limit) and nothing else, so
// idle or slowly sent requests (thousands of them) never delay a probe: each request must arrive
// whole within a deadline, idle keep-alive connections are closed after a timeout, and at the
// connection cap the oldest idle connection is closed first. A request handed to Handlers::api is
// answered through an HttpResponder, possibly later and from another thread (the reply is queued
// and the endpoint's thread woken through an eventfd), so slow work never runs on this thread.
//
// Thread-safety: the handlers run on the endpoint's thread; Stop() and HttpResponder may be
// called from any thread.
#ifndef ESCALA_SRC_SERVING_HTTP_ENDPOINT_H_
#define ESCALA_SRC_SERVING_HTTP_ENDPOINT_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace escala::serving::internal {

struct HttpLimits {
  // Request line and headers; a larger head is answered 431 and the connection closed.
  std::size_t max_header_bytes = 8 << 10;
  // From a connection's first byte (or its accept) to the end of the response: past it, the
  // connection is closed.
  std::chrono::milliseconds request_timeout{10'000};
  // A keep-alive connection between requests.
  std::chrono::milliseconds idle_timeout{30'000};
  // Open connections; a new one past the cap closes the oldest idle one (else the oldest).
  int max_connections = 1024;
  // A request body (Content-Length); a larger one is answered 413 and the connection closed.
  std::size_t max_body_bytes = std::size_t{64} << 20;
};

// A whole request, as Handlers::api receives it.
struct HttpRequest {
  std::string method;  // "GET", "HEAD" (answered without its body), "POST", ...
  std::string path;    // the target without its query string
  std::string body;
  // The Inference-Header-Content-Length header (the binary tensor data extension), "" if absent.
  std::string inference_header_length;
};

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string extra_headers;  // each ending in CRLF
};

struct HttpReplyQueue;

// Answers one request handed to Handlers::api: call it once, from any thread; a reply for a
// connection that has closed meanwhile, or after Stop(), is dropped.
class HttpResponder {
 public:
  HttpResponder(std::shared_ptr<HttpReplyQueue> queue, std::uint64_t serial)
      : queue_(std::move(queue)), serial_(serial) {}
  void operator()(HttpReply reply) const;

 private:
  std::shared_ptr<HttpReplyQueue> queue_;
  std::uint64_t serial_;
};

class HttpEndpoint {
 public:
  struct Handlers {
    std::function<std::string()> metrics;
    std::function<bool()> ready;
    // Every other path (none: 404). It runs on the endpoint's thread, so it must not block: it
    // answers through the responder at once or hands the work to another thread. Until it
    // answers, the connection reads nothing more and has no deadline.
    std::function<void(HttpRequest, HttpResponder)> api;
  };
  // Binds `address` ("host:port", "[v6]:port"; port 0 picks one) and serves GET/HEAD /metrics,
  // /v2/health/live and /v2/health/ready, and the rest through `api`. Throws kUnavailable if it
  // cannot bind.
  HttpEndpoint(const std::string& address, Handlers handlers, HttpLimits limits = HttpLimits());
  ~HttpEndpoint();
  int port() const;
  // Closes the listener and every connection and joins the thread. Idempotent.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace escala::serving::internal

#endif  // ESCALA_SRC_SERVING_HTTP_ENDPOINT_H_
