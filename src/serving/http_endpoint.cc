#include "serving/http_endpoint.h"

#include <httplib.h>
#include <thread>

#include "core/listen_check.h"
#include "escala/core/error.h"
#include "escala/core/logging.h"

namespace escala::serving::internal {

struct HttpEndpoint::Impl {
  httplib::Server server;
  std::thread thread;
  int port = 0;
};

HttpEndpoint::HttpEndpoint(const std::string& address, Handlers handlers)
    : impl_(std::make_unique<Impl>()) {
  const std::size_t colon = address.rfind(':');
  ESCALA_CHECK(colon != std::string::npos, kInvalidArgument, "HTTP address '{}' must be host:port",
               address);
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    port = std::stoi(address.substr(colon + 1));
  } catch (...) {
    Throw(ErrorCode::kInvalidArgument, "HTTP address '{}': bad port", address);
  }
  auto metrics = handlers.metrics;
  auto ready = handlers.ready;
  impl_->server.Get("/metrics", [metrics](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics(), "text/plain; version=0.0.4");
  });
  impl_->server.Get("/v2/health/live", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("live\n", "text/plain");
  });
  impl_->server.Get("/v2/health/ready", [ready](const httplib::Request&, httplib::Response& res) {
    const bool ok = ready();
    res.status = ok ? 200 : 503;
    res.set_content(ok ? "ready\n" : "not ready\n", "text/plain");
  });
  // cpp-httplib turns SO_REUSEPORT on by default; own the port instead, so that a second server
  // on it fails rather than sharing it.
  impl_->server.set_socket_options([](int sock) {
    const int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  if (port == 0) {
    impl_->port = impl_->server.bind_to_any_port(host);
  } else {
    impl_->port = impl_->server.bind_to_port(host, port) ? port : -1;
  }
  ESCALA_CHECK(impl_->port > 0, kUnavailable, "cannot bind the HTTP endpoint to {}: {}", address,
               ::escala::internal::ListenFailureReason(address));
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
}

HttpEndpoint::~HttpEndpoint() {
  Stop();
}

int HttpEndpoint::port() const {
  return impl_->port;
}

void HttpEndpoint::Stop() {
  if (impl_->thread.joinable()) {
    impl_->server.stop();
    impl_->thread.join();
  }
}

}  // namespace escala::serving::internal
