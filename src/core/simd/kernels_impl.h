// The kernels' code, included once by each kernels_<isa>.cc, which define
//   ESCALA_SIMD_NS   the namespace of that build (baseline, avx2, avx512)
//   ESCALA_SIMD_ISA  its Isa enumerator
// and, in the AVX builds, rename Eigen's namespace before including this file (kernels.h says
// why). Everything here has internal linkage except the table.
//
// Include nothing here that includes Eigen under its own name (escala/core/eigen.h included).
#ifndef ESCALA_SIMD_NS
#error "define ESCALA_SIMD_NS and ESCALA_SIMD_ISA before including kernels_impl.h"
#endif

#include <cstdint>

#include <Eigen/Core>

#include "core/simd/kernels.h"

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace escala::simd::ESCALA_SIMD_NS {
namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;
using MutMap = Eigen::Map<RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;
using ConstVec = Eigen::Map<const Eigen::VectorXf>;
using MutVec = Eigen::Map<Eigen::VectorXf>;

ConstMap Stored(const float* p, std::int64_t rows, std::int64_t cols, std::int64_t ld) {
  return ConstMap(p, rows, cols, Eigen::OuterStride<>(ld));
}

// C (=|+=) op(A) op(B) with the transposes fixed at compile time: each is its own Eigen product.
template <bool kTransA, bool kTransB>
void GemmFixed(const GemmArgs& g) {
  const ConstMap a = kTransA ? Stored(g.a, g.k, g.m, g.lda) : Stored(g.a, g.m, g.k, g.lda);
  const ConstMap b = kTransB ? Stored(g.b, g.n, g.k, g.ldb) : Stored(g.b, g.k, g.n, g.ldb);
  MutMap c(g.c, g.m, g.n, Eigen::OuterStride<>(g.ldc));
  const auto op_a = [&] {
    if constexpr (kTransA) {
      return a.transpose();
    } else {
      return a;
    }
  }();
  const auto op_b = [&] {
    if constexpr (kTransB) {
      return b.transpose();
    } else {
      return b;
    }
  }();
  if (g.accumulate) {
    c.noalias() += op_a * op_b;
  } else {
    c.noalias() = op_a * op_b;
  }
}

void Gemm(const GemmArgs& g) {
  if (g.m == 0 || g.n == 0) return;
  if (g.trans_a) {
    g.trans_b ? GemmFixed<true, true>(g) : GemmFixed<true, false>(g);
  } else {
    g.trans_b ? GemmFixed<false, true>(g) : GemmFixed<false, false>(g);
  }
}

void Gemv(const GemvArgs& g) {
  const ConstMap a = Stored(g.a, g.m, g.n, g.lda);
  const std::int64_t in = g.trans ? g.m : g.n;
  const std::int64_t out = g.trans ? g.n : g.m;
  if (out == 0) return;
  const ConstVec x(g.x, in);
  MutVec y(g.y, out);
  if (g.trans) {
    if (g.accumulate) {
      y.noalias() += a.transpose() * x;
    } else {
      y.noalias() = a.transpose() * x;
    }
  } else if (g.accumulate) {
    y.noalias() += a * x;
  } else {
    y.noalias() = a * x;
  }
}

// Bit i set when p[i] == c, for the 64 bytes at p.
inline std::uint64_t EqualMask64(const char* p, char c) {
#if defined(__AVX2__)
  const __m256i v = _mm256_set1_epi8(c);
  const auto lo = static_cast<std::uint32_t>(_mm256_movemask_epi8(
      _mm256_cmpeq_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), v)));
  const auto hi = static_cast<std::uint32_t>(_mm256_movemask_epi8(
      _mm256_cmpeq_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)), v)));
  return lo | (std::uint64_t{hi} << 32);
#elif defined(__SSE2__)
  const __m128i v = _mm_set1_epi8(c);
  std::uint64_t m = 0;
  for (int i = 0; i < 4; ++i) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i));
    const auto bits = static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(bytes, v)));
    m |= std::uint64_t{bits} << (16 * i);
  }
  return m;
#else
  std::uint64_t m = 0;
  for (int i = 0; i < 64; ++i) m |= std::uint64_t{p[i] == c} << i;
  return m;
#endif
}

std::size_t CountNewlines(const char* begin, const char* end) {
  std::size_t count = 0;
  const char* p = begin;
  for (; end - p >= 64; p += 64) {
    count += static_cast<std::size_t>(__builtin_popcountll(EqualMask64(p, '\n')));
  }
  for (; p < end; ++p) count += (*p == '\n');
  return count;
}

ScanResult ScanText(const char* begin, const char* end, char quote) {
  ScanResult r{0, static_cast<std::size_t>(-1), false};
  const char* p = begin;
  std::uint64_t quotes = 0;
  for (; end - p >= 64; p += 64) {
    const std::uint64_t m = EqualMask64(p, '\n');
    if (quote != '\0') quotes |= EqualMask64(p, quote);
    if (m != 0) {
      r.newlines += static_cast<std::size_t>(__builtin_popcountll(m));
      r.last_newline =
          static_cast<std::size_t>(p - begin) + 63 - static_cast<std::size_t>(__builtin_clzll(m));
    }
  }
  r.has_quote = quotes != 0;
  for (; p < end; ++p) {
    if (*p == '\n') {
      ++r.newlines;
      r.last_newline = static_cast<std::size_t>(p - begin);
    } else if (quote != '\0' && *p == quote) {
      r.has_quote = true;
    }
  }
  return r;
}

}  // namespace

const KernelTable kKernels = {Isa::ESCALA_SIMD_ISA, &Gemm, &Gemv, &CountNewlines, &ScanText};

}  // namespace escala::simd::ESCALA_SIMD_NS
