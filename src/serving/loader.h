// The loader: turns one model version into a servable (LoadedModel) ready to take traffic. It reads
// and verifies the bundle (checksum, format version, pipeline/model consistency), builds the
// predictor, warms it up with one prediction on a zero row (which must be finite), and starts the
// version's batcher when batching is on. Nothing is shared with the versions that serve until the
// manager swaps the result in.
#ifndef ESCALA_SRC_SERVING_LOADER_H_
#define ESCALA_SRC_SERVING_LOADER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "escala/io/bundle.h"
#include "escala/serving/server.h"
#include "serving/metrics.h"
#include "serving/repository_source.h"
#include "serving/servable.h"

namespace escala::serving::internal {

class ServableLoader {
 public:
  // `metrics` outlives the loader and every servable it makes.
  ServableLoader(BatchingOptions batching, MetricsRegistry* metrics);

  // Loads <model> version `version` from its bundle file. Throws the bundle's error (kNotFound,
  // kIo, kDataLoss, kInvalidArgument, ...) with "model 'm' version 3 (<path>)" in front, or
  // kDataLoss when the warm-up prediction is not finite.
  std::shared_ptr<const LoadedModel> Load(const std::string& model, std::int64_t version,
                                          const VersionOnDisk& file) const;
  // Makes a servable of a bundle already in memory (source "memory"); errors as Load's, with
  // "(in memory)" for the path.
  std::shared_ptr<const LoadedModel> FromBundle(
      const std::string& model, std::int64_t version,
      std::shared_ptr<const io::ModelBundle> bundle) const;

 private:
  std::shared_ptr<const LoadedModel> Build(const std::string& model, std::int64_t version,
                                           std::shared_ptr<const io::ModelBundle> bundle,
                                           const std::string& source,
                                           const std::string& fingerprint) const;

  BatchingOptions batching_;
  MetricsRegistry* metrics_;
};

}  // namespace escala::serving::internal

#endif  // ESCALA_SRC_SERVING_LOADER_H_
