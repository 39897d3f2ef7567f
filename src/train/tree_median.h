// Exact weighted medians of values spread over the ranks of a Communicator, the same on any number
// of ranks (the absolute-error objective's base score and leaf values).
//
// The median of a group is the midpoint of its lower and upper weighted medians: with W the
// group's weight over all ranks and C(v) the weight of its values <= v, the lower median is the
// smallest value with 2 C(v) >= W, the upper the smallest with 2 C(v) > W. With unit weights that
// is the usual median (the middle value; the mean of the two middle ones for an even count, as
// numpy's and XGBoost's unweighted quantile at 0.5), and a row of integer weight w counts as w
// copies of it. Weights are 64-bit fixed-point integers, so every sum is exact whatever the order
// it is added in. Each median is found by a binary search over the order-preserving 32-bit
// encoding of the float values: 32 rounds, each one all-reduce of two integer sums per group.
//
// Thread-safety: collectives: every rank calls them with the same number of groups.
#ifndef ESCALA_SRC_TRAIN_TREE_MEDIAN_H_
#define ESCALA_SRC_TRAIN_TREE_MEDIAN_H_

#include <cstdint>
#include <span>
#include <vector>

#include "escala/core/communicator.h"

namespace escala::train::trees {

// The medians of `offsets.size() - 1` groups: group j holds this rank's values[offsets[j],
// offsets[j+1]) (finite), with the same fixed-point weights (empty: 1 each), and the other ranks'
// values of group j. A group of weight 0 over every rank has median 0.
std::vector<double> GlobalMedians(std::span<const float> values,
                                  std::span<const std::size_t> offsets,
                                  std::span<const std::int64_t> weights, Communicator& comm);

// The `rows` float weights (finite, >= 0; empty: 1 each) in 64-bit fixed point, by a
// power-of-two scale agreed by all ranks such that the sum over every rank's rows stays below
// 2^61 (as the histograms' gradients are). A weight below about (largest weight x rows of all
// ranks) / 2^62 rounds to 0.
std::vector<std::int64_t> FixedWeights(std::span<const float> w, std::size_t rows,
                                       Communicator& comm);

}  // namespace escala::train::trees

#endif  // ESCALA_SRC_TRAIN_TREE_MEDIAN_H_
