#include "serving/loader.h"

#include <cmath>
#include <utility>

#include <fmt/format.h>

#include "escala/core/error.h"
#include "escala/io/model_file.h"

namespace escala::serving::internal {
namespace {

// One prediction on a zero feature row allocates the model's workspace and proves the model runs
// before it takes traffic.
void WarmUp(const LoadedModel& m) {
  auto scratch = m.Acquire();
  MatrixF x(1, m.bundle->model->num_features(), 0.0f), y(1, m.predictor->num_outputs());
  m.predictor->PredictFeatures(std::as_const(x).view(), y.view(), scratch->predict);
  for (std::int64_t j = 0; j < y.cols(); ++j) {
    ESCALA_CHECK(std::isfinite(y(0, j)), kDataLoss,
                 "the warm-up prediction on a zero row is not finite (output {})", j);
  }
  m.Release(std::move(scratch));
}

// Runs `load`, putting "model 'm' version 3 (<source>)" in front of any error it throws.
template <typename F>
std::shared_ptr<const LoadedModel> Named(const std::string& model, std::int64_t version,
                                         const std::string& source, F&& load) {
  try {
    return load();
  } catch (const Error& e) {
    throw e.WithContext(fmt::format("model '{}' version {} ({})", model, version, source));
  }
}

}  // namespace

ServableLoader::ServableLoader(BatchingOptions batching, MetricsRegistry* metrics)
    : batching_(batching), metrics_(metrics) {}

std::shared_ptr<const LoadedModel> ServableLoader::Load(const std::string& model,
                                                        std::int64_t version,
                                                        const VersionOnDisk& file) const {
  return Named(model, version, file.path, [&] {
    auto bundle = std::make_shared<const io::ModelBundle>(io::LoadModelFile(file.path));
    return Build(model, version, std::move(bundle), file.path, file.fingerprint);
  });
}

std::shared_ptr<const LoadedModel> ServableLoader::FromBundle(
    const std::string& model, std::int64_t version,
    std::shared_ptr<const io::ModelBundle> bundle) const {
  return Named(model, version, "in memory",
               [&] { return Build(model, version, std::move(bundle), "memory", ""); });
}

std::shared_ptr<const LoadedModel> ServableLoader::Build(
    const std::string& model, std::int64_t version, std::shared_ptr<const io::ModelBundle> bundle,
    const std::string& source, const std::string& fingerprint) const {
  auto m = std::make_shared<LoadedModel>();
  m->name = model;
  m->version = version;
  m->version_text = std::to_string(version);
  m->source = source;
  m->fingerprint = fingerprint;
  m->bundle = std::move(bundle);
  m->predictor = std::make_shared<const io::Predictor>(m->bundle);
  m->signature = SignatureOf(*m->bundle);
  m->metrics = metrics_->For(model, m->version_text);
  WarmUp(*m);
  if (batching_.enabled)
    m->batcher = std::make_unique<Batcher>(m->predictor, m->metrics, batching_);
  return m;
}

}  // namespace escala::serving::internal
