#include "escala/features/cleaning.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include <fast_float/fast_float.h>

#include "escala/core/error.h"
#include "escala/core/parallel.h"
#include "escala/core/random.h"
#include "escala/features/sketches.h"

namespace escala::features {

namespace {

bool CellsEqual(const data::Column& c, std::int64_t a, std::int64_t b) {
  const bool ma = c.is_missing(a), mb = c.is_missing(b);
  if (ma || mb) return ma == mb;
  if (c.type() == data::DataType::kCategorical) return c.category(a) == c.category(b);
  const double x = c.GetDouble(a), y = c.GetDouble(b);
  return x == y || (std::isnan(x) && std::isnan(y));
}

bool RowsEqual(const data::Table& t, std::int64_t a, std::int64_t b) {
  for (int j = 0; j < t.num_columns(); ++j) {
    if (!CellsEqual(t.column(j), a, b)) return false;
  }
  return true;
}

// Global identities for "first occurrence": the table's row ids, else rank-order positions.
std::vector<std::uint64_t> Identities(const data::Table& t, Communicator& comm) {
  if (!t.row_ids().empty()) return {t.row_ids().begin(), t.row_ids().end()};
  const std::int64_t n = t.num_rows();
  const auto counts = comm.AllGather(std::span<const std::int64_t>(&n, 1));
  std::uint64_t offset = 0;
  for (int r = 0; r < comm.rank(); ++r)
    offset += static_cast<std::uint64_t>(counts[static_cast<std::size_t>(r)]);
  std::vector<std::uint64_t> ids(static_cast<std::size_t>(n));
  std::iota(ids.begin(), ids.end(), offset);
  return ids;
}

}  // namespace

std::vector<std::uint64_t> RowHashes(const data::Table& t) {
  const std::int64_t n = t.num_rows();
  std::vector<std::uint64_t> h(static_cast<std::size_t>(n), 0x9e3779b97f4a7c15ULL);
  ParallelFor(static_cast<std::size_t>(n), 4096, [&](std::size_t b, std::size_t e) {
    for (int j = 0; j < t.num_columns(); ++j) {
      const data::Column& c = t.column(j);
      const std::uint64_t salt = Mix64(static_cast<std::uint64_t>(j) + 1);
      for (std::size_t i = b; i < e; ++i) {
        const auto r = static_cast<std::int64_t>(i);
        std::uint64_t v;
        if (c.is_missing(r)) {
          v = 0x6d697373696e67ULL;  // "missing"
        } else if (c.type() == data::DataType::kCategorical) {
          v = HashBytes(c.category(r));
        } else {
          v = HashDouble(c.GetDouble(r));
        }
        h[i] = Mix64(h[i] ^ v ^ salt);
      }
    }
  });
  return h;
}

DuplicateResult FindDuplicates(const data::Table& t, Communicator& comm) {
  DuplicateResult result;
  const auto hashes = RowHashes(t);
  if (comm.size() == 1) {
    // Exact: rows with equal hashes are compared cell by cell.
    std::unordered_map<std::uint64_t, std::vector<std::int64_t>> seen;
    seen.reserve(hashes.size());
    for (std::size_t i = 0; i < hashes.size(); ++i) {
      auto& group = seen[hashes[i]];
      bool dup = false;
      for (std::int64_t earlier : group) {
        if (RowsEqual(t, earlier, static_cast<std::int64_t>(i))) {
          dup = true;
          break;
        }
      }
      if (dup) {
        result.duplicate_rows.push_back(static_cast<std::int64_t>(i));
      } else {
        group.push_back(static_cast<std::int64_t>(i));
      }
    }
    result.global_duplicates = static_cast<std::int64_t>(result.duplicate_rows.size());
    return result;
  }
  // Across workers: every rank sees every (hash, id) pair and keeps, for each hash, the smallest
  // id; its own rows with a larger id are the duplicates.
  const auto ids = Identities(t, comm);
  std::vector<std::uint64_t> pairs;
  pairs.reserve(hashes.size() * 2);
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    pairs.push_back(hashes[i]);
    pairs.push_back(ids[i]);
  }
  const auto all = comm.AllGatherV(std::as_bytes(std::span<const std::uint64_t>(pairs)));
  std::unordered_map<std::uint64_t, std::uint64_t> first;
  for (const auto& part : all) {
    const auto* v = reinterpret_cast<const std::uint64_t*>(part.data());
    const std::size_t m = part.size() / sizeof(std::uint64_t);
    for (std::size_t k = 0; k + 1 < m; k += 2) {
      auto [it, inserted] = first.emplace(v[k], v[k + 1]);
      if (!inserted) it->second = std::min(it->second, v[k + 1]);
    }
  }
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    if (first.at(hashes[i]) != ids[i])
      result.duplicate_rows.push_back(static_cast<std::int64_t>(i));
  }
  result.global_duplicates = comm.AllReduceScalar<std::int64_t>(
      static_cast<std::int64_t>(result.duplicate_rows.size()), ReduceOp::kSum);
  return result;
}

data::Table DropDuplicates(const data::Table& t, Communicator& comm, std::int64_t* dropped) {
  const auto dups = FindDuplicates(t, comm);
  if (dropped != nullptr) *dropped = dups.global_duplicates;
  std::vector<std::int64_t> keep;
  keep.reserve(static_cast<std::size_t>(t.num_rows()));
  std::size_t d = 0;
  for (std::int64_t i = 0; i < t.num_rows(); ++i) {
    if (d < dups.duplicate_rows.size() && dups.duplicate_rows[d] == i) {
      ++d;
      continue;
    }
    keep.push_back(i);
  }
  return t.Take(keep);
}

OutlierRule OutlierRule::Parse(std::string_view text) {
  OutlierRule r;
  const std::size_t eq = text.find('=');
  const std::string_view key = text.substr(0, eq);
  const std::string_view value = eq == std::string_view::npos ? "" : text.substr(eq + 1);
  auto number = [&](std::string_view s) {
    double v = 0;
    const auto res = fast_float::from_chars(s.data(), s.data() + s.size(), v);
    ESCALA_CHECK(res.ec == std::errc() && res.ptr == s.data() + s.size(), kInvalidArgument,
                 "outlier rule '{}': '{}' is not a number", text, s);
    return v;
  };
  if (key == "iqr") {
    r.method = Method::kIqr;
    r.k = value.empty() ? 1.5 : number(value);
  } else if (key == "z" || key == "zscore") {
    r.method = Method::kZScore;
    r.k = value.empty() ? 3.0 : number(value);
  } else if (key == "q" || key == "quantile") {
    r.method = Method::kQuantile;
    const std::size_t comma = value.find(',');
    ESCALA_CHECK(comma != std::string_view::npos, kInvalidArgument,
                 "outlier rule '{}': expected q=LO,HI", text);
    r.lo_quantile = number(value.substr(0, comma));
    r.hi_quantile = number(value.substr(comma + 1));
    ESCALA_CHECK(r.lo_quantile >= 0 && r.lo_quantile < r.hi_quantile && r.hi_quantile <= 1,
                 kInvalidArgument, "outlier rule '{}': need 0 <= LO < HI <= 1", text);
  } else {
    Throw(ErrorCode::kInvalidArgument, "outlier rule '{}': expected iqr=K, z=K or q=LO,HI", text);
  }
  ESCALA_CHECK(r.k > 0, kInvalidArgument, "outlier rule '{}': K must be > 0", text);
  return r;
}

std::vector<OutlierBounds> FindOutliers(const data::Table& t, std::span<const std::string> cols_in,
                                        const OutlierRule& rule, Communicator& comm) {
  std::vector<std::string> cols(cols_in.begin(), cols_in.end());
  if (cols.empty()) cols = data::NumericColumnNames(t);
  std::vector<OutlierBounds> out(cols.size());
  std::vector<NumericSummary> sums(cols.size());
  std::vector<QuantileSketch> sketches(cols.size(), QuantileSketch(2048));
  ParallelFor(cols.size(), 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t k = b; k < e; ++k) {
      const data::Column& c = t.column(cols[k]);
      ESCALA_CHECK(c.type() != data::DataType::kCategorical, kInvalidArgument,
                   "outliers: column '{}' is categorical", cols[k]);
      for (std::int64_t i = 0; i < c.size(); ++i) {
        const double v = c.GetDouble(i);
        sums[k].Add(v);
        if (std::isfinite(v)) sketches[k].Add(v);
      }
    }
  });
  for (std::size_t k = 0; k < cols.size(); ++k) {
    out[k].column = cols[k];
    if (rule.method == OutlierRule::Method::kZScore) {
      const NumericSummary s = AllMerge(sums[k], comm);
      const double sd = std::sqrt(s.population_variance());
      out[k].lo = s.mean() - rule.k * sd;
      out[k].hi = s.mean() + rule.k * sd;
    } else {
      const QuantileSketch q = AllMerge(sketches[k], comm);
      if (rule.method == OutlierRule::Method::kIqr) {
        const double qs[] = {0.25, 0.75};
        const auto v = q.Quantiles(qs);
        out[k].lo = v[0] - rule.k * (v[1] - v[0]);
        out[k].hi = v[1] + rule.k * (v[1] - v[0]);
      } else {
        const double qs[] = {rule.lo_quantile, rule.hi_quantile};
        const auto v = q.Quantiles(qs);
        out[k].lo = v[0];
        out[k].hi = v[1];
      }
    }
    const data::Column& c = t.column(cols[k]);
    std::int64_t counts[2] = {0, 0};
    for (std::int64_t i = 0; i < c.size(); ++i) {
      const double v = c.GetDouble(i);
      if (v < out[k].lo) ++counts[0];
      if (v > out[k].hi) ++counts[1];
    }
    comm.AllReduce(std::span<std::int64_t>(counts, 2), ReduceOp::kSum);
    out[k].below = counts[0];
    out[k].above = counts[1];
  }
  return out;
}

data::Table HandleOutliers(const data::Table& t, std::span<const std::string> columns,
                           const OutlierRule& rule, OutlierAction action, Communicator& comm,
                           std::vector<OutlierBounds>* bounds_out) {
  const auto bounds = FindOutliers(t, columns, rule, comm);
  if (bounds_out != nullptr) *bounds_out = bounds;
  if (action == OutlierAction::kDrop) {
    std::vector<std::int64_t> keep;
    for (std::int64_t i = 0; i < t.num_rows(); ++i) {
      bool ok = true;
      for (const auto& b : bounds) {
        const double v = t.column(b.column).GetDouble(i);
        if (v < b.lo || v > b.hi) {
          ok = false;
          break;
        }
      }
      if (ok) keep.push_back(i);
    }
    return t.Take(keep);
  }
  data::Table out = t;
  for (const auto& b : bounds) {
    data::Column& c = out.mutable_column(out.ColumnIndex(b.column));
    switch (c.type()) {
      case data::DataType::kFloat32:
        for (float& v : c.mutable_f32()) {
          if (!std::isnan(v))
            v = static_cast<float>(std::clamp(static_cast<double>(v), b.lo, b.hi));
        }
        break;
      case data::DataType::kFloat64:
        for (double& v : c.mutable_f64()) {
          if (!std::isnan(v)) v = std::clamp(v, b.lo, b.hi);
        }
        break;
      case data::DataType::kInt64: {
        const auto lo = static_cast<std::int64_t>(std::ceil(b.lo));
        const auto hi = static_cast<std::int64_t>(std::floor(b.hi));
        auto vals = c.mutable_i64();
        for (std::int64_t i = 0; i < c.size(); ++i) {
          if (!c.is_missing(i))
            vals[static_cast<std::size_t>(i)] =
                std::clamp(vals[static_cast<std::size_t>(i)], lo, hi);
        }
        break;
      }
      case data::DataType::kCategorical:
        break;
    }
  }
  return out;
}

}  // namespace escala::features
