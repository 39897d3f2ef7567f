// Chooses the kernel table once per process: the best instruction set the CPU supports, capped
// by ESCALA_CPU_ISA when set.
#include <cstdlib>

#include "core/simd/kernels.h"
#include "escala/config.h"
#include "escala/core/logging.h"

namespace escala::simd {
namespace {

bool CpuRuns(Isa isa) {
#if ESCALA_ISA_KERNELS
  __builtin_cpu_init();
  switch (isa) {
    case Isa::kBaseline:
      return true;
    case Isa::kAvx2:
      return __builtin_cpu_supports("x86-64-v3") != 0;
    case Isa::kAvx512:
      return __builtin_cpu_supports("x86-64-v4") != 0;
  }
  return false;
#else
  return isa == Isa::kBaseline;
#endif
}

const KernelTable* Built(Isa isa) {
  switch (isa) {
    case Isa::kBaseline:
      return &baseline::kKernels;
#if ESCALA_ISA_KERNELS
    case Isa::kAvx2:
      return &avx2::kKernels;
    case Isa::kAvx512:
      return &avx512::kKernels;
#endif
    default:
      return nullptr;
  }
}

// The highest ISA ESCALA_CPU_ISA allows (all when unset or not understood).
Isa Cap() {
  const char* env = std::getenv("ESCALA_CPU_ISA");
  if (env == nullptr || *env == '\0') return Isa::kAvx512;
  for (int i = 0; i < kNumIsas; ++i) {
    if (IsaName(static_cast<Isa>(i)) == env) return static_cast<Isa>(i);
  }
  ESCALA_LOG_WARN("ESCALA_CPU_ISA={} is not one of baseline, avx2, avx512; ignored", env);
  return Isa::kAvx512;
}

const KernelTable& Choose() {
  const Isa cap = Cap();
  for (int i = static_cast<int>(cap); i > 0; --i) {
    if (const KernelTable* table = KernelsFor(static_cast<Isa>(i))) {
      ESCALA_LOG_DEBUG("CPU kernels: {} (baseline {})", IsaName(table->isa), ESCALA_ARCH_BASELINE);
      return *table;
    }
  }
  ESCALA_LOG_DEBUG("CPU kernels: baseline ({})", ESCALA_ARCH_BASELINE);
  return baseline::kKernels;
}

}  // namespace

const KernelTable* KernelsFor(Isa isa) {
  return CpuRuns(isa) ? Built(isa) : nullptr;
}

const KernelTable& Kernels() {
  static const KernelTable& chosen = Choose();
  return chosen;
}

std::string_view IsaName(Isa isa) {
  switch (isa) {
    case Isa::kBaseline:
      return "baseline";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "unknown";
}

}  // namespace escala::simd
