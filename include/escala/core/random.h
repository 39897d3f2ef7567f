// Counter-based randomness: values that are pure functions of (seed, counters), so that results
// do not depend on thread scheduling or on how data is split across workers.
#ifndef ESCALA_CORE_RANDOM_H_
#define ESCALA_CORE_RANDOM_H_

#include <cstdint>

namespace escala {

// splitmix64 finaliser: a fast, well-mixed 64-bit hash.
constexpr std::uint64_t Mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

constexpr std::uint64_t HashCombine(std::uint64_t a, std::uint64_t b) {
  return Mix64(a ^ Mix64(b));
}

// Uniform in [0, 1) from a 64-bit hash.
constexpr double UnitFromHash(std::uint64_t h) {
  return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0);
}

// A pseudo-random bijection of [0, n), keyed by a 64-bit key: Map(i) is the position of element
// i. Evaluated per element in O(1) expected time (a Feistel network on the next power of two with
// cycle walking), so every worker can place its own rows in a global shuffled order without
// communication or an n-sized table.
class RandomPermutation {
 public:
  RandomPermutation(std::uint64_t n, std::uint64_t key);
  std::uint64_t size() const { return n_; }
  std::uint64_t Map(std::uint64_t i) const;

 private:
  std::uint64_t Feistel(std::uint64_t x) const;
  std::uint64_t n_;
  std::uint64_t key_;
  int half_bits_;
  std::uint64_t half_mask_;
};

}  // namespace escala

#endif  // ESCALA_CORE_RANDOM_H_
