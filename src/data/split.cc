#include "escala/data/split.h"

#include "escala/core/error.h"

namespace escala::data {
namespace {

// SplitMix64's finaliser: a bijective, well-mixed 64-bit hash.
std::uint64_t Mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

constexpr std::uint64_t kValidationSalt = 0x76616c6964ULL;  // "valid"
constexpr std::uint64_t kSampleSalt = 0x73616d706c65ULL;    // "sample"

}  // namespace

std::uint64_t HashRowId(std::uint64_t row_id, std::uint64_t seed, std::uint64_t salt) {
  return Mix(Mix(row_id ^ Mix(seed + salt)) + salt);
}

double RowIdUnit(std::uint64_t row_id, std::uint64_t seed, std::uint64_t salt) {
  return static_cast<double>(HashRowId(row_id, seed, salt) >> 11) * 0x1.0p-53;
}

bool InValidation(std::uint64_t row_id, double valid_fraction, std::uint64_t seed) {
  return RowIdUnit(row_id, seed, kValidationSalt) < valid_fraction;
}

bool InSample(std::uint64_t row_id, double fraction, std::uint64_t seed) {
  return fraction >= 1.0 || RowIdUnit(row_id, seed, kSampleSalt) < fraction;
}

SplitIndices SplitTrainValidation(std::span<const std::uint64_t> row_ids, double valid_fraction,
                                  std::uint64_t seed) {
  ESCALA_CHECK(valid_fraction >= 0.0 && valid_fraction <= 1.0, kInvalidArgument,
               "validation fraction must be in [0, 1], got {}", valid_fraction);
  SplitIndices out;
  for (std::size_t i = 0; i < row_ids.size(); ++i) {
    (InValidation(row_ids[i], valid_fraction, seed) ? out.valid : out.train)
        .push_back(static_cast<std::int64_t>(i));
  }
  return out;
}

}  // namespace escala::data
