// An ONNX graph as a models::Model (escala/models/onnx.h).
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "escala/core/error.h"
#include "escala/models/onnx.h"
#include "onnx/ops.h"

namespace escala::models {
namespace {

class OnnxWorkspace final : public Workspace {
 public:
  std::unique_ptr<OnnxScratch> scratch;
  std::vector<OnnxTensor> inputs;
  std::vector<const OnnxTensor*> pointers;
};

bool IsNumeric(OnnxType t) {
  return t == OnnxType::kFloat || t == OnnxType::kInt64;
}

// The width of a prediction output: [N] -> 1, [N, K] -> K; -1 when not a prediction.
std::int64_t OutputWidth(const OnnxValueInfo& o) {
  if (o.type != OnnxType::kFloat) return -1;
  if (o.shape.size() == 1) return 1;
  if (o.shape.size() == 2 && o.shape[1] > 0) return o.shape[1];
  return -1;
}

}  // namespace

OnnxModel::OnnxModel(std::shared_ptr<const OnnxGraph> graph) : graph_(std::move(graph)) {
  ReadInputs();
  ReadOutputs();
}

void OnnxModel::ReadInputs() {
  for (const OnnxValueInfo& in : graph_->inputs()) {
    ESCALA_CHECK(IsNumeric(in.type), kInvalidArgument,
                 "ONNX input '{}' is {}: escala scores ONNX models whose inputs are float or int64 "
                 "tensors",
                 in.name, OnnxTypeName(in.type));
    ESCALA_CHECK(in.shape.size() == 1 || in.shape.size() == 2, kInvalidArgument,
                 "ONNX input '{}' has shape {}: escala scores inputs of shape [N] or [N, F]",
                 in.name, onnxrt::ShapeText(in.shape));
    ESCALA_CHECK(in.shape[0] < 0 || in.shape[0] == 1, kInvalidArgument,
                 "ONNX input '{}' has a fixed batch of {} rows; export it with a dynamic batch "
                 "dimension",
                 in.name, in.shape[0]);
    const std::int64_t width = in.shape.size() == 1 ? 1 : in.shape[1];
    ESCALA_CHECK(width > 0, kInvalidArgument,
                 "ONNX input '{}' has a dynamic or empty feature dimension ({})", in.name,
                 onnxrt::ShapeText(in.shape));
    input_widths_.push_back(width);
    for (std::int64_t j = 0; j < width; ++j) {
      feature_names_.push_back(width == 1 ? in.name : fmt::format("{}_{}", in.name, j));
    }
    num_features_ += width;
  }
  ESCALA_CHECK(num_features_ > 0, kInvalidArgument, "the ONNX graph takes no inputs");
  const auto names = graph_->metadata().find("feature_names");
  if (names == graph_->metadata().end() || graph_->inputs().size() != 1) return;
  std::vector<std::string> given;
  for (std::size_t at = 0; at <= names->second.size();) {
    const std::size_t comma = std::min(names->second.find(',', at), names->second.size());
    given.push_back(names->second.substr(at, comma - at));
    at = comma + 1;
  }
  ESCALA_CHECK(static_cast<std::int64_t>(given.size()) == num_features_, kInvalidArgument,
               "the ONNX model's metadata_props feature_names has {} names for {} features",
               given.size(), num_features_);
  feature_names_ = std::move(given);
}

void OnnxModel::ReadOutputs() {
  const auto& outs = graph_->outputs();
  int label = -1, probabilities = -1, regression = -1;
  for (int k = 0; k < static_cast<int>(outs.size()); ++k) {
    const OnnxValueInfo& o = outs[static_cast<std::size_t>(k)];
    const bool label_like = (o.type == OnnxType::kInt64 || o.type == OnnxType::kString) &&
                            (o.shape.size() == 1 || (o.shape.size() == 2 && o.shape[1] == 1));
    if (label_like && label < 0) label = k;
    const std::int64_t w = OutputWidth(o);
    if (w >= 2 && o.shape.size() == 2 && probabilities < 0) probabilities = k;
    if (w >= 1 && regression < 0) regression = k;
  }
  if (label >= 0 && probabilities >= 0) {
    prediction_index_ = probabilities;
    label_output_ = outs[static_cast<std::size_t>(label)].name;
    const std::int64_t c = outs[static_cast<std::size_t>(probabilities)].shape[1];
    class_labels_ = graph_->ClassLabelsOf(label_output_);
    if (static_cast<std::int64_t>(class_labels_.size()) != c) {
      class_labels_.clear();
      for (std::int64_t j = 0; j < c; ++j) class_labels_.push_back(std::to_string(j));
    }
    task_ = c == 2 ? Task::kBinary : Task::kMulticlass;
    num_outputs_ = c == 2 ? 1 : c;
  } else {
    ESCALA_CHECK(
        regression >= 0, kInvalidArgument,
        "the ONNX graph has no float output of shape [N] or [N, K] to read as predictions");
    prediction_index_ = regression;
    task_ = Task::kRegression;
    num_outputs_ = OutputWidth(outs[static_cast<std::size_t>(regression)]);
  }
  prediction_output_ = outs[static_cast<std::size_t>(prediction_index_)].name;
}

std::unique_ptr<Workspace> OnnxModel::NewWorkspace() const {
  auto ws = std::make_unique<OnnxWorkspace>();
  ws->scratch = graph_->NewScratch();
  ws->inputs.resize(graph_->inputs().size());
  for (const OnnxTensor& t : ws->inputs) ws->pointers.push_back(&t);
  return ws;
}

void OnnxModel::Logits(ConstMatrixViewF x, MatrixViewF logits, Workspace& workspace) const {
  auto& ws = static_cast<OnnxWorkspace&>(workspace);
  ESCALA_CHECK(x.cols() == num_features_, kInvalidArgument,
               "the ONNX model takes {} features, got {}", num_features_, x.cols());
  const auto& infos = graph_->inputs();
  // A graph exported with a fixed batch of one row runs row by row.
  const bool one_row = std::any_of(infos.begin(), infos.end(),
                                   [](const OnnxValueInfo& i) { return i.shape[0] == 1; });
  const std::int64_t step = one_row ? 1 : std::max<std::int64_t>(x.rows(), 1);
  for (std::int64_t r0 = 0; r0 < x.rows(); r0 += step) {
    const std::int64_t n = std::min(step, x.rows() - r0);
    std::int64_t col = 0;
    for (std::size_t k = 0; k < infos.size(); ++k) {
      const std::int64_t w = input_widths_[k];
      OnnxTensor& t = ws.inputs[k];
      if (infos[k].shape.size() == 1) {
        t.Resize(infos[k].type, {n});
      } else {
        t.Resize(infos[k].type, {n, w});
      }
      for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t j = 0; j < w; ++j) {
          const float v = x(r0 + i, col + j);
          const auto at = static_cast<std::size_t>(i * w + j);
          if (t.type == OnnxType::kFloat) {
            t.f[at] = v;
          } else {
            ESCALA_CHECK(std::abs(v) < 9.2e18f && std::floor(v) == v, kInvalidArgument,
                         "row {}, feature '{}': {} is not an integer (the ONNX input '{}' is "
                         "int64)",
                         r0 + i, feature_names_[static_cast<std::size_t>(col + j)], v,
                         infos[k].name);
            t.i[at] = static_cast<std::int64_t>(v);
          }
        }
      }
      col += w;
    }
    const OnnxTensor& p =
        *graph_->Run(ws.pointers, *ws.scratch)[static_cast<std::size_t>(prediction_index_)];
    const std::int64_t width = p.shape.size() == 2 ? p.shape[1] : 1;
    ESCALA_CHECK(p.type == OnnxType::kFloat && !p.shape.empty() && p.shape[0] == n &&
                     (width == num_outputs_ || (task_ == Task::kBinary && width == 2)),
                 kInvalidArgument, "ONNX output '{}' is {} {} for {} rows, expected {} columns",
                 prediction_output_, OnnxTypeName(p.type), p.ShapeText(), n, num_outputs_);
    for (std::int64_t i = 0; i < n; ++i) {
      if (task_ == Task::kBinary) {
        logits(r0 + i, 0) = p.f[static_cast<std::size_t>(i * width + width - 1)];
        continue;
      }
      for (std::int64_t j = 0; j < num_outputs_; ++j) {
        logits(r0 + i, j) = p.f[static_cast<std::size_t>(i * width + j)];
      }
    }
  }
}

std::unique_ptr<Model> OnnxModel::Clone() const {
  return std::make_unique<OnnxModel>(*this);
}

std::string OnnxModel::Describe() const {
  return fmt::format("onnx graph of {} nodes (opset {}, from {}): {} features -> '{}' ({})",
                     graph_->num_nodes(), graph_->opset(), graph_->producer(), num_features_,
                     prediction_output_, TaskName(task_));
}

}  // namespace escala::models
