// The Open Inference Protocol's operations, transport-neutral: they take and fill the protocol's
// own messages (protobuf, no gRPC) and throw escala::Error. PredictionServer implements them once
// (server.cc); the gRPC service and the REST API (rest_api.h) are thin transports over them, so
// a request validates, batches, fails and counts in the metrics alike over both.
//
// Thread-safety: every method may be called from any thread.
#ifndef ESCALA_SRC_SERVING_BACKEND_H_
#define ESCALA_SRC_SERVING_BACKEND_H_

#include <functional>
#include <string>

#include "escala/core/error.h"
#include "inference/open_inference.pb.h"

namespace escala::serving::internal {

class InferenceBackend {
 public:
  virtual ~InferenceBackend() = default;
  virtual bool Ready() const = 0;
  virtual void ServerMetadata(inference::ServerMetadataResponse* out) const = 0;
  // An empty version: the one the server serves by default. Unknown model or version: kNotFound.
  virtual void ModelMetadata(const std::string& name, const std::string& version,
                             inference::ModelMetadataResponse* out) const = 0;
  // kNotFound for an unknown model or version; false while draining.
  virtual bool ModelReady(const std::string& name, const std::string& version) const = 0;
  // Runs one inference and calls finish(status) exactly once, possibly from a batcher thread;
  // `request` and `response` live until then.
  virtual void Infer(const inference::ModelInferRequest* request,
                     inference::ModelInferResponse* response,
                     std::function<void(const Status&)> finish) = 0;
  // Empty name: every model; kNotFound for a model without statistics.
  virtual void ModelStatistics(const std::string& name, const std::string& version,
                               inference::ModelStatisticsResponse* out) const = 0;
  virtual void RepositoryIndex(bool ready_only, inference::RepositoryIndexResponse* out) const = 0;
  virtual void LoadModel(const std::string& name) = 0;
  virtual void UnloadModel(const std::string& name) = 0;
};

}  // namespace escala::serving::internal

#endif  // ESCALA_SRC_SERVING_BACKEND_H_
