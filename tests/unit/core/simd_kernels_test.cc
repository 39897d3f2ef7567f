// The run-time dispatched kernels (src/core/simd): the baseline build against naive references,
// and every AVX build this CPU runs against the baseline (equal to rounding: within 1e-5 of the
// sum of the products' magnitudes, far above float rounding over k <= 300 terms and far below
// any indexing mistake; byte scans exactly).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/simd/kernels.h"
#include "escala/config.h"

namespace escala::simd {
namespace {

struct Shape {
  std::int64_t m, n, k;
};

// A row-major rows x cols matrix with `pad` extra (poisoned) elements per row.
struct Strided {
  std::int64_t rows, cols, ld;
  std::vector<float> data;
  Strided(std::int64_t r, std::int64_t c, std::int64_t pad, std::mt19937& rng)
      : rows(r), cols(c), ld(c + pad), data(static_cast<std::size_t>(r * (c + pad)), NAN) {
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (std::int64_t i = 0; i < r; ++i)
      for (std::int64_t j = 0; j < c; ++j) at(i, j) = u(rng);
  }
  float& at(std::int64_t i, std::int64_t j) { return data[static_cast<std::size_t>(i * ld + j)]; }
  float get(std::int64_t i, std::int64_t j, bool trans) const {
    return data[static_cast<std::size_t>(trans ? j * ld + i : i * ld + j)];
  }
};

// Runs `table`'s GEMM on fresh copies of the operands; C starts at `c0`.
std::vector<float> RunGemm(const KernelTable& table, const Shape& s, const Strided& a, bool ta,
                           const Strided& b, bool tb, Strided c0, bool accumulate) {
  GemmArgs g;
  g.m = s.m;
  g.n = s.n;
  g.k = s.k;
  g.a = a.data.data();
  g.lda = a.ld;
  g.trans_a = ta;
  g.b = b.data.data();
  g.ldb = b.ld;
  g.trans_b = tb;
  g.c = c0.data.data();
  g.ldc = c0.ld;
  g.accumulate = accumulate;
  table.gemm(g);
  return c0.data;
}

// Checks every product case of `table` against `expect(case) -> C`, within `tol` x sum |a||b|.
template <typename Expect>
void CheckGemmCases(const KernelTable& table, Expect expect, double tol) {
  std::mt19937 rng(7);
  for (const Shape s :
       {Shape{1, 1, 1}, Shape{7, 5, 3}, Shape{64, 256, 33}, Shape{300, 17, 129}, Shape{5, 9, 0}}) {
    for (int flags = 0; flags < 8; ++flags) {
      const bool ta = flags & 1, tb = flags & 2, acc = flags & 4;
      const Strided a = ta ? Strided(s.k, s.m, 3, rng) : Strided(s.m, s.k, 3, rng);
      const Strided b = tb ? Strided(s.n, s.k, 1, rng) : Strided(s.k, s.n, 1, rng);
      const Strided c0(s.m, s.n, 2, rng);
      const std::vector<float> got = RunGemm(table, s, a, ta, b, tb, c0, acc);
      const std::vector<double> want = expect(s, a, ta, b, tb, c0, acc);
      for (std::int64_t i = 0; i < s.m; ++i) {
        for (std::int64_t j = 0; j < s.n; ++j) {
          const auto at = static_cast<std::size_t>(i * c0.ld + j);
          double scale = acc ? std::abs(c0.data[at]) : 0.0;
          for (std::int64_t p = 0; p < s.k; ++p)
            scale += std::abs(a.get(i, p, ta) * b.get(p, j, tb));
          ASSERT_NEAR(got[at], want[at], tol * scale + 1e-30)
              << IsaName(table.isa) << " m,n,k " << s.m << "," << s.n << "," << s.k << " ta " << ta
              << " tb " << tb << " acc " << acc << " at " << i << "," << j;
        }
        for (std::int64_t j = s.n; j < c0.ld; ++j) {  // the padding is never written
          ASSERT_TRUE(std::isnan(got[static_cast<std::size_t>(i * c0.ld + j)]));
        }
      }
    }
  }
}

std::vector<double> NaiveGemm(const Shape& s, const Strided& a, bool ta, const Strided& b, bool tb,
                              const Strided& c0, bool acc) {
  std::vector<double> c(c0.data.begin(), c0.data.end());
  for (std::int64_t i = 0; i < s.m; ++i) {
    for (std::int64_t j = 0; j < s.n; ++j) {
      double sum = 0;
      for (std::int64_t p = 0; p < s.k; ++p) sum += double{a.get(i, p, ta)} * b.get(p, j, tb);
      const auto at = static_cast<std::size_t>(i * c0.ld + j);
      c[at] = (acc ? c[at] : 0.0) + sum;
    }
  }
  return c;
}

std::vector<const KernelTable*> AvxTables() {
  std::vector<const KernelTable*> tables;
  for (const Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
    if (const KernelTable* t = KernelsFor(isa)) tables.push_back(t);
  }
  return tables;
}

TEST(SimdKernels, BaselineGemmIsTheProductForEveryTransposeAndStride) {
  CheckGemmCases(*KernelsFor(Isa::kBaseline), NaiveGemm, 1e-5);
}

TEST(SimdKernels, DispatchedGemmMatchesTheBaselineToRounding) {
  const auto tables = AvxTables();
  if (tables.empty()) GTEST_SKIP() << "this CPU runs no AVX2 or AVX-512 kernels";
  const KernelTable& base = *KernelsFor(Isa::kBaseline);
  const auto baseline = [&](const Shape& s, const Strided& a, bool ta, const Strided& b, bool tb,
                            const Strided& c0, bool acc) {
    const std::vector<float> c = RunGemm(base, s, a, ta, b, tb, c0, acc);
    return std::vector<double>(c.begin(), c.end());
  };
  for (const KernelTable* t : tables) CheckGemmCases(*t, baseline, 1e-5);
}

// y = op(A) x (+ y0) by `table`, for A m x n (padded rows).
std::vector<float> RunGemv(const KernelTable& table, const Strided& a, bool trans,
                           const std::vector<float>& x, std::vector<float> y, bool acc) {
  GemvArgs g;
  g.m = a.rows;
  g.n = a.cols;
  g.a = a.data.data();
  g.lda = a.ld;
  g.trans = trans;
  g.x = x.data();
  g.y = y.data();
  g.accumulate = acc;
  table.gemv(g);
  return y;
}

TEST(SimdKernels, GemvIsTheProductAndEveryBuildAgrees) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const std::vector<std::pair<int, int>> shapes = {{1, 1}, {3, 64}, {1000, 64}, {257, 13}, {0, 5}};
  for (const auto& [m, n] : shapes) {
    const Strided a(m, n, 5, rng);
    for (int flags = 0; flags < 4; ++flags) {
      const bool trans = flags & 1, acc = flags & 2;
      std::vector<float> x(static_cast<std::size_t>(trans ? m : n)), y0(trans ? n : m);
      for (auto& v : x) v = u(rng);
      for (auto& v : y0) v = u(rng);
      const std::vector<float> base = RunGemv(*KernelsFor(Isa::kBaseline), a, trans, x, y0, acc);
      for (std::size_t i = 0; i < y0.size(); ++i) {
        double want = acc ? y0[i] : 0.0, scale = acc ? std::abs(y0[i]) : 0.0;
        for (std::size_t p = 0; p < x.size(); ++p) {
          const auto ai = static_cast<std::int64_t>(trans ? p : i);
          const auto aj = static_cast<std::int64_t>(trans ? i : p);
          want += double{a.get(ai, aj, false)} * x[p];
          scale += std::abs(a.get(ai, aj, false) * x[p]);
        }
        ASSERT_NEAR(base[i], want, 1e-5 * scale + 1e-30) << m << "x" << n << " flags " << flags;
        for (const KernelTable* t : AvxTables()) {
          ASSERT_NEAR(RunGemv(*t, a, trans, x, y0, acc)[i], base[i], 1e-5 * scale + 1e-30)
              << IsaName(t->isa) << " " << m << "x" << n << " flags " << flags << " at " << i;
        }
      }
    }
  }
}

ScanResult NaiveScan(const std::string& s, char quote) {
  ScanResult r{0, static_cast<std::size_t>(-1), false};
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n') {
      ++r.newlines;
      r.last_newline = i;
    }
    if (quote != '\0' && s[i] == quote) r.has_quote = true;
  }
  return r;
}

TEST(SimdKernels, ByteScansAreExactInEveryBuild) {
  std::mt19937 rng(3);
  std::vector<const KernelTable*> tables = AvxTables();
  tables.push_back(KernelsFor(Isa::kBaseline));
  const std::string alphabet = "a1,.\n\n\"";
  for (const std::size_t len : {0u, 1u, 63u, 64u, 65u, 127u, 128u, 129u, 1000u}) {
    for (int trial = 0; trial < 20; ++trial) {
      std::string s(len, 'x');
      // Sparse at first (the last newline early or absent), denser in later trials.
      for (auto& c : s) {
        if (std::uniform_int_distribution<int>(0, 40)(rng) < trial)
          c = alphabet[rng() % alphabet.size()];
      }
      for (const char quote : {'\0', '"', 'q'}) {
        const ScanResult want = NaiveScan(s, quote);
        for (const KernelTable* t : tables) {
          const ScanResult got = t->scan_text(s.data(), s.data() + s.size(), quote);
          ASSERT_EQ(got.newlines, want.newlines) << IsaName(t->isa) << " " << len;
          ASSERT_EQ(got.last_newline, want.last_newline) << IsaName(t->isa) << " " << len;
          ASSERT_EQ(got.has_quote, want.has_quote) << IsaName(t->isa) << " " << len;
          ASSERT_EQ(t->count_newlines(s.data(), s.data() + s.size()), want.newlines);
        }
      }
    }
  }
}

// The CPU's feature flags, from /proc/cpuinfo (empty elsewhere).
std::string CpuFlags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0) return line + " ";
  }
  return "";
}

TEST(SimdKernels, ChoosesTheBestBuildTheCpuRuns) {
  const std::string flags = CpuFlags();
  const auto has = [&](const char* f) {
    return flags.find(std::string(" ") + f + " ") != flags.npos;
  };
  if (ESCALA_ISA_KERNELS && has("avx2") && has("fma") && has("bmi2") && has("movbe")) {
    EXPECT_NE(KernelsFor(Isa::kAvx2), nullptr) << "the CPU has AVX2 and FMA";
  }
  if (ESCALA_ISA_KERNELS && has("avx512f") && has("avx512bw") && has("avx512dq") &&
      has("avx512vl") && has("avx512cd")) {
    EXPECT_NE(KernelsFor(Isa::kAvx512), nullptr) << "the CPU has AVX-512";
  }
  if (!has("avx2")) {
    EXPECT_EQ(KernelsFor(Isa::kAvx2), nullptr);
  }
  ASSERT_NE(KernelsFor(Isa::kBaseline), nullptr);
  const char* cap = std::getenv("ESCALA_CPU_ISA");
  if (cap != nullptr && *cap != '\0') {
    GTEST_SKIP() << "ESCALA_CPU_ISA=" << cap << " caps the choice";
  }
  Isa best = Isa::kBaseline;
  for (const Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
    if (KernelsFor(isa) != nullptr) best = isa;
  }
  EXPECT_EQ(Kernels().isa, best);
}

}  // namespace
}  // namespace escala::simd
