// The ONNX runtime's kernels (private to src/onnx). A kernel is built once per node at load, from
// the node's attributes and whatever of its inputs are constant, and then run on every request:
// Run() reads its inputs and resizes and fills its outputs (OnnxTensor::Resize keeps capacity).
//
// Errors: a maker throws through NodeContext::Fail (kInvalidArgument; the graph adds the node's
// name, op type and opset); Run throws kInvalidArgument for inputs it cannot take (dtype, shape)
// and the graph adds the node.
#ifndef ESCALA_SRC_ONNX_OPS_H_
#define ESCALA_SRC_ONNX_OPS_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "escala/core/error.h"
#include "escala/models/onnx.h"
#include "onnx/onnx_pb.h"

namespace escala::models::onnxrt {

using In = std::span<const OnnxTensor* const>;
using Out = std::span<OnnxTensor* const>;

class Op {
 public:
  virtual ~Op() = default;
  virtual void Run(In in, Out out) const = 0;
};

// What a kernel maker sees of its node.
class NodeContext {
 public:
  NodeContext(const onnx::NodeProto& node, int opset, std::vector<const OnnxTensor*> constants)
      : node_(node), opset_(opset), constants_(std::move(constants)) {}

  const onnx::NodeProto& node() const { return node_; }
  int opset() const { return opset_; }
  int num_inputs() const { return node_.input_size(); }
  // Whether input i is given (optional inputs may be absent or "").
  bool HasInput(int i) const { return i < node_.input_size() && !node_.input(i).empty(); }
  // Input i's value when it is a constant (initializer, Constant, folded), else null.
  const OnnxTensor* Constant(int i) const;

  const onnx::AttributeProto* Attr(std::string_view name) const;
  std::int64_t Int(std::string_view name, std::int64_t fallback) const;
  float Float(std::string_view name, float fallback) const;
  std::string String(std::string_view name, std::string_view fallback) const;
  std::vector<std::int64_t> Ints(std::string_view name) const;
  std::vector<float> Floats(std::string_view name) const;
  std::vector<std::string> Strings(std::string_view name) const;
  // A tensor attribute (Constant's value).
  OnnxTensor TensorAttr(std::string_view name) const;

  template <typename... Args>
  [[noreturn]] void Fail(fmt::format_string<Args...> format, Args&&... args) const {
    Throw(ErrorCode::kInvalidArgument, "{}", fmt::format(format, std::forward<Args>(args)...));
  }

 private:
  const onnx::NodeProto& node_;
  int opset_;
  std::vector<const OnnxTensor*> constants_;
};

using OpMaker = std::unique_ptr<Op> (*)(const NodeContext&);

struct OpEntry {
  std::string_view domain;  // "" for the default domain, "ai.onnx.ml"
  std::string_view op_type;
  OpMaker make;
};

// The kernels of each file, and the lookup over all of them (null when not covered).
std::span<const OpEntry> ElementwiseOps();
std::span<const OpEntry> TensorOps();
std::span<const OpEntry> MlOps();
OpMaker FindOp(std::string_view domain, std::string_view op_type);

// A TensorProto (initializer, Constant, attribute) as a tensor; kInvalidArgument naming `what` for
// an unsupported type or data whose size disagrees with the shape.
OnnxTensor FromProto(const onnx::TensorProto& t, std::string_view what);
// The ONNX element type (TensorProto::DataType) as OnnxType; false when unsupported.
bool FromProtoType(int data_type, OnnxType* out);

// Shape helpers. Elements() refuses (kResourceExhausted) a tensor of more than
// kMaxTensorElements: a graph that would build one is refused at load by the one-row run, or the
// request that would is refused, before anything is allocated.
inline constexpr std::int64_t kMaxTensorElements = std::int64_t{1} << 31;
std::int64_t Elements(std::span<const std::int64_t> shape);
std::string ShapeText(std::span<const std::int64_t> shape);
// Normalises a possibly negative axis against `rank`; throws naming `what` when out of range.
int NormalizeAxis(std::int64_t axis, std::int64_t rank, std::string_view what);
// The numpy-broadcast shape of a and b into `out` (which must alias neither); throws when they
// do not broadcast. Kernels pass a thread_local vector: no allocation per call once warm.
void BroadcastShapeInto(std::span<const std::int64_t> a, std::span<const std::int64_t> b,
                        std::vector<std::int64_t>& out);

// Checks the input's type, naming the op and input index.
void ExpectType(const OnnxTensor& t, OnnxType type, std::string_view op, int index);
// The values of a 1-D int64 tensor (axes, shapes), checked to be one.
const std::vector<std::int64_t>& IntValues(const OnnxTensor& t);

}  // namespace escala::models::onnxrt

#endif  // ESCALA_SRC_ONNX_OPS_H_
