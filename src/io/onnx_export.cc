// ExportOnnx: the bundle's pipeline and model as one ONNX graph (escala/io/onnx_export.h). The
// pipeline and the model are translated by their own parts (onnx_export_pipeline.cc,
// onnx_export_expression.cc, onnx_export_model.cc); here the model is assembled, its outputs
// named, and the whole checked with libonnx before a byte of it is written.
#include "escala/io/onnx_export.h"

#include <exception>

#include <fmt/format.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include "escala/config.h"
#include "escala/core/error.h"
#include "escala/core/file_util.h"
#include "io/onnx_export_internal.h"

namespace escala::io {

namespace onnx_internal {

void Refuse(std::string_view what, std::string_view why) {
  Throw(ErrorCode::kFailedPrecondition, "cannot export to ONNX: {}: {}", what, why);
}

}  // namespace onnx_internal

namespace {

using models::Task;
using onnx_internal::GraphBuilder;
using onnx_internal::SetAttr;

constexpr int kMlOpset = 3;
constexpr char kPrediction[] = "prediction";
constexpr char kProbabilities[] = "probabilities";
constexpr char kLabel[] = "label";

// Names `from` as the graph output `name` (an Identity), of element `type` and [N, width].
void AddOutput(GraphBuilder& g, const std::string& from, const std::string& name,
               onnx::TensorProto_DataType type, std::int64_t width) {
  onnx::NodeProto& id = g.Node("Identity", {from}, "output");
  id.set_output(0, name);
  onnx_internal::AddValueInfo(g.graph().mutable_output(), name, type, width);
}

// The class names, or the class indices where the bundle has none.
std::vector<std::string> ClassNames(const ModelBundle& bundle, std::int64_t classes) {
  if (static_cast<std::int64_t>(bundle.class_names.size()) == classes) return bundle.class_names;
  std::vector<std::string> names;
  for (std::int64_t c = 0; c < classes; ++c) names.push_back(fmt::format("{}", c));
  return names;
}

// The [N] int64 class index as the bundle's class name.
std::string LabelOf(const ModelBundle& bundle, const std::string& index, std::int64_t classes,
                    GraphBuilder& g) {
  std::vector<std::int64_t> keys;
  for (std::int64_t c = 0; c < classes; ++c) keys.push_back(c);
  auto& n = g.Node("LabelEncoder", {index}, "label", onnx_internal::kMlDomain);
  SetAttr(n, "keys_int64s", keys);
  SetAttr(n, "values_strings", ClassNames(bundle, classes));
  SetAttr(n, "default_string", std::string());
  return n.output(0);
}

// Binary: probabilities [1 - p, p], and class 1 where p >= 0.5 (Predictor::Classes).
void AddBinaryOutputs(const ModelBundle& bundle, const std::string& p, GraphBuilder& g) {
  auto& probs = g.Node("Concat", {g.Op("Sub", {g.Scalar(1.0f), p}, "q"), p}, "probabilities");
  SetAttr(probs, "axis", std::int64_t{1});
  AddOutput(g, probs.output(0), kProbabilities, onnx::TensorProto_DataType_FLOAT, 2);
  const std::string below = g.Op("Less", {p, g.Scalar(0.5f)}, "below_half");
  const std::string zero = g.Ints({0}, {});
  const std::string one = g.Ints({1}, {});
  const std::string index = g.Op("Where", {below, zero, one}, "class");
  const std::string flat = g.Op("Squeeze", {index, g.Ints({1}, {1})}, "class");
  AddOutput(g, LabelOf(bundle, flat, 2, g), kLabel, onnx::TensorProto_DataType_STRING, -1);
}

// Multiclass: the probabilities and their first argmax (Predictor::Classes).
void AddMulticlassOutputs(const ModelBundle& bundle, const std::string& probs, std::int64_t classes,
                          GraphBuilder& g) {
  AddOutput(g, probs, kProbabilities, onnx::TensorProto_DataType_FLOAT, classes);
  auto& argmax = g.Node("ArgMax", {probs}, "class");
  SetAttr(argmax, "axis", std::int64_t{1});
  SetAttr(argmax, "keepdims", std::int64_t{0});
  AddOutput(g, LabelOf(bundle, argmax.output(0), classes, g), kLabel,
            onnx::TensorProto_DataType_STRING, -1);
}

void AddOutputs(const ModelBundle& bundle, const std::string& predictions, GraphBuilder& g) {
  const models::Model& model = *bundle.model;
  switch (model.task()) {
    case Task::kRegression:
      return AddOutput(g, predictions, kPrediction, onnx::TensorProto_DataType_FLOAT, 1);
    case Task::kBinary:
      return AddBinaryOutputs(bundle, predictions, g);
    case Task::kMulticlass:
      return AddMulticlassOutputs(bundle, predictions, model.num_outputs(), g);
  }
}

void CheckExportable(const ModelBundle& bundle, const OnnxExportOptions& options) {
  ESCALA_CHECK(options.opset >= kOnnxMinOpset && options.opset <= kOnnxMaxOpset, kInvalidArgument,
               "ONNX export: opset {} is not supported (use {} to {})", options.opset,
               kOnnxMinOpset, kOnnxMaxOpset);
  ESCALA_CHECK(bundle.model != nullptr && bundle.pipeline.fitted(), kFailedPrecondition,
               "cannot export to ONNX: the bundle has no fitted pipeline and model");
  const data::Schema& inputs = bundle.input_schema();
  ESCALA_CHECK(inputs.num_fields() > 0, kFailedPrecondition,
               "cannot export to ONNX: the pipeline reads no input columns");
  for (const char* name : {kPrediction, kProbabilities, kLabel}) {
    ESCALA_CHECK(inputs.Find(name) < 0, kFailedPrecondition,
                 "cannot export to ONNX: input column '{}' has the name of a graph output", name);
  }
}

onnx::ModelProto BuildModel(const ModelBundle& bundle, const OnnxExportOptions& options) {
  onnx::ModelProto m;
  m.set_ir_version(onnx::IR_VERSION);
  m.set_producer_name("escala");
  m.set_producer_version(ESCALA_VERSION_STRING);
  auto* opset = m.add_opset_import();
  opset->set_domain("");
  opset->set_version(options.opset);
  opset = m.add_opset_import();
  opset->set_domain(onnx_internal::kMlDomain);
  opset->set_version(kMlOpset);
  onnx::GraphProto& graph = *m.mutable_graph();
  graph.set_name(!options.graph_name.empty() ? options.graph_name
                 : !bundle.name.empty()      ? bundle.name
                                             : std::string("escala"));
  GraphBuilder g(&graph);
  for (const char* name : {kPrediction, kProbabilities, kLabel}) g.Reserve(name);
  const std::string features = onnx_internal::ExportPipeline(bundle.pipeline, g);
  AddOutputs(bundle, onnx_internal::ExportModel(*bundle.model, features, g), g);
  return m;
}

// libonnx's checker, then shape inference in strict mode with type checks (what Python's
// onnx.checker.check_model(m, full_check=True) runs).
void Validate(const onnx::ModelProto& m) {
  try {
    onnx::checker::check_model(m);
    onnx::ModelProto inferred = m;
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(true, 1, false));
  } catch (const std::exception& e) {
    Throw(ErrorCode::kFailedPrecondition,
          "cannot export to ONNX: the graph fails ONNX's checks: {}", e.what());
  }
}

}  // namespace

std::string ExportOnnx(const ModelBundle& bundle, const OnnxExportOptions& options) {
  CheckExportable(bundle, options);
  const onnx::ModelProto m = BuildModel(bundle, options);
  Validate(m);
  std::string bytes;
  ESCALA_CHECK(m.SerializeToString(&bytes), kInternal, "ONNX export: serialising the model failed");
  return bytes;
}

void ExportOnnxFile(const ModelBundle& bundle, const std::string& path,
                    const OnnxExportOptions& options) {
  WriteFileAtomic(path, ExportOnnx(bundle, options));
}

}  // namespace escala::io
