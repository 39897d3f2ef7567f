#include "escala/models/tree_ensemble.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "escala/core/error.h"
#include "escala/core/parallel.h"
#include "models/registry.h"

namespace escala::models {

namespace pb = escala::model::v1;

namespace {

bool IsKnownObjective(std::string_view name) {
  static constexpr std::string_view kKnown[] = {
      "",      "squared_error", "absolute_error", "huber",   "poisson",
      "gamma", "tweedie",       "logistic",       "softmax", "random_forest"};
  return std::find(std::begin(kKnown), std::end(kKnown), name) != std::end(kKnown);
}

}  // namespace

std::int32_t Tree::AddLeaf(float v) {
  feature.push_back(-1);
  threshold.push_back(0.0f);
  left.push_back(-1);
  right.push_back(-1);
  default_left.push_back(0);
  value.push_back(v);
  cover.push_back(0.0f);
  gain.push_back(0.0f);
  if (!cat_begin.empty()) {
    cat_begin.push_back(0);
    cat_end.push_back(0);
  }
  return static_cast<std::int32_t>(feature.size() - 1);
}

bool Tree::InCategorySet(std::size_t node, float v) const {
  if (!(v >= 0)) return false;
  const auto words = static_cast<float>(cat_end[node] - cat_begin[node]);
  if (!(v < 32 * words) || v != std::floor(v)) return false;
  const auto c = static_cast<std::uint32_t>(v);
  return ((cat_bits[static_cast<std::size_t>(cat_begin[node]) + c / 32] >> (c % 32)) & 1u) != 0;
}

void Tree::SetCategories(std::size_t node, const std::vector<std::uint32_t>& left_codes) {
  if (cat_begin.empty()) {
    cat_begin.assign(size(), 0);
    cat_end.assign(size(), 0);
  }
  const std::uint32_t top = *std::max_element(left_codes.begin(), left_codes.end());
  const auto begin = static_cast<std::int32_t>(cat_bits.size());
  cat_bits.resize(cat_bits.size() + top / 32 + 1, 0u);
  for (std::uint32_t c : left_codes) {
    cat_bits[static_cast<std::size_t>(begin) + c / 32] |= 1u << (c % 32);
  }
  cat_begin[node] = begin;
  cat_end[node] = static_cast<std::int32_t>(cat_bits.size());
}

std::int32_t Tree::LeafOf(const float* row) const {
  std::int32_t n = 0;
  while (feature[static_cast<std::size_t>(n)] >= 0) {
    const auto i = static_cast<std::size_t>(n);
    n = GoesLeft(i, row[feature[i]]) ? left[i] : right[i];
  }
  return n;
}

int Tree::Depth() const {
  std::vector<int> depth(size(), 0);
  int deepest = 0;
  for (std::size_t i = 0; i < size(); ++i) {
    if (feature[i] < 0) {
      deepest = std::max(deepest, depth[i]);
      continue;
    }
    depth[static_cast<std::size_t>(left[i])] = depth[i] + 1;
    depth[static_cast<std::size_t>(right[i])] = depth[i] + 1;
  }
  return deepest;
}

TreeEnsemble::TreeEnsemble(Task task, std::int64_t num_features, std::int64_t num_outputs,
                           std::vector<float> base_score, std::vector<Tree> trees,
                           std::string objective)
    : task_(task),
      d_(num_features),
      k_(num_outputs),
      base_score_(std::move(base_score)),
      trees_(std::move(trees)),
      objective_(std::move(objective)) {
  ESCALA_CHECK(IsKnownObjective(objective_), kInvalidArgument,
               "tree ensemble objective '{}' is not known", objective_);
  ESCALA_CHECK(d_ >= 1, kInvalidArgument, "a tree ensemble needs >= 1 feature, got {}", d_);
  const std::int64_t want = task == Task::kMulticlass ? std::max<std::int64_t>(k_, 2) : 1;
  ESCALA_CHECK(k_ == want, kInvalidArgument, "a {} tree ensemble has {} output(s), got {}",
               TaskName(task), want, k_);
  ESCALA_CHECK(static_cast<std::int64_t>(base_score_.size()) == k_, kInvalidArgument,
               "base score has {} value(s) for {} output(s)", base_score_.size(), k_);
  ESCALA_CHECK(trees_.size() % static_cast<std::size_t>(k_) == 0, kInvalidArgument,
               "{} trees is not a whole number of rounds of {} (one tree per output)",
               trees_.size(), k_);
  for (std::size_t t = 0; t < trees_.size(); ++t) CheckTree(t);
  if (objective_ == "poisson" || objective_ == "gamma" || objective_ == "tweedie") {
    output_ = Output::kExp;
  }
  if (objective_ == "random_forest" && task_ == Task::kBinary) output_ = Output::kLogOdds;
  if (objective_ == "random_forest" && task_ == Task::kMulticlass) {
    output_ = Output::kLogProbabilities;
  }
  Flatten();
}

void TreeEnsemble::Flatten() {
  constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
  flat_.clear();
  flat_value_.clear();
  flat_begin_.clear();
  flat_depth_.clear();
  flat_categorical_.clear();
  for (const Tree& t : trees_) {
    const std::size_t base = flat_.size();
    flat_begin_.push_back(base);
    flat_depth_.push_back(t.Depth());
    flat_categorical_.push_back(!t.cat_begin.empty());
    std::vector<std::int32_t> order = {0};  // original node indices, in flat order
    for (std::size_t q = 0; q < order.size(); ++q) {
      const auto o = static_cast<std::size_t>(order[q]);
      const auto self = static_cast<std::int32_t>(q);
      if (t.feature[o] < 0) {
        flat_.push_back({0, kNan, self - 1, 0});
        flat_value_.push_back(t.value[o]);
        continue;
      }
      const auto left = static_cast<std::int32_t>(order.size());
      order.push_back(t.left[o]);
      order.push_back(t.right[o]);
      const std::uint32_t categorical =
          t.IsCategorical(o) ? 2u | static_cast<std::uint32_t>(o << 2) : 0u;
      flat_.push_back(
          {t.feature[o], t.threshold[o], left, (t.default_left[o] != 0 ? 1u : 0u) | categorical});
      flat_value_.push_back(0.0f);
    }
  }
}

// Every row of [begin, end) takes one step per level of tree t, in lockstep, then adds its leaf.
void TreeEnsemble::AddTreeToBlock(std::size_t t, ConstMatrixViewF x, std::size_t begin,
                                  std::size_t end, MatrixViewF logits) const {
  constexpr std::size_t kMaxBlock = 256;
  std::int32_t at[kMaxBlock] = {};
  const FlatNode* nodes = flat_.data() + flat_begin_[t];
  const float* values = flat_value_.data() + flat_begin_[t];
  const std::size_t n = end - begin;
  if (flat_categorical_[t]) {
    for (std::size_t i = 0; i < n; ++i) {
      at[i] = trees_[t].LeafOf(x.row(static_cast<std::int64_t>(begin + i)));
    }
    const Tree& tree = trees_[t];
    const auto j = static_cast<std::int64_t>(t % static_cast<std::size_t>(k_));
    for (std::size_t i = 0; i < n; ++i) {
      logits(static_cast<std::int64_t>(begin + i), j) +=
          tree.value[static_cast<std::size_t>(at[i])];
    }
    return;
  }
  for (int step = 0; step < flat_depth_[t]; ++step) {
    for (std::size_t i = 0; i < n; ++i) {
      const FlatNode& node = nodes[at[i]];
      const float v = x.row(static_cast<std::int64_t>(begin + i))[node.feature];
      const bool left = std::isnan(v) ? (node.info & 1u) != 0 : v < node.threshold;
      at[i] = node.left + (left ? 0 : 1);
    }
  }
  const auto j = static_cast<std::int64_t>(t % static_cast<std::size_t>(k_));
  for (std::size_t i = 0; i < n; ++i)
    logits(static_cast<std::int64_t>(begin + i), j) += values[at[i]];
}

void TreeEnsemble::CheckTree(std::size_t t) const {
  const Tree& tr = trees_[t];
  const std::size_t n = tr.size();
  ESCALA_CHECK(n >= 1 && tr.threshold.size() == n && tr.left.size() == n && tr.right.size() == n &&
                   tr.default_left.size() == n && tr.value.size() == n,
               kInvalidArgument, "tree {}: node arrays of different lengths (or no node)", t);
  ESCALA_CHECK(
      (tr.cover.empty() || tr.cover.size() == n) && (tr.gain.empty() || tr.gain.size() == n),
      kInvalidArgument, "tree {}: {} covers and {} gains for {} nodes", t, tr.cover.size(),
      tr.gain.size(), n);
  for (std::size_t i = 0; i < tr.cover.size(); ++i) {
    ESCALA_CHECK(tr.cover[i] >= 0, kInvalidArgument, "tree {} node {}: cover {}", t, i,
                 tr.cover[i]);
  }
  ESCALA_CHECK(tr.cat_begin.size() == tr.cat_end.size() &&
                   (tr.cat_begin.empty() || tr.cat_begin.size() == n),
               kInvalidArgument, "tree {}: {} category ranges for {} nodes", t, tr.cat_begin.size(),
               n);
  for (std::size_t i = 0; i < tr.cat_begin.size(); ++i) {
    ESCALA_CHECK(tr.cat_begin[i] >= 0 && tr.cat_begin[i] <= tr.cat_end[i] &&
                     static_cast<std::size_t>(tr.cat_end[i]) <= tr.cat_bits.size(),
                 kInvalidArgument, "tree {} node {}: categories [{}, {}) of {} words", t, i,
                 tr.cat_begin[i], tr.cat_end[i], tr.cat_bits.size());
  }
  for (std::size_t i = 0; i < n; ++i) {
    const std::int32_t f = tr.feature[i];
    if (f < 0) {
      ESCALA_CHECK(std::isfinite(tr.value[i]), kInvalidArgument, "tree {} node {}: leaf value {}",
                   t, i, tr.value[i]);
      continue;
    }
    // Children come after their parent: every walk ends, and in at most n steps.
    const auto in_range = [&](std::int32_t c) {
      return c > static_cast<std::int32_t>(i) && c < static_cast<std::int32_t>(n);
    };
    ESCALA_CHECK(
        f < d_ && in_range(tr.left[i]) && in_range(tr.right[i]) && !std::isnan(tr.threshold[i]),
        kInvalidArgument,
        "tree {} node {}: split on feature {} of {} with children {} and {} (threshold {})", t, i,
        f, d_, tr.left[i], tr.right[i], tr.threshold[i]);
  }
}

std::unique_ptr<Workspace> TreeEnsemble::NewWorkspace() const {
  return std::make_unique<Workspace>();
}

void TreeEnsemble::Logits(ConstMatrixViewF x, MatrixViewF logits, Workspace&) const {
  Score(x, logits, true);
}

void TreeEnsemble::Margins(ConstMatrixViewF x, MatrixViewF out) const {
  Score(x, out, false);
}

void TreeEnsemble::Score(ConstMatrixViewF x, MatrixViewF logits, bool transform) const {
  ESCALA_CHECK(x.cols() == d_, kInvalidArgument, "model expects {} features, got {}", d_, x.cols());
  ESCALA_ASSERT(logits.rows() == x.rows() && logits.cols() == k_);
  constexpr std::size_t kRowBlock = 256;
  const auto rows = static_cast<std::size_t>(x.rows());
  ParallelFor(rows, kRowBlock, [&](std::size_t begin, std::size_t end) {
    for (std::size_t b = begin; b < end; b += kRowBlock) {
      const std::size_t e = std::min(end, b + kRowBlock);
      for (std::size_t i = b; i < e; ++i) {
        float* out = logits.row(static_cast<std::int64_t>(i));
        for (std::int64_t j = 0; j < k_; ++j) out[j] = base_score_[static_cast<std::size_t>(j)];
      }
      // One tree over the whole block: its nodes stay in cache while the rows walk it.
      for (std::size_t t = 0; t < trees_.size(); ++t) AddTreeToBlock(t, x, b, e, logits);
      if (!transform) continue;
      for (std::size_t i = b; i < e; ++i) Transform(logits.row(static_cast<std::int64_t>(i)));
    }
  });
}

void TreeEnsemble::Transform(float* scores) const {
  constexpr float kTiny = 1e-7f;
  if (output_ == Output::kExp) {
    scores[0] = std::exp(scores[0]);
  } else if (output_ == Output::kLogOdds) {
    const float p = std::clamp(scores[0], kTiny, 1 - kTiny);
    scores[0] = std::log(p / (1 - p));
  } else if (output_ == Output::kLogProbabilities) {
    for (std::int64_t j = 0; j < k_; ++j) scores[j] = std::log(std::max(scores[j], kTiny));
  }
}

std::unique_ptr<Model> TreeEnsemble::Clone() const {
  return std::make_unique<TreeEnsemble>(*this);
}

bool TreeEnsemble::HasStats() const {
  return std::all_of(trees_.begin(), trees_.end(),
                     [](const Tree& t) { return t.cover.size() == t.size(); });
}

FeatureImportance TreeEnsemble::Importance() const {
  const auto d = static_cast<std::size_t>(d_);
  FeatureImportance imp{std::vector<double>(d), std::vector<double>(d),
                        std::vector<std::int64_t>(d)};
  for (const Tree& t : trees_) {
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (t.feature[i] < 0) continue;
      const auto f = static_cast<std::size_t>(t.feature[i]);
      ++imp.splits[f];
      if (!t.gain.empty()) imp.gain[f] += t.gain[i];
      if (!t.cover.empty()) imp.cover[f] += t.cover[i];
    }
  }
  return imp;
}

std::string TreeEnsemble::Describe() const {
  std::size_t leaves = 0;
  int depth = 0;
  for (const Tree& t : trees_) {
    leaves += static_cast<std::size_t>(std::count(t.feature.begin(), t.feature.end(), -1));
    depth = std::max(depth, t.Depth());
  }
  return fmt::format(
      "{} {} features -> {} output(s) ({} trees, {} leaves, depth <= {}{})", kind(), d_, k_,
      trees_.size(), leaves, depth,
      objective_.empty() || objective_ == "random_forest" ? "" : ", objective " + objective_);
}

// ---- the family entry ------------------------------------------------------------------------

namespace {

void SaveTrees(const Model& model, pb::Model* out) {
  const auto& m = dynamic_cast<const TreeEnsemble&>(model);
  out->mutable_base_score()->Assign(m.base_score().begin(), m.base_score().end());
  for (const Tree& t : m.trees()) {
    pb::Tree* p = out->add_trees();
    p->mutable_feature()->Assign(t.feature.begin(), t.feature.end());
    p->mutable_threshold()->Assign(t.threshold.begin(), t.threshold.end());
    p->mutable_left()->Assign(t.left.begin(), t.left.end());
    p->mutable_right()->Assign(t.right.begin(), t.right.end());
    p->mutable_default_left()->Assign(t.default_left.begin(), t.default_left.end());
    p->mutable_value()->Assign(t.value.begin(), t.value.end());
    p->mutable_cover()->Assign(t.cover.begin(), t.cover.end());
    p->mutable_gain()->Assign(t.gain.begin(), t.gain.end());
    p->mutable_cat_begin()->Assign(t.cat_begin.begin(), t.cat_begin.end());
    p->mutable_cat_end()->Assign(t.cat_end.begin(), t.cat_end.end());
    p->mutable_cat_bits()->Assign(t.cat_bits.begin(), t.cat_bits.end());
  }
  out->set_objective(m.objective());
}

std::unique_ptr<Model> LoadTrees(const pb::Model& proto, Task task) {
  std::vector<Tree> trees;
  for (const pb::Tree& p : proto.trees()) {
    Tree t;
    t.feature.assign(p.feature().begin(), p.feature().end());
    t.threshold.assign(p.threshold().begin(), p.threshold().end());
    t.left.assign(p.left().begin(), p.left().end());
    t.right.assign(p.right().begin(), p.right().end());
    t.default_left.assign(p.default_left().begin(), p.default_left().end());
    t.value.assign(p.value().begin(), p.value().end());
    t.cover.assign(p.cover().begin(), p.cover().end());
    t.gain.assign(p.gain().begin(), p.gain().end());
    t.cat_begin.assign(p.cat_begin().begin(), p.cat_begin().end());
    t.cat_end.assign(p.cat_end().begin(), p.cat_end().end());
    t.cat_bits.assign(p.cat_bits().begin(), p.cat_bits().end());
    trees.push_back(std::move(t));
  }
  return std::make_unique<TreeEnsemble>(
      task, proto.num_features(), proto.num_outputs(),
      std::vector<float>(proto.base_score().begin(), proto.base_score().end()), std::move(trees),
      proto.objective());
}

}  // namespace

const ModelFamily kGbdtFamily = {
    "gbdt", [](Task requested) { return requested; }, nullptr, nullptr, SaveTrees, LoadTrees};
const ModelFamily kRandomForestFamily = {"random_forest", [](Task requested) { return requested; },
                                         nullptr,         nullptr,
                                         SaveTrees,       LoadTrees};

}  // namespace escala::models
