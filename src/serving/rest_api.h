// The Open Inference Protocol over HTTP/REST (KServe v2's REST API, with Triton's repository and
// statistics extensions), on the HTTP endpoint beside /metrics and the health probes:
//   GET  /v2                                             server metadata
//   GET  /v2/models/{name}[/versions/{v}]                model metadata
//   GET  /v2/models/{name}[/versions/{v}]/ready          200, or 404 unknown, 503 draining
//   POST /v2/models/{name}[/versions/{v}]/infer          JSON request -> JSON response (and the
//                                                        binary tensor data extension)
//   GET  /v2/models[/{name}[/versions/{v}]]/stats        statistics
//   POST /v2/repository/index                            {"ready": bool} -> [{name, version,...}]
//   POST /v2/repository/models/{name}/load|unload
// Every operation goes to the InferenceBackend, the one the gRPC service uses. Lookups answer on
// the endpoint's thread; inference, load and unload run on the API's own worker threads, at most
// max_inflight at a time (503 past it), and post their replies back. Errors are {"error": "..."}
// with the status the protocol's code maps to: 400 invalid argument, 404 not found, 503
// unavailable, 501 unimplemented, 500 internal (logged, answered without details).
#ifndef ESCALA_SRC_SERVING_REST_API_H_
#define ESCALA_SRC_SERVING_REST_API_H_

#include <memory>

#include "escala/serving/server.h"
#include "serving/backend.h"
#include "serving/http_endpoint.h"

namespace escala::serving::internal {

class RestApi {
 public:
  // `backend` outlives the API.
  RestApi(InferenceBackend* backend, RestOptions options);
  ~RestApi();  // Stop()
  RestApi(const RestApi&) = delete;
  RestApi& operator=(const RestApi&) = delete;

  // The endpoint's api handler (HttpEndpoint::Handlers::api).
  void Handle(HttpRequest request, HttpResponder respond);
  // Runs what is queued and joins the workers. Idempotent.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The HTTP status of an error code (400, 404, 503, ...).
int HttpStatusOf(ErrorCode code);

}  // namespace escala::serving::internal

#endif  // ESCALA_SRC_SERVING_REST_API_H_
