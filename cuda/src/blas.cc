#include "blas.h"

#include "cublas_library.h"
#include "cuda_check.h"

namespace escala::gpu::internal {

namespace {
// cuBLAS asks for 32 MiB of workspace on Hopper (4 MiB suffice elsewhere); giving it its own
// buffer keeps allocations out of the step and results independent of the default pool.
constexpr std::size_t kWorkspaceBytes = std::size_t{32} << 20;
}  // namespace

Blas::Blas(int device, cudaStream_t stream, bool tf32) : tf32_(tf32) {
  UseDevice(device);
  const CublasLibrary& lib = CublasLibrary::Get();
  CUBLAS_CHECK(lib.Create(&handle_));
  try {
    CUBLAS_CHECK(lib.SetStream(handle_, stream));
    // Default math: float32 GEMMs stay float32 unless a compute type asks for TF32.
    CUBLAS_CHECK(lib.SetMathMode(handle_, CUBLAS_DEFAULT_MATH));
    CUBLAS_CHECK(lib.SetPointerMode(handle_, CUBLAS_POINTER_MODE_HOST));
    workspace_.Reset(device, kWorkspaceBytes);
    CUBLAS_CHECK(lib.SetWorkspace(handle_, workspace_.data(), workspace_.bytes()));
  } catch (...) {
    lib.Destroy(handle_);
    throw;
  }
}

Blas::~Blas() {
  if (handle_ != nullptr) CublasLibrary::Get().Destroy(handle_);
}

void Blas::Gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  if (m == 0 || n == 0) return;
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasComputeType_t compute = tf32_ ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  // Column-major C^T (n x m) = op(B)^T (n x k) op(A)^T (k x m).
  CUBLAS_CHECK(CublasLibrary::Get().GemmEx(handle_, op_b, op_a, n, m, k, &alpha, b, CUDA_R_32F, ldb,
                                           a, CUDA_R_32F, lda, &beta, c, CUDA_R_32F, ldc, compute,
                                           CUBLAS_GEMM_DEFAULT));
}

void Blas::ColumnSums(const float* a, int rows, int cols, const float* ones, float beta, float* y) {
  if (cols == 0) return;
  const float alpha = 1.0f;
  // Row-major A (rows x cols) is column-major A^T (cols x rows, ld cols): y = A^T ones.
  CUBLAS_CHECK(CublasLibrary::Get().Sgemv(handle_, CUBLAS_OP_N, cols, rows, &alpha, a, cols, ones,
                                          1, &beta, y, 1));
}

}  // namespace escala::gpu::internal
