// Loading, planning and running an ONNX graph (escala/models/onnx.h).
#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "escala/models/onnx.h"
#include "onnx/checker.h"
#include "onnx/defs/schema.h"
#include "onnx/ops.h"
#include "onnx/shape_inference/implementation.h"
#include "onnx/version_converter/convert.h"

namespace escala::models {

using onnxrt::NodeContext;
using onnxrt::Op;

namespace {

constexpr int kMinOpset = 9;
constexpr int kMaxOpset = 17;
constexpr int kMaxMlOpset = 3;
// The most elements one declared dimension or initializer may have: refused at load beyond.
constexpr std::int64_t kMaxElements = std::int64_t{1} << 31;

std::string NodeLabel(const onnx::NodeProto& n, int opset) {
  const std::string name = n.name().empty()
                               ? (n.output_size() > 0 ? "producing '" + n.output(0) + "'" : "")
                               : "'" + n.name() + "'";
  const std::string domain = n.domain().empty() ? "" : n.domain() + ".";
  return fmt::format("node {} ({}{}, opset {})", name, domain, n.op_type(), opset);
}

bool IsDefaultDomain(const std::string& d) {
  return d.empty() || d == "ai.onnx";
}

}  // namespace

struct OnnxGraph::Impl {
  struct Node {
    std::string label;  // for errors
    std::unique_ptr<Op> op;
    std::vector<int> in;   // slot per input, -1 when absent
    std::vector<int> out;  // slot per output
  };
  std::string what;
  std::string producer;
  std::map<std::string, std::string> metadata;
  int opset = 0;
  int ml_opset = 0;
  std::vector<OnnxValueInfo> inputs, outputs;
  std::vector<int> input_slots, output_slots;
  std::vector<Node> nodes;
  // Slots: every tensor name. Constants (initializers, folded nodes) hold their value.
  std::unordered_map<std::string, int> slot_of;
  std::vector<std::unique_ptr<OnnxTensor>> constant;  // per slot, null when computed
  // Per output name: the producing node's proto (for class labels, ZipMap).
  std::map<std::string, onnx::NodeProto> producers;

  int Slot(const std::string& name) {
    auto [it, added] = slot_of.emplace(name, static_cast<int>(constant.size()));
    if (added) constant.emplace_back();
    return it->second;
  }
};

namespace {

using Impl = OnnxGraph::Impl;

onnx::ModelProto ParseProto(std::string_view bytes, std::string_view what) {
  onnx::ModelProto m;
  ESCALA_CHECK(bytes.size() < static_cast<std::size_t>(std::numeric_limits<int>::max()),
               kInvalidArgument, "{}: {} bytes is too large for an ONNX model", what, bytes.size());
  const bool ok = m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  ESCALA_CHECK(ok && m.has_graph(), kInvalidArgument,
               "{}: not an ONNX model (the bytes do not parse as an ONNX ModelProto with a graph)",
               what);
  return m;
}

// The default domain's opset, brought into [kMinOpset, kMaxOpset] (older graphs are converted).
void ReadOpsets(const onnx::ModelProto& m, Impl& g) {
  for (const auto& o : m.opset_import()) {
    if (IsDefaultDomain(o.domain())) g.opset = static_cast<int>(o.version());
    if (o.domain() == "ai.onnx.ml") g.ml_opset = static_cast<int>(o.version());
  }
  ESCALA_CHECK(g.opset > 0, kInvalidArgument, "{}: the model imports no default-domain opset",
               g.what);
  ESCALA_CHECK(g.opset <= kMaxOpset, kInvalidArgument,
               "{}: opset {} is newer than this runtime supports ({}-{}; older ones are converted)",
               g.what, g.opset, kMinOpset, kMaxOpset);
  ESCALA_CHECK(g.ml_opset <= kMaxMlOpset, kInvalidArgument,
               "{}: ai.onnx.ml opset {} is newer than this runtime supports (1-{})", g.what,
               g.ml_opset, kMaxMlOpset);
}

// Brings a graph older than kMinOpset up to it. Only after the checker passed it: libonnx's
// converter assumes a valid graph (a malformed one crashed it under fuzzing).
void ConvertOpset(onnx::ModelProto& m, Impl& g) {
  if (g.opset >= kMinOpset) return;
  try {
    m = onnx::version_conversion::ConvertVersion(m, kMinOpset);
  } catch (const std::exception& e) {
    Throw(ErrorCode::kInvalidArgument, "{}: converting opset {} to {} failed: {}", g.what, g.opset,
          kMinOpset, e.what());
  }
  g.opset = kMinOpset;
}

// The ONNX checker's verdict is final.
void Check(const onnx::ModelProto& m, const std::string& what) {
  try {
    onnx::checker::check_model(m);
  } catch (const std::exception& e) {
    Throw(ErrorCode::kInvalidArgument, "{}: the ONNX checker refuses the model: {}", what,
          e.what());
  }
}

// Shape inference annotates what it can; it is not a gate (libonnx 1.12 cannot infer through
// ZipMap's sequence of maps): the one-row run after planning is what proves the shapes.
void InferShapes(onnx::ModelProto& m) {
  try {
    onnx::shape_inference::InferShapes(m);
  } catch (const std::exception&) {
  }
}

// The declared type and shape of a graph input or output.
OnnxValueInfo ValueInfo(const onnx::ValueInfoProto& v, const std::string& what) {
  OnnxValueInfo info;
  info.name = v.name();
  ESCALA_CHECK(v.type().has_tensor_type(), kInvalidArgument,
               "{}: graph value '{}' is not a tensor (only tensors are supported)", what, v.name());
  const auto& tt = v.type().tensor_type();
  ESCALA_CHECK(onnxrt::FromProtoType(tt.elem_type(), &info.type), kInvalidArgument,
               "{}: graph value '{}' has element type {} (supported: float, int64, bool, string)",
               what, v.name(), onnx::TensorProto_DataType_Name(tt.elem_type()));
  ESCALA_CHECK(tt.has_shape(), kInvalidArgument, "{}: graph input '{}' declares no shape", what,
               v.name());
  for (const auto& d : tt.shape().dim()) {
    const std::int64_t n = d.has_dim_value() ? d.dim_value() : -1;
    ESCALA_CHECK(n >= -1 && n <= kMaxElements, kInvalidArgument,
                 "{}: graph value '{}' declares dimension {} (at most {})", what, v.name(), n,
                 kMaxElements);
    info.shape.push_back(n);
  }
  return info;
}

void ReadInitializers(const onnx::GraphProto& graph, Impl& g) {
  for (const auto& t : graph.initializer()) {
    const int slot = g.Slot(t.name());
    g.constant[static_cast<std::size_t>(slot)] = std::make_unique<OnnxTensor>(
        onnxrt::FromProto(t, fmt::format("{}: initializer '{}'", g.what, t.name())));
  }
}

void ReadInputs(const onnx::GraphProto& graph, Impl& g) {
  for (const auto& v : graph.input()) {
    const auto it = g.slot_of.find(v.name());
    if (it != g.slot_of.end() && g.constant[static_cast<std::size_t>(it->second)]) continue;
    g.inputs.push_back(ValueInfo(v, g.what));
    g.input_slots.push_back(g.Slot(v.name()));
  }
}

// The nodes in an order where each comes after its inputs' producers; a cycle is refused.
std::vector<const onnx::NodeProto*> SortNodes(const onnx::GraphProto& graph, Impl& g) {
  const int n = graph.node_size();
  std::unordered_map<std::string, int> producer;
  for (int i = 0; i < n; ++i) {
    for (const auto& o : graph.node(i).output()) {
      if (!o.empty()) producer[o] = i;
    }
  }
  std::vector<int> pending(static_cast<std::size_t>(n), 0);
  std::vector<std::vector<int>> users(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    for (const auto& in : graph.node(i).input()) {
      if (in.empty()) continue;
      const auto it = producer.find(in);
      if (it != producer.end()) {
        ++pending[static_cast<std::size_t>(i)];
        users[static_cast<std::size_t>(it->second)].push_back(i);
      } else if (!g.slot_of.contains(in)) {
        Throw(ErrorCode::kInvalidArgument, "{}: {} reads '{}', which nothing produces", g.what,
              NodeLabel(graph.node(i), g.opset), in);
      }
    }
  }
  std::vector<int> ready;
  for (int i = 0; i < n; ++i) {
    if (pending[static_cast<std::size_t>(i)] == 0) ready.push_back(i);
  }
  std::vector<const onnx::NodeProto*> order;
  for (std::size_t k = 0; k < ready.size(); ++k) {
    order.push_back(&graph.node(ready[k]));
    for (int u : users[static_cast<std::size_t>(ready[k])]) {
      if (--pending[static_cast<std::size_t>(u)] == 0) ready.push_back(u);
    }
  }
  for (int i = 0; i < n && static_cast<int>(order.size()) < n; ++i) {
    ESCALA_CHECK(pending[static_cast<std::size_t>(i)] == 0, kInvalidArgument,
                 "{}: the graph has a cycle through {}", g.what, NodeLabel(graph.node(i), g.opset));
  }
  return order;
}

// What the operator's schema requires of the node's arity: at least its minimum inputs and
// outputs, and every required (non-optional, non-variadic) input named. Kernels rely on it.
void CheckArity(const onnx::NodeProto& n, const std::string& domain, int opset,
                const std::string& label, const std::string& what) {
  const onnx::OpSchema* schema = onnx::OpSchemaRegistry::Schema(n.op_type(), opset, domain);
  ESCALA_CHECK(schema != nullptr, kInvalidArgument, "{}: {}: no schema for this opset", what,
               label);
  ESCALA_CHECK(n.input_size() >= schema->min_input() && n.output_size() >= schema->min_output() &&
                   n.output_size() >= 1,
               kInvalidArgument, "{}: {}: {} inputs and {} outputs (needs at least {} and {})",
               what, label, n.input_size(), n.output_size(), schema->min_input(),
               std::max(schema->min_output(), 1));
  const auto& formal = schema->inputs();
  for (int i = 0; i < n.input_size() && i < static_cast<int>(formal.size()); ++i) {
    ESCALA_CHECK(!n.input(i).empty() || formal[static_cast<std::size_t>(i)].GetOption() !=
                                            onnx::OpSchema::FormalParameterOption::Single,
                 kInvalidArgument, "{}: {}: input {} is required but empty", what, label, i);
  }
}

// Runs a node's kernel, adding the node to any error.
void RunNode(const Impl::Node& node, std::span<const OnnxTensor* const> in,
             std::span<OnnxTensor* const> out) {
  try {
    node.op->Run(in, out);
  } catch (const Error& e) {
    Throw(e.code(), "{}: {}", node.label, e.message());
  } catch (const std::bad_alloc&) {
    Throw(ErrorCode::kResourceExhausted, "{}: out of memory", node.label);
  }
}

// Builds the kernel of one node; a node whose inputs are all constant is run now and its outputs
// become constants.
void PlanNode(const onnx::NodeProto& proto, Impl& g) {
  const bool ml = proto.domain() == "ai.onnx.ml";
  const int opset = ml ? g.ml_opset : g.opset;
  Impl::Node node;
  node.label = NodeLabel(proto, opset);
  ESCALA_CHECK(ml || IsDefaultDomain(proto.domain()), kInvalidArgument,
               "{}: {}: domain '{}' is not supported (only the default and ai.onnx.ml)", g.what,
               node.label, proto.domain());
  CheckArity(proto, ml ? "ai.onnx.ml" : "", opset, node.label, g.what);
  const onnxrt::OpMaker make = onnxrt::FindOp(ml ? "ai.onnx.ml" : "", proto.op_type());
  ESCALA_CHECK(make != nullptr, kInvalidArgument,
               "{}: {}: operator {} is not supported by escala's ONNX runtime", g.what, node.label,
               proto.op_type());
  std::vector<const OnnxTensor*> constants;
  bool all_constant = true;
  for (const auto& in : proto.input()) {
    const int slot = in.empty() ? -1 : g.Slot(in);
    node.in.push_back(slot);
    const OnnxTensor* c = slot < 0 ? nullptr : g.constant[static_cast<std::size_t>(slot)].get();
    constants.push_back(c);
    all_constant &= slot < 0 || c != nullptr;
  }
  // An omitted output ("") still gets a slot of its own: kernels always have somewhere to write.
  for (const auto& o : proto.output()) {
    node.out.push_back(g.Slot(o.empty() ? fmt::format("\x01unnamed {}", g.constant.size()) : o));
  }
  try {
    node.op = make(NodeContext(proto, opset, constants));
  } catch (const Error& e) {
    Throw(e.code(), "{}: {}: {}", g.what, node.label, e.message());
  }
  for (const auto& o : proto.output()) {
    if (!o.empty()) g.producers[o] = proto;
  }
  if (!all_constant) {
    g.nodes.push_back(std::move(node));
    return;
  }
  std::vector<std::unique_ptr<OnnxTensor>> results;
  std::vector<OnnxTensor*> out;
  for (std::size_t k = 0; k < node.out.size(); ++k) {
    results.push_back(std::make_unique<OnnxTensor>());
    out.push_back(results.back().get());
  }
  try {
    RunNode(node, constants, out);
  } catch (const Error& e) {
    Throw(e.code(), "{}: {}", g.what, e.message());
  }
  for (std::size_t k = 0; k < node.out.size(); ++k) {
    if (node.out[k] >= 0) g.constant[static_cast<std::size_t>(node.out[k])] = std::move(results[k]);
  }
}

void ReadOutputs(const onnx::GraphProto& graph, Impl& g) {
  for (const auto& v : graph.output()) {
    const auto p = g.producers.find(v.name());
    const bool zipmap = p != g.producers.end() && p->second.op_type() == "ZipMap";
    OnnxValueInfo info;
    if (zipmap) {
      info.name = v.name();
      info.type = OnnxType::kFloat;
      info.shape = {-1, -1};
    } else {
      ESCALA_CHECK(v.type().has_tensor_type(), kInvalidArgument,
                   "{}: graph output '{}' is not a tensor (only tensors and ZipMap are supported)",
                   g.what, v.name());
      onnx::ValueInfoProto shaped = v;
      if (!shaped.type().tensor_type().has_shape()) {
        shaped.mutable_type()->mutable_tensor_type()->mutable_shape();
      }
      info = ValueInfo(shaped, g.what);
    }
    const auto it = g.slot_of.find(v.name());
    ESCALA_CHECK(it != g.slot_of.end(), kInvalidArgument,
                 "{}: graph output '{}' is produced by no node", g.what, v.name());
    g.outputs.push_back(std::move(info));
    g.output_slots.push_back(it->second);
  }
  ESCALA_CHECK(!g.outputs.empty(), kInvalidArgument, "{}: the graph has no outputs", g.what);
}

// A one-row input of each graph input (dynamic dimensions 1), zeros or empty strings.
std::vector<OnnxTensor> DummyInputs(const Impl& g) {
  std::vector<OnnxTensor> dummy(g.inputs.size());
  for (std::size_t k = 0; k < g.inputs.size(); ++k) {
    std::vector<std::int64_t> shape = g.inputs[k].shape;
    for (auto& d : shape) d = d < 0 ? 1 : d;
    OnnxTensor& t = dummy[k];
    t.Resize(g.inputs[k].type, shape);
    std::fill(t.f.begin(), t.f.end(), 0.0f);
    std::fill(t.i.begin(), t.i.end(), 0);
    std::fill(t.b.begin(), t.b.end(), 0);
  }
  return dummy;
}

// Fills output shapes that inference left dynamic from a one-row run (batch stays dynamic).
void DryRun(const OnnxGraph& graph, Impl& g) {
  std::vector<OnnxTensor> dummy = DummyInputs(g);
  std::vector<const OnnxTensor*> ptrs;
  for (const auto& t : dummy) ptrs.push_back(&t);
  auto scratch = graph.NewScratch();
  std::span<const OnnxTensor* const> out;
  try {
    out = graph.Run(ptrs, *scratch);
  } catch (const Error& e) {
    Throw(e.code(), "{}: the graph fails on a one-row input: {}", g.what, e.message());
  }
  for (std::size_t k = 0; k < out.size(); ++k) {
    OnnxValueInfo& info = g.outputs[k];
    ESCALA_CHECK(info.type == out[k]->type, kInvalidArgument,
                 "{}: graph output '{}' is declared {} but computed as {}", g.what, info.name,
                 OnnxTypeName(info.type), OnnxTypeName(out[k]->type));
    if (info.shape.size() != out[k]->shape.size()) info.shape.assign(out[k]->shape.size(), -1);
    for (std::size_t d = 1; d < info.shape.size(); ++d) {
      if (info.shape[d] < 0) info.shape[d] = out[k]->shape[d];
    }
    if (!info.shape.empty()) info.shape[0] = -1;
  }
}

}  // namespace

OnnxGraph::OnnxGraph(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OnnxGraph::~OnnxGraph() = default;

namespace {

// Reads the graph's initializers and inputs into `g`, then runs escala's own checks (their
// errors name the initializer, the input, the cycle) and the ONNX checker's, on the graph as
// given.
void ReadAndValidate(const onnx::ModelProto& m, Impl& g) {
  ReadInitializers(m.graph(), g);
  ReadInputs(m.graph(), g);
  SortNodes(m.graph(), g);
  std::unordered_map<std::string, bool> produced;
  for (const auto& n : m.graph().node()) {
    for (const auto& o : n.output()) produced[o] = true;
    // Only graphs of covered operators go on (to libonnx's opset converter among others).
    const bool ml = n.domain() == "ai.onnx.ml";
    ESCALA_CHECK(onnxrt::FindOp(ml ? "ai.onnx.ml" : "", n.op_type()) != nullptr, kInvalidArgument,
                 "{}: {}: operator {} is not supported by escala's ONNX runtime", g.what,
                 NodeLabel(n, ml ? g.ml_opset : g.opset), n.op_type());
  }
  for (const auto& o : m.graph().output()) {
    ESCALA_CHECK(produced.contains(o.name()) || g.slot_of.contains(o.name()), kInvalidArgument,
                 "{}: graph output '{}' is produced by no node", g.what, o.name());
  }
  Check(m, g.what);
}

}  // namespace

std::shared_ptr<const OnnxGraph> OnnxGraph::Load(std::string_view bytes, std::string_view what) {
  auto g = std::make_unique<Impl>();
  g->what = std::string(what);
  onnx::ModelProto m = ParseProto(bytes, what);
  ReadOpsets(m, *g);
  ReadAndValidate(m, *g);
  if (g->opset < kMinOpset) {  // the converted graph is read afresh
    ConvertOpset(m, *g);
    g->slot_of.clear();
    g->constant.clear();
    g->inputs.clear();
    g->input_slots.clear();
    ReadInitializers(m.graph(), *g);
    ReadInputs(m.graph(), *g);
  }
  InferShapes(m);
  g->producer = (m.producer_name() + " " + m.producer_version());
  for (const auto& p : m.metadata_props()) g->metadata[p.key()] = p.value();
  const onnx::GraphProto& graph = m.graph();
  for (const onnx::NodeProto* n : SortNodes(graph, *g)) PlanNode(*n, *g);
  ReadOutputs(graph, *g);
  Impl& ref = *g;
  std::shared_ptr<OnnxGraph> out(new OnnxGraph(std::move(g)));
  DryRun(*out, ref);
  return out;
}

const std::vector<OnnxValueInfo>& OnnxGraph::inputs() const {
  return impl_->inputs;
}
const std::vector<OnnxValueInfo>& OnnxGraph::outputs() const {
  return impl_->outputs;
}
const std::string& OnnxGraph::producer() const {
  return impl_->producer;
}
const std::map<std::string, std::string>& OnnxGraph::metadata() const {
  return impl_->metadata;
}
int OnnxGraph::opset() const {
  return impl_->opset;
}
std::int64_t OnnxGraph::num_nodes() const {
  return static_cast<std::int64_t>(impl_->nodes.size());
}

bool OnnxGraph::IsZipMap(std::string_view output) const {
  const auto p = impl_->producers.find(std::string(output));
  return p != impl_->producers.end() && p->second.op_type() == "ZipMap";
}

std::vector<std::string> OnnxGraph::ClassLabelsOf(std::string_view output) const {
  const auto p = impl_->producers.find(std::string(output));
  if (p == impl_->producers.end()) return {};
  const NodeContext node(p->second, 0, {});
  std::vector<std::string> labels = node.Strings("classlabels_strings");
  if (!labels.empty()) return labels;
  for (const char* attr : {"classlabels_int64s", "classlabels_ints"}) {
    for (std::int64_t v : node.Ints(attr)) labels.push_back(std::to_string(v));
  }
  if (!labels.empty() || p->second.op_type() != "LabelEncoder") return labels;
  labels = node.Strings("values_strings");
  if (labels.empty()) {
    for (std::int64_t v : node.Ints("values_int64s")) labels.push_back(std::to_string(v));
  }
  return labels;
}

std::unique_ptr<OnnxScratch> OnnxGraph::NewScratch() const {
  const Impl& g = *impl_;
  auto s = std::make_unique<OnnxScratch>();
  s->slots.resize(g.constant.size());
  s->view.resize(g.constant.size());
  for (std::size_t k = 0; k < g.constant.size(); ++k) {
    s->view[k] = g.constant[k] ? g.constant[k].get() : &s->slots[k];
  }
  for (const auto& node : g.nodes) {
    s->node_in.emplace_back(node.in.size());
    auto& out = s->node_out.emplace_back(node.out.size());
    for (std::size_t k = 0; k < node.out.size(); ++k) {
      out[k] = node.out[k] < 0 ? nullptr : &s->slots[static_cast<std::size_t>(node.out[k])];
    }
  }
  s->results.resize(g.outputs.size());
  return s;
}

namespace {

void CheckInput(const OnnxValueInfo& info, const OnnxTensor& t, std::size_t k) {
  ESCALA_CHECK(t.type == info.type, kInvalidArgument,
               "input {} ('{}'): {} given, the model takes {}", k, info.name, OnnxTypeName(t.type),
               OnnxTypeName(info.type));
  bool ok = t.shape.size() == info.shape.size();
  for (std::size_t d = 0; ok && d < t.shape.size(); ++d) {
    ok = info.shape[d] < 0 || info.shape[d] == t.shape[d];
  }
  ESCALA_CHECK(ok, kInvalidArgument, "input {} ('{}'): shape {} given, the model takes {}", k,
               info.name, t.ShapeText(), onnxrt::ShapeText(info.shape));
}

}  // namespace

std::span<const OnnxTensor* const> OnnxGraph::Run(std::span<const OnnxTensor* const> inputs,
                                                  OnnxScratch& s) const {
  const Impl& g = *impl_;
  ESCALA_CHECK(inputs.size() == g.inputs.size(), kInvalidArgument,
               "{} inputs given, the model takes {}", inputs.size(), g.inputs.size());
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    CheckInput(g.inputs[k], *inputs[k], k);
    s.view[static_cast<std::size_t>(g.input_slots[k])] = inputs[k];
  }
  for (std::size_t n = 0; n < g.nodes.size(); ++n) {
    const Impl::Node& node = g.nodes[n];
    auto& in = s.node_in[n];
    for (std::size_t k = 0; k < node.in.size(); ++k) {
      in[k] = node.in[k] < 0 ? nullptr : s.view[static_cast<std::size_t>(node.in[k])];
    }
    RunNode(node, in, s.node_out[n]);
  }
  for (std::size_t k = 0; k < s.results.size(); ++k) {
    s.results[k] = s.view[static_cast<std::size_t>(g.output_slots[k])];
  }
  return s.results;
}

bool LooksLikeOnnxModel(std::string_view bytes) {
  if (bytes.empty() || bytes.size() >= static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    return false;
  }
  // ModelProto starts with ir_version (field 1, varint): tag 0x08.
  if (static_cast<unsigned char>(bytes[0]) != 0x08) return false;
  onnx::ModelProto m;
  return m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) && m.has_graph();
}

}  // namespace escala::models
