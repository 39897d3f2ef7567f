#include "escala/features/correlation.h"

#include <cmath>
#include <limits>
#include <utility>

#include "core/simd/products.h"
#include "escala/core/eigen.h"
#include "escala/core/error.h"
#include "escala/features/v1/stats.pb.h"

namespace escala::features {
namespace {

// Xᵀ Y in double for column-major X, Y (rows x d), through the dispatched GEMM: stored
// row-major they are Xᵀ and Yᵀ (d x rows), so Xᵀ Y = (Xᵀ)(Yᵀ)ᵀ.
Eigen::MatrixXd CrossProduct(const Eigen::MatrixXf& x, const Eigen::MatrixXf& y) {
  const auto d = static_cast<std::int64_t>(x.cols());
  const auto rows = static_cast<std::int64_t>(x.rows());
  MatrixF out(d, d);
  simd::MatMul(ConstMatrixViewF(x.data(), d, rows), false, ConstMatrixViewF(y.data(), d, rows),
               true, out.view(), false);
  return AsEigen(std::as_const(out)).cast<double>();
}

}  // namespace

CoMoments::CoMoments(std::vector<double> shift) : shift_(std::move(shift)) {
  const std::size_t d2 = shift_.size() * shift_.size();
  n_.assign(d2, 0);
  sum_.assign(d2, 0);
  sum_sq_.assign(d2, 0);
  cross_.assign(d2, 0);
}

void CoMoments::AddBlock(ConstMatrixViewF x) {
  const int d = dims();
  ESCALA_CHECK(x.cols() == d, kInvalidArgument, "co-moments over {} columns given {}", d, x.cols());
  const std::int64_t rows = x.rows();
  if (rows == 0) return;
  // Centred values with missing -> 0, and the presence mask, as float matrices; the pairwise
  // sums are then four matrix products accumulated in double per block.
  Eigen::MatrixXf c(rows, d), m(rows, d);
  bool any_missing = false;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = x.row(r);
    for (int j = 0; j < d; ++j) {
      const float v = row[j];
      if (std::isfinite(v)) {
        c(r, j) = static_cast<float>(static_cast<double>(v) - shift_[static_cast<std::size_t>(j)]);
        m(r, j) = 1.0f;
      } else {
        c(r, j) = 0.0f;
        m(r, j) = 0.0f;
        any_missing = true;
      }
    }
  }
  const Eigen::MatrixXd cross = CrossProduct(c, c);
  Eigen::MatrixXd n, s, sq;
  if (any_missing) {
    const Eigen::MatrixXf c2 = c.cwiseProduct(c);
    n = CrossProduct(m, m);
    s = CrossProduct(c, m);
    sq = CrossProduct(c2, m);
  } else {
    n = Eigen::MatrixXd::Constant(d, d, static_cast<double>(rows));
    const Eigen::VectorXd col_sum = c.colwise().sum().transpose().cast<double>();
    const Eigen::VectorXd col_sq = c.cwiseProduct(c).colwise().sum().transpose().cast<double>();
    s = col_sum.replicate(1, d);
    sq = col_sq.replicate(1, d);
  }
  for (int i = 0; i < d; ++i) {
    for (int j = 0; j < d; ++j) {
      const std::size_t k = At(i, j);
      n_[k] += n(i, j);
      sum_[k] += s(i, j);
      sum_sq_[k] += sq(i, j);
      cross_[k] += cross(i, j);
    }
  }
}

void CoMoments::Merge(const CoMoments& o) {
  ESCALA_CHECK(o.shift_ == shift_, kInvalidArgument,
               "co-moments computed around different shifts cannot be merged");
  for (std::size_t k = 0; k < n_.size(); ++k) {
    n_[k] += o.n_[k];
    sum_[k] += o.sum_[k];
    sum_sq_[k] += o.sum_sq_[k];
    cross_[k] += o.cross_[k];
  }
}

std::int64_t CoMoments::PairCount(int i, int j) const {
  return static_cast<std::int64_t>(n_[At(i, j)]);
}

double CoMoments::Correlation(int i, int j) const {
  const double n = n_[At(i, j)];
  if (n < 2) return std::numeric_limits<double>::quiet_NaN();
  // Over the rows where both are present: sum_[i,j] is sum of x_i there, sum_[j,i] of x_j.
  const double si = sum_[At(i, j)], sj = sum_[At(j, i)];
  const double cov = cross_[At(i, j)] - si * sj / n;
  const double vi = sum_sq_[At(i, j)] - si * si / n;
  const double vj = sum_sq_[At(j, i)] - sj * sj / n;
  if (vi <= 0 || vj <= 0) return std::numeric_limits<double>::quiet_NaN();
  return std::clamp(cov / std::sqrt(vi * vj), -1.0, 1.0);
}

std::vector<double> CoMoments::Correlation() const {
  const int d = dims();
  std::vector<double> out(static_cast<std::size_t>(d) * static_cast<std::size_t>(d));
  for (int i = 0; i < d; ++i) {
    for (int j = 0; j < d; ++j)
      out[At(i, j)] = i == j && n_[At(i, i)] >= 2 ? 1.0 : Correlation(i, j);
  }
  // A constant column has no correlation, not even with itself.
  for (int i = 0; i < d; ++i) {
    if (std::isnan(Correlation(i, i))) out[At(i, i)] = std::numeric_limits<double>::quiet_NaN();
  }
  return out;
}

std::vector<double> CoMoments::Covariance() const {
  const int d = dims();
  std::vector<double> out(static_cast<std::size_t>(d) * static_cast<std::size_t>(d));
  for (int i = 0; i < d; ++i) {
    for (int j = 0; j < d; ++j) {
      const double n = n_[At(i, j)];
      out[At(i, j)] = n < 2 ? std::numeric_limits<double>::quiet_NaN()
                            : (cross_[At(i, j)] - sum_[At(i, j)] * sum_[At(j, i)] / n) / (n - 1);
    }
  }
  return out;
}

std::string CoMoments::Serialize() const {
  escala::features::v1::CoMoments m;
  m.set_dims(dims());
  m.mutable_shift()->Assign(shift_.begin(), shift_.end());
  m.mutable_n()->Assign(n_.begin(), n_.end());
  m.mutable_sum()->Assign(sum_.begin(), sum_.end());
  m.mutable_sum_sq()->Assign(sum_sq_.begin(), sum_sq_.end());
  m.mutable_cross()->Assign(cross_.begin(), cross_.end());
  return m.SerializeAsString();
}

CoMoments CoMoments::Parse(std::string_view bytes) {
  escala::features::v1::CoMoments m;
  ESCALA_CHECK(m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())), kDataLoss,
               "co-moments do not parse");
  const auto d = static_cast<std::size_t>(m.dims());
  ESCALA_CHECK(static_cast<std::size_t>(m.shift_size()) == d &&
                   static_cast<std::size_t>(m.n_size()) == d * d &&
                   static_cast<std::size_t>(m.cross_size()) == d * d,
               kDataLoss, "co-moments have inconsistent sizes");
  CoMoments c(std::vector<double>(m.shift().begin(), m.shift().end()));
  c.n_.assign(m.n().begin(), m.n().end());
  c.sum_.assign(m.sum().begin(), m.sum().end());
  c.sum_sq_.assign(m.sum_sq().begin(), m.sum_sq().end());
  c.cross_.assign(m.cross().begin(), m.cross().end());
  return c;
}

}  // namespace escala::features
