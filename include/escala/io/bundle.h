// The model bundle: one file holding everything a trained model needs to make predictions from
// raw data — the raw input schema, the fitted feature pipeline, the model, the label's classes —
// plus what is worth keeping about how it was made: training configuration, metrics, history,
// creation time and escala version.
//
// Format: a frame (magic "ESCALAMB", format version, payload length, CRC-32) around the
// escala.io.v1.Bundle protobuf. Save() writes atomically (temporary file, fsync, rename), so a
// crash never leaves a half-written bundle where a good one was. Load() verifies magic, version,
// length and checksum and reports which check failed (kDataLoss), and refuses bundles from a newer
// format it does not know (kFailedPrecondition). Bundles of every earlier format version stay
// readable.
//
// Predictor runs the bundle's pipeline and model fused, on raw columns: what `escala score` and
// the prediction server call.
//
// Thread-safety: a loaded ModelBundle is immutable in use; Predictor is const-callable from many
// threads, each with its own PredictScratch.
#ifndef ESCALA_IO_BUNDLE_H_
#define ESCALA_IO_BUNDLE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "escala/core/matrix.h"
#include "escala/features/pipeline.h"
#include "escala/io/history.h"
#include "escala/models/model.h"

namespace escala::io {

// The bundle format this build writes; Load() reads this and every earlier version.
inline constexpr std::uint32_t kBundleFormatVersion = 1;

struct ModelBundle {
  std::uint32_t format_version = kBundleFormatVersion;
  std::string escala_version;
  std::int64_t created_unix_ms = 0;
  std::string name;
  std::string label;
  std::vector<std::string> class_names;  // class index -> original label
  features::Pipeline pipeline;
  std::shared_ptr<const models::Model> model;
  std::map<std::string, std::string> training_config;
  std::map<std::string, double> metrics;
  std::vector<EpochRecord> history;

  // The raw columns a prediction needs (the pipeline's inputs).
  const data::Schema& input_schema() const { return pipeline.input_schema(); }

  std::string SerializeToString() const;
  // `what` names the source in errors (a path).
  static ModelBundle ParseFromString(std::string_view bytes, std::string_view what = "bundle");
  void Save(const std::string& path) const;
  static ModelBundle Load(const std::string& path);
};

class PredictScratch {
 public:
  PredictScratch();
  ~PredictScratch();
  PredictScratch(PredictScratch&&) noexcept;
  PredictScratch& operator=(PredictScratch&&) noexcept;
  features::TransformScratch transform;
  MatrixF features;
  std::unique_ptr<models::Workspace> workspace;
};

class Predictor {
 public:
  explicit Predictor(std::shared_ptr<const ModelBundle> bundle);

  const ModelBundle& bundle() const { return *bundle_; }
  // Width of Predict()'s output: 1 for regression and binary, C for multiclass.
  std::int64_t num_outputs() const { return bundle_->model->num_outputs(); }

  // Raw columns -> predictions (values, P(y=1), or class probabilities), out is rows x
  // num_outputs(). Single-threaded; callers parallelise over batches.
  void Predict(const features::RawBatch& batch, MatrixViewF out, PredictScratch& scratch) const;
  // Dense features already in the pipeline's *output* space skip the pipeline.
  void PredictFeatures(ConstMatrixViewF features, MatrixViewF out, PredictScratch& scratch) const;
  // Parallel over row blocks, for tables (scoring files). Checks that every prediction is finite.
  void PredictTable(const data::Table& table, MatrixF* out) const;

  // Whether the model explains its predictions (a tree ensemble with node covers).
  bool HasContributions() const;
  // Names of Contributions()'s columns: per output, the pipeline's output features then "bias"
  // (prefixed "<class>:" for multiclass).
  std::vector<std::string> ContributionNames() const;
  // TreeSHAP contributions of raw rows in the pipeline's output features (TreeEnsemble::
  // Contributions), out resized to rows x ContributionNames().size(); each output's row sums to
  // its raw score. kFailedPrecondition when !HasContributions().
  void Contributions(const features::RawBatch& batch, MatrixF* out, PredictScratch& scratch) const;
  void ContributionsTable(const data::Table& table, MatrixF* out) const;

  // Throws kInvalidArgument naming the first row (first_row + i) whose prediction is not finite:
  // an input so far out of range that the pipeline or the model overflows. A NaN is never
  // reported as a class or a probability.
  static void CheckFinite(ConstMatrixViewF predictions, std::int64_t first_row = 0);

  // The predicted class index per row from Predict()'s output (argmax, or p >= threshold).
  static void Classes(models::Task task, ConstMatrixViewF predictions,
                      std::vector<std::int32_t>* out, float threshold = 0.5f);

 private:
  std::shared_ptr<const ModelBundle> bundle_;
};

}  // namespace escala::io

#endif  // ESCALA_IO_BUNDLE_H_
