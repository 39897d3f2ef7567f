// Row identity and deterministic selection of rows.
//
// Every row read from files gets a 64-bit identity that does not depend on how the data is
// sharded: the index of its file in the dataset's sorted file list (high 20 bits) and the byte
// offset of the record in that file, after decompression (low 44 bits). Rows of in-memory data
// use their row index. Hashing the identity with a seed gives train/validation splits and samples
// that are the same for 1 or N workers, for any thread count, and across runs.
//
// Thread-safety: pure functions.
#ifndef ESCALA_DATA_SPLIT_H_
#define ESCALA_DATA_SPLIT_H_

#include <cstdint>
#include <span>
#include <vector>

namespace escala::data {

inline constexpr int kRowIdOffsetBits = 44;
inline constexpr std::uint64_t kMaxRowIdFiles = std::uint64_t{1} << (64 - kRowIdOffsetBits);
inline constexpr std::uint64_t kMaxRowIdOffset = std::uint64_t{1} << kRowIdOffsetBits;

inline std::uint64_t MakeRowId(std::uint64_t file_index, std::uint64_t byte_offset) {
  return (file_index << kRowIdOffsetBits) | byte_offset;
}
inline std::uint64_t RowIdFile(std::uint64_t id) {
  return id >> kRowIdOffsetBits;
}
inline std::uint64_t RowIdOffset(std::uint64_t id) {
  return id & (kMaxRowIdOffset - 1);
}

// A well-mixed 64-bit hash of (row id, seed, purpose salt).
std::uint64_t HashRowId(std::uint64_t row_id, std::uint64_t seed, std::uint64_t salt = 0);
// The hash mapped to [0, 1).
double RowIdUnit(std::uint64_t row_id, std::uint64_t seed, std::uint64_t salt = 0);

// True when the row belongs to the validation part of a split with this fraction and seed.
bool InValidation(std::uint64_t row_id, double valid_fraction, std::uint64_t seed);
// True when the row is in a seeded sample of this fraction (independent of the split).
bool InSample(std::uint64_t row_id, double fraction, std::uint64_t seed);

struct SplitIndices {
  std::vector<std::int64_t> train;  // positions into row_ids, increasing
  std::vector<std::int64_t> valid;
};
// Splits positions 0..row_ids.size()-1 by InValidation(). valid_fraction in [0, 1].
SplitIndices SplitTrainValidation(std::span<const std::uint64_t> row_ids, double valid_fraction,
                                  std::uint64_t seed);

}  // namespace escala::data

#endif  // ESCALA_DATA_SPLIT_H_
