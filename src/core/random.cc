#include "escala/core/random.h"

#include "escala/core/error.h"

namespace escala {

RandomPermutation::RandomPermutation(std::uint64_t n, std::uint64_t key) : n_(n), key_(key) {
  int bits = 2;
  while (bits < 64 && (std::uint64_t{1} << bits) < n) bits += 2;
  half_bits_ = bits / 2;
  half_mask_ = (std::uint64_t{1} << half_bits_) - 1;
}

std::uint64_t RandomPermutation::Feistel(std::uint64_t x) const {
  std::uint64_t l = x >> half_bits_;
  std::uint64_t r = x & half_mask_;
  for (std::uint64_t round = 0; round < 4; ++round) {
    const std::uint64_t f = Mix64(r ^ Mix64(key_ + round)) & half_mask_;
    const std::uint64_t nl = r;
    r = l ^ f;
    l = nl;
  }
  return (l << half_bits_) | r;
}

std::uint64_t RandomPermutation::Map(std::uint64_t i) const {
  ESCALA_ASSERT(i < n_);
  // The Feistel network permutes [0, 4^k); walking the cycle until the value falls inside
  // [0, n) restricts it to a permutation of [0, n). The domain is < 4n, so few steps are needed.
  std::uint64_t x = Feistel(i);
  while (x >= n_) x = Feistel(x);
  return x;
}

}  // namespace escala
