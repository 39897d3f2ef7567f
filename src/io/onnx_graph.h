// A small builder of ONNX graphs over libonnx's protobuf classes, private to the ONNX exporter
// (src/io/onnx_export*.cc): fresh tensor names, nodes with attributes, and constants stored as
// initializers (shared when equal scalars are asked for twice).
#ifndef ESCALA_SRC_IO_ONNX_GRAPH_H_
#define ESCALA_SRC_IO_ONNX_GRAPH_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <onnx/onnx_pb.h>

namespace escala::io::onnx_internal {

inline constexpr char kMlDomain[] = "ai.onnx.ml";

class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto* graph) : graph_(graph) {}

  // A name not used before, made from `hint`.
  std::string Fresh(std::string_view hint);
  // Marks a name (a graph input or output) as used, so that Fresh() never returns it.
  void Reserve(const std::string& name) { taken_.insert(name); }

  // Adds a node of `type` (in `domain`, "" for the default one) reading `inputs`, with one fresh
  // output named from `hint`; returns the node so that callers add attributes.
  onnx::NodeProto& Node(std::string_view type, const std::vector<std::string>& inputs,
                        std::string_view hint, std::string_view domain = "");
  // Node() for the common case of no attributes: returns the output's name.
  std::string Op(std::string_view type, const std::vector<std::string>& inputs,
                 std::string_view hint = "t");

  // Constants (initializers): a float or int64 scalar (rank 0), or a tensor of `dims`.
  std::string Scalar(float v);
  std::string Floats(const std::vector<float>& values, const std::vector<std::int64_t>& dims);
  std::string Ints(const std::vector<std::int64_t>& values, const std::vector<std::int64_t>& dims);

  onnx::GraphProto& graph() { return *graph_; }

 private:
  onnx::GraphProto* graph_;
  std::map<std::string, int> used_;
  std::set<std::string> taken_;
  std::map<std::uint32_t, std::string> scalars_;  // by the float's bits
};

// Attributes.
void SetAttr(onnx::NodeProto& node, const std::string& name, std::int64_t v);
void SetAttr(onnx::NodeProto& node, const std::string& name, float v);
void SetAttr(onnx::NodeProto& node, const std::string& name, const std::string& v);
void SetAttr(onnx::NodeProto& node, const std::string& name, const std::vector<std::int64_t>& v);
void SetAttr(onnx::NodeProto& node, const std::string& name, const std::vector<float>& v);
void SetAttr(onnx::NodeProto& node, const std::string& name, const std::vector<std::string>& v);

// A graph input or output: a tensor of `elem_type` and shape [N, width] (width < 0: [N]).
void AddValueInfo(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list,
                  const std::string& name, onnx::TensorProto_DataType elem_type,
                  std::int64_t width);

}  // namespace escala::io::onnx_internal

#endif  // ESCALA_SRC_IO_ONNX_GRAPH_H_
