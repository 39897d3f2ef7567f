// The prediction server: serves model bundles over the Open Inference Protocol (KServe v2 /
// Triton), over gRPC and over HTTP/REST (JSON) on the HTTP port, and can be embedded in a C++
// service in a few lines:
//
//   auto server = escala::serving::PredictionServer::Builder()
//                     .SetModelRepository("/models")      // <repo>/<model>/<version>/model.bundle
//                     .SetGrpcAddress("0.0.0.0:8001")
//                     .SetHttpAddress("0.0.0.0:8002")     // REST /v2/..., /metrics
//                     .EnableBatching(64, std::chrono::microseconds(500))
//                     .Build();                            // listening when this returns
//   ...
//   server->Shutdown(std::chrono::seconds(30));            // drain, then stop
//
// The bundle's feature pipeline runs inside the server, fused with the model, so clients send raw
// columns: one 2-D FP32/FP64 tensor "features" [batch, n] when every input is numeric, or one
// tensor per raw column named as in the bundle's schema (BYTES for categorical columns).
// Classification models answer "probabilities" [batch, classes], "label" (BYTES) and
// "class_index" (INT64); regression models answer "prediction" [batch].
//
// New versions appearing in the repository (polled, or loaded on RepositoryModelLoad) are
// loaded, verified and warmed up beside the serving one, then swapped in atomically: requests in
// flight finish on the version they started with, so a swap fails no request. A version that
// fails to load leaves the previous one serving (logged and counted in the metrics).
//
// Thread-safety: all methods may be called from any thread.
#ifndef ESCALA_SERVING_SERVER_H_
#define ESCALA_SERVING_SERVER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "escala/core/tls.h"
#include "escala/io/bundle.h"

namespace escala::serving {

// Which versions of each repository model to serve (docs/serving.md): kLatest the `latest`
// highest versions present (all when fewer), kAll every version, kSpecific the listed `versions`
// that are present.
struct VersionPolicy {
  enum class Kind { kLatest, kAll, kSpecific } kind = Kind::kLatest;
  int latest = 1;                      // kLatest: how many
  std::vector<std::int64_t> versions;  // kSpecific: which
  // "latest" (= "latest:1"), "latest:N" (N >= 1), "all", "specific:1,3". Throws kInvalidArgument
  // naming the text.
  static VersionPolicy Parse(std::string_view text);
};

struct BatchingOptions {
  bool enabled = false;
  std::int64_t max_batch_rows = 64;
  // How long the first request of a batch may wait for others.
  std::chrono::microseconds max_queue_delay{500};
};

// The REST API on the HTTP port (docs/serving.md).
struct RestOptions {
  std::int64_t max_body_bytes = 64 << 20;  // a larger request body is answered 413
  int threads = 4;                         // parse, run and encode REST requests
  int max_inflight = 64;                   // REST requests queued or running; more are answered 503
};

struct ServerOptions {
  std::string grpc_address = "0.0.0.0:8001";   // port 0: a free port (grpc_port()); empty: none
  std::string http_address = "0.0.0.0:8002";   // empty: no HTTP endpoint
  std::string model_repository;                // empty: only models added with AddModel()
  std::chrono::milliseconds poll_interval{0};  // 0: no polling (load on request)
  VersionPolicy version_policy;
  BatchingOptions batching;
  std::int64_t max_message_bytes = 256 << 20;  // gRPC receive and send limit
  TlsOptions tls;  // a server: cert_file and key_file; mutual: ca_file for client certificates
  std::string server_name = "escala";
  RestOptions rest;
};

class PredictionServer {
 public:
  class Builder {
   public:
    Builder& SetGrpcAddress(std::string address);  // "" disables gRPC (REST only)
    Builder& SetHttpAddress(std::string address);  // "" disables HTTP
    Builder& SetModelRepository(std::string dir);
    Builder& SetPollInterval(std::chrono::milliseconds interval);
    Builder& SetVersionPolicy(VersionPolicy policy);
    Builder& EnableBatching(std::int64_t max_batch_rows, std::chrono::microseconds max_delay);
    Builder& SetMaxMessageBytes(std::int64_t bytes);
    Builder& SetTls(TlsOptions tls);
    Builder& SetServerName(std::string name);
    Builder& SetRestOptions(RestOptions rest);
    // Serve an in-memory bundle (no repository needed) as `name`, version `version`.
    Builder& AddModel(std::string name, std::shared_ptr<const io::ModelBundle> bundle,
                      std::int64_t version = 1);
    // Binds, loads the repository's models and starts serving. Throws kUnavailable when the
    // address cannot be bound, and load errors of in-memory models.
    std::unique_ptr<PredictionServer> Build();

   private:
    ServerOptions options_;
    struct InMemory {
      std::string name;
      std::shared_ptr<const io::ModelBundle> bundle;
      std::int64_t version;
    };
    std::vector<InMemory> models_;
  };

  ~PredictionServer();  // Shutdown(0) if still running
  PredictionServer(const PredictionServer&) = delete;
  PredictionServer& operator=(const PredictionServer&) = delete;

  int grpc_port() const;  // 0 without gRPC
  int http_port() const;  // 0 without HTTP
  bool ready() const;

  // In-memory models (embedding): add or replace a version, atomically.
  void AddModel(const std::string& name, std::shared_ptr<const io::ModelBundle> bundle,
                std::int64_t version = 1);
  // Repository models: (re)scan one model's directory now / stop serving it.
  void LoadModel(const std::string& name);
  void UnloadModel(const std::string& name);
  // Scans the whole repository now (what polling does).
  void PollRepository();

  struct ModelState {
    std::string name;
    std::string version;
    std::string state;  // "READY", "UNAVAILABLE"
    std::string reason;
  };
  std::vector<ModelState> Index() const;

  // Prometheus text of the server's metrics (also served at /metrics).
  std::string MetricsText() const;

  // Graceful shutdown: stop reporting ready, refuse new requests with UNAVAILABLE, let the
  // requests in flight finish for up to `grace`, then stop. Idempotent.
  void Shutdown(std::chrono::milliseconds grace);
  // Blocks until Shutdown() has completed.
  void Wait();

  struct Impl;

 private:
  explicit PredictionServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace escala::serving

#endif  // ESCALA_SERVING_SERVER_H_
