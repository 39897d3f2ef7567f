// The declared parameters of a prediction server (`escala serve`): ServeSpec states what an
// operator sets, ServeParams() declares each field once (name, type, default, range, help), and
// `escala serve`'s flags, its config keys, the range checks and docs/parameters.md come from that
// table (escala/core/params.h). BuilderFor turns a spec into a configured server builder.
#ifndef ESCALA_SERVING_PARAMS_H_
#define ESCALA_SERVING_PARAMS_H_

#include <cstdint>
#include <string>

#include "escala/core/params.h"
#include "escala/serving/server.h"

namespace escala::serving {

struct ServeSpec {
  std::string model_repository;  // <repo>/<model>/<version>/model.bundle; empty: AddModel only
  std::string address = "0.0.0.0";
  int grpc_port = 8001;  // 0: a free port
  int http_port = 8002;
  bool no_http = false;
  double poll_secs = 0;  // 0: load only on RepositoryModelLoad
  std::string version_policy = "latest";
  std::int64_t max_batch = 0;  // dynamic batching off
  std::int64_t max_queue_delay_us = 500;
  std::int64_t max_message_mb = 256;
  std::int64_t http_max_body_mb = 64;  // REST request bodies
  int http_threads = 4;                // REST inference workers
  int http_max_inflight = 64;          // REST requests queued or running
  std::string tls_cert, tls_key, tls_ca;
  bool tls_require_client_cert = false;
  double drain_grace_secs = 30;  // used by whoever stops the server (escala serve on SIGTERM)
};

// Built on first use; immutable and safe to share.
const ParamTable<ServeSpec>& ServeParams();

// A builder configured from the spec, after ServeParams().Check(spec) and the version policy's
// parse (kInvalidArgument naming the field). Models are added to it by the caller.
PredictionServer::Builder BuilderFor(const ServeSpec& spec);

}  // namespace escala::serving

#endif  // ESCALA_SERVING_PARAMS_H_
