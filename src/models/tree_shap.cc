// Exact TreeSHAP (Lundberg, Erion, Lee 2018, Algorithm 2): one walk of each tree per row keeps,
// along the path to every leaf, the proportion of all feature subsets that reach it; at a leaf
// each feature on the path receives its Shapley share of the leaf value. The value of a subset S
// is the tree's expectation given x_S, with a node not splitting on S averaged over its children
// by cover (the path-dependent expectation).
#include <algorithm>
#include <cmath>

#include "escala/core/error.h"
#include "escala/core/parallel.h"
#include "escala/models/tree_ensemble.h"

namespace escala::models {

namespace {

// One feature on the current path: the fraction of subsets without it (zero) and with it (one)
// that flow this way, and the permutation weight of the path's length so far.
struct PathElem {
  std::int32_t feature;
  double zero;
  double one;
  double weight;
};

using Path = std::vector<PathElem>;

// Adds a feature to a path of `len` elements (path has room for len + 1).
void Extend(Path& p, std::size_t len, double zero, double one, std::int32_t feature) {
  p[len] = {feature, zero, one, len == 0 ? 1.0 : 0.0};
  const auto n1 = static_cast<double>(len + 1);
  for (std::size_t i = len; i-- > 0;) {
    p[i + 1].weight += one * p[i].weight * static_cast<double>(i + 1) / n1;
    p[i].weight = zero * p[i].weight * static_cast<double>(len - i) / n1;
  }
}

// Removes element i from a path whose last element is at `last` (the inverse of Extend).
void Unwind(Path& p, std::size_t last, std::size_t i) {
  const double one = p[i].one, zero = p[i].zero;
  const auto n1 = static_cast<double>(last + 1);
  double next = p[last].weight;
  for (std::size_t j = last; j-- > 0;) {
    if (one != 0) {
      const double w = p[j].weight;
      p[j].weight = next * n1 / (static_cast<double>(j + 1) * one);
      next = w - p[j].weight * zero * static_cast<double>(last - j) / n1;
    } else {
      p[j].weight = p[j].weight * n1 / (zero * static_cast<double>(last - j));
    }
  }
  for (std::size_t j = i; j < last; ++j) {
    p[j].feature = p[j + 1].feature;
    p[j].zero = p[j + 1].zero;
    p[j].one = p[j + 1].one;
  }
}

// The sum of the weights Unwind(p, last, i) would leave, without changing p.
double UnwoundSum(const Path& p, std::size_t last, std::size_t i) {
  const double one = p[i].one, zero = p[i].zero;
  const auto n1 = static_cast<double>(last + 1);
  double total = 0;
  if (one != 0) {
    double next = p[last].weight;
    for (std::size_t j = last; j-- > 0;) {
      const double w = next * n1 / (static_cast<double>(j + 1) * one);
      total += w;
      next = p[j].weight - w * zero * static_cast<double>(last - j) / n1;
    }
  } else {
    for (std::size_t j = last; j-- > 0;) {
      total += p[j].weight * n1 / (zero * static_cast<double>(last - j));
    }
  }
  return total;
}

struct Walk {
  const Tree& tree;
  const float* row;
  double* phi;

  double Ratio(std::int32_t child, std::size_t parent) const {
    const double c = tree.cover[parent];
    return c > 0 ? tree.cover[static_cast<std::size_t>(child)] / c : 0.0;
  }

  // Visits node j with the path so far (len elements), adding the new element (zero, one, f).
  void Recurse(std::int32_t j, Path p, std::size_t len, double zero, double one,
               std::int32_t f) const {
    p.resize(std::max(p.size(), len + 1));
    Extend(p, len, zero, one, f);
    const auto n = static_cast<std::size_t>(j);
    if (tree.feature[n] < 0) {
      for (std::size_t i = 1; i <= len; ++i) {
        const double w = UnwoundSum(p, len, i);
        phi[p[i].feature] += w * (p[i].one - p[i].zero) * tree.value[n];
      }
      return;
    }
    const std::int32_t split = tree.feature[n];
    const bool left = tree.GoesLeft(n, row[split]);
    const std::int32_t hot = left ? tree.left[n] : tree.right[n];
    const std::int32_t cold = left ? tree.right[n] : tree.left[n];
    double in_zero = 1, in_one = 1;
    std::size_t last = len;
    for (std::size_t k = 1; k <= len; ++k) {
      if (p[k].feature != split) continue;
      in_zero = p[k].zero;
      in_one = p[k].one;
      Unwind(p, len, k);
      --last;
      break;
    }
    Recurse(hot, p, last + 1, in_zero * Ratio(hot, n), in_one, split);
    Recurse(cold, p, last + 1, in_zero * Ratio(cold, n), 0.0, split);
  }
};

// The tree's cover-weighted mean leaf value: its output when no feature is known.
double ExpectedValue(const Tree& t) {
  if (!(t.cover[0] > 0)) return 0.0;
  double sum = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t.feature[i] < 0) sum += static_cast<double>(t.value[i]) * t.cover[i];
  }
  return sum / t.cover[0];
}

}  // namespace

void TreeEnsemble::AddTreeContributions(const Tree& tree, const float* row, double* phi) const {
  Walk{tree, row, phi}.Recurse(0, Path(static_cast<std::size_t>(tree.Depth()) + 2), 0, 1.0, 1.0,
                               -1);
  phi[d_] += ExpectedValue(tree);
}

void TreeEnsemble::Contributions(ConstMatrixViewF x, MatrixViewF out) const {
  ESCALA_CHECK(HasStats(), kFailedPrecondition,
               "contributions need every tree's node covers; this model was saved without them");
  ESCALA_CHECK(x.cols() == d_, kInvalidArgument, "model expects {} features, got {}", d_, x.cols());
  ESCALA_ASSERT(out.rows() == x.rows() && out.cols() == k_ * (d_ + 1));
  const auto width = static_cast<std::size_t>(d_ + 1);
  ParallelFor(static_cast<std::size_t>(x.rows()), 64, [&](std::size_t begin, std::size_t end) {
    std::vector<double> phi(static_cast<std::size_t>(k_) * width);
    for (std::size_t i = begin; i < end; ++i) {
      const auto r = static_cast<std::int64_t>(i);
      std::fill(phi.begin(), phi.end(), 0.0);
      for (std::int64_t j = 0; j < k_; ++j) {
        phi[static_cast<std::size_t>(j) * width + width - 1] =
            base_score_[static_cast<std::size_t>(j)];
      }
      for (std::size_t t = 0; t < trees_.size(); ++t) {
        const std::size_t j = t % static_cast<std::size_t>(k_);
        AddTreeContributions(trees_[t], x.row(r), phi.data() + j * width);
      }
      std::transform(phi.begin(), phi.end(), out.row(r),
                     [](double v) { return static_cast<float>(v); });
    }
  });
}

}  // namespace escala::models
