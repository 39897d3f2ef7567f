// Tree ensembles: gradient-boosted decision trees ("gbdt"), evaluated as the sum of their trees'
// leaf values over a base score.
//
// Every tree is stored flat, one array per node field, in the order the nodes were made: node 0
// is the root; a split node sends a row left when its feature's value is below the threshold
// (x < threshold), right otherwise, and a missing value (NaN) the way its default_left says; a
// leaf has feature -1 and holds its value. For C classes, tree t adds to output t mod C (one tree
// per class per round, as XGBoost and LightGBM lay them out); otherwise every tree adds to the one
// output. The outputs are raw scores (logits) on which the task's link acts as for every model.
//
// Inference walks blocks of rows through one tree at a time, so a tree's nodes stay in cache
// while many rows use them, with threads across row blocks.
//
// Every node may also carry its cover (the training rows' hessian sum) and a split its gain (the
// loss reduction it made): they give per-feature importance and exact TreeSHAP contributions
// (Lundberg et al. 2018, "Consistent individualized feature attribution for tree ensembles",
// the path-dependent algorithm), whose values per row sum to the raw score.
//
// Thread-safety: const methods may run concurrently.
#ifndef ESCALA_MODELS_TREE_ENSEMBLE_H_
#define ESCALA_MODELS_TREE_ENSEMBLE_H_

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "escala/core/matrix.h"
#include "escala/models/model.h"

namespace escala::models {

struct Tree {
  std::vector<std::int32_t> feature;  // split feature, -1 for a leaf
  std::vector<float> threshold;       // left when x < threshold
  std::vector<std::int32_t> left, right;
  std::vector<std::uint8_t> default_left;  // 1: a missing value goes left
  std::vector<float> value;                // leaf value (0 for split nodes)
  // Optional (empty, or one per node): the training rows' hessian sum at the node, and a split
  // node's loss reduction (0 for a leaf).
  std::vector<float> cover;
  std::vector<float> gain;
  // Categorical splits (empty when the tree has none, else one per node): node i sends a row
  // left when its value is a category code c (a whole number >= 0) whose bit is set in
  // cat_bits[cat_begin[i], cat_end[i]) (bit c % 32 of word c / 32); any other value (an
  // unseen category, a code past the set) goes right, a missing one the default way. A numeric
  // split has cat_begin == cat_end.
  std::vector<std::int32_t> cat_begin, cat_end;
  std::vector<std::uint32_t> cat_bits;

  std::size_t size() const { return feature.size(); }
  // Appends a leaf (cover and gain 0); returns its index.
  std::int32_t AddLeaf(float v);
  bool IsCategorical(std::size_t node) const {
    return !cat_begin.empty() && cat_end[node] > cat_begin[node];
  }
  // Whether value v (of the node's feature) goes left at split node `node`.
  bool GoesLeft(std::size_t node, float v) const {
    if (std::isnan(v)) return default_left[node] != 0;
    if (!IsCategorical(node)) return v < threshold[node];
    return InCategorySet(node, v);
  }
  bool InCategorySet(std::size_t node, float v) const;
  // Appends a categorical split's left set (category codes) for node; sets cat_begin/cat_end.
  void SetCategories(std::size_t node, const std::vector<std::uint32_t>& left_codes);
  // The leaf a row reaches (row: num_features values).
  std::int32_t LeafOf(const float* row) const;
  // Depth of the deepest leaf (a lone leaf: 0).
  int Depth() const;
};

// Per-feature importance summed over every split: the loss reduction ("gain", XGBoost's
// total_gain), the hessian sum of the rows split ("cover", total_cover) and the number of splits.
struct FeatureImportance {
  std::vector<double> gain;
  std::vector<double> cover;
  std::vector<std::int64_t> splits;
};

class TreeEnsemble final : public Model {
 public:
  // base_score: one value per output. objective: as trained ("squared_error", "absolute_error",
  // "huber", "poisson", "gamma", "tweedie", "logistic", "softmax", "random_forest"; empty: the
  // task's default); a "poisson", "gamma" or "tweedie" ensemble (log link) outputs exp(score); a
  // "random_forest" (kind "random_forest") sums the mean of its trees, a value or class
  // probabilities, and outputs it as logits (log-odds, log-probabilities) for the task's link; the
  // others output the score. Checks every tree's structure (children in range and after their
  // parent, features in range, leaves finite, covers not negative); kInvalidArgument naming the
  // tree and node.
  TreeEnsemble(Task task, std::int64_t num_features, std::int64_t num_outputs,
               std::vector<float> base_score, std::vector<Tree> trees, std::string objective = {});

  std::string_view kind() const override {
    return objective_ == "random_forest" ? "random_forest" : "gbdt";
  }
  Task task() const override { return task_; }
  std::int64_t num_features() const override { return d_; }
  std::int64_t num_outputs() const override { return k_; }
  std::unique_ptr<Workspace> NewWorkspace() const override;
  void Logits(ConstMatrixViewF x, MatrixViewF logits, Workspace& ws) const override;
  std::unique_ptr<Model> Clone() const override;
  std::string Describe() const override;

  // The raw scores: base score plus the trees' sums, before the objective's output transform
  // (what boosting continues from). out is x.rows() x num_outputs().
  void Margins(ConstMatrixViewF x, MatrixViewF out) const;

  const std::vector<Tree>& trees() const { return trees_; }
  const std::vector<float>& base_score() const { return base_score_; }
  const std::string& objective() const { return objective_; }
  // Whether every tree carries its covers (and gains): importance and contributions need them.
  bool HasStats() const;
  FeatureImportance Importance() const;

  // TreeSHAP: out is rows x (num_outputs * (num_features + 1)); for output j, column
  // j * (d + 1) + f holds feature f's contribution and column j * (d + 1) + d the bias (the base
  // score plus the trees' cover-weighted mean). Each output's row sums to its raw score (before a
  // poisson ensemble's exp; a forest's probability). kFailedPrecondition without covers.
  void Contributions(ConstMatrixViewF x, MatrixViewF out) const;

 private:
  // For inference every tree is also laid out as FlatNodes, 16 bytes each, in breadth-first
  // order so that a split's two children are adjacent (right = left + 1): one cache line holds
  // four nodes. A leaf steps to itself (threshold NaN: every value goes "right", to left + 1 =
  // itself), so a block of rows walks a tree in lockstep, depth steps each, without a branch on
  // where a row is.
  struct FlatNode {
    std::int32_t feature;
    float threshold;     // NaN at a leaf
    std::int32_t left;   // the left child, in the tree's own nodes (a leaf: itself - 1)
    std::uint32_t info;  // bit 0: missing goes left; bit 1: categorical, node index << 2
  };
  void Flatten();
  void Score(ConstMatrixViewF x, MatrixViewF out, bool transform) const;
  void AddTreeToBlock(std::size_t t, ConstMatrixViewF x, std::size_t begin, std::size_t end,
                      MatrixViewF logits) const;

  void CheckTree(std::size_t t) const;
  // The objective's output transform of one row's summed scores.
  void Transform(float* scores) const;
  void AddTreeContributions(const Tree& tree, const float* row, double* phi) const;

  Task task_;
  std::int64_t d_;
  std::int64_t k_;
  std::vector<float> base_score_;
  std::vector<Tree> trees_;
  std::string objective_;
  // The objective's output transform, resolved once (Transform runs per row).
  enum class Output { kScore, kExp, kLogOdds, kLogProbabilities } output_ = Output::kScore;
  std::vector<FlatNode> flat_;
  std::vector<float> flat_value_;        // per flat node: a leaf's value
  std::vector<std::size_t> flat_begin_;  // per tree
  std::vector<int> flat_depth_;          // per tree
  std::vector<bool> flat_categorical_;   // per tree: has a categorical split
};

}  // namespace escala::models

#endif  // ESCALA_MODELS_TREE_ENSEMBLE_H_
