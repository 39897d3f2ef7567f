// Pearson correlation and covariance of numeric columns, mergeable across shards.
//
// Missing values (NaN) are handled pairwise, as pandas' DataFrame.corr() does: the statistic of
// columns i and j uses the rows where both are present. Sums are accumulated around a common
// shift (the columns' global means, computed first and identical on every rank), which keeps the
// sums well conditioned, and merging is then plain addition. Blocks of rows are processed with
// matrix products, so a million rows of 64 columns take a fraction of a second.
//
// Thread-safety: values. AddBlock may be run on separate accumulators in parallel and merged.
#ifndef ESCALA_FEATURES_CORRELATION_H_
#define ESCALA_FEATURES_CORRELATION_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "escala/core/matrix.h"

namespace escala::features {

class CoMoments {
 public:
  CoMoments() = default;
  // `shift` (one value per column; use the column means) must be the same on every rank.
  explicit CoMoments(std::vector<double> shift);

  int dims() const { return static_cast<int>(shift_.size()); }
  // Rows of x (cols == dims()); NaN marks missing. Inf is treated as missing too.
  void AddBlock(ConstMatrixViewF x);
  void Merge(const CoMoments& other);

  // dims x dims, row-major. NaN where fewer than 2 rows have both values or a variance is 0.
  std::vector<double> Correlation() const;
  std::vector<double> Covariance() const;  // sample covariance (n - 1)
  double Correlation(int i, int j) const;
  std::int64_t PairCount(int i, int j) const;

  std::string Serialize() const;
  static CoMoments Parse(std::string_view bytes);

 private:
  std::size_t At(int i, int j) const {
    return static_cast<std::size_t>(i) * shift_.size() + static_cast<std::size_t>(j);
  }

  std::vector<double> shift_;
  std::vector<double> n_;       // n_[i,j]: rows with both present
  std::vector<double> sum_;     // sum_[i,j]: sum of centred x_i over rows where j is present
  std::vector<double> sum_sq_;  // sum_sq_[i,j]: sum of centred x_i^2 where j is present
  std::vector<double> cross_;   // cross_[i,j]: sum of centred x_i x_j where both present
};

}  // namespace escala::features

#endif  // ESCALA_FEATURES_CORRELATION_H_
