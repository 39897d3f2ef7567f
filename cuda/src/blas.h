// cuBLAS for row-major matrices, FP32 or TF32 (host code).
//
// escala stores matrices row-major; cuBLAS is column-major. A row-major m x n matrix is the
// column-major n x m matrix of its transpose, so C = op(A) op(B) in row-major terms is computed as
// C^T = op(B)^T op(A)^T in column-major terms: the operands swap and keep their transpose flags.
//
// Thread-safety: one Blas per stream and thread.
#ifndef ESCALA_CUDA_SRC_BLAS_H_
#define ESCALA_CUDA_SRC_BLAS_H_

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "memory.h"

namespace escala::gpu::internal {

class Blas {
 public:
  // Enqueues on `stream` of `device`. tf32: GEMMs take TensorFloat-32 inputs on tensor cores
  // (CUBLAS_COMPUTE_32F_FAST_TF32), accumulating in float32; otherwise IEEE float32.
  Blas(int device, cudaStream_t stream, bool tf32);
  ~Blas();
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;

  bool tf32() const { return tf32_; }

  // Row-major C (m x n) = alpha op(A) op(B) + beta C, op(A) m x k, op(B) k x n; lda, ldb, ldc
  // are row strides of the matrices as stored.
  void Gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
            const float* b, int ldb, float beta, float* c, int ldc);

  // y (cols) = beta y + sum over the rows of row-major A (rows x cols, contiguous), using a
  // vector of at least `rows` ones on the device. Always float32 (not a tensor-core op).
  void ColumnSums(const float* a, int rows, int cols, const float* ones, float beta, float* y);

  cublasHandle_t handle() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
  bool tf32_;
  DeviceBuffer<std::uint8_t> workspace_;
};

}  // namespace escala::gpu::internal

#endif  // ESCALA_CUDA_SRC_BLAS_H_
