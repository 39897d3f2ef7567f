// The HTTP side of the server: Prometheus metrics and Kubernetes-style health endpoints, on a
// small HTTP/1.1 server of its own: one thread, epoll, non-blocking sockets. A connection costs a
// bounded buffer and nothing else, so idle or slowly sent requests (thousands of them) never delay
// a probe: each request must arrive whole within a deadline, idle keep-alive connections are
// closed after a timeout, and at the connection cap the oldest idle connection is closed first.
//
// Thread-safety: the handlers run on the endpoint's thread; Stop() may be called from any thread.
#ifndef ESCALA_SRC_SERVING_HTTP_ENDPOINT_H_
#define ESCALA_SRC_SERVING_HTTP_ENDPOINT_H_

#include <chrono>
#include <cstddef>
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
};

class HttpEndpoint {
 public:
  struct Handlers {
    std::function<std::string()> metrics;
    std::function<bool()> ready;
  };
  // Binds `address` ("host:port", "[v6]:port"; port 0 picks one) and serves GET/HEAD /metrics,
  // /v2/health/live and /v2/health/ready. Throws kUnavailable if it cannot bind.
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
