// The kernels for the build's baseline (ESCALA_ARCH_BASELINE): every CPU the binary runs on.
// Eigen keeps its own name here: this file is compiled with the same flags as the rest.
#define ESCALA_SIMD_NS baseline
#define ESCALA_SIMD_ISA kBaseline
#include "core/simd/kernels_impl.h"
