// Data cleaning: exact duplicate rows and outliers, on one shard or across workers.
//
// Duplicates: two rows are duplicates when every column is equal (missing equals missing). In
// one process rows are grouped by a 64-bit content hash and compared exactly. Across workers,
// each rank contributes (row hash, global row id) pairs through an all-gather; the first
// occurrence (smallest row id) is kept everywhere, so the result does not depend on the number
// of workers. The cross-worker check trusts the 64-bit hash: the chance of any false duplicate
// among n distinct rows is about n^2 / 2^65 (3e-6 for ten million rows).
//
// Outliers: bounds per numeric column from merged statistics (IQR fences, z-score, or
// quantiles), then the rows outside are counted, clipped to the bounds, or dropped.
//
// Thread-safety: pure functions of their inputs.
#ifndef ESCALA_FEATURES_CLEANING_H_
#define ESCALA_FEATURES_CLEANING_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "escala/core/communicator.h"
#include "escala/data/table.h"

namespace escala::features {

// Content hash of each row (all columns; categorical columns by their string).
std::vector<std::uint64_t> RowHashes(const data::Table& table);

struct DuplicateResult {
  std::vector<std::int64_t> duplicate_rows;  // local rows that repeat an earlier row
  std::int64_t global_duplicates = 0;        // over all ranks
};

// Finds duplicate rows. With comm.size() > 1 the table's row ids (or, without them, rank-order
// positions) decide which occurrence is "earlier".
DuplicateResult FindDuplicates(const data::Table& table, Communicator& comm);

// The table without its duplicate rows; *dropped receives the global count.
data::Table DropDuplicates(const data::Table& table, Communicator& comm,
                           std::int64_t* dropped = nullptr);

struct OutlierRule {
  enum class Method { kIqr, kZScore, kQuantile } method = Method::kIqr;
  double k = 1.5;  // IQR multiplier or z threshold
  double lo_quantile = 0.01, hi_quantile = 0.99;
  // "iqr=1.5", "z=3", "q=0.01,0.99". Throws kInvalidArgument.
  static OutlierRule Parse(std::string_view text);
};

struct OutlierBounds {
  std::string column;
  double lo = 0, hi = 0;
  std::int64_t below = 0, above = 0;  // global counts
};

// Bounds and counts for the given numeric columns (all numeric columns when empty).
std::vector<OutlierBounds> FindOutliers(const data::Table& table,
                                        std::span<const std::string> columns,
                                        const OutlierRule& rule, Communicator& comm);

enum class OutlierAction { kClip, kDrop };
// Clips values to the bounds, or drops rows with any value outside them. Missing values are
// neither. *bounds receives what was found.
data::Table HandleOutliers(const data::Table& table, std::span<const std::string> columns,
                           const OutlierRule& rule, OutlierAction action, Communicator& comm,
                           std::vector<OutlierBounds>* bounds = nullptr);

}  // namespace escala::features

#endif  // ESCALA_FEATURES_CLEANING_H_
