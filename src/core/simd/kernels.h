// The hot CPU kernels, compiled once per instruction set and chosen once per process.
//
// escala is compiled for a portable baseline (ESCALA_ARCH_BASELINE, x86-64-v2 by default). The
// few loops that dominate training and CSV reading — dense products (Eigen's GEMM and GEMV) and
// byte scans — are also compiled for x86-64-v3 (AVX2, FMA) and x86-64-v4 (AVX-512) in their own
// translation units (kernels_<isa>.cc); Kernels() returns the table of the best one this CPU runs.
//
// The interface is plain data and raw pointers on purpose: nothing inline crosses from an ISA
// translation unit to the rest of the program (docs/building.md, "Run-time kernel dispatch").
//
// Thread-safety: the tables are immutable; Kernels() is safe to call from any thread.
#ifndef ESCALA_SRC_CORE_SIMD_KERNELS_H_
#define ESCALA_SRC_CORE_SIMD_KERNELS_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace escala::simd {

// Ordered: a CPU that runs one runs every lower one.
enum class Isa : int { kBaseline = 0, kAvx2 = 1, kAvx512 = 2 };
inline constexpr int kNumIsas = 3;

// C (m x n) = op(A) op(B), or C += op(A) op(B) when accumulate. Row-major, leading dimensions
// in elements: A is stored m x k (k x m when trans_a), B k x n (n x k when trans_b). C must not
// overlap A or B. k == 0 gives C = 0 (or leaves it).
struct GemmArgs {
  std::int64_t m = 0, n = 0, k = 0;
  const float* a = nullptr;
  std::int64_t lda = 0;
  bool trans_a = false;
  const float* b = nullptr;
  std::int64_t ldb = 0;
  bool trans_b = false;
  float* c = nullptr;
  std::int64_t ldc = 0;
  bool accumulate = false;
};

// y = op(A) x, or y += op(A) x when accumulate. A is row-major m x n with leading dimension lda;
// op(A) is A (x has n elements, y m) or its transpose when trans (x has m, y n). x and y are
// contiguous and do not overlap A or each other.
struct GemvArgs {
  std::int64_t m = 0, n = 0;
  const float* a = nullptr;
  std::int64_t lda = 0;
  bool trans = false;
  const float* x = nullptr;
  float* y = nullptr;
  bool accumulate = false;
};

// One pass over bytes: the number of '\n', the offset of the last one (SIZE_MAX if none) and
// whether `quote` occurs ('\0': not looked for).
struct ScanResult {
  std::size_t newlines;
  std::size_t last_newline;
  bool has_quote;
};

struct KernelTable {
  Isa isa;
  void (*gemm)(const GemmArgs& args);
  void (*gemv)(const GemvArgs& args);
  std::size_t (*count_newlines)(const char* begin, const char* end);
  ScanResult (*scan_text)(const char* begin, const char* end, char quote);
};

// The table for the best instruction set this CPU supports, chosen on first use. The environment
// variable ESCALA_CPU_ISA (baseline, avx2, avx512) caps the choice, e.g. to compare them.
const KernelTable& Kernels();

// The table for `isa`, or null when it was not built or this CPU cannot run it.
const KernelTable* KernelsFor(Isa isa);

// "baseline", "avx2", "avx512".
std::string_view IsaName(Isa isa);

// The per-ISA tables (kernels_<isa>.cc). Use Kernels() or KernelsFor(), which check the CPU.
namespace baseline {
extern const KernelTable kKernels;
}
namespace avx2 {
extern const KernelTable kKernels;
}
namespace avx512 {
extern const KernelTable kKernels;
}

}  // namespace escala::simd

#endif  // ESCALA_SRC_CORE_SIMD_KERNELS_H_
