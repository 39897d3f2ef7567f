#include "escala/io/model_file.h"

#include <filesystem>
#include <utility>

#include <fmt/format.h>

#include "escala/core/communicator.h"
#include "escala/core/error.h"
#include "escala/core/file_util.h"
#include "escala/data/table.h"

namespace escala::io {
namespace {

// An identity pipeline over float32 inputs named `names`: fitted on an empty table, so that it
// checks and records the schema and passes missing values through.
features::Pipeline IdentityPipeline(const std::vector<std::string>& names) {
  std::vector<data::Column> columns;
  columns.reserve(names.size());
  for (const std::string& n : names) columns.emplace_back(n, data::DataType::kFloat32, 0);
  const data::Table empty(std::move(columns));
  features::FitOptions options;
  options.keep_missing = true;
  features::Pipeline p = features::Pipeline::FromSpec("");
  p.Fit(empty, options, *MakeSelfCommunicator());
  return p;
}

}  // namespace

ModelFormat DetectModelFormat(std::string_view bytes) {
  if (bytes.starts_with("ESCALAMB")) return ModelFormat::kBundle;
  if (models::LooksLikeXgboostModel(bytes)) return ModelFormat::kXgboost;
  return models::LooksLikeOnnxModel(bytes) ? ModelFormat::kOnnx : ModelFormat::kBundle;
}

ModelBundle BundleFromOnnx(std::shared_ptr<const models::OnnxGraph> graph, std::string name) {
  auto model = std::make_shared<models::OnnxModel>(std::move(graph));
  ModelBundle b;
  b.name = std::move(name);
  b.pipeline = IdentityPipeline(model->feature_names());
  b.class_names = model->class_labels();
  b.training_config["source"] = "onnx";
  b.training_config["onnx_producer"] = model->graph().producer();
  b.training_config["onnx_opset"] = std::to_string(model->graph().opset());
  b.training_config["onnx_prediction_output"] = model->prediction_output();
  if (!model->label_output().empty()) {
    b.training_config["onnx_label_output"] = model->label_output();
  }
  b.training_config["model"] = "onnx";
  b.model = std::move(model);
  return b;
}

ModelBundle BundleFromXgboost(models::XgboostModel model, std::string name) {
  ModelBundle b;
  b.name = std::move(name);
  b.pipeline = IdentityPipeline(model.feature_names);
  const int classes = model.ensemble->num_classes();
  for (int c = 0; c < classes; ++c) b.class_names.push_back(std::to_string(c));
  b.training_config["source"] = "xgboost";
  b.training_config["xgboost_objective"] = model.objective;
  b.training_config["xgboost_version"] =
      fmt::format("{}.{}.{}", model.version[0], model.version[1], model.version[2]);
  b.training_config["model"] = std::string(model.ensemble->kind());
  if (model.best_iteration >= 0) {
    b.training_config["xgboost_best_iteration"] = std::to_string(model.best_iteration);
  }
  std::string categorical;
  for (std::size_t j = 0; j < model.categorical.size(); ++j) {
    if (!model.categorical[j]) continue;
    categorical += fmt::format("{}{}", categorical.empty() ? "" : ",", model.feature_names[j]);
  }
  if (!categorical.empty()) b.training_config["categorical_codes"] = categorical;
  b.model = std::move(model.ensemble);
  return b;
}

ModelBundle LoadModelFile(const std::string& path) {
  const std::string bytes = ReadFileToString(path);
  const std::filesystem::path p(path);
  ModelFormat format = DetectModelFormat(bytes);
  // A damaged .onnx file gets the ONNX loader's reason, not "not an escala bundle".
  if (format == ModelFormat::kBundle && p.extension() == ".onnx") format = ModelFormat::kOnnx;
  switch (format) {
    case ModelFormat::kBundle:
      return ModelBundle::ParseFromString(bytes, path);
    case ModelFormat::kOnnx:
      return BundleFromOnnx(models::OnnxGraph::Load(bytes, path), p.stem().string());
    case ModelFormat::kXgboost:
      break;
  }
  return BundleFromXgboost(models::ParseXgboostModel(bytes, path), p.stem().string());
}

}  // namespace escala::io
