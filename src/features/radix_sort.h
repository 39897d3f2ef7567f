// Sorting doubles by their bits, for the quantile sketch's level-0 buffer (sketches.cc): a
// least-significant-digit radix sort over keys that order as the values do, 8 passes of one byte
// (a pass whose byte is the same in every key is skipped). On the thousands of values a sketch
// compaction sorts it takes about two thirds of std::sort's time, whose comparisons of random
// values mispredict; that sort was a quarter of all cycles of fitting impute(median) on W0.
// Private to the features module.
#ifndef ESCALA_SRC_FEATURES_RADIX_SORT_H_
#define ESCALA_SRC_FEATURES_RADIX_SORT_H_

#include <algorithm>
#include <bit>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace escala::features::internal {

// Keys that order as the doubles do (not NaN): the sign bit set for positives, every bit flipped
// for negatives. -0.0 sorts just before +0.0.
inline std::uint64_t OrderKey(double d) {
  const auto u = std::bit_cast<std::uint64_t>(d);
  return (u >> 63) != 0 ? ~u : (u | (std::uint64_t{1} << 63));
}

inline double FromOrderKey(std::uint64_t k) {
  return std::bit_cast<double>((k >> 63) != 0 ? (k & ~(std::uint64_t{1} << 63)) : ~k);
}

// One LSD radix pass per byte of Key over keys[0, n), alternating with `spare`; a pass whose byte
// is the same in every key is skipped. Returns the buffer that holds the sorted keys.
template <typename Key>
Key* RadixSortKeys(Key* keys, Key* spare, std::size_t n) {
  constexpr int kPasses = sizeof(Key);
  std::uint32_t counts[kPasses][256] = {};
  for (std::size_t i = 0; i < n; ++i) {
    for (int p = 0; p < kPasses; ++p) ++counts[p][(keys[i] >> (8 * p)) & 0xff];
  }
  Key* src = keys;
  Key* dst = spare;
  for (int p = 0; p < kPasses; ++p) {
    std::uint32_t* c = counts[p];
    if (c[(src[0] >> (8 * p)) & 0xff] == n) continue;
    std::uint32_t sum = 0;
    for (auto& slot : std::span(c, 256)) sum += std::exchange(slot, sum);
    for (std::size_t i = 0; i < n; ++i) dst[c[(src[i] >> (8 * p)) & 0xff]++] = src[i];
    std::swap(src, dst);
  }
  return src;
}

// As OrderKey, for floats.
inline std::uint32_t OrderKey32(float f) {
  const auto u = std::bit_cast<std::uint32_t>(f);
  return (u >> 31) != 0 ? ~u : (u | (std::uint32_t{1} << 31));
}

inline float FromOrderKey32(std::uint32_t k) {
  return std::bit_cast<float>((k >> 31) != 0 ? (k & ~(std::uint32_t{1} << 31)) : ~k);
}

// Sorts `v` (no NaN) ascending, -0.0 before +0.0. Thread-safe (its scratch is thread-local).
// Values that are all exactly floats (features read as float32) sort as 32-bit keys: half the
// bytes moved per pass and half the passes counted.
inline void SortDoubles(std::vector<double>& v) {
  constexpr std::size_t kSmall = 64;  // below this, std::sort's insertion sort is faster
  const std::size_t n = v.size();
  if (n < kSmall) {
    std::sort(v.begin(), v.end());
    return;
  }
  bool floats = true;
  for (double d : v) floats &= static_cast<double>(static_cast<float>(d)) == d;
  if (floats) {
    thread_local std::vector<std::uint32_t> keys, spare;
    keys.resize(n);
    spare.resize(n);
    for (std::size_t i = 0; i < n; ++i) keys[i] = OrderKey32(static_cast<float>(v[i]));
    const std::uint32_t* sorted = RadixSortKeys(keys.data(), spare.data(), n);
    for (std::size_t i = 0; i < n; ++i) v[i] = FromOrderKey32(sorted[i]);
    return;
  }
  thread_local std::vector<std::uint64_t> keys, spare;
  keys.resize(n);
  spare.resize(n);
  for (std::size_t i = 0; i < n; ++i) keys[i] = OrderKey(v[i]);
  const std::uint64_t* sorted = RadixSortKeys(keys.data(), spare.data(), n);
  for (std::size_t i = 0; i < n; ++i) v[i] = FromOrderKey(sorted[i]);
}

}  // namespace escala::features::internal

#endif  // ESCALA_SRC_FEATURES_RADIX_SORT_H_
