// Mergeable statistics: summaries that are computed per shard and combined exactly (or within a
// stated bound), so that statistics of data spread over workers equal those of the whole.
//
//   NumericSummary  count, missing, infinite, sum, mean and variance (Chan et al.'s parallel
//                   update), min, max. Merges exactly (moments up to rounding).
//   QuantileSketch  KLL sketch (Karnin, Lang, Liberty 2016). Exact while it holds every value
//                   (n <= k); beyond, the normalised rank error of a quantile is about
//                   2.3 / k^0.97 with 99% confidence: 0.28% for the default k = 1024. Compaction
//                   coins come from a seeded generator, so results are reproducible.
//   DistinctCounter exact distinct count up to 16384 values, then HyperLogLog with 2^14
//                   registers (relative standard error 1.04 / 2^7 = 0.81%).
//   FrequentItems   exact counts while there are at most `capacity` distinct keys; beyond that
//                   SpaceSaving (Metwally et al. 2005) for categorical data, whose counts
//                   overestimate by at most total / capacity; numeric columns stop tracking
//                   (a continuous column has no meaningful mode).
//
// Every summary serialises to bytes (Serialize/Parse) so it can travel through
// Communicator::AllGatherV; AllMerge() merges a local summary with every rank's, in rank order,
// so all ranks end with identical results.
//
// Thread-safety: values; no internal synchronisation.
#ifndef ESCALA_FEATURES_SKETCHES_H_
#define ESCALA_FEATURES_SKETCHES_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "escala/core/communicator.h"

namespace escala::features {

class NumericSummary {
 public:
  // NaN counts as missing; +/-Inf is counted apart and excluded from the moments.
  void Add(double v);
  void AddMissing(std::int64_t n = 1) { missing_ += n; }
  // Same result as Add() on each value (to rounding), computed two-pass per batch: faster.
  void AddBatch(std::span<const double> values);
  void Merge(const NumericSummary& other);

  std::int64_t count() const { return count_; }  // finite values
  std::int64_t missing() const { return missing_; }
  std::int64_t infinite() const { return infinite_; }
  double sum() const { return sum_; }
  double mean() const { return count_ > 0 ? mean_ : std::numeric_limits<double>::quiet_NaN(); }
  // Sample variance (n - 1 denominator, as pandas and numpy's ddof=1); NaN for n < 2.
  double variance() const;
  double stddev() const;
  // Population variance (n denominator, as scikit-learn's StandardScaler).
  double population_variance() const;
  double min() const { return count_ > 0 ? min_ : std::numeric_limits<double>::quiet_NaN(); }
  double max() const { return count_ > 0 ? max_ : std::numeric_limits<double>::quiet_NaN(); }

  std::string Serialize() const;
  static NumericSummary Parse(std::string_view bytes);

 private:
  std::int64_t count_ = 0;
  std::int64_t missing_ = 0;
  std::int64_t infinite_ = 0;
  double mean_ = 0;
  double m2_ = 0;
  double sum_ = 0;
  double min_ = std::numeric_limits<double>::infinity();
  double max_ = -std::numeric_limits<double>::infinity();
};

class QuantileSketch {
 public:
  explicit QuantileSketch(int k = 1024, std::uint64_t seed = 0x5eed);

  // NaN and Inf must be filtered by the caller.
  void Add(double v) {
    levels_[0].push_back(v);
    ++n_;
    if (++held_ >= total_capacity_) CompressOne();
  }
  void Merge(const QuantileSketch& other);

  std::int64_t count() const { return n_; }
  int k() const { return k_; }
  // Whether every value is still held (quantiles are then exact).
  bool exact() const { return compactions_ == 0; }
  // The q-quantile, q in [0, 1]. Exact mode interpolates linearly between order statistics
  // (numpy's and pandas' default); otherwise the weighted lower quantile. NaN when empty.
  double Quantile(double q) const;
  std::vector<double> Quantiles(std::span<const double> qs) const;
  // Normalised rank of v: the fraction of values <= v.
  double Rank(double v) const;
  // The documented rank-error bound for this k (0 while exact).
  double RankErrorBound() const;

  std::string Serialize() const;
  static QuantileSketch Parse(std::string_view bytes);

 private:
  std::size_t Capacity(std::size_t level) const;
  // Recomputes the per-level capacities and their sum after the number of levels changed.
  void UpdateCapacities();
  // Lazy compaction (as in KLL's reference implementations): runs only when the sketch holds as
  // many items as all its levels' capacities together, and halves the lowest level that is at
  // or over its own capacity. Level 0 thus buffers many items between sorts.
  void CompressOne();
  bool NextCoin();
  // (value, weight) pairs sorted by value.
  std::vector<std::pair<double, std::uint64_t>> Weighted() const;

  int k_;
  std::uint64_t rng_;
  std::int64_t n_ = 0;
  std::uint64_t compactions_ = 0;
  std::vector<std::vector<double>> levels_;
  std::vector<std::size_t> capacity_;  // per level
  std::size_t held_ = 0;               // items in all levels
  std::size_t total_capacity_ = 0;     // sum of capacity_
};

class DistinctCounter {
 public:
  static constexpr std::size_t kExactLimit = 16384;
  static constexpr int kPrecision = 14;

  void AddHash(std::uint64_t hash);
  void AddDouble(double v);  // -0.0 and 0.0 are the same value
  void AddString(std::string_view s);
  void Merge(const DistinctCounter& other);

  // Exact while exact(), else the HyperLogLog estimate.
  double Estimate() const;
  bool exact() const { return exact_; }

  std::string Serialize() const;
  static DistinctCounter Parse(std::string_view bytes);

 private:
  void ToSketch();
  void AddToRegisters(std::uint64_t hash);

  bool exact_ = true;
  std::vector<std::uint64_t> set_;      // exact mode: sorted unique hashes, rebuilt lazily
  std::vector<std::uint64_t> pending_;  // exact mode: hashes not yet merged into set_
  std::vector<std::uint8_t> registers_;
};

class FrequentItems {
 public:
  enum class Mode { kCategorical, kNumeric };
  explicit FrequentItems(std::size_t capacity = 1024, Mode mode = Mode::kCategorical);

  void Add(std::string_view key, std::int64_t count = 1);
  void AddNumber(double v, std::int64_t count = 1);
  void Merge(const FrequentItems& other);

  struct Item {
    std::string key;
    std::int64_t count = 0;
    std::int64_t error = 0;  // the count may overestimate by up to this much
  };
  // The k most frequent, by count descending then key ascending (deterministic).
  std::vector<Item> Top(std::size_t k) const;
  // Exact counts are available (no eviction happened).
  bool exact() const { return exact_; }
  // Numeric mode gave up (too many distinct values): Top() is empty.
  bool saturated() const { return saturated_; }
  std::int64_t total() const { return total_; }

  std::string Serialize() const;
  static FrequentItems Parse(std::string_view bytes);

 private:
  void Evict();

  std::size_t capacity_;
  Mode mode_;
  bool exact_ = true;
  bool saturated_ = false;
  std::int64_t total_ = 0;
  struct Counter {
    std::int64_t count = 0;
    std::int64_t error = 0;
  };
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // Transparent lookup: counting a string_view key allocates only for a new key.
  std::unordered_map<std::string, Counter, StringHash, std::equal_to<>> counts_;
  std::unordered_map<std::uint64_t, std::int64_t> numeric_;  // numeric mode: bits of the double
};

// Merges `local` with the same summary from every rank (in rank order); all ranks return the
// same value. Summary must provide Serialize(), static Parse() and Merge().
template <typename Summary>
Summary AllMerge(const Summary& local, Communicator& comm) {
  if (comm.size() == 1) return local;
  const std::string bytes = local.Serialize();
  const auto all =
      comm.AllGatherV(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())));
  Summary merged =
      Summary::Parse(std::string_view(reinterpret_cast<const char*>(all[0].data()), all[0].size()));
  for (std::size_t r = 1; r < all.size(); ++r) {
    merged.Merge(Summary::Parse(
        std::string_view(reinterpret_cast<const char*>(all[r].data()), all[r].size())));
  }
  return merged;
}

// 64-bit hashes used by the distinct counter and by duplicate detection.
std::uint64_t HashBytes(std::string_view bytes, std::uint64_t seed = 0);
std::uint64_t HashDouble(double v);

}  // namespace escala::features

#endif  // ESCALA_FEATURES_SKETCHES_H_
