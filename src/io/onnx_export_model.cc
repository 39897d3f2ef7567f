// The model families as ONNX nodes, from the features tensor to Predict()'s output: linear models
// and the MLP as Gemm with their activations, tree ensembles as one TreeEnsembleRegressor (one
// target per output) followed by the ensemble's output transform; then the task's link and the
// target scaling, as Model::Predict applies them.
#include <limits>

#include <fmt/format.h>

#include "escala/core/error.h"
#include "escala/models/linear.h"
#include "escala/models/mlp.h"
#include "escala/models/tree_ensemble.h"
#include "io/onnx_export_internal.h"

namespace escala::io::onnx_internal {

namespace {

using models::Activation;
using models::Task;
using models::Tree;

// Expanded tree nodes past this many are refused (categorical splits copy subtrees).
constexpr std::size_t kMaxTreeNodes = std::size_t{1} << 24;

std::string Gemm(const std::string& x, const float* w, std::int64_t in, std::int64_t out,
                 GraphBuilder& g) {
  const std::vector<float> weights(w, w + in * out);
  const std::vector<float> bias(w + in * out, w + in * out + out);
  return g.Op("Gemm", {x, g.Floats(weights, {in, out}), g.Floats(bias, {out})}, "gemm");
}

std::string Linear(const models::LinearModel& m, const std::string& x, GraphBuilder& g) {
  return Gemm(x, m.parameters().data(), m.num_features(), m.num_outputs(), g);
}

// As mlp.cc's Activate: GELU is 0.5 z (1 + erf(z / sqrt 2)), with the same float constant.
std::string Activate(Activation act, const std::string& z, GraphBuilder& g) {
  constexpr float kInvSqrt2 = 0.70710678118654752f;
  switch (act) {
    case Activation::kIdentity:
      return z;
    case Activation::kReLU:
      return g.Op("Relu", {z}, "relu");
    case Activation::kTanh:
      return g.Op("Tanh", {z}, "tanh");
    case Activation::kSigmoid:
      return g.Op("Sigmoid", {z}, "sigmoid");
    case Activation::kGELU: {
      const std::string erf = g.Op("Erf", {g.Op("Mul", {z, g.Scalar(kInvSqrt2)})}, "gelu_erf");
      const std::string half = g.Op("Mul", {g.Scalar(0.5f), z}, "gelu_half");
      return g.Op("Mul", {half, g.Op("Add", {g.Scalar(1.0f), erf})}, "gelu");
    }
  }
  return z;
}

std::string Mlp(const models::Mlp& m, const std::string& x, GraphBuilder& g) {
  const auto& sizes = m.sizes();
  std::string h = x;
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
    const float* w = m.parameters().data() + m.weight_offset(l);
    h = Gemm(h, w, sizes[l], sizes[l + 1], g);
    if (l + 2 < sizes.size()) h = Activate(m.spec().activation, h, g);
  }
  return h;
}

// The attributes of a TreeEnsembleRegressor, filled tree by tree.
struct TreeAttrs {
  std::vector<std::int64_t> tree_ids, node_ids, feature_ids, true_ids, false_ids, missing_true;
  std::vector<std::string> modes;
  std::vector<float> values;
  std::vector<std::int64_t> target_tree_ids, target_node_ids, target_ids;
  std::vector<float> target_weights;
  std::int64_t next_id = 0;  // within the current tree
  std::int64_t tree = 0;
  std::int64_t target = 0;

  std::size_t AddNode(const char* mode, std::int64_t feature, float value, bool missing_left) {
    ESCALA_CHECK(modes.size() < kMaxTreeNodes, kFailedPrecondition,
                 "cannot export to ONNX: the tree ensemble needs more than {} nodes once its "
                 "categorical splits are expanded",
                 kMaxTreeNodes);
    tree_ids.push_back(tree);
    node_ids.push_back(next_id++);
    modes.emplace_back(mode);
    feature_ids.push_back(feature);
    values.push_back(value);
    true_ids.push_back(0);
    false_ids.push_back(0);
    missing_true.push_back(missing_left ? 1 : 0);
    return modes.size() - 1;
  }
};

std::vector<float> CategoryCodes(const Tree& t, std::size_t node) {
  std::vector<float> codes;
  const auto begin = static_cast<std::size_t>(t.cat_begin[node]);
  const auto end = static_cast<std::size_t>(t.cat_end[node]);
  for (std::size_t w = begin; w < end; ++w) {
    for (std::uint32_t b = 0; b < 32; ++b) {
      if ((t.cat_bits[w] >> b) & 1u) codes.push_back(static_cast<float>((w - begin) * 32 + b));
    }
  }
  return codes;
}

std::int64_t EmitNode(const Tree& t, std::size_t node, TreeAttrs& a);

// A categorical split as a chain of BRANCH_EQ nodes, one per code of the left set, each sending
// its code to (its own copy of) the left subtree and the rest on; the last sends the rest right.
// A missing value takes the default way: left at the first node, or through the chain to the
// right. An empty set: a BRANCH_LT on -inf that only a missing value can take left.
std::int64_t EmitCategorical(const Tree& t, std::size_t node, TreeAttrs& a) {
  const bool missing_left = t.default_left[node] != 0;
  const auto feature = static_cast<std::int64_t>(t.feature[node]);
  const auto left = static_cast<std::size_t>(t.left[node]);
  const auto right = static_cast<std::size_t>(t.right[node]);
  std::vector<float> codes = CategoryCodes(t, node);
  if (codes.empty()) {
    const std::size_t at =
        a.AddNode("BRANCH_LT", feature, -std::numeric_limits<float>::infinity(), missing_left);
    const std::int64_t id = a.node_ids[at];
    a.true_ids[at] = EmitNode(t, left, a);
    a.false_ids[at] = EmitNode(t, right, a);
    return id;
  }
  std::int64_t first = -1;
  std::size_t prev = 0;
  for (std::size_t k = 0; k < codes.size(); ++k) {
    const std::size_t at = a.AddNode("BRANCH_EQ", feature, codes[k], missing_left);
    if (k == 0) first = a.node_ids[at];
    if (k > 0) a.false_ids[prev] = a.node_ids[at];
    a.true_ids[at] = EmitNode(t, left, a);
    prev = at;
  }
  a.false_ids[prev] = EmitNode(t, right, a);
  return first;
}

std::int64_t EmitNode(const Tree& t, std::size_t node, TreeAttrs& a) {
  if (t.feature[node] < 0) {
    const std::size_t at = a.AddNode("LEAF", 0, 0.0f, false);
    a.target_tree_ids.push_back(a.tree);
    a.target_node_ids.push_back(a.node_ids[at]);
    a.target_ids.push_back(a.target);
    a.target_weights.push_back(t.value[node]);
    return a.node_ids[at];
  }
  if (t.IsCategorical(node)) return EmitCategorical(t, node, a);
  const std::size_t at =
      a.AddNode("BRANCH_LT", t.feature[node], t.threshold[node], t.default_left[node] != 0);
  const std::int64_t id = a.node_ids[at];
  a.true_ids[at] = EmitNode(t, static_cast<std::size_t>(t.left[node]), a);
  a.false_ids[at] = EmitNode(t, static_cast<std::size_t>(t.right[node]), a);
  return id;
}

void SetTreeAttrs(onnx::NodeProto& n, const TreeAttrs& a) {
  SetAttr(n, "nodes_treeids", a.tree_ids);
  SetAttr(n, "nodes_nodeids", a.node_ids);
  SetAttr(n, "nodes_featureids", a.feature_ids);
  SetAttr(n, "nodes_modes", a.modes);
  SetAttr(n, "nodes_values", a.values);
  SetAttr(n, "nodes_truenodeids", a.true_ids);
  SetAttr(n, "nodes_falsenodeids", a.false_ids);
  SetAttr(n, "nodes_missing_value_tracks_true", a.missing_true);
  SetAttr(n, "target_treeids", a.target_tree_ids);
  SetAttr(n, "target_nodeids", a.target_node_ids);
  SetAttr(n, "target_ids", a.target_ids);
  SetAttr(n, "target_weights", a.target_weights);
}

// TreeEnsemble::Transform: exp for a log-link objective; a forest's mean probability as log-odds
// or log-probabilities, clamped as there.
std::string TreeOutput(const models::TreeEnsemble& m, const std::string& s, GraphBuilder& g) {
  constexpr float kTiny = 1e-7f;
  const std::string& objective = m.objective();
  if (objective == "poisson" || objective == "gamma" || objective == "tweedie") {
    return g.Op("Exp", {s}, "exp");
  }
  if (objective != "random_forest" || m.task() == Task::kRegression) return s;
  if (m.task() == Task::kBinary) {
    const std::string p = g.Op("Clip", {s, g.Scalar(kTiny), g.Scalar(1 - kTiny)}, "p");
    const std::string odds = g.Op("Div", {p, g.Op("Sub", {g.Scalar(1.0f), p})}, "odds");
    return g.Op("Log", {odds}, "log_odds");
  }
  return g.Op("Log", {g.Op("Max", {s, g.Scalar(kTiny)})}, "log_p");
}

std::string Trees(const models::TreeEnsemble& m, const std::string& x, GraphBuilder& g) {
  TreeAttrs a;
  const auto& trees = m.trees();
  for (std::size_t t = 0; t < trees.size(); ++t) {
    a.tree = static_cast<std::int64_t>(t);
    a.target = static_cast<std::int64_t>(t % static_cast<std::size_t>(m.num_outputs()));
    a.next_id = 0;
    EmitNode(trees[t], 0, a);
  }
  auto& n = g.Node("TreeEnsembleRegressor", {x}, "tree_scores", kMlDomain);
  SetTreeAttrs(n, a);
  SetAttr(n, "n_targets", m.num_outputs());
  SetAttr(n, "aggregate_function", std::string("SUM"));
  SetAttr(n, "post_transform", std::string("NONE"));
  SetAttr(n, "base_values", m.base_score());
  return TreeOutput(m, n.output(0), g);
}

std::string Logits(const models::Model& model, const std::string& x, GraphBuilder& g) {
  if (const auto* m = dynamic_cast<const models::LinearModel*>(&model)) return Linear(*m, x, g);
  if (const auto* m = dynamic_cast<const models::Mlp*>(&model)) return Mlp(*m, x, g);
  if (const auto* m = dynamic_cast<const models::TreeEnsemble*>(&model)) {
    ESCALA_CHECK(!m->trees().empty(), kFailedPrecondition,
                 "cannot export to ONNX: the tree ensemble has no trees");
    return Trees(*m, x, g);
  }
  Refuse(fmt::format("model kind '{}'", model.kind()),
         "only linear, logistic, softmax, mlp, gbdt and random_forest models are exported");
}

}  // namespace

std::string ExportModel(const models::Model& model, const std::string& features, GraphBuilder& g) {
  const std::string logits = Logits(model, features, g);
  switch (model.task()) {
    case Task::kBinary:
      return g.Op("Sigmoid", {logits}, "p");
    case Task::kMulticlass: {
      auto& softmax = g.Node("Softmax", {logits}, "probabilities");
      SetAttr(softmax, "axis", std::int64_t{1});
      return softmax.output(0);
    }
    case Task::kRegression:
      break;
  }
  if (model.target_shift() == 0.0 && model.target_scale() == 1.0) return logits;
  const auto scale = static_cast<float>(model.target_scale());
  const auto shift = static_cast<float>(model.target_shift());
  return g.Op("Add", {g.Op("Mul", {logits, g.Scalar(scale)}, "scaled"), g.Scalar(shift)}, "y");
}

}  // namespace escala::io::onnx_internal
