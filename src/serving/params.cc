#include "escala/serving/params.h"

#include <fmt/format.h>

namespace escala::serving {

namespace {

using param::AtLeast;
using param::Closed;
using P = Param<ServeSpec>;

// Read through VersionPolicy::Parse, so that a bad policy fails when it is given.
P VersionPolicyParam() {
  P p = param::Text<ServeSpec>(
      "version_policy", "models",
      "Which versions of each model: latest, latest:N, all or "
      "specific:V1,V2",
      [](auto& s) -> auto& { return s.version_policy; });
  p.set = [](ServeSpec& s, std::string_view v) {
    VersionPolicy::Parse(v);
    s.version_policy = std::string(v);
  };
  return p;
}

std::vector<P> EndpointParams() {
  return {
      param::Text<ServeSpec>(
          "address", "endpoints", "Address to listen on",
          [](auto& s) -> auto& { return s.address; }),
      param::Number<ServeSpec>(
          "grpc_port", "endpoints", "gRPC port (0: pick a free one)",
          [](auto& s) -> auto& { return s.grpc_port; }, Closed(0, 65535)),
      param::Number<ServeSpec>(
          "http_port", "endpoints",
          "HTTP port for the REST API, /metrics and /v2/health (0: pick a free one)",
          [](auto& s) -> auto& { return s.http_port; }, Closed(0, 65535)),
      param::Flag<ServeSpec>(
          "no_http", "endpoints", "Do not serve HTTP", [](auto& s) -> auto& { return s.no_http; }),
      param::Number<ServeSpec>(
          "max_message_mb", "endpoints", "Largest request or response, MiB",
          [](auto& s) -> auto& { return s.max_message_mb; }, Closed(1, 2047)),
      param::Number<ServeSpec>(
          "http_max_body_mb", "endpoints", "Largest REST request body, MiB (larger: 413)",
          [](auto& s) -> auto& { return s.http_max_body_mb; }, Closed(1, 2047)),
      param::Number<ServeSpec>(
          "http_threads", "endpoints", "Threads that parse, run and encode REST requests",
          [](auto& s) -> auto& { return s.http_threads; }, Closed(1, 256)),
      param::Number<ServeSpec>(
          "http_max_inflight", "endpoints", "REST requests queued or running at once (more: 503)",
          [](auto& s) -> auto& { return s.http_max_inflight; }, Closed(1, 1 << 20)),
      param::Number<ServeSpec>(
          "drain_grace_secs", "endpoints",
          "On SIGTERM: how long in-flight requests may take to finish",
          [](auto& s) -> auto& { return s.drain_grace_secs; }, AtLeast(0)),
  };
}

std::vector<P> ModelParams() {
  return {
      param::Text<ServeSpec>(
          "model_repository", "models",
          "Directory laid out as <repo>/<model>/<version>/model.bundle",
          [](auto& s) -> auto& { return s.model_repository; }),
      param::Number<ServeSpec>(
          "poll_secs", "models",
          "Scan the repository for new versions this often (0: only on RepositoryModelLoad)",
          [](auto& s) -> auto& { return s.poll_secs; }, AtLeast(0)),
      VersionPolicyParam(),
      param::Number<ServeSpec>(
          "max_batch", "models", "Dynamic batching: rows per model call (0: off)",
          [](auto& s) -> auto& { return s.max_batch; }, Closed(0, 1 << 20)),
      param::Number<ServeSpec>(
          "max_queue_delay_us", "models",
          "Dynamic batching: how long a request may wait for others",
          [](auto& s) -> auto& { return s.max_queue_delay_us; }, Closed(0, 10'000'000)),
  };
}

std::vector<P> TlsParams() {
  return {
      param::Text<ServeSpec>(
          "tls_cert", "tls", "PEM certificate chain (enables TLS)",
          [](auto& s) -> auto& { return s.tls_cert; }),
      param::Text<ServeSpec>(
          "tls_key", "tls", "PEM private key", [](auto& s) -> auto& { return s.tls_key; }),
      param::Text<ServeSpec>(
          "tls_ca", "tls", "PEM CA bundle for client certificates",
          [](auto& s) -> auto& { return s.tls_ca; }),
      param::Flag<ServeSpec>(
          "tls_require_client_cert", "tls", "Mutual TLS",
          [](auto& s) -> auto& { return s.tls_require_client_cert; }),
  };
}

ParamTable<ServeSpec> Build() {
  std::vector<P> all;
  for (auto part : {ModelParams(), EndpointParams(), TlsParams()}) {
    for (auto& p : part) all.push_back(std::move(p));
  }
  return ParamTable<ServeSpec>(std::move(all));
}

}  // namespace

const ParamTable<ServeSpec>& ServeParams() {
  static const ParamTable<ServeSpec> table = Build();
  return table;
}

PredictionServer::Builder BuilderFor(const ServeSpec& s) {
  ServeParams().Check(s);
  PredictionServer::Builder b;
  const bool ipv6 = s.address.find(':') != std::string::npos;
  const std::string host = ipv6 ? "[" + s.address + "]" : s.address;
  b.SetGrpcAddress(fmt::format("{}:{}", host, s.grpc_port));
  b.SetHttpAddress(s.no_http ? "" : fmt::format("{}:{}", host, s.http_port));
  if (!s.model_repository.empty()) b.SetModelRepository(s.model_repository);
  b.SetPollInterval(std::chrono::milliseconds(static_cast<std::int64_t>(s.poll_secs * 1000)));
  b.SetVersionPolicy(VersionPolicy::Parse(s.version_policy));
  if (s.max_batch > 0) {
    b.EnableBatching(s.max_batch, std::chrono::microseconds(s.max_queue_delay_us));
  }
  b.SetMaxMessageBytes(s.max_message_mb << 20);
  b.SetRestOptions(RestOptions{s.http_max_body_mb << 20, s.http_threads, s.http_max_inflight});
  if (!s.tls_cert.empty()) {
    TlsOptions tls;
    tls.enabled = true;
    tls.cert_file = s.tls_cert;
    tls.key_file = s.tls_key;
    tls.ca_file = s.tls_ca;
    tls.mutual = s.tls_require_client_cert;
    b.SetTls(tls);
  }
  return b;
}

}  // namespace escala::serving
