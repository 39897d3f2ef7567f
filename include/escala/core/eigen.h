// Zero-copy bridges from escala's MatrixView to Eigen.
//
// Kept apart from matrix.h so that only code doing linear algebra pays for Eigen's headers.
#ifndef ESCALA_CORE_EIGEN_H_
#define ESCALA_CORE_EIGEN_H_

#include <Eigen/Core>

#include "escala/core/matrix.h"

namespace escala {

template <typename T>
using EigenRowMajor =
    Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <typename T>
using EigenMap =
    std::conditional_t<std::is_const_v<T>,
                       Eigen::Map<const EigenRowMajor<T>, Eigen::Unaligned, Eigen::OuterStride<>>,
                       Eigen::Map<EigenRowMajor<T>, Eigen::Unaligned, Eigen::OuterStride<>>>;

// An Eigen view of the same memory: writes through a non-const view change the matrix.
template <typename T>
EigenMap<T> AsEigen(MatrixView<T> view) {
  return EigenMap<T>(view.data(), view.rows(), view.cols(), Eigen::OuterStride<>(view.stride()));
}

template <typename T>
EigenMap<T> AsEigen(Matrix<T>& m) {
  return AsEigen(m.view());
}

template <typename T>
EigenMap<const T> AsEigen(const Matrix<T>& m) {
  return AsEigen(m.view());
}

}  // namespace escala

#endif  // ESCALA_CORE_EIGEN_H_
