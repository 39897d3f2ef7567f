#include "escala/train/gbdt.h"

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <numeric>
#include <type_traits>
#include <utility>
#include <vector>

#include "escala/core/error.h"
#include "escala/core/logging.h"
#include "escala/core/memory_info.h"
#include "escala/core/parallel.h"
#include "escala/core/random.h"
#include "train/tree_median.h"
#include "train/tree_objective.h"

namespace escala::train {

namespace {

using models::Task;
using models::Tree;

// A gradient and hessian in 64-bit fixed point: sums are exact, so they do not depend on the
// order rows are added in (threads, ranks).
struct GH {
  std::int64_t g = 0;
  std::int64_t h = 0;
  GH& operator+=(const GH& o) {
    g += o.g;
    h += o.h;
    return *this;
  }
  GH operator-(const GH& o) const { return {g - o.g, h - o.h}; }
  GH operator+(const GH& o) const { return {g + o.g, h + o.h}; }
};

using Hist = std::vector<GH>;

// Per-row buffers (bins, fixed-point gradients) in transparent huge pages where the kernel allows:
// below the root the histogram loops visit rows sparsely, and with 4 KB pages nearly every row
// they read costs a TLB miss.
template <class T>
struct HugeAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = HugeAllocator<U>;
  };
  HugeAllocator() noexcept = default;
  template <class U>
  HugeAllocator(const HugeAllocator<U>&) noexcept {}  // NOLINT: rebinding
  // Large buffers start on a huge page, others on a cache line: a row of 64 one-byte bins is then
  // one cache line, not two.
  static std::align_val_t Alignment(std::size_t n) {
    return std::align_val_t{n * sizeof(T) >= kLargeBufferBytes ? std::size_t{2} << 20 : 64};
  }
  T* allocate(std::size_t n) {
    T* p = static_cast<T*>(::operator new(n * sizeof(T), Alignment(n)));
    AdviseHugePages(p, n * sizeof(T));
    return p;
  }
  void deallocate(T* p, std::size_t n) noexcept { ::operator delete(p, Alignment(n)); }
  // resize() leaves new elements default-initialised: the bins are written right after.
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
};

template <class T>
using RowVector = std::vector<T, HugeAllocator<T>>;
using RowGH = RowVector<GH>;

// Histograms (263 KB each on W0) are reused across nodes, levels and trees: allocating and
// freeing them cost page faults and zeroing of fresh pages. Used by one thread at a time. So are
// a tree's row order and the partitions' scratch space (a node's rows: its range of it).
struct HistPool {
  std::vector<Hist> spare;
  RowVector<std::uint32_t> order, scratch;

  Hist Take() {
    if (spare.empty()) return {};
    Hist h = std::move(spare.back());
    spare.pop_back();
    return h;
  }
  void Give(Hist& h) {
    if (h.capacity() > 0) spare.push_back(std::move(h));
    h = Hist();
  }
};

// ---- bins ------------------------------------------------------------------------------------

// The slots of a feature in a strided histogram: its value bins and missing bin, at most 256.
constexpr std::uint32_t kStride = 256;

// Every feature's bin edges and every row's bins. Feature f has cuts[f].size() + 1 value bins
// (bin b holds cuts[b-1] <= x < cuts[b]) and then its missing bin.
struct Bins {
  std::int64_t rows = 0;
  std::int64_t d = 0;
  std::vector<std::vector<float>> cuts;
  std::vector<std::uint32_t> categories;  // per feature: a category code's count, 0: a number
  std::vector<std::uint32_t> offset;      // feature f's first histogram slot
  std::uint32_t total = 0;                // histogram slots, all features
  // rows x d bin indices: one byte each when every feature's bins (its missing bin included) fit
  // in 256, as they do for max_bin <= 255; two otherwise.
  bool narrow = false;
  // Narrow only: feature f's slots start at f * kStride (offset), so the histogram loop adds
  // fixed distances instead of reading offsets.
  bool strided = false;
  RowVector<std::uint8_t> index8;
  RowVector<std::uint16_t> index16;
  // The same bins feature by feature (narrow only): partitioning a node by one feature reads its
  // rows' bins from one column, in increasing row order, instead of one cache line per row.
  RowVector<std::uint8_t> column8;

  // Row i's bin of feature f read for a partition.
  std::uint32_t column_bin(std::int64_t i, std::int64_t f) const {
    return narrow ? column8[static_cast<std::size_t>(f * rows + i)] : bin(i, f);
  }

  // A number's bins between its edges, or a category code's one bin per category.
  std::uint32_t value_bins(std::int64_t f) const {
    const auto at = static_cast<std::size_t>(f);
    return categories[at] > 0 ? categories[at] : static_cast<std::uint32_t>(cuts[at].size() + 1);
  }
  std::uint32_t bin(std::int64_t i, std::int64_t f) const {
    const auto at = static_cast<std::size_t>(i * d + f);
    return narrow ? index8[at] : index16[at];
  }
};

// Rows are visited in increasing but sparse order below the root: the hardware prefetcher does
// not follow, so the loops ask for the row this many ahead.
constexpr std::size_t kPrefetchAhead = 16;

// The number of edges <= x among the n sorted edges: a binary search whose steps depend on n only
// (the comparison selects, it does not branch), so binning a column does not mispredict.
std::uint32_t CountAtMost(const float* edges, std::size_t n, float x) {
  const float* base = edges;
  while (n > 1) {
    const std::size_t half = n / 2;
    base = base[half] <= x ? base + half : base;
    n -= half;
  }
  return static_cast<std::uint32_t>(base - edges) + (n == 1 && *base <= x ? 1 : 0);
}

// Every row's bin of every feature (NaN: the missing bin).
template <typename T>
void BinRows(const DataShard& s, Bins* b, RowVector<T>* index) {
  const auto d = static_cast<std::size_t>(b->d);
  index->resize(static_cast<std::size_t>(b->rows) * d);
  ParallelFor(static_cast<std::size_t>(b->rows), 1024, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const float* row = s.features.row(static_cast<std::int64_t>(i));
      T* out = index->data() + i * d;
      for (std::size_t f = 0; f < d; ++f) {
        const float x = row[f];
        const std::uint32_t k = b->categories[f];
        if (k > 0) {  // a category code: its own bin; anything else is missing
          const bool code = x >= 0 && x < static_cast<float>(k) && x == std::floor(x);
          out[f] = static_cast<T>(code ? static_cast<std::uint32_t>(x) : k);
          continue;
        }
        const auto& c = b->cuts[f];
        out[f] = static_cast<T>(std::isnan(x) ? c.size() + 1 : CountAtMost(c.data(), c.size(), x));
      }
    }
  });
}

// column8 from index8, a block of rows at a time.
void Transpose(Bins* b) {
  const auto d = static_cast<std::size_t>(b->d), n = static_cast<std::size_t>(b->rows);
  b->column8.resize(n * d);
  ParallelFor(n, 4096, [&](std::size_t begin, std::size_t end) {  // a block stays in cache
    for (std::size_t f = 0; f < d; ++f) {
      std::uint8_t* out = b->column8.data() + f * n;
      for (std::size_t i = begin; i < end; ++i) out[i] = b->index8[i * d + f];
    }
  });
}

// This rank's rows' global identities: the shard's, or the rank order's.
std::vector<std::uint64_t> GlobalIds(const DataShard& s, Communicator& comm) {
  if (!s.row_ids.empty()) return {s.row_ids.begin(), s.row_ids.end()};
  const std::int64_t n = s.rows();
  const auto counts = comm.AllGather(std::span<const std::int64_t>(&n, 1));
  std::uint64_t first = 0;
  for (int r = 0; r < comm.rank(); ++r) first += static_cast<std::uint64_t>(counts[r]);
  std::vector<std::uint64_t> ids(static_cast<std::size_t>(n));
  std::iota(ids.begin(), ids.end(), first);
  return ids;
}

// The rows whose values place the bin edges, gathered from every rank in rank order (row-major
// floats). Chosen by global identity, so the sample is the same set for any number of ranks.
std::vector<float> GatherSample(const GbdtOptions& o, const DataShard& s,
                                std::span<const std::uint64_t> ids, Communicator& comm) {
  const auto total = comm.AllReduceScalar<std::int64_t>(s.rows(), ReduceOp::kSum);
  const std::int64_t d = s.features.cols();
  const auto sampled = [&](std::int64_t i) {
    const std::uint64_t id = ids[static_cast<std::size_t>(i)];
    return total <= o.bin_sample_rows ||
           Mix64(id ^ 0x6264745f62696e73ULL) % static_cast<std::uint64_t>(total) <
               static_cast<std::uint64_t>(o.bin_sample_rows);
  };
  std::size_t count = 0;
  for (std::int64_t i = 0; i < s.rows(); ++i) count += sampled(i) ? 1 : 0;
  std::vector<float> local;
  local.reserve(count * static_cast<std::size_t>(d));
  for (std::int64_t i = 0; i < s.rows(); ++i) {
    if (sampled(i)) local.insert(local.end(), s.features.row(i), s.features.row(i) + d);
  }
  if (comm.size() == 1) return local;
  const auto parts = comm.AllGatherV(std::as_bytes(std::span<const float>(local)));
  std::vector<float> all;
  for (const auto& p : parts) {
    const auto* f = reinterpret_cast<const float*>(p.data());
    all.insert(all.end(), f, f + p.size() / sizeof(float));
  }
  return all;
}

// Sorts finite floats (no -0) into increasing order: a least-significant-digit radix sort of their
// order-preserving bit patterns, 11 bits a pass.
void SortFloats(std::vector<float>* v) {
  constexpr int kBits = 11;
  constexpr std::uint32_t kMask = (1u << kBits) - 1;
  std::vector<std::uint32_t> a(v->size()), t(v->size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto u = std::bit_cast<std::uint32_t>((*v)[i]);
    a[i] = u ^ ((u >> 31) != 0 ? 0xffffffffu : 0x80000000u);
  }
  for (int shift = 0; shift < 32; shift += kBits) {
    std::array<std::size_t, kMask + 1> at{};
    for (const std::uint32_t k : a) ++at[(k >> shift) & kMask];
    std::size_t sum = 0;
    for (std::size_t& c : at) sum += std::exchange(c, sum);
    for (const std::uint32_t k : a) t[at[(k >> shift) & kMask]++] = k;
    a.swap(t);
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    (*v)[i] = std::bit_cast<float>(a[i] ^ ((a[i] >> 31) != 0 ? 0x80000000u : 0xffffffffu));
  }
}

// Edges between the finite values v (no -0): every distinct value its own bin when there are at
// most max_bin of them, else (about) equal-count bins whose edges are sample values.
std::vector<float> CutsOf(std::vector<float> v, int max_bin) {
  SortFloats(&v);
  std::vector<float> distinct;
  for (std::size_t i = 0; i < v.size() && distinct.size() <= static_cast<std::size_t>(max_bin);
       ++i) {
    if (i == 0 || v[i] != v[i - 1]) distinct.push_back(v[i]);
  }
  std::vector<float> cuts;
  if (distinct.size() <= static_cast<std::size_t>(max_bin)) {
    for (std::size_t i = 1; i < distinct.size(); ++i) {
      const float a = distinct[i - 1], b = distinct[i];
      float mid = static_cast<float>((static_cast<double>(a) + b) / 2);
      if (!(mid > a)) mid = b;  // adjacent floats: a stays left of the edge
      cuts.push_back(mid);
    }
    return cuts;
  }
  for (int j = 1; j < max_bin; ++j) {
    const float c = v[v.size() * static_cast<std::size_t>(j) / static_cast<std::size_t>(max_bin)];
    if (c > v.front() && (cuts.empty() || c > cuts.back())) cuts.push_back(c);
  }
  return cuts;
}

// Each number feature's finite values in the row-major sample, -0 as 0. Threads take 16 features
// at a time: a pass over the sample reads one cache line of each row, not 16 passes.
std::vector<std::vector<float>> SampleColumns(const std::vector<float>& sample,
                                              const std::vector<std::uint32_t>& categories) {
  constexpr std::size_t kGroup = 16;
  const std::size_t d = categories.size(), rows = d == 0 ? 0 : sample.size() / d;
  std::vector<std::vector<float>> columns(d);
  ParallelFor((d + kGroup - 1) / kGroup, 1, [&](std::size_t begin, std::size_t end) {
    for (std::size_t first = begin * kGroup; first < std::min(d, end * kGroup); first += kGroup) {
      const std::size_t last = std::min(d, first + kGroup);
      for (std::size_t f = first; f < last; ++f) columns[f].reserve(rows);
      for (std::size_t i = 0; i < rows; ++i) {
        const float* row = sample.data() + i * d;
        for (std::size_t f = first; f < last; ++f) {
          if (categories[f] == 0 && std::isfinite(row[f])) columns[f].push_back(row[f] + 0.0f);
        }
      }
    }
  });
  return columns;
}

// Every feature's histogram slots: one after another, or (narrow bins, when it costs at most a
// quarter more slots) kStride apart.
void LayOut(Bins* b) {
  const auto d = static_cast<std::uint32_t>(b->d);
  std::uint32_t widest = 0;
  for (std::uint32_t f = 0; f < d; ++f) {
    b->offset.push_back(b->total);
    b->total += b->value_bins(f) + 1;
    widest = std::max(widest, b->value_bins(f) + 1);
  }
  b->narrow = widest <= kStride;
  b->strided = b->narrow && d * kStride <= b->total + b->total / 4;
  if (!b->strided) return;
  for (std::uint32_t f = 0; f < d; ++f) b->offset[f] = f * kStride;
  b->total = d * kStride;
}

Bins MakeBins(const GbdtOptions& o, const DataShard& s, std::span<const std::uint64_t> ids,
              Communicator& comm) {
  Bins b;
  b.rows = s.rows();
  b.d = s.features.cols();
  const std::vector<float> sample = GatherSample(o, s, ids, comm);
  const auto d = static_cast<std::size_t>(b.d);
  b.cuts.resize(d);
  b.categories.assign(d, 0);
  for (std::size_t f = 0; f < o.categorical.size(); ++f) {
    b.categories[f] = static_cast<std::uint32_t>(o.categorical[f]);
  }
  std::vector<std::vector<float>> columns = SampleColumns(sample, b.categories);
  ParallelFor(d, 1, [&](std::size_t begin, std::size_t end) {
    for (std::size_t f = begin; f < end; ++f) {
      if (b.categories[f] == 0) b.cuts[f] = CutsOf(std::move(columns[f]), o.max_bin);
    }
  });
  LayOut(&b);
  if (b.narrow) {
    BinRows(s, &b, &b.index8);
    Transpose(&b);
  } else {
    BinRows(s, &b, &b.index16);
  }
  return b;
}

// ---- gradients -------------------------------------------------------------------------------

// The boosted trees quantise gradients and hessians to integers of at most kGradientBits bits (a
// resolution of 2^-18 of the largest, which every rank agrees on): the histogram loop can then add
// a row's pair as one 64-bit integer (AddRowsPacked). The forests, whose hessians are bootstrap
// counts times weights, keep every bit 64-bit sums allow.
constexpr int kGradientBits = 18;

// Fixed-point scales: a power of two such that the largest value over all ranks stays below
// 2^kGradientBits (`packed`), or, times the rows of all ranks, below 2^61.
// `largest` is already the maximum over all ranks.
double FixedScale(double largest, std::int64_t total_rows, bool packed) {
  ESCALA_CHECK(total_rows < (std::int64_t{1} << (62 - kGradientBits)), kOutOfRange,
               "{} rows are more than the trees' 64-bit histogram sums hold", total_rows);
  if (!(largest > 0)) return 1.0;
  const double rows = static_cast<double>(std::max<std::int64_t>(total_rows, 1));
  const double room =
      packed ? std::ldexp(1.0, kGradientBits) / largest : std::ldexp(1.0, 61) / (largest * rows);
  return std::ldexp(1.0, static_cast<int>(std::floor(std::log2(room))));
}

struct Gradients {
  std::vector<double> g, h;  // rows x outputs
  double scale_g = 1, scale_h = 1;
  bool packed = false;            // scaled to kGradientBits (FixedScale)
  double wide_g = 1, wide_h = 1;  // packed: the full-precision scales the leaf values use
  RowGH fixed;                    // one output's, rows
};

// The largest |gradient| and hessian, threads over blocks; kAborted naming the first row whose
// gradient is not finite.
std::pair<double, double> CheckedMaxima(const Gradients& gr, std::int64_t k,
                                        std::span<const std::uint64_t> ids) {
  constexpr std::size_t kBlock = 1 << 16;
  const std::size_t n = gr.g.size(), blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> gm(blocks, 0.0), hm(blocks, 0.0);
  std::vector<std::size_t> bad(blocks, n);
  ParallelFor(blocks, 1, [&](std::size_t begin, std::size_t end) {
    for (std::size_t blk = begin; blk < end; ++blk) {
      for (std::size_t i = blk * kBlock; i < std::min(n, (blk + 1) * kBlock); ++i) {
        if (!std::isfinite(gr.g[i]) || !std::isfinite(gr.h[i])) {
          bad[blk] = std::min(bad[blk], i);
          continue;
        }
        gm[blk] = std::max(gm[blk], std::fabs(gr.g[i]));
        hm[blk] = std::max(hm[blk], gr.h[i]);
      }
    }
  });
  const std::size_t first = *std::min_element(bad.begin(), bad.end());
  ESCALA_CHECK(first == n, kAborted,
               "row {}: the gradient is not finite ({}, hessian {}); the scores diverged",
               ids[first / static_cast<std::size_t>(k)], gr.g[first], gr.h[first]);
  return {*std::max_element(gm.begin(), gm.end()), *std::max_element(hm.begin(), hm.end())};
}

// Each row's gradients and hessians times its weight (XGBoost's): a row of weight 2 adds to the
// histograms what two copies of it add.
void WeighGradients(std::span<const float> w, std::int64_t k, Gradients* gr) {
  const auto kk = static_cast<std::size_t>(k);
  ParallelFor(w.size(), 1 << 14, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      for (std::size_t c = 0; c < kk; ++c) {
        gr->g[i * kk + c] *= w[i];
        gr->h[i * kk + c] *= w[i];
      }
    }
  });
}

// The round's gradients of every output, checked, with fixed-point scales agreed by all ranks.
void RoundGradients(const trees::ObjectiveFn& obj, const MatrixF& f, const DataShard& train,
                    std::span<const std::uint64_t> ids, std::int64_t total, Communicator& comm,
                    Gradients* gr) {
  obj.Gradients(f, train.labels, &gr->g, &gr->h);
  if (train.weighted()) WeighGradients(train.weights, f.cols(), gr);
  const auto [gmax, hmax] = gr->g.empty() ? std::pair{0.0, 0.0} : CheckedMaxima(*gr, f.cols(), ids);
  gr->packed = true;
  const double g = comm.AllReduceScalar(gmax, ReduceOp::kMax);
  const double h = comm.AllReduceScalar(hmax, ReduceOp::kMax);
  gr->scale_g = FixedScale(g, total, true);
  gr->scale_h = FixedScale(h, total, true);
  gr->wide_g = FixedScale(g, total, false);
  gr->wide_h = FixedScale(h, total, false);
}

// x rounded to the nearest integer, halves to even (the default rounding mode): one instruction,
// no branch. Every rank rounds alike, so the sums stay independent of the worker count.
std::int64_t RoundToInt(double x) {
  return static_cast<std::int64_t>(std::nearbyint(x));
}

// Output c's gradients in fixed point.
void Quantise(const Gradients& gr, std::int64_t k, std::int64_t c, RowGH* out) {
  const std::size_t n = gr.g.size() / static_cast<std::size_t>(k);
  out->resize(n);
  ParallelFor(n, 1 << 14, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const std::size_t at = i * static_cast<std::size_t>(k) + static_cast<std::size_t>(c);
      (*out)[i] = {RoundToInt(gr.g[at] * gr.scale_g), RoundToInt(gr.h[at] * gr.scale_h)};
    }
  });
}

// ---- histograms ------------------------------------------------------------------------------

// Asks for the bins and gradients of the row kPrefetchAhead after rows[r].
template <typename T>
inline void PrefetchRow(const T* index, std::size_t d, const RowGH& gh,
                        std::span<const std::uint32_t> rows, std::size_t r) {
  if (r + kPrefetchAhead >= rows.size()) return;
  const std::size_t ahead = rows[r + kPrefetchAhead];
  __builtin_prefetch(&gh[ahead]);
  __builtin_prefetch(index + ahead * d);
  __builtin_prefetch(index + ahead * d + d - 1);
}

// Adds rows[begin, end)'s gradient pairs to h by their bins.
template <typename T>
void AddRows(const Bins& b, const RowVector<T>& index, const RowGH& gh,
             std::span<const std::uint32_t> rows, Hist& h) {
  const auto d = static_cast<std::size_t>(b.d);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    PrefetchRow(index.data(), d, gh, rows, r);
    const std::uint32_t i = rows[r];
    const GH v = gh[i];
    const T* bins = index.data() + static_cast<std::size_t>(i) * d;
    for (std::size_t f = 0; f < d; ++f) h[b.offset[f] + bins[f]] += v;
  }
}

// AddRows for strided bins: each row's slots lie at fixed distances from feature to feature.
void AddRowsStrided(const Bins& b, const RowGH& gh, std::span<const std::uint32_t> rows, Hist& h) {
  const auto d = static_cast<std::size_t>(b.d);
  const std::uint8_t* index = b.index8.data();
  constexpr std::size_t kUnroll = 8;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    PrefetchRow(index, d, gh, rows, r);
    const std::uint32_t i = rows[r];
    const GH v = gh[i];
    const std::uint8_t* bins = index + static_cast<std::size_t>(i) * d;
    GH* slots = h.data();
    std::size_t f = 0;
    for (; f + kUnroll <= d; f += kUnroll, slots += kUnroll * kStride) {
      // Each feature's slots from their own base pointer: the constant j * kStride folds into the
      // address, so a slot costs a byte load, a shift, an address and the add's load and store.
#pragma GCC unroll 8
      for (std::size_t j = 0; j < kUnroll; ++j) {
        const std::size_t at = std::size_t{bins[f + j]} * sizeof(GH);
        *reinterpret_cast<GH*>(reinterpret_cast<char*>(slots + j * kStride) + at) += v;
      }
    }
    for (; f < d; ++f, slots += kStride) slots[bins[f]] += v;
  }
}

// Rows whose packed pairs can be summed before their halves could spill into each other: with
// |g|, h <= 2^kGradientBits, the sums of g and of h of this many rows stay below 2^31 in size.
constexpr std::size_t kPackedRows = (std::size_t{1} << (31 - kGradientBits)) - 1;

// One row's packed pair added to its slots of strided bins (256 per feature): each feature's
// slots from their own base, so a slot is a byte load and one add to memory.
inline void AddStrided(const std::uint8_t* bins, std::size_t d, std::uint64_t v,
                       std::uint64_t* slots) {
  constexpr std::size_t kUnroll = 8;
  std::size_t f = 0;
  for (; f + kUnroll <= d; f += kUnroll, slots += kUnroll * kStride) {
#pragma GCC unroll 8
    for (std::size_t j = 0; j < kUnroll; ++j) (slots + j * kStride)[bins[f + j]] += v;
  }
  for (; f < d; ++f, slots += kStride) slots[bins[f]] += v;
}

// Adds packed slots into h, and zeroes them. A packed slot is sum(h) * 2^32 + sum(g) modulo 2^64,
// with |sum(g)| < 2^31: its low 32 bits are sum(g) as a signed integer, the rest sum(h).
void Unpack(std::span<std::uint64_t> packed, Hist& h) {
  for (std::size_t j = 0; j < packed.size(); ++j) {
    const std::uint64_t s = packed[j];
    if (s == 0) continue;
    const auto g =
        static_cast<std::int64_t>(static_cast<std::int32_t>(static_cast<std::uint32_t>(s)));
    h[j] += GH{g, static_cast<std::int64_t>((s - static_cast<std::uint64_t>(g)) >> 32)};
    packed[j] = 0;
  }
}

// AddRows with each row's pair packed into one 64-bit integer (h * 2^32 + g): a slot is one add
// to memory instead of a load, a vector add and a store. Sums of kPackedRows rows at a time are
// unpacked into h: exact, as the pairs are, so either way gives the same histogram.
template <typename T>
void AddRowsPacked(const Bins& b, const RowVector<T>& index, const RowGH& gh,
                   std::span<const std::uint32_t> rows, Hist& h) {
  thread_local std::vector<std::uint64_t> packed;
  packed.assign(h.size(), 0);
  const auto d = static_cast<std::size_t>(b.d);
  for (std::size_t r0 = 0; r0 < rows.size(); r0 += kPackedRows) {
    const std::size_t r1 = std::min(rows.size(), r0 + kPackedRows);
    for (std::size_t r = r0; r < r1; ++r) {
      PrefetchRow(index.data(), d, gh, rows, r);
      const std::uint32_t i = rows[r];
      const std::uint64_t v =
          (static_cast<std::uint64_t>(gh[i].h) << 32) + static_cast<std::uint64_t>(gh[i].g);
      const T* bins = index.data() + static_cast<std::size_t>(i) * d;
      if constexpr (std::is_same_v<T, std::uint8_t>) {
        if (b.strided) {
          AddStrided(bins, d, v, packed.data());
          continue;
        }
      }
      for (std::size_t f = 0; f < d; ++f) packed[b.offset[f] + bins[f]] += v;
    }
    Unpack(packed, h);
  }
}

// Below this many rows, unpacking every slot costs more than packing saves.
constexpr std::size_t kMinPackedRows = 1024;

// Adds rows' pairs to h by the bins layout; `packed`: the pairs fit AddRowsPacked.
void AddAny(const Bins& b, const RowGH& gh, std::span<const std::uint32_t> rows, Hist& h,
            bool packed) {
  if (packed && rows.size() >= kMinPackedRows) {
    if (b.narrow) {
      AddRowsPacked(b, b.index8, gh, rows, h);
    } else {
      AddRowsPacked(b, b.index16, gh, rows, h);
    }
  } else if (b.strided) {
    AddRowsStrided(b, gh, rows, h);
  } else if (b.narrow) {
    AddRows(b, b.index8, gh, rows, h);
  } else {
    AddRows(b, b.index16, gh, rows, h);
  }
}

// The histogram of `rows` on the calling thread.
void BuildHistSerial(const Bins& b, const RowGH& gh, std::span<const std::uint32_t> rows, Hist* out,
                     bool packed) {
  out->assign(b.total, GH{});
  AddAny(b, gh, rows, *out, packed);
}

// The histogram of `rows`: threads over row parts, summed exactly.
void BuildHist(const Bins& b, const RowGH& gh, std::span<const std::uint32_t> rows, Hist* out,
               HistPool& pool, bool packed) {
  out->assign(b.total, GH{});
  const std::size_t parts =
      rows.size() < 8192 ? 1 : static_cast<std::size_t>(std::max(1, NumThreads()));
  std::vector<Hist> partial(parts - 1);
  for (Hist& h : partial) {
    h = pool.Take();
    h.assign(b.total, GH{});
  }
  ParallelForStatic(rows.size(), parts, [&](std::size_t p, std::size_t begin, std::size_t end) {
    Hist& h = p == 0 ? *out : partial[p - 1];
    AddAny(b, gh, rows.subspan(begin, end - begin), h, packed);
  });
  for (Hist& h : partial) {
    for (std::size_t j = 0; j < h.size(); ++j) (*out)[j] += h[j];
    pool.Give(h);
  }
}

// ---- splits ----------------------------------------------------------------------------------

struct Scales {
  double g = 1, h = 1;
};

double SoftThreshold(double g, double alpha) {
  if (g > alpha) return g - alpha;
  if (g < -alpha) return g + alpha;
  return 0.0;
}

// G^2 / (H + lambda) of a node's sums: the loss reduction its best leaf value achieves (x2).
// (An empty node with lambda 0 scores 0 and holds 0.)
double Score(const GH& s, const GbdtOptions& o, Scales sc) {
  const double g = SoftThreshold(static_cast<double>(s.g) / sc.g, o.alpha);
  const double h = static_cast<double>(s.h) / sc.h + o.lambda;
  return h > 0 ? g * g / h : 0.0;
}

struct Split {
  double gain = 0;
  std::int64_t feature = -1;
  std::uint32_t bin = 0;  // left: value bins <= bin
  bool default_left = false;
  GH left, right;
  double wl = 0, wr = 0;                       // the children's weights (with monotone constraints)
  std::vector<std::uint32_t> left_categories;  // a categorical split's (bin is unused)
};

// The range a node's weight (its leaf value before the learning rate) must stay in: monotone
// constraints narrow it at every split on a constrained feature, as XGBoost's do.
struct Bounds {
  double lower = -std::numeric_limits<double>::infinity();
  double upper = std::numeric_limits<double>::infinity();
};

// The best weight of a node's sums within its bounds.
double Weight(const GH& s, const GbdtOptions& o, Scales sc, const Bounds& bd) {
  const double g = SoftThreshold(static_cast<double>(s.g) / sc.g, o.alpha);
  const double h = static_cast<double>(s.h) / sc.h + o.lambda;
  return h > 0 ? std::clamp(-g / h, bd.lower, bd.upper) : 0.0;
}

// The loss reduction (x2) of weight w on a node's sums: -(2 G w + (H + lambda) w^2).
double GainOfWeight(const GH& s, double w, const GbdtOptions& o, Scales sc) {
  const double g = static_cast<double>(s.g) / sc.g, h = static_cast<double>(s.h) / sc.h;
  return -(2 * g * w + (h + o.lambda) * w * w);
}

// What a child must hold: min_child_weight of hessian, min_data_in_leaf rows (estimated from its
// share of the node's hessian and exact row count).
struct ChildLimits {
  double min_h;
  double min_rows;
  double rows_per_h;

  bool Fits(const GH& child) const {
    const auto h = static_cast<double>(child.h);
    return h >= min_h && h * rows_per_h >= min_rows;
  }
};

// The best split of feature f given its histogram slice, if better than `best`. Candidates come
// in XGBoost's order, so that of equal gains (partitions that differ only in empty bins) the
// same one is kept: missing values right with the values scanned up, the last candidate sending
// every value left (present against missing); then, when the node has missing values, missing
// values left with the values scanned down.
void ScanFeature(const Bins& b, const Hist& hist, std::int64_t f, const GH& sum,
                 const GbdtOptions& o, Scales sc, const ChildLimits& lim, const Bounds& bd,
                 Split* best) {
  const std::uint32_t nb = b.value_bins(f);
  const GH* h = hist.data() + b.offset[static_cast<std::size_t>(f)];
  const bool constrained = !o.monotone.empty();
  const int c = constrained ? o.monotone[static_cast<std::size_t>(f)] : 0;
  const double parent =
      constrained ? GainOfWeight(sum, Weight(sum, o, sc, bd), o, sc) : Score(sum, o, sc);
  const auto consider = [&](const GH& l, std::uint32_t s, bool default_left) {
    const GH r = sum - l;
    if (!lim.Fits(l) || !lim.Fits(r)) return;
    if (!constrained) {
      const double gain = Score(l, o, sc) + Score(r, o, sc) - parent;
      if (gain > best->gain) *best = {gain, f, s, default_left, l, r};
      return;
    }
    const double wl = Weight(l, o, sc, bd), wr = Weight(r, o, sc, bd);
    if (c * (wl - wr) > 0) return;  // against the feature's direction
    const double gain = GainOfWeight(l, wl, o, sc) + GainOfWeight(r, wr, o, sc) - parent;
    if (gain > best->gain) *best = {gain, f, s, default_left, l, r, wl, wr};
  };
  GH left;
  for (std::uint32_t s = 0; s < nb; ++s) {
    left += h[s];
    consider(left, s, false);
  }
  // No missing value here: the other direction is the same splits. (A hessian sum of 0 alone is
  // no proof: 18-bit hessians of confident rows round to 0, their gradients need not.)
  if (h[nb].h == 0 && h[nb].g == 0) return;
  GH right;
  for (std::uint32_t s = nb - 1; s-- > 0;) {
    right += h[s + 1];
    consider(sum - right, s, true);
  }
}

// Categories are ordered for a split as LightGBM orders them: by gradient over smoothed hessian.
constexpr double kCategorySmoothing = 10.0;

// The best split of category-code feature f: with at most max_cat_to_onehot categories in the
// node, one category against the rest; otherwise the best prefix of the categories sorted by
// G / (H + 10) (the partition search of LightGBM and XGBoost). Missing values go either way.
void ScanCategorical(const Bins& b, const Hist& hist, std::int64_t f, const GH& sum,
                     const GbdtOptions& o, Scales sc, const ChildLimits& lim, Split* best) {
  const std::uint32_t k = b.value_bins(f);
  const GH* h = hist.data() + b.offset[static_cast<std::size_t>(f)];
  const GH missing = h[k];
  std::vector<std::uint32_t> cats;
  for (std::uint32_t c = 0; c < k; ++c) {
    if (h[c].h != 0) cats.push_back(c);
  }
  const double parent = Score(sum, o, sc);
  const auto consider = [&](const GH& l, std::span<const std::uint32_t> set, bool dl) {
    const GH r = sum - l;
    if (!lim.Fits(l) || !lim.Fits(r)) return;
    const double gain = Score(l, o, sc) + Score(r, o, sc) - parent;
    if (gain <= best->gain) return;
    *best = {gain, f, 0, dl, l, r};
    best->left_categories.assign(set.begin(), set.end());
    std::sort(best->left_categories.begin(), best->left_categories.end());
  };
  const bool has_missing = missing.h != 0;
  if (cats.size() <= static_cast<std::size_t>(o.max_cat_to_onehot)) {
    for (std::size_t i = 0; i < cats.size(); ++i) {
      consider(h[cats[i]], std::span(cats).subspan(i, 1), false);
      if (has_missing) consider(h[cats[i]] + missing, std::span(cats).subspan(i, 1), true);
    }
    return;
  }
  const double smooth = kCategorySmoothing * sc.h;
  std::sort(cats.begin(), cats.end(), [&](std::uint32_t a, std::uint32_t c) {
    const double ra = static_cast<double>(h[a].g) / (static_cast<double>(h[a].h) + smooth);
    const double rc = static_cast<double>(h[c].g) / (static_cast<double>(h[c].h) + smooth);
    return ra != rc ? ra < rc : a < c;
  });
  GH left;
  for (std::size_t i = 0; i + 1 < cats.size(); ++i) {
    left += h[cats[i]];
    consider(left, std::span(cats).first(i + 1), false);
    if (has_missing) consider(left + missing, std::span(cats).first(i + 1), true);
  }
}

// ---- growing a tree --------------------------------------------------------------------------

struct Node {
  std::int32_t id;         // in the tree
  std::size_t begin, end;  // its rows: order[begin, end)
  GH sum;                  // over all ranks
  std::int64_t count = 0;  // rows, over all ranks
  Hist hist;               // over all ranks
  Bounds bounds;           // of its weight
};

// Sums the nodes' histograms and row counts over every rank, in one all-reduce.
// `seconds` accumulates the time spent in the all-reduce (waiting for the other ranks included).
void AllReduceHists(const std::vector<Node*>& nodes, Communicator& comm, double* seconds) {
  for (Node* n : nodes) n->count = static_cast<std::int64_t>(n->end - n->begin);
  if (comm.size() == 1 || nodes.empty()) return;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::int64_t> flat;
  for (const Node* n : nodes) {
    for (const GH& v : n->hist) {
      flat.push_back(v.g);
      flat.push_back(v.h);
    }
    flat.push_back(n->count);
  }
  comm.AllReduce(std::span<std::int64_t>(flat), ReduceOp::kSum);
  std::size_t at = 0;
  for (Node* n : nodes) {
    for (GH& v : n->hist) {
      v = {flat[at], flat[at + 1]};
      at += 2;
    }
    n->count = flat[at++];
  }
  *seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The first ceil(fraction x |from|) of `from` in an order set by `key` (the same on every rank),
// in increasing order.
std::vector<std::int32_t> SampleFeatures(const std::vector<std::int32_t>& from, double fraction,
                                         std::uint64_t key) {
  if (fraction >= 1.0) return from;
  std::vector<std::pair<std::uint64_t, std::int32_t>> keyed;
  for (std::int32_t f : from) {
    keyed.emplace_back(Mix64(HashCombine(key, static_cast<std::uint64_t>(f))), f);
  }
  std::sort(keyed.begin(), keyed.end());
  const auto m = std::max<std::size_t>(
      1, static_cast<std::size_t>(std::ceil(fraction * static_cast<double>(from.size()))));
  std::vector<std::int32_t> out;
  for (std::size_t i = 0; i < m && i < keyed.size(); ++i) out.push_back(keyed[i].second);
  std::sort(out.begin(), out.end());
  return out;
}

struct Grower {
  const GbdtOptions& o;
  const Bins& b;
  const RowGH& gh;
  Scales sc;
  Communicator& comm;
  std::vector<std::int32_t> features;    // this tree's
  std::uint64_t key;                     // this tree's sampling key
  RowVector<std::uint32_t> order;        // the sampled rows, grouped by node
  std::vector<std::uint32_t> split_bin;  // per node
  Tree tree;
  double* reduce_seconds = nullptr;  // accumulates the histogram all-reduces' time
  HistPool* pool = nullptr;
  bool packed = false;  // the gradient pairs fit AddRowsPacked

  Split BestSplit(const Node& n) const {
    Split best;
    best.gain = std::max(o.gamma, 0.0) + 1e-12;
    if (n.sum.h <= 0) return best;
    const ChildLimits lim{o.min_child_weight * sc.h, static_cast<double>(o.min_data_in_leaf),
                          static_cast<double>(n.count) / static_cast<double>(n.sum.h)};
    const std::vector<std::int32_t> node_features =
        SampleFeatures(features, o.colsample_bynode, HashCombine(key, std::uint64_t(n.id) + 1));
    for (std::int32_t f : node_features) {
      if (b.categories[static_cast<std::size_t>(f)] > 0) {
        ScanCategorical(b, n.hist, f, n.sum, o, sc, lim, &best);
      } else {
        ScanFeature(b, n.hist, f, n.sum, o, sc, lim, n.bounds, &best);
      }
    }
    return best;
  }

  // Rows of [begin, end) that go left first (stable); returns the split point.
  // (Nodes of a level partition in parallel: each writes only its own range of `order`.)
  std::size_t Partition(const Node& n, const Split& s) {
    std::size_t l = n.begin, r = 0;
    std::uint32_t* scratch = pool->scratch.data() + n.begin;
    // Which of the feature's bins (its missing bin last) go left.
    const std::uint32_t missing = b.value_bins(s.feature);
    std::vector<std::uint8_t> goes_left(missing + 1, 0);
    for (std::uint32_t c : s.left_categories) goes_left[c] = 1;
    if (s.left_categories.empty()) std::fill_n(goes_left.begin(), s.bin + 1, std::uint8_t{1});
    goes_left[missing] = s.default_left ? 1 : 0;
    for (std::size_t k = n.begin; k < n.end; ++k) {
      const std::uint32_t row = order[k];
      const std::size_t left = goes_left[b.column_bin(row, s.feature)];  // 0 or 1
      // Both stores, one counter moves by arithmetic: no branch on a side that is a coin flip
      // (l <= k, so order[l] has been read already).
      order[l] = row;
      scratch[r] = row;
      l += left;
      r += 1 - left;
    }
    std::copy_n(scratch, r, order.begin() + static_cast<std::ptrdiff_t>(l));
    return l;
  }

  std::int32_t AddNode(const GH& sum) {
    const std::int32_t id = tree.AddLeaf(0.0f);
    tree.cover.back() = static_cast<float>(static_cast<double>(sum.h) / sc.h);
    split_bin.push_back(0);
    return id;
  }

  void MakeLeaf(const Node& n) {
    tree.value[static_cast<std::size_t>(n.id)] =
        static_cast<float>(o.learning_rate * Weight(n.sum, o, sc, n.bounds));
  }

  // The children's bounds: a split on a constrained feature divides the range at the middle of
  // the two weights, the increasing side above it.
  std::pair<Bounds, Bounds> ChildBounds(const Node& n, const Split& s) const {
    const int c = o.monotone.empty() ? 0 : o.monotone[static_cast<std::size_t>(s.feature)];
    Bounds l = n.bounds, r = n.bounds;
    const double mid = (s.wl + s.wr) / 2;
    if (c > 0) {
      l.upper = mid;
      r.lower = mid;
    } else if (c < 0) {
      l.lower = mid;
      r.upper = mid;
    }
    return {l, r};
  }

  // Turns node n into a split; returns its two children (histograms still to fill).
  std::pair<Node, Node> SplitNode(const Node& n, const Split& s) {
    const auto i = static_cast<std::size_t>(n.id);
    const std::int32_t l = AddNode(s.left), r = AddNode(s.right);
    tree.feature[i] = static_cast<std::int32_t>(s.feature);
    const auto& cuts = b.cuts[static_cast<std::size_t>(s.feature)];
    if (!s.left_categories.empty()) {
      tree.SetCategories(i, s.left_categories);
    } else {
      tree.threshold[i] =
          s.bin < cuts.size() ? cuts[s.bin] : std::numeric_limits<float>::infinity();
    }
    tree.left[i] = l;
    tree.right[i] = r;
    tree.default_left[i] = s.default_left ? 1 : 0;
    tree.gain[i] = static_cast<float>(s.gain);
    split_bin[i] = s.bin;
    const auto [lb, rb] = ChildBounds(n, s);
    // Their rows are set by Partition (PartitionAll).
    return {Node{l, n.begin, n.end, s.left, 0, {}, lb},
            Node{r, n.begin, n.end, s.right, 0, {}, rb}};
  }

  // Partitions every split node's rows, nodes in parallel, and sets the children's ranges.
  void PartitionAll(std::vector<std::pair<Node, Node>>& kids,
                    const std::vector<const Node*>& parents, const std::vector<Split>& splits) {
    ParallelFor(kids.size(), 1, [&](std::size_t begin, std::size_t end) {
      for (std::size_t k = begin; k < end; ++k) {
        const std::size_t mid = Partition(*parents[k], splits[k]);
        kids[k].first.end = mid;
        kids[k].second.begin = mid;
      }
    });
  }

  // Per pair of children, the one with fewer rows over all ranks (the left on a tie): the one
  // whose histogram is built. Either choice gives the same exact histograms; fewer rows is less
  // work. (The hessian is no guide: confident rows weigh little but cost as much.)
  std::vector<Node*> Smaller(std::vector<std::pair<Node, Node>>& kids) {
    if (kids.empty()) return {};  // on every rank alike: the splits are global
    std::vector<std::int64_t> rows;
    for (const auto& [l, r] : kids) {
      rows.push_back(static_cast<std::int64_t>(l.end - l.begin));
      rows.push_back(static_cast<std::int64_t>(r.end - r.begin));
    }
    if (comm.size() > 1) comm.AllReduce(std::span<std::int64_t>(rows), ReduceOp::kSum);
    std::vector<Node*> smaller;
    for (std::size_t k = 0; k < kids.size(); ++k) {
      smaller.push_back(rows[2 * k] <= rows[2 * k + 1] ? &kids[k].first : &kids[k].second);
    }
    return smaller;
  }

  // Fills the children's histograms: the smaller is built and all-reduced, the larger is the
  // parent's minus it.
  void FillHists(std::vector<std::pair<Node, Node>>& kids, std::vector<const Node*>& parents) {
    const std::vector<Node*> built = Smaller(kids);
    for (auto& [l, r] : kids) {
      l.hist = pool->Take();
      r.hist = pool->Take();
    }
    const auto rows_of = [&](const Node* n) {
      return std::span<const std::uint32_t>(order).subspan(n->begin, n->end - n->begin);
    };
    // Many nodes: one thread per node. Few: each node's rows over the threads.
    if (built.size() >= 4 * static_cast<std::size_t>(std::max(1, NumThreads()))) {
      ParallelFor(built.size(), 1, [&](std::size_t begin, std::size_t end) {
        for (std::size_t k = begin; k < end; ++k) {
          BuildHistSerial(b, gh, rows_of(built[k]), &built[k]->hist, packed);
        }
      });
    } else {
      for (Node* n : built) BuildHist(b, gh, rows_of(n), &n->hist, *pool, packed);
    }
    AllReduceHists(built, comm, reduce_seconds);
    ParallelFor(kids.size(), 1, [&](std::size_t begin, std::size_t end) {
      for (std::size_t k = begin; k < end; ++k) {
        auto& [l, r] = kids[k];
        Node& small = *built[k];
        Node& large = &small == &l ? r : l;
        large.count = parents[k]->count - small.count;
        large.hist.resize(b.total);
        for (std::size_t j = 0; j < b.total; ++j) {
          large.hist[j] = parents[k]->hist[j] - small.hist[j];
        }
      }
    });
  }

  // Splits every node of a level that gains enough; returns the next level, with histograms
  // unless `last` (its nodes will be leaves by depth).
  std::vector<Node> GrowLevel(std::vector<Node>& level, bool last) {
    std::vector<Split> best(level.size());
    ParallelFor(level.size(), 1, [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) best[i] = BestSplit(level[i]);
    });
    std::vector<std::pair<Node, Node>> kids;
    std::vector<const Node*> parents;
    std::vector<Split> splits;
    for (std::size_t i = 0; i < level.size(); ++i) {
      if (best[i].feature < 0) {
        MakeLeaf(level[i]);
        continue;
      }
      kids.push_back(SplitNode(level[i], best[i]));
      parents.push_back(&level[i]);
      splits.push_back(std::move(best[i]));
    }
    PartitionAll(kids, parents, splits);
    if (!last) FillHists(kids, parents);
    for (Node& n : level) pool->Give(n.hist);
    std::vector<Node> next;
    for (auto& [l, r] : kids) {
      next.push_back(std::move(l));
      next.push_back(std::move(r));
    }
    return next;
  }

  Node Root() {
    Node root{0, 0, order.size(), {}, 0, pool->Take(), {}};
    BuildHist(b, gh, order, &root.hist, *pool, packed);
    AllReduceHists({&root}, comm, reduce_seconds);
    // Every row is in exactly one of feature 0's bins (its missing bin included).
    for (std::uint32_t j = 0; j <= b.value_bins(0); ++j) root.sum += root.hist[j];
    root.id = AddNode(root.sum);
    return root;
  }

  // Grows the tree over the rows in `order`; returns the leaves (their rows: order[begin, end)).
  std::vector<Node> Grow() {
    pool->scratch.resize(std::max(pool->scratch.size(), order.size()));
    return o.max_leaves > 0 ? GrowLeafwise() : GrowDepthwise();
  }

  // Level by level down to max_depth.
  std::vector<Node> GrowDepthwise() {
    std::vector<Node> level;
    level.push_back(Root());
    std::vector<Node> leaves;
    for (int depth = 0; depth < o.max_depth && !level.empty(); ++depth) {
      std::vector<Node> next = GrowLevel(level, depth + 1 == o.max_depth);
      for (Node& n : level) {
        if (tree.feature[static_cast<std::size_t>(n.id)] < 0) leaves.push_back(std::move(n));
      }
      level = std::move(next);
    }
    for (Node& n : level) {
      MakeLeaf(n);
      pool->Give(n.hist);
      leaves.push_back(std::move(n));
    }
    return leaves;
  }

  struct Candidate {
    Node node;
    Split split;
    int depth;
  };

  // Best first (LightGBM's leaf-wise growth): the leaf whose split gains most is split next, until
  // max_leaves leaves (or none gains enough, or max_depth). Ties go to the older node, so every
  // rank splits the same one.
  std::vector<Node> GrowLeafwise() {
    std::vector<Candidate> open;
    std::vector<Node> leaves;
    const auto consider = [&](Node n, int depth) {
      const Split s = depth < o.max_depth ? BestSplit(n) : Split{};
      if (s.feature >= 0) {
        open.push_back({std::move(n), s, depth});
        return;
      }
      MakeLeaf(n);
      pool->Give(n.hist);
      leaves.push_back(std::move(n));
    };
    consider(Root(), 0);
    for (int count = 1; !open.empty() && count < o.max_leaves; ++count) {
      std::size_t best = 0;
      for (std::size_t i = 1; i < open.size(); ++i) {
        if (open[i].split.gain > open[best].split.gain) best = i;
      }
      Candidate c = std::move(open[best]);
      open.erase(open.begin() + static_cast<std::ptrdiff_t>(best));
      std::vector<std::pair<Node, Node>> kids;
      kids.push_back(SplitNode(c.node, c.split));
      std::vector<const Node*> parents = {&c.node};
      PartitionAll(kids, parents, {c.split});
      if (c.depth + 1 < o.max_depth) FillHists(kids, parents);
      pool->Give(c.node.hist);
      consider(std::move(kids[0].first), c.depth + 1);
      consider(std::move(kids[0].second), c.depth + 1);
    }
    for (Candidate& c : open) {
      MakeLeaf(c.node);
      pool->Give(c.node.hist);
      leaves.push_back(std::move(c.node));
    }
    return leaves;
  }

  // The leaf a training row reaches, by its bins.
  std::int32_t LeafOfRow(std::uint32_t row) const {
    std::size_t n = 0;
    while (tree.feature[n] >= 0) {
      const std::int32_t f = tree.feature[n];
      const std::uint32_t bin = b.bin(row, f);
      const bool left = bin == b.value_bins(f)  ? tree.default_left[n] != 0
                        : tree.IsCategorical(n) ? tree.InCategorySet(n, static_cast<float>(bin))
                                                : bin <= split_bin[n];
      n = static_cast<std::size_t>(left ? tree.left[n] : tree.right[n]);
    }
    return static_cast<std::int32_t>(n);
  }
};

// The grower of tree number `index` over `rows` (this rank's, grouped by node as it grows), its
// features sampled by the seed and the index.
Grower NewGrower(const GbdtOptions& o, const Bins& bins, const Gradients& gr, Communicator& comm,
                 std::size_t index, const std::vector<std::uint32_t>& rows, double* reduce_seconds,
                 HistPool* pool) {
  const std::uint64_t key = HashCombine(o.seed ^ 0x636f6c73616d70ULL, index);
  std::vector<std::int32_t> all(static_cast<std::size_t>(bins.d));
  std::iota(all.begin(), all.end(), 0);
  RowVector<std::uint32_t> order = std::move(pool->order);  // the pool's again after the tree
  order.assign(rows.begin(), rows.end());
  return Grower{o,
                bins,
                gr.fixed,
                {gr.scale_g, gr.scale_h},
                comm,
                SampleFeatures(all, o.colsample_bytree, key),
                key,
                std::move(order),
                {},
                {},
                reduce_seconds,
                pool,
                gr.packed};
}

// ---- the boosting loop -----------------------------------------------------------------------

MatrixF Scores(std::int64_t rows, const std::vector<float>& base) {
  MatrixF f(rows, static_cast<std::int64_t>(base.size()));
  for (std::int64_t i = 0; i < rows; ++i) std::copy(base.begin(), base.end(), f.row(i));
  return f;
}

// The rows' starting scores: the base score, or a warm start's margins.
MatrixF StartScores(const models::TreeEnsemble* init, ConstMatrixViewF x,
                    const std::vector<float>& base) {
  if (init == nullptr || x.rows() == 0) return Scores(x.rows(), base);
  MatrixF f(x.rows(), static_cast<std::int64_t>(base.size()));
  init->Margins(x, f.view());
  return f;
}

void CheckWarmStart(const models::TreeEnsemble& init, Task task, std::int64_t k, std::int64_t d,
                    const std::string& objective) {
  ESCALA_CHECK(init.kind() == "gbdt" && init.task() == task && init.num_outputs() == k &&
                   init.num_features() == d,
               kFailedPrecondition,
               "init_from: its model ({}) is not a {} gbdt of {} output(s) over these {} features",
               init.Describe(), models::TaskName(task), k, d);
  const std::string earlier =
      init.objective().empty() ? ResolveObjective("auto", task) : init.objective();
  ESCALA_CHECK(earlier == objective, kFailedPrecondition,
               "init_from: its objective {} differs from this one's, {}", earlier, objective);
}

// Adds a tree's leaves to output c of the validation scores.
void AddTree(const Tree& t, std::int64_t c, ConstMatrixViewF x, MatrixF* f) {
  ParallelFor(static_cast<std::size_t>(x.rows()), 1024, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const auto r = static_cast<std::int64_t>(i);
      (*f)(r, c) += t.value[static_cast<std::size_t>(t.LeafOf(x.row(r)))];
    }
  });
}

// Mean loss over the validation rows of all ranks (NaN without any), weighted by `w` when given.
double ValidLoss(const trees::ObjectiveFn& obj, const MatrixF& f, std::span<const float> y,
                 std::span<const float> w, Communicator& comm) {
  // Fixed blocks summed in order: the same loss (and early stop) for any thread count.
  constexpr std::int64_t kBlock = 8192;
  const std::int64_t blocks = (f.rows() + kBlock - 1) / kBlock;
  std::vector<double> part(static_cast<std::size_t>(blocks), 0.0);
  ParallelFor(part.size(), 1, [&](std::size_t begin, std::size_t end) {
    for (std::size_t blk = begin; blk < end; ++blk) {
      const auto first = static_cast<std::int64_t>(blk) * kBlock;
      for (std::int64_t i = first; i < std::min(f.rows(), first + kBlock); ++i) {
        const auto at = static_cast<std::size_t>(i);
        const double loss = obj.RowLoss(f.row(i), f.cols(), y[at]);
        part[blk] += w.empty() ? loss : w[at] * loss;
      }
    }
  });
  const double n =
      w.empty() ? static_cast<double>(f.rows()) : std::accumulate(w.begin(), w.end(), 0.0);
  double s[2] = {std::accumulate(part.begin(), part.end(), 0.0), n};
  comm.AllReduce(std::span<double>(s, 2), ReduceOp::kSum);
  return s[1] > 0 ? s[0] / s[1] : std::numeric_limits<double>::quiet_NaN();
}

void CheckShard(const DataShard& s, std::int64_t d, const char* what) {
  ESCALA_CHECK(s.features.cols() == d && static_cast<std::int64_t>(s.labels.size()) == s.rows(),
               kInvalidArgument, "{} data: {} x {} features with {} labels (expected {} features)",
               what, s.rows(), s.features.cols(), s.labels.size(), d);
  ESCALA_CHECK(s.rows() < (std::int64_t{1} << 32), kInvalidArgument,
               "{} data: {} rows on one worker; trees train on at most 2^32 per worker", what,
               s.rows());
}

void CheckMonotone(const GbdtOptions& o, std::int64_t d) {
  ESCALA_CHECK(o.monotone.empty() || static_cast<std::int64_t>(o.monotone.size()) == d,
               kInvalidArgument, "monotone_constraints: {} constraints for {} features",
               o.monotone.size(), d);
  ESCALA_CHECK(o.categorical.empty() || static_cast<std::int64_t>(o.categorical.size()) == d,
               kInvalidArgument, "categorical: {} entries for {} features", o.categorical.size(),
               d);
  for (std::size_t f = 0; f < o.categorical.size(); ++f) {
    ESCALA_CHECK(o.categorical[f] >= 0 && o.categorical[f] <= o.max_bin, kInvalidArgument,
                 "feature {} has {} categories, more than max_bin {}: raise max_bin or group "
                 "rare categories",
                 f, o.categorical[f], o.max_bin);
    ESCALA_CHECK(o.categorical[f] == 0 || o.monotone.empty() || o.monotone[f] == 0,
                 kInvalidArgument,
                 "monotone_constraints: feature {} is categorical; categories have no order", f);
  }
}

// A model that can never split is refused rather than returned as a constant.
void CheckSomeFeatureVaries(const Bins& b) {
  for (std::int64_t f = 0; f < b.d; ++f) {
    if (b.value_bins(f) >= 2) return;
  }
  Throw(ErrorCode::kInvalidArgument,
        "no feature has two distinct values on the training rows (every one of the {} is "
        "constant or missing): trees cannot split",
        b.d);
}

// Early stopping on the validation loss.
struct Stopper {
  int patience;
  double min_delta;
  double best = std::numeric_limits<double>::infinity();
  int best_round = 0;

  // Whether to stop after `round` with validation loss `loss`.
  bool Update(int round, double loss) {
    if (loss < best - min_delta) {
      best = loss;
      best_round = round;
    }
    return patience > 0 && round - best_round >= patience;
  }
};

// The rows a round's trees see: every row, or those whose hash of (seed, round, global id) falls
// below subsample. `rest` gets the others.
void SampleRows(const GbdtOptions& o, int round, std::span<const std::uint64_t> ids,
                std::vector<std::uint32_t>* kept, std::vector<std::uint32_t>* rest) {
  kept->clear();
  rest->clear();
  const std::uint64_t key = HashCombine(o.seed ^ 0x737562736d706cULL, std::uint64_t(round));
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const bool keep = o.subsample >= 1.0 || UnitFromHash(HashCombine(key, ids[i])) < o.subsample;
    (keep ? kept : rest)->push_back(static_cast<std::uint32_t>(i));
  }
}

// Everything a boosting run holds between rounds.
struct Boosting {
  const GbdtOptions& o;
  const trees::ObjectiveFn& obj;
  const DataShard& train;
  const DataShard* valid;
  Communicator& comm;
  const Bins& bins;
  std::span<const std::uint64_t> ids;
  std::int64_t k;
  std::int64_t total;
  MatrixF f, fv;
  std::vector<Tree> trees;
  Gradients gr;
  std::vector<std::uint32_t> kept, rest;
  double reduce_seconds = 0;
  HistPool pool;

  // Absolute error (XGBoost's adaptive leaves): each leaf's value becomes learning_rate times the
  // median of its rows' residuals (label - score before this tree), over every rank, weighted by
  // the rows' hessians (their weights) in 64-bit fixed point; kept within the leaf's monotone
  // bounds, as the gradient step's weight is.
  void RefitToMedians(const std::vector<Node>& leaves, std::int64_t c, Grower* g) const {
    std::vector<std::size_t> offsets{0};
    std::vector<float> residuals;
    std::vector<std::int64_t> weights;
    residuals.reserve(g->order.size());
    weights.reserve(g->order.size());
    for (const Node& n : leaves) {
      for (std::size_t r = n.begin; r < n.end; ++r) {
        const std::uint32_t row = g->order[r];
        residuals.push_back(train.labels[row] - f(row, c));
        weights.push_back(RoundToInt(
            gr.h[row * static_cast<std::size_t>(k) + static_cast<std::size_t>(c)] * gr.wide_h));
      }
      offsets.push_back(residuals.size());
    }
    const std::vector<double> m = trees::GlobalMedians(residuals, offsets, weights, comm);
    for (std::size_t j = 0; j < leaves.size(); ++j) {
      const Bounds& bd = leaves[j].bounds;
      g->tree.value[static_cast<std::size_t>(leaves[j].id)] =
          static_cast<float>(o.learning_rate * std::clamp(m[j], bd.lower, bd.upper));
    }
  }

  // The leaves' values from their rows' gradients in 64-bit fixed point (the splits were chosen
  // on 18-bit ones): as precise as before packing, and as exact over ranks. Summed over every
  // rank in one all-reduce.
  void RenewLeaves(const std::vector<Node>& leaves, std::int64_t c, Grower* g) const {
    std::vector<std::int64_t> sums(2 * leaves.size(), 0);
    const auto kk = static_cast<std::size_t>(k), cc = static_cast<std::size_t>(c);
    ParallelFor(leaves.size(), 1, [&](std::size_t begin, std::size_t end) {
      for (std::size_t j = begin; j < end; ++j) {
        for (std::size_t r = leaves[j].begin; r < leaves[j].end; ++r) {
          const std::size_t at = g->order[r] * kk + cc;
          sums[2 * j] += RoundToInt(gr.g[at] * gr.wide_g);
          sums[2 * j + 1] += RoundToInt(gr.h[at] * gr.wide_h);
        }
      }
    });
    if (comm.size() > 1) comm.AllReduce(std::span<std::int64_t>(sums), ReduceOp::kSum);
    for (std::size_t j = 0; j < leaves.size(); ++j) {
      const GH s{sums[2 * j], sums[2 * j + 1]};
      g->tree.value[static_cast<std::size_t>(leaves[j].id)] = static_cast<float>(
          o.learning_rate * Weight(s, o, {gr.wide_g, gr.wide_h}, leaves[j].bounds));
    }
  }

  // Grows output c's tree of the round and adds it to the scores.
  void GrowTree(std::int64_t c) {
    Quantise(gr, k, c, &gr.fixed);
    Grower g = NewGrower(o, bins, gr, comm, trees.size(), kept, &reduce_seconds, &pool);
    const std::vector<Node> leaves = g.Grow();
    if (obj.kind == trees::Objective::kAbsoluteError) {
      RefitToMedians(leaves, c, &g);
    } else if (gr.packed) {
      RenewLeaves(leaves, c, &g);
    }
    ParallelFor(leaves.size(), 1, [&](std::size_t begin, std::size_t end) {
      for (std::size_t k = begin; k < end; ++k) {
        const float v = g.tree.value[static_cast<std::size_t>(leaves[k].id)];
        for (std::size_t r = leaves[k].begin; r < leaves[k].end; ++r) f(g.order[r], c) += v;
      }
    });
    ParallelFor(rest.size(), 4096, [&](std::size_t begin, std::size_t end) {
      for (std::size_t r = begin; r < end; ++r) {
        f(rest[r], c) += g.tree.value[static_cast<std::size_t>(g.LeafOfRow(rest[r]))];
      }
    });
    if (valid != nullptr) AddTree(g.tree, c, valid->features, &fv);
    trees.push_back(std::move(g.tree));
    pool.order = std::move(g.order);
  }

  // One round: every output's tree; returns the validation loss.
  double Round(int round) {
    RoundGradients(obj, f, train, ids, total, comm, &gr);
    SampleRows(o, round, ids, &kept, &rest);
    for (std::int64_t c = 0; c < k; ++c) GrowTree(c);
    return valid ? ValidLoss(obj, fv, valid->labels, valid->weights, comm)
                 : ValidLoss(obj, fv, {}, {}, comm);
  }
};

// With more than one rank, how much of the training the histogram all-reduces took (waiting for
// the slowest rank included).
void LogReduceShare(const char* what, double reduce_seconds,
                    std::chrono::steady_clock::time_point start, Communicator& comm) {
  if (comm.size() == 1 || comm.rank() != 0) return;
  const double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ESCALA_LOG_INFO("{}: {:.2f} s of {:.2f} s ({:.0f}%) in the histogram all-reduces", what,
                  reduce_seconds, total, total > 0 ? 100 * reduce_seconds / total : 0.0);
}

// ---- the forest ------------------------------------------------------------------------------

// A Poisson(lambda) count from a uniform u in [0, 1), by the inverse of its distribution.
std::uint32_t PoissonCount(double u, double lambda) {
  double p = std::exp(-lambda), cdf = p;
  std::uint32_t k = 0;
  while (u >= cdf && k < 64) {
    ++k;
    p *= lambda / k;
    cdf += p;
  }
  return k;
}

// Everything a forest holds between rounds. Leaf values are scaled by 1 / rounds (the
// learning rate the grower is given), so the trees' sum is their mean.
struct Forest {
  const GbdtOptions& o;
  Task task;
  const DataShard& train;
  Communicator& comm;
  const Bins& bins;
  std::span<const std::uint64_t> ids;
  std::int64_t k;
  std::int64_t total;
  std::vector<float> base;
  std::vector<Tree> trees;
  Gradients gr;
  std::vector<std::uint32_t> weight, kept, rest;
  std::vector<double> oob_sum;  // rows x k, unscaled tree values
  std::vector<std::uint32_t> oob_count;
  double reduce_seconds = 0;
  HistPool pool;

  float Target(std::size_t i, std::int64_t c) const {
    const float y = train.labels[i];
    if (task != Task::kMulticlass) return y;
    return static_cast<std::int64_t>(y) == c ? 1.0f : 0.0f;
  }

  // This round's bootstrap counts: rows drawn at least once are grown on, the others are out of
  // the bag.
  void Sample(int round) {
    const std::uint64_t key = HashCombine(o.seed ^ 0x666f72657374ULL, std::uint64_t(round));
    weight.resize(ids.size());
    kept.clear();
    rest.clear();
    for (std::size_t i = 0; i < ids.size(); ++i) {
      weight[i] = PoissonCount(UnitFromHash(HashCombine(key, ids[i])), o.subsample);
      (weight[i] > 0 ? kept : rest).push_back(static_cast<std::uint32_t>(i));
    }
  }

  // A row's sample weight (1 without weights).
  double RowWeight(std::size_t i) const { return train.weighted() ? train.weights[i] : 1.0; }

  // Output c's squared-error gradients at the base score, weighted by the bootstrap counts times
  // the rows' weights: a leaf's value is its rows' weighted mean target.
  void ComputeGradients(std::int64_t c) {
    const std::size_t n = ids.size();
    gr.g.resize(n);
    gr.h.resize(n);
    double gmax = 0, hmax = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double wi = weight[i] * RowWeight(i);
      gr.g[i] = wi * (static_cast<double>(base[static_cast<std::size_t>(c)]) - Target(i, c));
      gr.h[i] = wi;
      gmax = std::max(gmax, std::fabs(gr.g[i]));
      hmax = std::max(hmax, gr.h[i]);
    }
    gr.scale_g = FixedScale(comm.AllReduceScalar(gmax, ReduceOp::kMax), total, gr.packed);
    gr.scale_h = FixedScale(comm.AllReduceScalar(hmax, ReduceOp::kMax), total, gr.packed);
    Quantise(gr, 1, 0, &gr.fixed);
  }

  void GrowTree(std::int64_t c) {
    ComputeGradients(c);
    Grower g = NewGrower(o, bins, gr, comm, trees.size(), kept, &reduce_seconds, &pool);
    g.Grow();
    const double unscale = o.rounds;
    for (std::uint32_t r : rest) {
      const float v = g.tree.value[static_cast<std::size_t>(g.LeafOfRow(r))];
      oob_sum[r * static_cast<std::size_t>(k) + static_cast<std::size_t>(c)] += v * unscale;
    }
    trees.push_back(std::move(g.tree));
    pool.order = std::move(g.order);
  }

  void Round(int round) {
    Sample(round);
    for (std::int64_t c = 0; c < k; ++c) GrowTree(c);
    for (std::uint32_t r : rest) ++oob_count[r];
  }

  // The out-of-bag loss over every rank's rows that some tree left out.
  ForestReport OutOfBag() const {
    double s[2] = {0, 0};
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (oob_count[i] == 0) continue;
      s[0] += RowWeight(i) * RowLoss(i);
      s[1] += RowWeight(i);
    }
    comm.AllReduce(std::span<double>(s, 2), ReduceOp::kSum);
    ForestReport r;
    r.oob_metric = task == Task::kRegression ? "mse" : "logloss";
    r.oob_rows = OobRows();
    if (s[1] > 0) r.oob_loss = s[0] / s[1];
    return r;
  }

  std::int64_t OobRows() const {
    std::int64_t rows = 0;
    for (std::uint32_t c : oob_count) rows += c > 0 ? 1 : 0;
    return comm.AllReduceScalar(rows, ReduceOp::kSum);
  }

  double RowLoss(std::size_t i) const {
    const auto at = [&](std::int64_t c) {
      return base[static_cast<std::size_t>(c)] +
             oob_sum[i * static_cast<std::size_t>(k) + static_cast<std::size_t>(c)] / oob_count[i];
    };
    const float y = train.labels[i];
    if (task == Task::kRegression) return std::pow(at(0) - y, 2);
    constexpr double kTiny = 1e-7;
    if (task == Task::kBinary) {
      const double p = std::clamp(at(0), kTiny, 1 - kTiny);
      return -(y * std::log(p) + (1 - y) * std::log(1 - p));
    }
    double sum = 0;
    for (std::int64_t c = 0; c < k; ++c) sum += std::max(at(c), kTiny);
    return -std::log(std::max(at(static_cast<std::int64_t>(y)), kTiny) / sum);
  }
};

// The label mean per output (class frequencies for multiclass), over every rank, weighted by the
// rows' weights when given.
std::vector<float> MeanTargets(Task task, std::int64_t k, const DataShard& train,
                               Communicator& comm) {
  std::vector<double> sums(static_cast<std::size_t>(k + 1), 0.0);
  for (std::size_t i = 0; i < train.labels.size(); ++i) {
    const float v = train.labels[i];
    const double w = train.weighted() ? train.weights[i] : 1.0;
    sums[task == Task::kMulticlass ? static_cast<std::size_t>(v) : 0] +=
        task == Task::kMulticlass ? w : w * v;
    sums.back() += w;
  }
  comm.AllReduce(std::span<double>(sums), ReduceOp::kSum);
  std::vector<float> base(static_cast<std::size_t>(k));
  for (std::int64_t c = 0; c < k; ++c) {
    base[static_cast<std::size_t>(c)] =
        static_cast<float>(sums[static_cast<std::size_t>(c)] / std::max(sums.back(), 1.0));
  }
  return base;
}

}  // namespace

GbdtOptions ForestDefaults(Task task, std::int64_t num_features) {
  GbdtOptions o;
  o.max_depth = 30;
  o.min_data_in_leaf = 1;
  o.min_child_weight = 0;
  o.lambda = 0;
  o.subsample = 1.0;
  if (task != Task::kRegression && num_features > 0) {
    const double m = std::max(1.0, std::floor(std::sqrt(static_cast<double>(num_features))));
    o.colsample_bynode = m / static_cast<double>(num_features);
  }
  return o;
}

std::unique_ptr<models::TreeEnsemble> TrainForest(const GbdtOptions& options, Task task,
                                                  int num_classes, const DataShard& train,
                                                  Communicator& comm,
                                                  const GbdtProgressFn& progress,
                                                  ForestReport* report) {
  const auto start = std::chrono::steady_clock::now();
  Validate(options);
  ESCALA_CHECK(options.early_stopping == 0, kInvalidArgument,
               "early_stopping does not apply to a random forest (its trees are averaged, not "
               "boosted)");
  ESCALA_CHECK(options.objective == "auto" || options.objective == ResolveObjective("auto", task),
               kInvalidArgument, "objective {}: a random forest fits the labels' mean (auto)",
               options.objective);
  const trees::ObjectiveFn obj{trees::ParseObjective(ResolveObjective("auto", task))};
  const std::int64_t d = train.features.cols();
  const std::int64_t k = task == Task::kMulticlass ? num_classes : 1;
  ESCALA_CHECK(task != Task::kMulticlass || k >= 2, kInvalidArgument,
               "multiclass needs >= 2 classes, got {}", num_classes);
  CheckShard(train, d, "training");
  CheckMonotone(options, d);
  CheckWeights(train.weights, train.rows(), "weights", comm);
  const auto total = comm.AllReduceScalar<std::int64_t>(train.rows(), ReduceOp::kSum);
  ESCALA_CHECK(total > 0, kInvalidArgument, "training data has no rows");
  const std::vector<std::uint64_t> ids = GlobalIds(train, comm);
  obj.CheckLabels(train.labels, k, ids);
  const Bins bins = MakeBins(options, train, ids, comm);
  CheckSomeFeatureVaries(bins);
  GbdtOptions o = options;
  o.learning_rate = 1.0f / static_cast<float>(options.rounds);
  Forest f{o, task, train, comm, bins, ids, k, total, MeanTargets(task, k, train, comm)};
  f.oob_sum.assign(ids.size() * static_cast<std::size_t>(k), 0.0);
  f.oob_count.assign(ids.size(), 0);
  for (int round = 1; round <= options.rounds; ++round) {
    f.Round(round);
    if (progress) progress(round, std::numeric_limits<double>::quiet_NaN());
  }
  if (report != nullptr) *report = f.OutOfBag();
  LogReduceShare("random_forest", f.reduce_seconds, start, comm);
  return std::make_unique<models::TreeEnsemble>(task, d, k, f.base, std::move(f.trees),
                                                "random_forest");
}

void Validate(const GbdtOptions& o) {
  ESCALA_CHECK(o.rounds >= 1, kInvalidArgument, "rounds must be >= 1, got {}", o.rounds);
  ESCALA_CHECK(o.max_depth >= 1 && o.max_depth <= 30, kInvalidArgument,
               "max_depth must be in [1, 30], got {}", o.max_depth);
  ESCALA_CHECK(o.learning_rate > 0 && o.learning_rate <= 1, kInvalidArgument,
               "learning_rate must be in (0, 1], got {}", o.learning_rate);
  ESCALA_CHECK(o.max_bin >= 2 && o.max_bin <= 65534, kInvalidArgument,
               "max_bin must be in [2, 65534], got {}", o.max_bin);
  ESCALA_CHECK(o.lambda >= 0 && o.alpha >= 0 && o.gamma >= 0 && o.min_child_weight >= 0,
               kInvalidArgument,
               "lambda, alpha, gamma and min_child_weight must be >= 0 (got {}, {}, {}, {})",
               o.lambda, o.alpha, o.gamma, o.min_child_weight);
  ESCALA_CHECK(o.max_leaves == 0 || (o.max_leaves >= 2 && o.max_leaves <= 1 << 20),
               kInvalidArgument, "max_leaves must be 0 (depth-wise) or in [2, 2^20], got {}",
               o.max_leaves);
  ESCALA_CHECK(o.min_data_in_leaf >= 0, kInvalidArgument, "min_data_in_leaf must be >= 0, got {}",
               o.min_data_in_leaf);
  ESCALA_CHECK(o.bin_sample_rows >= 1, kInvalidArgument, "bin_sample_rows must be >= 1, got {}",
               o.bin_sample_rows);
  for (const auto& [name, v] : {std::pair{"subsample", o.subsample},
                                {"colsample_bytree", o.colsample_bytree},
                                {"colsample_bynode", o.colsample_bynode}}) {
    ESCALA_CHECK(v > 0 && v <= 1, kInvalidArgument, "{} must be in (0, 1], got {}", name, v);
  }
  for (std::size_t f = 0; f < o.monotone.size(); ++f) {
    ESCALA_CHECK(o.monotone[f] >= -1 && o.monotone[f] <= 1, kInvalidArgument,
                 "monotone_constraints: feature {} has {}; a constraint is -1, 0 or 1", f,
                 o.monotone[f]);
  }
  ESCALA_CHECK(o.max_cat_to_onehot >= 1, kInvalidArgument, "max_cat_to_onehot must be >= 1, got {}",
               o.max_cat_to_onehot);
  ESCALA_CHECK(o.huber_delta > 0, kInvalidArgument, "huber_delta must be > 0, got {}",
               o.huber_delta);
  ESCALA_CHECK(o.early_stopping >= 0 && o.min_delta >= 0, kInvalidArgument,
               "early_stopping and min_delta must be >= 0 (got {}, {})", o.early_stopping,
               o.min_delta);
}

std::unique_ptr<models::TreeEnsemble> TrainGbdt(const GbdtOptions& options, Task task,
                                                int num_classes, const DataShard& train,
                                                const DataShard* valid, Communicator& comm,
                                                const GbdtProgressFn& progress,
                                                const models::TreeEnsemble* init) {
  const auto start = std::chrono::steady_clock::now();
  Validate(options);
  const std::string objective = ResolveObjective(options.objective, task);
  const trees::ObjectiveFn obj{trees::ParseObjective(objective), options.huber_delta};
  const std::int64_t d = train.features.cols();
  const std::int64_t k = task == Task::kMulticlass ? num_classes : 1;
  ESCALA_CHECK(k >= 1 && (task != Task::kMulticlass || k >= 2), kInvalidArgument,
               "multiclass needs >= 2 classes, got {}", num_classes);
  CheckShard(train, d, "training");
  CheckMonotone(options, d);
  if (valid != nullptr) CheckShard(*valid, d, "validation");
  CheckWeights(train.weights, train.rows(), "weights", comm);
  CheckWeights(valid != nullptr ? valid->weights : std::span<const float>(),
               valid != nullptr ? valid->rows() : 0, "validation weights", comm);
  const auto total = comm.AllReduceScalar<std::int64_t>(train.rows(), ReduceOp::kSum);
  ESCALA_CHECK(total > 0, kInvalidArgument, "training data has no rows");
  const bool has_valid =
      comm.AllReduceScalar<std::int64_t>(valid ? valid->rows() : 0, ReduceOp::kSum) > 0;
  ESCALA_CHECK(options.early_stopping == 0 || has_valid, kInvalidArgument,
               "early_stopping {} needs validation rows (valid_fraction or a validation table)",
               options.early_stopping);

  const std::vector<std::uint64_t> ids = GlobalIds(train, comm);
  obj.CheckLabels(train.labels, k, ids);
  if (valid != nullptr) {
    std::vector<std::uint64_t> vids(static_cast<std::size_t>(valid->rows()));
    std::iota(vids.begin(), vids.end(), 0);
    obj.CheckLabels(valid->labels, k, vids);
  }
  if (init != nullptr) CheckWarmStart(*init, task, k, d, objective);
  const std::vector<float> base =
      init ? init->base_score() : obj.BaseScore(k, train.labels, train.weights, comm);
  const Bins bins = MakeBins(options, train, ids, comm);
  CheckSomeFeatureVaries(bins);
  Boosting run{options,
               obj,
               train,
               valid,
               comm,
               bins,
               ids,
               k,
               total,
               StartScores(init, train.features, base),
               StartScores(init, valid != nullptr ? valid->features : ConstMatrixViewF(), base)};
  Stopper stop{options.early_stopping, options.min_delta};
  for (int round = 1; round <= options.rounds; ++round) {
    const double loss = run.Round(round);
    if (progress) progress(round, loss);
    if (stop.Update(round, loss)) break;
  }
  if (options.early_stopping > 0) {
    run.trees.resize(static_cast<std::size_t>(stop.best_round * k));
  }
  LogReduceShare("gbdt", run.reduce_seconds, start, comm);
  std::vector<Tree> trees = init ? init->trees() : std::vector<Tree>();
  std::move(run.trees.begin(), run.trees.end(), std::back_inserter(trees));
  return std::make_unique<models::TreeEnsemble>(task, d, k, base, std::move(trees), objective);
}

}  // namespace escala::train
