// ONNX graphs as escala models: a model trained elsewhere (PyTorch's torch.onnx.export,
// scikit-learn through skl2onnx, escala's own `escala export`) scored and served by escala.
//
// OnnxGraph is the runtime. Loading parses the ModelProto with Debian's libonnx, checks the
// initializers, inputs and node order (a cycle is refused) and that every operator is covered,
// runs the ONNX checker, converts opsets older than 9 up, runs shape inference, folds every node
// whose inputs are constant (Constant, Shape/Gather chains on constant shapes), builds one kernel
// per node with its attributes checked, and runs the graph once on a one-row dummy input so that
// shapes that cannot work (a Reshape to an impossible shape, a Gemm whose weights disagree with its
// input) are refused at load, naming the node. Running it then executes the planned kernels in
// order on escala's own code (its dispatched GEMM/GEMV kernels for Gemm/MatMul, as the MLP uses);
// every intermediate tensor lives in a slot of the caller's OnnxScratch whose buffers keep their
// capacity, and kernels keep their shape scratch per thread, so a steady stream of same-sized
// requests allocates nothing.
//
// Coverage: the default domain's Gemm, MatMul, Add, Sub, Mul, Div, Pow, Max, Min, Relu,
// LeakyRelu, Sigmoid, Tanh, Erf, Sqrt, Exp, Log, Abs, Neg, Floor, IsNaN, Softmax, LogSoftmax,
// Flatten, Reshape, Squeeze, Unsqueeze, Transpose, Concat, Identity, Cast, Constant, Shape, Gather,
// BatchNormalization and Dropout (inference), ArgMax, Clip, Where, Greater, Less, Equal, ReduceSum
// (opsets 9-17; 1-8 converted); the ai.onnx.ml domain's Scaler, Imputer, Normalizer,
// OneHotEncoder, LabelEncoder, LinearClassifier, LinearRegressor, TreeEnsembleClassifier,
// TreeEnsembleRegressor, ZipMap, Binarizer. Element types: float, int64, bool, string. Anything
// else is refused at load with the node's name, op type and opset.
//
// OnnxModel adapts a graph to models::Model so that the bundle, the Predictor, `escala score`
// and the server use it as any model: the graph's numeric inputs ([N] or [N, F], float or
// int64), in order, are the feature matrix's columns (named as feature_names() says), and its
// outputs are read as a classifier (a float [N, C] probabilities output — or a ZipMap of it —
// beside a label output) or else as a regressor (the first float output, [N] or [N, K]). Graph
// outputs are final predictions: no link is applied on top.
//
// Thread-safety: OnnxGraph and OnnxModel are immutable after load; Run is const and may be called
// from many threads, each with its own OnnxScratch.
#ifndef ESCALA_MODELS_ONNX_H_
#define ESCALA_MODELS_ONNX_H_

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "escala/models/model.h"

namespace escala::models {

enum class OnnxType : std::uint8_t { kFloat, kInt64, kBool, kString };
// "float", "int64", "bool", "string".
std::string_view OnnxTypeName(OnnxType t);

// A dense tensor, row-major. Only the vector of its type is used; Resize keeps the capacity.
struct OnnxTensor {
  OnnxType type = OnnxType::kFloat;
  std::vector<std::int64_t> shape;
  std::vector<float> f;
  std::vector<std::int64_t> i;
  std::vector<std::uint8_t> b;
  std::vector<std::string> s;

  std::int64_t size() const;
  // Sets type and shape and sizes the type's vector (contents unspecified).
  void Resize(OnnxType t, std::span<const std::int64_t> dims);
  void Resize(OnnxType t, std::initializer_list<std::int64_t> dims) {
    Resize(t, std::span<const std::int64_t>(dims.begin(), dims.size()));
  }
  std::string ShapeText() const;  // "[3, 4]"
};

// A graph input or output as declared: -1 for a dynamic dimension. A ZipMap output is reported
// as the float [N, C] tensor it maps.
struct OnnxValueInfo {
  std::string name;
  OnnxType type = OnnxType::kFloat;
  std::vector<std::int64_t> shape;
};

// A graph's per-caller memory (OnnxGraph::NewScratch): a tensor per intermediate value, and the
// input and output pointers of each planned node. Its contents belong to the graph that made it.
class OnnxScratch {
 public:
  std::vector<OnnxTensor> slots;
  std::vector<const OnnxTensor*> view;
  std::vector<std::vector<const OnnxTensor*>> node_in;
  std::vector<std::vector<OnnxTensor*>> node_out;
  std::vector<const OnnxTensor*> results;
};

class OnnxGraph {
 public:
  // Throws kInvalidArgument (what is wrong, and where: node name, op type, opset, tensor name)
  // for a model that is not ONNX, fails the checker, or uses what the runtime does not cover.
  // `what` names the source (a path) in errors.
  static std::shared_ptr<const OnnxGraph> Load(std::string_view bytes, std::string_view what);
  ~OnnxGraph();

  const std::vector<OnnxValueInfo>& inputs() const;
  const std::vector<OnnxValueInfo>& outputs() const;
  // "pytorch 1.13.1", "skl2onnx 1.13", "escala 0.4.0": the producer recorded in the model.
  const std::string& producer() const;
  int opset() const;  // of the default domain, after conversion
  // The model's metadata_props (key -> value).
  const std::map<std::string, std::string>& metadata() const;
  std::int64_t num_nodes() const;  // planned (after folding)
  // Attribute lookups for OnnxModel: class labels declared by the node producing `output`
  // (classlabels_strings / classlabels_int64s of a classifier, values of a LabelEncoder fed by
  // ArgMax), empty when none.
  std::vector<std::string> ClassLabelsOf(std::string_view output) const;
  // Whether `output` is a ZipMap's (then it holds that ZipMap's input tensor).
  bool IsZipMap(std::string_view output) const;

  std::unique_ptr<OnnxScratch> NewScratch() const;
  // Runs the graph on `inputs` (one per inputs(), in order; dtypes and ranks checked, dynamic
  // dimensions free) and returns the outputs, in outputs()'s order, as tensors owned by
  // `scratch` (valid until its next use). kInvalidArgument naming the input or the node at fault.
  std::span<const OnnxTensor* const> Run(std::span<const OnnxTensor* const> inputs,
                                         OnnxScratch& scratch) const;

  struct Impl;

 private:
  explicit OnnxGraph(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class OnnxModel final : public Model {
 public:
  // kInvalidArgument when the graph's inputs or outputs cannot be read as a model (see above).
  explicit OnnxModel(std::shared_ptr<const OnnxGraph> graph);

  std::string_view kind() const override { return "onnx"; }
  Task task() const override { return task_; }
  std::int64_t num_features() const override { return num_features_; }
  std::int64_t num_outputs() const override { return num_outputs_; }
  bool OutputsArePredictions() const override { return true; }
  std::unique_ptr<Workspace> NewWorkspace() const override;
  // The graph's prediction for the rows of x: values (regression), P(y = 1) (binary) or class
  // probabilities (multiclass).
  void Logits(ConstMatrixViewF x, MatrixViewF logits, Workspace& ws) const override;
  std::unique_ptr<Model> Clone() const override;
  std::string Describe() const override;

  const OnnxGraph& graph() const { return *graph_; }
  // One name per feature column: an input's name for a one-column input, "name_j" otherwise, or
  // for a graph with one input the comma-separated names in its metadata_props "feature_names"
  // (how a graph exported elsewhere is scored against a CSV's named columns).
  const std::vector<std::string>& feature_names() const { return feature_names_; }
  // The class labels the graph declares ("0", "1", ... when it declares none); empty for a
  // regressor.
  const std::vector<std::string>& class_labels() const { return class_labels_; }
  // Which graph outputs hold the prediction (probabilities for a classifier) and the label
  // (empty for a regressor).
  const std::string& prediction_output() const { return prediction_output_; }
  const std::string& label_output() const { return label_output_; }

 private:
  void ReadInputs();
  void ReadOutputs();

  std::shared_ptr<const OnnxGraph> graph_;
  Task task_ = Task::kRegression;
  std::int64_t num_features_ = 0;
  std::int64_t num_outputs_ = 1;
  std::vector<std::string> feature_names_;
  std::vector<std::int64_t> input_widths_;  // columns of x each graph input takes
  std::vector<std::string> class_labels_;
  std::string prediction_output_;
  std::string label_output_;
  int prediction_index_ = 0;  // in graph().outputs()
};

// Whether `bytes` look like an ONNX ModelProto (parses, with a graph): how model files are told
// apart from bundles and XGBoost models.
bool LooksLikeOnnxModel(std::string_view bytes);

}  // namespace escala::models

#endif  // ESCALA_MODELS_ONNX_H_
