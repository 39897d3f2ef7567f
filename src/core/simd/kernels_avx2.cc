// The kernels for x86-64-v3 CPUs (AVX2, FMA, BMI2): compiled with -march=x86-64-v3
// (src/CMakeLists.txt), used only when the CPU has them.
//
// Eigen's namespace is renamed in this file: its inline functions and templates, compiled here
// with AVX2, must not be merged by the linker with the baseline copies the rest of the program
// uses (tests/unit/core/isa_symbols_check.cmake checks that none is shared).
#if !defined(__AVX2__) || !defined(__FMA__)
#error "kernels_avx2.cc must be compiled with -march=x86-64-v3"
#endif
#define Eigen EigenAvx2
#define ESCALA_SIMD_NS avx2
#define ESCALA_SIMD_ISA kAvx2
#include "core/simd/kernels_impl.h"
