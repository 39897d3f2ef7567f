#include "train/tree_median.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "escala/core/parallel.h"

namespace escala::train::trees {

namespace {

// Floats to unsigned integers in the same order (-0 as +0): negatives' bits inverted, the sign
// bit set on the others.
std::uint32_t Key(float x) {
  const auto bits = std::bit_cast<std::uint32_t>(x + 0.0f);
  return (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
}

float FromKey(std::uint32_t key) {
  return std::bit_cast<float>((key & 0x80000000u) != 0 ? key & 0x7fffffffu : ~key);
}

// Per group, the weight of its values whose keys are <= limit[2j] and <= limit[2j+1].
void CountAtMost(std::span<const std::uint32_t> keys, std::span<const std::size_t> offsets,
                 std::span<const std::int64_t> weights, const std::vector<std::uint32_t>& limit,
                 std::vector<std::int64_t>* counts) {
  ParallelFor(offsets.size() - 1, 1, [&](std::size_t begin, std::size_t end) {
    for (std::size_t j = begin; j < end; ++j) {
      const std::uint32_t lo = limit[2 * j], hi = limit[2 * j + 1];
      std::int64_t below_lo = 0, below_hi = 0;
      for (std::size_t i = offsets[j]; i < offsets[j + 1]; ++i) {
        const std::int64_t w = weights.empty() ? 1 : weights[i];
        below_lo += keys[i] <= lo ? w : 0;
        below_hi += keys[i] <= hi ? w : 0;
      }
      (*counts)[2 * j] = below_lo;
      (*counts)[2 * j + 1] = below_hi;
    }
  });
}

}  // namespace

std::vector<double> GlobalMedians(std::span<const float> values,
                                  std::span<const std::size_t> offsets,
                                  std::span<const std::int64_t> weights, Communicator& comm) {
  const std::size_t groups = offsets.size() - 1;
  std::vector<std::uint32_t> keys(values.size());
  std::transform(values.begin(), values.end(), keys.begin(), Key);
  std::vector<std::int64_t> total(groups, 0);
  for (std::size_t j = 0; j < groups; ++j) {
    for (std::size_t i = offsets[j]; i < offsets[j + 1]; ++i) {
      total[j] += weights.empty() ? 1 : weights[i];
    }
  }
  comm.AllReduce(std::span<std::int64_t>(total), ReduceOp::kSum);
  // found[2j] and found[2j+1]: group j's lower and upper median keys, bit by bit from the top.
  // Each keeps bit b at 0 when the weight at or below the largest key with the bits found so
  // far and b = 0 already reaches the median's share.
  std::vector<std::uint32_t> found(2 * groups, 0), limit(2 * groups);
  std::vector<std::int64_t> counts(2 * groups);
  for (int bit = 31; bit >= 0; --bit) {
    const std::uint32_t below = (std::uint32_t{1} << bit) - 1;
    for (std::size_t i = 0; i < found.size(); ++i) limit[i] = found[i] | below;
    CountAtMost(keys, offsets, weights, limit, &counts);
    comm.AllReduce(std::span<std::int64_t>(counts), ReduceOp::kSum);
    for (std::size_t j = 0; j < groups; ++j) {
      if (!(2 * counts[2 * j] >= total[j])) found[2 * j] |= std::uint32_t{1} << bit;
      if (!(2 * counts[2 * j + 1] > total[j])) found[2 * j + 1] |= std::uint32_t{1} << bit;
    }
  }
  std::vector<double> medians(groups, 0.0);
  for (std::size_t j = 0; j < groups; ++j) {
    if (total[j] <= 0) continue;
    medians[j] = (static_cast<double>(FromKey(found[2 * j])) + FromKey(found[2 * j + 1])) / 2;
  }
  return medians;
}

std::vector<std::int64_t> FixedWeights(std::span<const float> w, std::size_t rows,
                                       Communicator& comm) {
  const double largest = w.empty() ? (rows > 0 ? 1.0 : 0.0) : *std::max_element(w.begin(), w.end());
  const double top = comm.AllReduceScalar(largest, ReduceOp::kMax);
  const auto all = comm.AllReduceScalar(static_cast<std::int64_t>(rows), ReduceOp::kSum);
  double scale = 1.0;
  if (top > 0) {
    const double room =
        std::ldexp(1.0, 61) / (top * static_cast<double>(std::max<std::int64_t>(all, 1)));
    scale = std::ldexp(1.0, static_cast<int>(std::floor(std::log2(room))));
  }
  std::vector<std::int64_t> fixed(rows);
  for (std::size_t i = 0; i < rows; ++i) {
    fixed[i] = std::llround((w.empty() ? 1.0 : static_cast<double>(w[i])) * scale);
  }
  return fixed;
}

}  // namespace escala::train::trees
