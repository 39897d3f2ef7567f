// Dataset statistics for exploration: `escala stats` and its text, JSON and HTML reports.
//
// Summarize() computes, per column, count, missing, mean, std, min, quartiles, max, distinct
// count and most frequent values, a histogram and the number of values outside the 1.5 IQR
// fences; over the numeric columns, the Pearson correlation matrix (pairwise complete), each
// column's correlation with the label and the strongest pairs; and the number of exact duplicate
// rows. Every statistic is computed per shard and merged through the communicator, so a
// distributed run reports the same figures as one process (quantiles within the sketch bound).
//
// Thread-safety: pure functions.
#ifndef ESCALA_FEATURES_SUMMARY_H_
#define ESCALA_FEATURES_SUMMARY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "escala/core/communicator.h"
#include "escala/data/table.h"
#include "escala/features/sketches.h"

namespace escala::features {

// Limits checked before anything is allocated (kInvalidArgument names the option).
inline constexpr int kMaxHistogramBins = 10000;
inline constexpr int kMaxTopValues = 1000;

struct SummaryOptions {
  std::string label;        // optional: correlations with it are reported
  int top_k = 5;            // most frequent values shown per column, in [0, kMaxTopValues]
  int histogram_bins = 20;  // in [1, kMaxHistogramBins]
  int sketch_k = 2048;
  int top_pairs = 10;  // strongest pairwise correlations listed
  bool duplicates = true;
  // The correlation matrix costs columns^2 memory and time: with more numeric columns than this
  // it is skipped (TableSummary::correlation_skipped says so) and the label correlations are
  // computed column by column instead.
  int max_correlation_columns = 2000;
};

struct ColumnSummary {
  std::string name;
  data::DataType type = data::DataType::kFloat64;
  std::int64_t count = 0;  // non-missing (finite for numbers)
  std::int64_t missing = 0;
  std::int64_t infinite = 0;
  double mean = 0, stddev = 0, min = 0, q25 = 0, median = 0, q75 = 0, max = 0;
  bool quantiles_exact = true;
  double distinct = 0;
  bool distinct_exact = true;
  std::vector<FrequentItems::Item> top;
  std::int64_t outliers = 0;            // outside [q25 - 1.5 IQR, q75 + 1.5 IQR]
  double label_correlation = 0;         // NaN when not applicable
  std::vector<std::int64_t> histogram;  // equal-width bins over [min, max]
};

struct TableSummary {
  std::int64_t rows = 0;
  std::int64_t duplicate_rows = -1;  // -1: not computed
  std::string label;
  std::vector<ColumnSummary> columns;
  std::vector<std::string> numeric;  // the columns of the correlation matrix, in order
  std::vector<double> correlation;   // numeric.size()^2, row-major
  // > 0: the matrix was skipped because there were this many numeric columns (more than
  // SummaryOptions::max_correlation_columns).
  std::int64_t correlation_skipped = 0;
  struct Pair {
    std::string a, b;
    double r = 0;
  };
  std::vector<Pair> top_pairs;
};

TableSummary Summarize(const data::Table& table, const SummaryOptions& options, Communicator& comm);

std::string FormatText(const TableSummary& summary);
std::string FormatJson(const TableSummary& summary);
// One self-contained HTML file: summary table, histograms and a correlation heat map as inline
// SVG; no scripts, no network.
std::string FormatHtml(const TableSummary& summary, const std::string& title);

}  // namespace escala::features

#endif  // ESCALA_FEATURES_SUMMARY_H_
