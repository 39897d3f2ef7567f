#include "escala/features/sketches.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "escala/core/error.h"
#include "escala/core/random.h"
#include "escala/features/v1/stats.pb.h"
#include "features/radix_sort.h"

namespace escala::features {

namespace pb = escala::features::v1;

namespace {

template <typename Message>
Message ParseProto(std::string_view bytes, std::string_view what) {
  Message m;
  ESCALA_CHECK(m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())), kDataLoss,
               "{}: serialized statistics do not parse ({} bytes)", what, bytes.size());
  return m;
}

}  // namespace

std::uint64_t HashBytes(std::string_view bytes, std::uint64_t seed) {
  // FNV-1a over 8-byte words, finalised with a strong mixer: fast and well distributed.
  std::uint64_t h = 0xcbf29ce484222325ULL ^ Mix64(seed);
  std::size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, bytes.data() + i, 8);
    h = (h ^ w) * 0x100000001b3ULL;
    h ^= h >> 29;
  }
  std::uint64_t tail = 0;
  std::memcpy(&tail, bytes.data() + i, bytes.size() - i);
  h = (h ^ tail ^ (static_cast<std::uint64_t>(bytes.size()) << 56)) * 0x100000001b3ULL;
  return Mix64(h);
}

std::uint64_t HashDouble(double v) {
  if (v == 0.0) v = 0.0;  // -0.0 == 0.0
  return Mix64(std::bit_cast<std::uint64_t>(v) ^ 0x6a09e667f3bcc909ULL);
}

// ---- NumericSummary ---------------------------------------------------------------------------

void NumericSummary::Add(double v) {
  if (std::isnan(v)) {
    ++missing_;
    return;
  }
  if (std::isinf(v)) {
    ++infinite_;
    return;
  }
  ++count_;
  const double delta = v - mean_;
  mean_ += delta / static_cast<double>(count_);
  m2_ += delta * (v - mean_);
  sum_ += v;
  min_ = std::min(min_, v);
  max_ = std::max(max_, v);
}

void NumericSummary::AddBatch(std::span<const double> values) {
  NumericSummary b;
  double sum = 0, lo = std::numeric_limits<double>::infinity(),
         hi = -std::numeric_limits<double>::infinity();
  std::int64_t n = 0;
  for (double v : values) {
    if (std::isnan(v)) {
      ++b.missing_;
    } else if (std::isinf(v)) {
      ++b.infinite_;
    } else {
      ++n;
      sum += v;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  if (n > 0) {
    const double mean = sum / static_cast<double>(n);
    double m2 = 0;
    for (double v : values) {
      if (std::isfinite(v)) m2 += (v - mean) * (v - mean);
    }
    b.count_ = n;
    b.mean_ = mean;
    b.m2_ = m2;
    b.sum_ = sum;
    b.min_ = lo;
    b.max_ = hi;
  }
  Merge(b);
}

void NumericSummary::Merge(const NumericSummary& o) {
  missing_ += o.missing_;
  infinite_ += o.infinite_;
  if (o.count_ == 0) return;
  if (count_ == 0) {
    const auto missing = missing_, infinite = infinite_;
    *this = o;
    missing_ = missing;
    infinite_ = infinite;
    return;
  }
  // Chan, Golub & LeVeque's pairwise combination.
  const double n1 = static_cast<double>(count_), n2 = static_cast<double>(o.count_);
  const double n = n1 + n2;
  const double delta = o.mean_ - mean_;
  mean_ += delta * n2 / n;
  m2_ += o.m2_ + delta * delta * n1 * n2 / n;
  count_ += o.count_;
  sum_ += o.sum_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
}

double NumericSummary::variance() const {
  return count_ > 1 ? m2_ / static_cast<double>(count_ - 1)
                    : std::numeric_limits<double>::quiet_NaN();
}
double NumericSummary::stddev() const {
  return std::sqrt(variance());
}
double NumericSummary::population_variance() const {
  return count_ > 0 ? m2_ / static_cast<double>(count_) : std::numeric_limits<double>::quiet_NaN();
}

std::string NumericSummary::Serialize() const {
  pb::NumericSummary m;
  m.set_count(count_);
  m.set_missing(missing_);
  m.set_infinite(infinite_);
  m.set_mean(mean_);
  m.set_m2(m2_);
  m.set_sum(sum_);
  m.set_min(min_);
  m.set_max(max_);
  return m.SerializeAsString();
}

NumericSummary NumericSummary::Parse(std::string_view bytes) {
  const auto m = ParseProto<pb::NumericSummary>(bytes, "numeric summary");
  NumericSummary s;
  s.count_ = m.count();
  s.missing_ = m.missing();
  s.infinite_ = m.infinite();
  s.mean_ = m.mean();
  s.m2_ = m.m2();
  s.sum_ = m.sum();
  s.min_ = m.min();
  s.max_ = m.max();
  return s;
}

// ---- QuantileSketch (KLL) ---------------------------------------------------------------------

QuantileSketch::QuantileSketch(int k, std::uint64_t seed) : k_(k), rng_(Mix64(seed) | 1) {
  ESCALA_CHECK(k >= 8, kInvalidArgument, "quantile sketch k must be >= 8, got {}", k);
  levels_.emplace_back();
  UpdateCapacities();
}

std::size_t QuantileSketch::Capacity(std::size_t level) const {
  // Level capacities shrink geometrically (factor 2/3) below the top level.
  const std::size_t depth = levels_.size() - 1 - level;
  const double cap = static_cast<double>(k_) * std::pow(2.0 / 3.0, static_cast<double>(depth));
  // Level 0 buffers k items whatever the depth: its sorts then run on batches large enough for
  // the radix sort, and fewer compactions only lower the error.
  if (level == 0) return static_cast<std::size_t>(k_);
  return std::max<std::size_t>(8, static_cast<std::size_t>(std::ceil(cap)));
}

void QuantileSketch::UpdateCapacities() {
  capacity_.resize(levels_.size());
  total_capacity_ = 0;
  for (std::size_t h = 0; h < levels_.size(); ++h) {
    capacity_[h] = Capacity(h);
    total_capacity_ += capacity_[h];
  }
}

bool QuantileSketch::NextCoin() {
  // xorshift64*: a deterministic stream of fair coins.
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return ((rng_ * 0x2545F4914F6CDD1DULL) >> 63) != 0;
}

void QuantileSketch::CompressOne() {
  // Some level is at or over its capacity whenever the whole sketch is.
  std::size_t h = 0;
  while (h < levels_.size() && levels_[h].size() < capacity_[h]) ++h;
  ESCALA_ASSERT(h < levels_.size());
  if (h + 1 == levels_.size()) {
    levels_.emplace_back();
    UpdateCapacities();
  }
  auto& level = levels_[h];
  // Levels above 0 are kept sorted (they receive sorted runs, merged in), so only level 0 sorts.
  if (h == 0) internal::SortDoubles(level);
  // An odd item stays behind so that the total weight is preserved exactly.
  double leftover = 0;
  const bool odd = level.size() % 2 == 1;
  if (odd) {
    leftover = level.back();
    level.pop_back();
  }
  const std::size_t offset = NextCoin() ? 1 : 0;
  auto& up = levels_[h + 1];
  // Every other item of the sorted level, merged into the level above (its equal items first,
  // as std::inplace_merge would) through a scratch buffer that is swapped in.
  thread_local std::vector<double> merged;
  merged.clear();
  merged.reserve(up.size() + level.size() / 2 + 1);
  std::size_t i = 0, j = offset;
  while (i < up.size() && j < level.size()) {
    if (level[j] < up[i]) {
      merged.push_back(level[j]);
      j += 2;
    } else {
      merged.push_back(up[i++]);
    }
  }
  merged.insert(merged.end(), up.begin() + static_cast<std::ptrdiff_t>(i), up.end());
  for (; j < level.size(); j += 2) merged.push_back(level[j]);
  up.swap(merged);
  held_ -= level.size() / 2;
  level.clear();
  if (odd) level.push_back(leftover);
  ++compactions_;
}

void QuantileSketch::Merge(const QuantileSketch& o) {
  ESCALA_CHECK(o.k_ == k_, kInvalidArgument, "cannot merge quantile sketches with k {} and {}", k_,
               o.k_);
  while (levels_.size() < o.levels_.size()) levels_.emplace_back();
  for (std::size_t h = 0; h < o.levels_.size(); ++h) {
    auto& level = levels_[h];
    const auto mid = static_cast<std::ptrdiff_t>(level.size());
    level.insert(level.end(), o.levels_[h].begin(), o.levels_[h].end());
    if (h > 0) std::inplace_merge(level.begin(), level.begin() + mid, level.end());
  }
  n_ += o.n_;
  compactions_ += o.compactions_;
  held_ += o.held_;
  UpdateCapacities();
  while (held_ >= total_capacity_) CompressOne();
}

std::vector<std::pair<double, std::uint64_t>> QuantileSketch::Weighted() const {
  std::vector<std::pair<double, std::uint64_t>> items;
  for (std::size_t h = 0; h < levels_.size(); ++h) {
    for (double v : levels_[h]) items.emplace_back(v, std::uint64_t{1} << h);
  }
  std::sort(items.begin(), items.end());
  return items;
}

double QuantileSketch::Quantile(double q) const {
  const double qs[] = {q};
  return Quantiles(qs)[0];
}

std::vector<double> QuantileSketch::Quantiles(std::span<const double> qs) const {
  std::vector<double> out(qs.size(), std::numeric_limits<double>::quiet_NaN());
  if (n_ == 0) return out;
  const auto items = Weighted();
  if (exact()) {
    // Linear interpolation between order statistics: position q (n - 1).
    for (std::size_t i = 0; i < qs.size(); ++i) {
      const double pos = std::clamp(qs[i], 0.0, 1.0) * static_cast<double>(items.size() - 1);
      const auto lo = static_cast<std::size_t>(std::floor(pos));
      const std::size_t hi = std::min(lo + 1, items.size() - 1);
      const double frac = pos - static_cast<double>(lo);
      out[i] = items[lo].first + frac * (items[hi].first - items[lo].first);
    }
    return out;
  }
  std::vector<double> cum(items.size());
  double total = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    total += static_cast<double>(items[i].second);
    cum[i] = total;
  }
  for (std::size_t i = 0; i < qs.size(); ++i) {
    const double target = std::clamp(qs[i], 0.0, 1.0) * total;
    auto it = std::lower_bound(cum.begin(), cum.end(), std::max(target, 1.0));
    if (it == cum.end()) --it;
    out[i] = items[static_cast<std::size_t>(it - cum.begin())].first;
  }
  return out;
}

double QuantileSketch::Rank(double v) const {
  if (n_ == 0) return std::numeric_limits<double>::quiet_NaN();
  double below = 0, total = 0;
  for (std::size_t h = 0; h < levels_.size(); ++h) {
    const double w = static_cast<double>(std::uint64_t{1} << h);
    for (double x : levels_[h]) {
      total += w;
      if (x <= v) below += w;
    }
  }
  return below / total;
}

double QuantileSketch::RankErrorBound() const {
  if (exact()) return 0.0;
  return 2.296 / std::pow(static_cast<double>(k_), 0.9723);
}

std::string QuantileSketch::Serialize() const {
  pb::QuantileSketch m;
  m.set_k(k_);
  m.set_n(n_);
  m.set_seed(rng_);
  m.set_compactions(compactions_);
  for (const auto& level : levels_) {
    m.add_levels()->mutable_items()->Assign(level.begin(), level.end());
  }
  return m.SerializeAsString();
}

QuantileSketch QuantileSketch::Parse(std::string_view bytes) {
  const auto m = ParseProto<pb::QuantileSketch>(bytes, "quantile sketch");
  ESCALA_CHECK(m.k() >= 8 && m.levels_size() >= 1 && m.levels_size() <= 64, kDataLoss,
               "quantile sketch: invalid structure (k {}, {} levels)", m.k(), m.levels_size());
  QuantileSketch s(m.k());
  s.rng_ = m.seed() | 1;
  s.n_ = m.n();
  s.compactions_ = m.compactions();
  s.levels_.clear();
  s.held_ = 0;
  for (const auto& level : m.levels()) {
    s.levels_.emplace_back(level.items().begin(), level.items().end());
    s.held_ += s.levels_.back().size();
    if (s.levels_.size() > 1) std::sort(s.levels_.back().begin(), s.levels_.back().end());
  }
  s.UpdateCapacities();
  while (s.held_ >= s.total_capacity_) s.CompressOne();
  return s;
}

// ---- DistinctCounter ----------------------------------------------------------------------------

void DistinctCounter::AddHash(std::uint64_t h) {
  if (!exact_) {
    AddToRegisters(h);
    return;
  }
  pending_.push_back(h);
  if (pending_.size() >= kExactLimit) {
    // Fold pending hashes into the sorted set; switch to the sketch when it outgrows the limit.
    std::sort(pending_.begin(), pending_.end());
    pending_.erase(std::unique(pending_.begin(), pending_.end()), pending_.end());
    std::vector<std::uint64_t> merged;
    merged.reserve(set_.size() + pending_.size());
    std::set_union(set_.begin(), set_.end(), pending_.begin(), pending_.end(),
                   std::back_inserter(merged));
    set_.swap(merged);
    pending_.clear();
    if (set_.size() > kExactLimit) ToSketch();
  }
}

void DistinctCounter::AddDouble(double v) {
  AddHash(HashDouble(v));
}
void DistinctCounter::AddString(std::string_view s) {
  AddHash(HashBytes(s));
}

void DistinctCounter::AddToRegisters(std::uint64_t h) {
  const std::size_t idx = h >> (64 - kPrecision);
  const std::uint64_t rest = (h << kPrecision) | (std::uint64_t{1} << (kPrecision - 1));
  const auto rho = static_cast<std::uint8_t>(std::countl_zero(rest) + 1);
  registers_[idx] = std::max(registers_[idx], rho);
}

void DistinctCounter::ToSketch() {
  registers_.assign(std::size_t{1} << kPrecision, 0);
  exact_ = false;
  for (auto h : set_) AddToRegisters(h);
  for (auto h : pending_) AddToRegisters(h);
  set_.clear();
  set_.shrink_to_fit();
  pending_.clear();
  pending_.shrink_to_fit();
}

void DistinctCounter::Merge(const DistinctCounter& o) {
  if (exact_ && o.exact_) {
    for (auto h : o.set_) AddHash(h);
    for (auto h : o.pending_) AddHash(h);
    return;
  }
  if (exact_) ToSketch();
  if (o.exact_) {
    for (auto h : o.set_) AddToRegisters(h);
    for (auto h : o.pending_) AddToRegisters(h);
    return;
  }
  for (std::size_t i = 0; i < registers_.size(); ++i) {
    registers_[i] = std::max(registers_[i], o.registers_[i]);
  }
}

double DistinctCounter::Estimate() const {
  if (exact_) {
    std::vector<std::uint64_t> all = set_;
    all.insert(all.end(), pending_.begin(), pending_.end());
    std::sort(all.begin(), all.end());
    return static_cast<double>(std::unique(all.begin(), all.end()) - all.begin());
  }
  const double m = static_cast<double>(registers_.size());
  double sum = 0;
  int zeros = 0;
  for (auto r : registers_) {
    sum += std::ldexp(1.0, -r);
    zeros += r == 0;
  }
  const double alpha = 0.7213 / (1.0 + 1.079 / m);
  const double raw = alpha * m * m / sum;
  // Small-range correction: linear counting while many registers are empty.
  if (raw <= 2.5 * m && zeros > 0) return m * std::log(m / zeros);
  return raw;
}

std::string DistinctCounter::Serialize() const {
  pb::DistinctCounter m;
  m.set_exact(exact_);
  if (exact_) {
    m.mutable_hashes()->Assign(set_.begin(), set_.end());
    for (auto h : pending_) m.add_hashes(h);
  } else {
    m.set_registers(std::string(registers_.begin(), registers_.end()));
  }
  return m.SerializeAsString();
}

DistinctCounter DistinctCounter::Parse(std::string_view bytes) {
  const auto m = ParseProto<pb::DistinctCounter>(bytes, "distinct counter");
  DistinctCounter d;
  if (m.exact()) {
    for (auto h : m.hashes()) d.AddHash(h);
  } else {
    ESCALA_CHECK(m.registers().size() == (std::size_t{1} << kPrecision), kDataLoss,
                 "distinct counter: {} registers, expected {}", m.registers().size(),
                 std::size_t{1} << kPrecision);
    d.exact_ = false;
    d.registers_.assign(m.registers().begin(), m.registers().end());
  }
  return d;
}

// ---- FrequentItems ------------------------------------------------------------------------------

FrequentItems::FrequentItems(std::size_t capacity, Mode mode) : capacity_(capacity), mode_(mode) {
  ESCALA_CHECK(capacity >= 1, kInvalidArgument, "frequent-items capacity must be >= 1");
}

void FrequentItems::Add(std::string_view key, std::int64_t count) {
  total_ += count;
  auto it = counts_.find(key);
  if (it != counts_.end()) {
    it->second.count += count;
    return;
  }
  counts_.emplace(std::string(key), Counter{count, 0});
  if (counts_.size() > capacity_) Evict();
}

void FrequentItems::AddNumber(double v, std::int64_t count) {
  total_ += count;
  if (saturated_) return;
  if (v == 0.0) v = 0.0;
  numeric_[std::bit_cast<std::uint64_t>(v)] += count;
  if (numeric_.size() > capacity_) {
    // A column with this many distinct numbers is continuous: its mode says nothing.
    saturated_ = true;
    exact_ = false;
    numeric_.clear();
  }
}

void FrequentItems::Evict() {
  // SpaceSaving: the smallest counter is dropped; its count becomes the error bound of whatever
  // takes a slot next (here folded in by raising every later newcomer, conservatively).
  auto min_it = counts_.begin();
  for (auto it = counts_.begin(); it != counts_.end(); ++it) {
    if (it->second.count < min_it->second.count ||
        (it->second.count == min_it->second.count && it->first > min_it->first)) {
      min_it = it;
    }
  }
  const std::int64_t floor = min_it->second.count;
  counts_.erase(min_it);
  exact_ = false;
  // Items now tracked may have been evicted before: their true count can exceed what is stored
  // by at most `floor`.
  for (auto& [k, c] : counts_) c.error = std::max(c.error, floor);
}

void FrequentItems::Merge(const FrequentItems& o) {
  total_ += o.total_;
  exact_ = exact_ && o.exact_;
  if (mode_ == Mode::kNumeric || o.mode_ == Mode::kNumeric) {
    mode_ = Mode::kNumeric;
    if (saturated_ || o.saturated_) {
      saturated_ = true;
      exact_ = false;
      numeric_.clear();
      return;
    }
    for (const auto& [k, c] : o.numeric_) numeric_[k] += c;
    if (numeric_.size() > capacity_) {
      saturated_ = true;
      exact_ = false;
      numeric_.clear();
    }
    return;
  }
  for (const auto& [k, c] : o.counts_) {
    auto& mine = counts_[k];
    mine.count += c.count;
    mine.error += c.error;
  }
  while (counts_.size() > capacity_) Evict();
}

std::vector<FrequentItems::Item> FrequentItems::Top(std::size_t k) const {
  std::vector<Item> items;
  if (mode_ == Mode::kNumeric) {
    for (const auto& [bits, c] : numeric_) {
      items.push_back({fmt::format("{}", std::bit_cast<double>(bits)), c, 0});
    }
  } else {
    for (const auto& [key, c] : counts_) items.push_back({key, c.count, c.error});
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return a.count != b.count ? a.count > b.count : a.key < b.key;
  });
  if (items.size() > k) items.resize(k);
  return items;
}

std::string FrequentItems::Serialize() const {
  pb::FrequentItems m;
  m.set_capacity(static_cast<std::int32_t>(capacity_) * (mode_ == Mode::kNumeric ? -1 : 1));
  m.set_total(total_);
  if (mode_ == Mode::kNumeric) {
    // Numeric keys travel as the 8 bytes of the double; saturation as an empty, inexact list.
    for (const auto& [bits, c] : numeric_) {
      auto* item = m.add_items();
      item->set_key(std::string(reinterpret_cast<const char*>(&bits), sizeof(bits)));
      item->set_count(c);
    }
    if (saturated_) m.add_items()->set_error(-1);
  } else {
    for (const auto& [key, c] : counts_) {
      auto* item = m.add_items();
      item->set_key(key);
      item->set_count(c.count);
      item->set_error(c.error);
    }
    if (!exact_) m.add_items()->set_error(-2);
  }
  return m.SerializeAsString();
}

FrequentItems FrequentItems::Parse(std::string_view bytes) {
  const auto m = ParseProto<pb::FrequentItems>(bytes, "frequent items");
  const bool numeric = m.capacity() < 0;
  FrequentItems f(static_cast<std::size_t>(std::abs(m.capacity())),
                  numeric ? Mode::kNumeric : Mode::kCategorical);
  f.total_ = m.total();
  for (const auto& item : m.items()) {
    if (item.error() == -1) {
      f.saturated_ = true;
      f.exact_ = false;
      f.numeric_.clear();
      continue;
    }
    if (item.error() == -2) {
      f.exact_ = false;
      continue;
    }
    if (numeric) {
      ESCALA_CHECK(item.key().size() == 8, kDataLoss, "frequent items: bad numeric key");
      std::uint64_t bits;
      std::memcpy(&bits, item.key().data(), 8);
      f.numeric_[bits] = item.count();
    } else {
      f.counts_[item.key()] = Counter{item.count(), item.error()};
    }
  }
  return f;
}

}  // namespace escala::features
