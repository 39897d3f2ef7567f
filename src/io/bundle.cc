#include "escala/io/bundle.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "escala/config.h"
#include "escala/core/error.h"
#include "escala/core/file_util.h"
#include "escala/core/parallel.h"
#include "escala/io/v1/bundle.pb.h"
#include "escala/models/factory.h"
#include "escala/models/tree_ensemble.h"
#include "io/history_proto.h"

namespace escala::io {

namespace pb = escala::io::v1;

namespace {

constexpr char kMagic[] = "ESCALAMB";

}  // namespace

std::string ModelBundle::SerializeToString() const {
  ESCALA_CHECK(model != nullptr, kFailedPrecondition, "bundle has no model");
  ESCALA_CHECK(pipeline.fitted(), kFailedPrecondition, "bundle pipeline is not fitted");
  ESCALA_CHECK(pipeline.num_outputs() == model->num_features(), kFailedPrecondition,
               "bundle pipeline produces {} features but the model expects {}",
               pipeline.num_outputs(), model->num_features());
  pb::Bundle b;
  b.set_format_version(kBundleFormatVersion);
  b.set_escala_version(escala_version.empty() ? ESCALA_VERSION_STRING : escala_version);
  b.set_created_unix_ms(created_unix_ms != 0
                            ? created_unix_ms
                            : std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
  b.set_name(name);
  b.set_label(label);
  for (const auto& c : class_names) b.add_class_names(c);
  ESCALA_CHECK(b.mutable_pipeline()->ParseFromString(pipeline.Serialize()), kInternal,
               "pipeline did not round-trip");
  ESCALA_CHECK(b.mutable_model()->ParseFromString(models::SerializeModel(*model)), kInternal,
               "model did not round-trip");
  for (const auto& [k, v] : training_config) (*b.mutable_training_config())[k] = v;
  for (const auto& [k, v] : metrics) (*b.mutable_metrics())[k] = v;
  HistoryToProto(history, b.mutable_history());
  return FramePayload(kMagic, kBundleFormatVersion, b.SerializeAsString());
}

ModelBundle ModelBundle::ParseFromString(std::string_view bytes, std::string_view what) {
  std::uint32_t version = 0;
  const std::string_view payload = UnframePayload(bytes, kMagic, &version, what);
  ESCALA_CHECK(version >= 1, kDataLoss, "{}: bundle format version {} does not exist (damaged?)",
               what, version);
  ESCALA_CHECK(version <= kBundleFormatVersion, kFailedPrecondition,
               "{}: bundle format version {} is newer than this escala ({}) reads (up to {}); "
               "upgrade escala",
               what, version, ESCALA_VERSION_STRING, kBundleFormatVersion);
  pb::Bundle b;
  ESCALA_CHECK(b.ParseFromArray(payload.data(), static_cast<int>(payload.size())), kDataLoss,
               "{}: bundle contents do not parse", what);
  ModelBundle out;
  out.format_version = version;
  out.escala_version = b.escala_version();
  out.created_unix_ms = b.created_unix_ms();
  out.name = b.name();
  out.label = b.label();
  out.class_names.assign(b.class_names().begin(), b.class_names().end());
  try {
    out.pipeline = features::Pipeline::Parse(b.pipeline().SerializeAsString());
    out.model = models::ParseModel(b.model().SerializeAsString());
  } catch (const Error& e) {
    throw Error(ErrorCode::kDataLoss, fmt::format("{}: {}", what, e.message()));
  }
  ESCALA_CHECK(out.pipeline.fitted() && out.pipeline.num_outputs() == out.model->num_features(),
               kDataLoss, "{}: pipeline produces {} features but the model expects {}", what,
               out.pipeline.num_outputs(), out.model->num_features());
  if (out.model->task() == models::Task::kMulticlass) {
    ESCALA_CHECK(out.class_names.empty() ||
                     static_cast<std::int64_t>(out.class_names.size()) == out.model->num_outputs(),
                 kDataLoss, "{}: {} class names for {} classes", what, out.class_names.size(),
                 out.model->num_outputs());
  }
  for (const auto& [k, v] : b.training_config()) out.training_config[k] = v;
  for (const auto& [k, v] : b.metrics()) out.metrics[k] = v;
  out.history = HistoryFromProto(b.history());
  return out;
}

void ModelBundle::Save(const std::string& path) const {
  const std::string bytes = SerializeToString();
  WriteFileAtomic(path, bytes);
}

ModelBundle ModelBundle::Load(const std::string& path) {
  return ParseFromString(ReadFileToString(path), path);
}

// ---- Predictor ---------------------------------------------------------------------------------

PredictScratch::PredictScratch() = default;
PredictScratch::~PredictScratch() = default;
PredictScratch::PredictScratch(PredictScratch&&) noexcept = default;
PredictScratch& PredictScratch::operator=(PredictScratch&&) noexcept = default;

Predictor::Predictor(std::shared_ptr<const ModelBundle> bundle) : bundle_(std::move(bundle)) {
  ESCALA_CHECK(bundle_ != nullptr && bundle_->model != nullptr, kInvalidArgument,
               "predictor needs a bundle with a model");
}

void Predictor::PredictFeatures(ConstMatrixViewF features, MatrixViewF out,
                                PredictScratch& scratch) const {
  if (!scratch.workspace) scratch.workspace = bundle_->model->NewWorkspace();
  bundle_->model->Predict(features, out, *scratch.workspace);
}

void Predictor::Predict(const features::RawBatch& batch, MatrixViewF out,
                        PredictScratch& scratch) const {
  scratch.features.Resize(batch.rows, bundle_->pipeline.num_outputs());
  bundle_->pipeline.TransformInto(batch, scratch.features.view(), scratch.transform);
  PredictFeatures(std::as_const(scratch.features).view(), out, scratch);
}

void Predictor::PredictTable(const data::Table& table, MatrixF* out) const {
  out->Resize(table.num_rows(), num_outputs());
  MatrixF feats;
  bundle_->pipeline.Transform(table, &feats);
  const std::int64_t n = table.num_rows();
  const auto parts = static_cast<std::size_t>(std::max(1, NumThreads()));
  ParallelForStatic(
      static_cast<std::size_t>(n), parts, [&](std::size_t, std::size_t b, std::size_t e) {
        if (b == e) return;
        auto ws = bundle_->model->NewWorkspace();
        constexpr std::int64_t kBlock = 4096;
        for (auto i = static_cast<std::int64_t>(b); i < static_cast<std::int64_t>(e); i += kBlock) {
          const std::int64_t m = std::min<std::int64_t>(kBlock, static_cast<std::int64_t>(e) - i);
          bundle_->model->Predict(std::as_const(feats).view().Rows(i, m), out->view().Rows(i, m),
                                  *ws);
        }
      });
  CheckFinite(std::as_const(*out).view());
}

namespace {

const models::TreeEnsemble* Explainer(const models::Model& m) {
  const auto* trees = dynamic_cast<const models::TreeEnsemble*>(&m);
  return trees != nullptr && trees->HasStats() ? trees : nullptr;
}

}  // namespace

bool Predictor::HasContributions() const {
  return Explainer(*bundle_->model) != nullptr;
}

std::vector<std::string> Predictor::ContributionNames() const {
  const models::Model& m = *bundle_->model;
  std::vector<std::string> names;
  for (std::int64_t j = 0; j < m.num_outputs(); ++j) {
    std::string prefix;
    if (m.task() == models::Task::kMulticlass) {
      prefix = (static_cast<std::size_t>(j) < bundle_->class_names.size()
                    ? bundle_->class_names[static_cast<std::size_t>(j)]
                    : std::to_string(j)) +
               ":";
    }
    for (const auto& f : bundle_->pipeline.output_names()) names.push_back(prefix + f);
    names.push_back(prefix + "bias");
  }
  return names;
}

void Predictor::Contributions(const features::RawBatch& batch, MatrixF* out,
                              PredictScratch& scratch) const {
  const models::TreeEnsemble* trees = Explainer(*bundle_->model);
  ESCALA_CHECK(trees != nullptr, kFailedPrecondition,
               "contributions: a {} model does not explain its predictions (gbdt models do)",
               bundle_->model->kind());
  scratch.features.Resize(batch.rows, bundle_->pipeline.num_outputs());
  bundle_->pipeline.TransformInto(batch, scratch.features.view(), scratch.transform);
  out->Resize(batch.rows, trees->num_outputs() * (trees->num_features() + 1));
  trees->Contributions(std::as_const(scratch.features).view(), out->view());
}

void Predictor::ContributionsTable(const data::Table& table, MatrixF* out) const {
  const models::TreeEnsemble* trees = Explainer(*bundle_->model);
  ESCALA_CHECK(trees != nullptr, kFailedPrecondition,
               "contributions: a {} model does not explain its predictions (gbdt models do)",
               bundle_->model->kind());
  MatrixF feats;
  bundle_->pipeline.Transform(table, &feats);
  out->Resize(table.num_rows(), trees->num_outputs() * (trees->num_features() + 1));
  trees->Contributions(std::as_const(feats).view(), out->view());
}

void Predictor::CheckFinite(ConstMatrixViewF p, std::int64_t first_row) {
  for (std::int64_t i = 0; i < p.rows(); ++i) {
    const float* r = p.row(i);
    for (std::int64_t j = 0; j < p.cols(); ++j) {
      ESCALA_CHECK(std::isfinite(r[j]), kInvalidArgument,
                   "row {}: the prediction is not finite ({}): an input value is out of the "
                   "range the pipeline and model can represent",
                   first_row + i, r[j]);
    }
  }
}

void Predictor::Classes(models::Task task, ConstMatrixViewF p, std::vector<std::int32_t>* out,
                        float threshold) {
  out->resize(static_cast<std::size_t>(p.rows()));
  for (std::int64_t i = 0; i < p.rows(); ++i) {
    if (task == models::Task::kBinary) {
      (*out)[static_cast<std::size_t>(i)] = p(i, 0) >= threshold ? 1 : 0;
    } else if (task == models::Task::kMulticlass) {
      const float* r = p.row(i);
      (*out)[static_cast<std::size_t>(i)] =
          static_cast<std::int32_t>(std::max_element(r, r + p.cols()) - r);
    } else {
      (*out)[static_cast<std::size_t>(i)] = 0;
    }
  }
}

}  // namespace escala::io
