#include "io/onnx_graph.h"

#include <bit>

#include <fmt/format.h>

namespace escala::io::onnx_internal {

std::string GraphBuilder::Fresh(std::string_view hint) {
  int& n = used_[std::string(hint)];
  std::string name;
  do {
    name = fmt::format("{}__{}", hint, n++);
  } while (!taken_.insert(name).second);
  return name;
}

onnx::NodeProto& GraphBuilder::Node(std::string_view type, const std::vector<std::string>& inputs,
                                    std::string_view hint, std::string_view domain) {
  onnx::NodeProto& node = *graph_->add_node();
  node.set_op_type(std::string(type));
  if (!domain.empty()) node.set_domain(std::string(domain));
  for (const auto& in : inputs) node.add_input(in);
  node.add_output(Fresh(hint));
  node.set_name(Fresh(fmt::format("{}_node", type)));
  return node;
}

std::string GraphBuilder::Op(std::string_view type, const std::vector<std::string>& inputs,
                             std::string_view hint) {
  return Node(type, inputs, hint).output(0);
}

std::string GraphBuilder::Scalar(float v) {
  const auto bits = std::bit_cast<std::uint32_t>(v);
  auto it = scalars_.find(bits);
  if (it != scalars_.end()) return it->second;
  std::string name = Floats({v}, {});
  scalars_.emplace(bits, name);
  return name;
}

std::string GraphBuilder::Floats(const std::vector<float>& values,
                                 const std::vector<std::int64_t>& dims) {
  onnx::TensorProto& t = *graph_->add_initializer();
  t.set_name(Fresh("const"));
  t.set_data_type(onnx::TensorProto_DataType_FLOAT);
  for (auto d : dims) t.add_dims(d);
  for (float v : values) t.add_float_data(v);
  return t.name();
}

std::string GraphBuilder::Ints(const std::vector<std::int64_t>& values,
                               const std::vector<std::int64_t>& dims) {
  onnx::TensorProto& t = *graph_->add_initializer();
  t.set_name(Fresh("const"));
  t.set_data_type(onnx::TensorProto_DataType_INT64);
  for (auto d : dims) t.add_dims(d);
  for (auto v : values) t.add_int64_data(v);
  return t.name();
}

namespace {

onnx::AttributeProto& NewAttr(onnx::NodeProto& node, const std::string& name,
                              onnx::AttributeProto_AttributeType type) {
  onnx::AttributeProto& a = *node.add_attribute();
  a.set_name(name);
  a.set_type(type);
  return a;
}

}  // namespace

void SetAttr(onnx::NodeProto& node, const std::string& name, std::int64_t v) {
  NewAttr(node, name, onnx::AttributeProto_AttributeType_INT).set_i(v);
}

void SetAttr(onnx::NodeProto& node, const std::string& name, float v) {
  NewAttr(node, name, onnx::AttributeProto_AttributeType_FLOAT).set_f(v);
}

void SetAttr(onnx::NodeProto& node, const std::string& name, const std::string& v) {
  NewAttr(node, name, onnx::AttributeProto_AttributeType_STRING).set_s(v);
}

void SetAttr(onnx::NodeProto& node, const std::string& name, const std::vector<std::int64_t>& v) {
  auto& a = NewAttr(node, name, onnx::AttributeProto_AttributeType_INTS);
  for (auto x : v) a.add_ints(x);
}

void SetAttr(onnx::NodeProto& node, const std::string& name, const std::vector<float>& v) {
  auto& a = NewAttr(node, name, onnx::AttributeProto_AttributeType_FLOATS);
  for (float x : v) a.add_floats(x);
}

void SetAttr(onnx::NodeProto& node, const std::string& name, const std::vector<std::string>& v) {
  auto& a = NewAttr(node, name, onnx::AttributeProto_AttributeType_STRINGS);
  for (const auto& x : v) a.add_strings(x);
}

void AddValueInfo(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list,
                  const std::string& name, onnx::TensorProto_DataType elem_type,
                  std::int64_t width) {
  onnx::ValueInfoProto& v = *list->Add();
  v.set_name(name);
  auto* tensor = v.mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(elem_type);
  auto* shape = tensor->mutable_shape();
  shape->add_dim()->set_dim_param("N");
  if (width >= 0) shape->add_dim()->set_dim_value(width);
}

}  // namespace escala::io::onnx_internal
