// The HTTP side of the server: Prometheus metrics and Kubernetes-style health endpoints, on
// cpp-httplib, in its own thread. Kept in its own translation unit (httplib is a large header).
#ifndef ESCALA_SRC_SERVING_HTTP_ENDPOINT_H_
#define ESCALA_SRC_SERVING_HTTP_ENDPOINT_H_

#include <functional>
#include <memory>
#include <string>

namespace escala::serving::internal {

class HttpEndpoint {
 public:
  struct Handlers {
    std::function<std::string()> metrics;
    std::function<bool()> ready;
  };
  // Binds `address` ("host:port"; port 0 picks one). Throws kUnavailable if it cannot bind.
  HttpEndpoint(const std::string& address, Handlers handlers);
  ~HttpEndpoint();
  int port() const;
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace escala::serving::internal

#endif  // ESCALA_SRC_SERVING_HTTP_ENDPOINT_H_
