// The kernels for x86-64-v4 CPUs (AVX-512 F/BW/CD/DQ/VL): compiled with -march=x86-64-v4
// (src/CMakeLists.txt), used only when the CPU has them. Eigen's namespace is renamed, as in
// kernels_avx2.cc.
#if !defined(__AVX512F__) || !defined(__AVX512BW__)
#error "kernels_avx512.cc must be compiled with -march=x86-64-v4"
#endif
#define Eigen EigenAvx512
#define ESCALA_SIMD_NS avx512
#define ESCALA_SIMD_ISA kAvx512
#include "core/simd/kernels_impl.h"
