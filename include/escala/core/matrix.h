// Dense row-major matrices: a non-owning view and an owning, 64-byte-aligned buffer.
//
// Every dense batch in escala (features out of a pipeline, a model's activations, a tensor in a
// request) is a MatrixView: a pointer, a shape and a row stride. Views never own memory; the
// caller keeps the storage alive. escala/core/eigen.h maps a view onto Eigen without copying.
//
// Thread-safety: views are plain values; concurrent reads are safe, writes need the caller's
// synchronisation. Matrix is a movable, copyable value.
#ifndef ESCALA_CORE_MATRIX_H_
#define ESCALA_CORE_MATRIX_H_

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <type_traits>
#include <vector>

#include "escala/core/error.h"
#include "escala/core/memory_info.h"

namespace escala {

// Allocates with 64-byte (cache-line, AVX-512) alignment. Vectorised kernels choose their code
// path by the alignment of their operands, so aligning every buffer the numerics touch makes
// results independent of where the heap happened to place them: a run that allocates a little
// more or less (a resumed run, another thread count) computes bit-identical values.
template <typename T>
struct AlignedAllocator {
  using value_type = T;
  static constexpr std::size_t kAlignment = 64;
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)
  T* allocate(std::size_t n) {
    const std::size_t bytes = (n * sizeof(T) + kAlignment - 1) / kAlignment * kAlignment;
    void* p = std::aligned_alloc(kAlignment, bytes == 0 ? kAlignment : bytes);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) noexcept { std::free(p); }
  template <typename U>
  bool operator==(const AlignedAllocator<U>&) const noexcept {
    return true;
  }
};

template <typename T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

template <typename T>
class MatrixView {
 public:
  using value_type = std::remove_const_t<T>;

  MatrixView() = default;
  // stride < 0 means rows are contiguous (stride == cols).
  MatrixView(T* data, std::int64_t rows, std::int64_t cols, std::int64_t stride = -1)
      : data_(data), rows_(rows), cols_(cols), stride_(stride < 0 ? cols : stride) {}

  // A view of const T from a view of T.
  template <typename U, typename = std::enable_if_t<std::is_same_v<const U, T>>>
  MatrixView(const MatrixView<U>& other)  // NOLINT(google-explicit-constructor)
      : data_(other.data()), rows_(other.rows()), cols_(other.cols()), stride_(other.stride()) {}

  T* data() const { return data_; }
  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  std::int64_t stride() const { return stride_; }
  std::int64_t size() const { return rows_ * cols_; }
  bool empty() const { return rows_ == 0 || cols_ == 0; }
  bool contiguous() const { return stride_ == cols_ || rows_ <= 1; }

  T* row(std::int64_t i) const { return data_ + i * stride_; }
  std::span<T> row_span(std::int64_t i) const {
    return std::span<T>(row(i), static_cast<std::size_t>(cols_));
  }
  T& operator()(std::int64_t i, std::int64_t j) const { return data_[i * stride_ + j]; }

  // Rows [begin, begin + count).
  MatrixView Rows(std::int64_t begin, std::int64_t count) const {
    return MatrixView(data_ + begin * stride_, count, cols_, stride_);
  }

 private:
  T* data_ = nullptr;
  std::int64_t rows_ = 0;
  std::int64_t cols_ = 0;
  std::int64_t stride_ = 0;
};

// Owning row-major matrix with 64-byte-aligned, contiguous storage. Resize() keeps the
// allocation when it is large enough, so hot loops can reuse a Matrix without allocating.
// Within capacity the buffer's bytes are left as they were (reinterpreted in the new shape, not
// cleared); growing past capacity allocates a fresh, uninitialised buffer.
template <typename T>
class Matrix {
  static_assert(std::is_trivially_copyable_v<T>, "Matrix holds trivially copyable elements");

 public:
  static constexpr std::size_t kAlignment = 64;

  Matrix() = default;
  Matrix(std::int64_t rows, std::int64_t cols) { Resize(rows, cols); }
  Matrix(std::int64_t rows, std::int64_t cols, T fill) {
    Resize(rows, cols);
    Fill(fill);
  }
  Matrix(const Matrix& other) { *this = other; }
  Matrix& operator=(const Matrix& other) {
    if (this != &other) {
      Resize(other.rows_, other.cols_);
      if (size() > 0) std::memcpy(data_.get(), other.data_.get(), bytes());
    }
    return *this;
  }
  Matrix(Matrix&& other) noexcept { swap(other); }
  Matrix& operator=(Matrix&& other) noexcept {
    swap(other);
    return *this;
  }

  // Changes the shape; contents are unspecified afterwards unless the size is unchanged.
  void Resize(std::int64_t rows, std::int64_t cols) {
    ESCALA_CHECK(rows >= 0 && cols >= 0, kInvalidArgument, "negative matrix shape {}x{}", rows,
                 cols);
    const auto n = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
    if (n > capacity_) {
      std::size_t bytes = ((n * sizeof(T)) + kAlignment - 1) / kAlignment * kAlignment;
      void* p = std::aligned_alloc(kAlignment, bytes);
      if (p == nullptr) throw std::bad_alloc();
      AdviseHugePages(p, bytes);
      data_.reset(static_cast<T*>(p));
      capacity_ = n;
    }
    rows_ = rows;
    cols_ = cols;
  }
  void Fill(T value) {
    T* p = data_.get();
    for (std::int64_t i = 0; i < size(); ++i) p[i] = value;
  }

  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  std::int64_t size() const { return rows_ * cols_; }
  std::size_t bytes() const { return static_cast<std::size_t>(size()) * sizeof(T); }
  std::size_t capacity() const { return capacity_; }
  T* row(std::int64_t i) { return data_.get() + i * cols_; }
  const T* row(std::int64_t i) const { return data_.get() + i * cols_; }
  T& operator()(std::int64_t i, std::int64_t j) { return data_.get()[i * cols_ + j]; }
  const T& operator()(std::int64_t i, std::int64_t j) const { return data_.get()[i * cols_ + j]; }

  MatrixView<T> view() { return MatrixView<T>(data_.get(), rows_, cols_); }
  MatrixView<const T> view() const { return MatrixView<const T>(data_.get(), rows_, cols_); }
  std::span<T> span() { return std::span<T>(data_.get(), static_cast<std::size_t>(size())); }
  std::span<const T> span() const {
    return std::span<const T>(data_.get(), static_cast<std::size_t>(size()));
  }

  void swap(Matrix& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(rows_, other.rows_);
    std::swap(cols_, other.cols_);
    std::swap(capacity_, other.capacity_);
  }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T, Free> data_;
  std::int64_t rows_ = 0;
  std::int64_t cols_ = 0;
  std::size_t capacity_ = 0;
};

using MatrixF = Matrix<float>;
using MatrixViewF = MatrixView<float>;
using ConstMatrixViewF = MatrixView<const float>;

}  // namespace escala

#endif  // ESCALA_CORE_MATRIX_H_
