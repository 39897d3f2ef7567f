#include "escala/features/summary.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "escala/core/error.h"
#include "escala/core/parallel.h"
#include "escala/features/cleaning.h"
#include "escala/features/correlation.h"

namespace escala::features {

namespace {

constexpr std::int64_t kChunk = 4096;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// One rank holding at most this many rows computes exact quantiles by selection (a copy of one
// column per thread, 8 bytes a value) rather than through the sketch.
constexpr std::int64_t kExactQuantileRows = std::int64_t{1} << 25;

// Quantiles of v (finite values, reordered in place) at ascending qs, interpolating linearly
// between order statistics at position q (n - 1) as numpy and pandas do. O(n) per quantile.
void SelectQuantiles(std::vector<double>& v, std::span<const double> qs, double* out) {
  const std::size_t n = v.size();
  std::size_t begin = 0;
  for (std::size_t i = 0; i < qs.size(); ++i) {
    if (n == 0) {
      out[i] = kNaN;
      continue;
    }
    const double pos = std::clamp(qs[i], 0.0, 1.0) * static_cast<double>(n - 1);
    const auto lo = static_cast<std::size_t>(std::floor(pos));
    const double frac = pos - static_cast<double>(lo);
    const auto first = v.begin() + static_cast<std::ptrdiff_t>(begin);
    const auto nth = v.begin() + static_cast<std::ptrdiff_t>(lo);
    std::nth_element(first, nth, v.end());
    const double a = *nth;
    const double b = frac > 0 && lo + 1 < n ? *std::min_element(nth + 1, v.end()) : a;
    out[i] = a + frac * (b - a);
    begin = lo;  // everything from lo on is >= v[lo]: later quantiles select within it
  }
}

// Values of rows [b, e) of a numeric column as doubles (NaN when missing).
void ReadChunk(const data::Column& c, std::int64_t b, std::int64_t e, double* out) {
  const auto n = static_cast<std::size_t>(e - b);
  const auto start = static_cast<std::size_t>(b);
  switch (c.type()) {
    case data::DataType::kFloat32: {
      const auto v = c.f32();
      for (std::size_t i = 0; i < n; ++i) out[i] = v[start + i];
      break;
    }
    case data::DataType::kFloat64: {
      const auto v = c.f64();
      std::copy_n(v.data() + start, n, out);
      break;
    }
    case data::DataType::kInt64: {
      const auto v = c.i64();
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<double>(v[start + i]);
      break;
    }
    case data::DataType::kCategorical:
      std::fill_n(out, n, kNaN);
      return;
  }
  const auto mask = c.missing_mask();
  if (!mask.empty()) {
    for (std::size_t i = 0; i < n; ++i) {
      if (mask[start + i]) out[i] = kNaN;
    }
  }
}

std::string Num(double v) {
  if (std::isnan(v)) return "";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{:.0f}", v);
  return fmt::format("{:.6g}", v);
}

std::string JsonNum(double v) {
  return std::isfinite(v) ? fmt::format("{:.10g}", v) : "null";
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char ch : s) {
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (ch < 0x20) {
          out += fmt::format("\\u{:04x}", ch);
        } else {
          out.push_back(static_cast<char>(ch));
        }
    }
  }
  return out + "\"";
}

std::string Html(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(ch);
    }
  }
  return out;
}

// The k most frequent finite values of a numeric column, by count then value: O(n log n).
std::vector<FrequentItems::Item> ExactTopValues(const data::Column& c, std::size_t k) {
  std::vector<double> v(static_cast<std::size_t>(c.size()));
  ReadChunk(c, 0, c.size(), v.data());
  std::erase_if(v, [](double x) { return !std::isfinite(x); });
  std::sort(v.begin(), v.end());
  std::vector<FrequentItems::Item> items;
  for (std::size_t i = 0; i < v.size();) {
    std::size_t j = i;
    while (j < v.size() && v[j] == v[i]) ++j;
    items.push_back(
        {fmt::format("{}", v[i] == 0.0 ? 0.0 : v[i]), static_cast<std::int64_t>(j - i), 0});
    i = j;
  }
  const auto by_count = [](const FrequentItems::Item& a, const FrequentItems::Item& b) {
    return a.count > b.count;
  };
  const std::size_t keep = std::min(k, items.size());
  std::stable_sort(items.begin(), items.end(), by_count);  // ties stay in value order
  items.resize(keep);
  return items;
}

// What the correlation pass needs to know about the columns: the numeric columns, and where the
// label sits among them (a two-class categorical label joins as 0/1 after them).
struct CorrelationColumns {
  std::vector<int> num_cols;
  int label_pos = -1;
  bool label_binary_cat = false;
  std::string label_positive;
};

// Rows per co-moment block: a block is rows x d floats, kept near 4 MiB however wide the table.
std::int64_t BlockRows(int d) {
  return std::clamp<std::int64_t>((std::int64_t{1} << 20) / std::max(1, d), 1, kChunk);
}

// Pearson correlations over the numeric columns (pairwise complete), the label correlations and
// the strongest pairs, into s.
void Correlate(const data::Table& t, const SummaryOptions& options, const CorrelationColumns& cc,
               TableSummary& s, Communicator& comm) {
  const std::vector<int>& num_cols = cc.num_cols;
  const int label_pos = cc.label_pos;
  const bool label_binary_cat = cc.label_binary_cat;
  const std::string& label_positive = cc.label_positive;
  const int d = static_cast<int>(num_cols.size()) + (label_binary_cat ? 1 : 0);
  std::vector<double> shift;
  for (int j : num_cols) {
    const double m = s.columns[static_cast<std::size_t>(j)].mean;
    shift.push_back(std::isfinite(m) ? m : 0.0);
  }
  if (label_binary_cat) shift.push_back(0.5);
  const int li = label_binary_cat ? t.ColumnIndex(options.label) : -1;
  const std::int64_t n = t.num_rows();
  const std::size_t parts = static_cast<std::size_t>(std::max(1, NumThreads()));
  std::vector<CoMoments> partial(parts, CoMoments(shift));
  ParallelForStatic(
      static_cast<std::size_t>(n), parts, [&](std::size_t p, std::size_t b, std::size_t e) {
        const std::int64_t block_rows = BlockRows(d);
        MatrixF block(block_rows, d);
        std::vector<double> buf(static_cast<std::size_t>(block_rows));
        for (auto r = static_cast<std::int64_t>(b); r < static_cast<std::int64_t>(e);
             r += block_rows) {
          const std::int64_t end = std::min(static_cast<std::int64_t>(e), r + block_rows);
          const std::int64_t m = end - r;
          block.Resize(m, d);
          for (std::size_t k = 0; k < num_cols.size(); ++k) {
            ReadChunk(t.column(num_cols[k]), r, end, buf.data());
            for (std::int64_t i = 0; i < m; ++i)
              block(i, static_cast<std::int64_t>(k)) =
                  static_cast<float>(buf[static_cast<std::size_t>(i)]);
          }
          if (label_binary_cat) {
            const data::Column& lc = t.column(li);
            for (std::int64_t i = 0; i < m; ++i) {
              block(i, d - 1) =
                  lc.is_missing(r + i) ? NAN : (lc.category(r + i) == label_positive ? 1.0f : 0.0f);
            }
          }
          partial[p].AddBlock(std::as_const(block).view());
        }
      });
  CoMoments all = partial[0];
  for (std::size_t p = 1; p < parts; ++p) all.Merge(partial[p]);
  all = AllMerge(all, comm);
  const auto corr = all.Correlation();
  const int nn = static_cast<int>(num_cols.size());
  for (int a = 0; a < nn; ++a) {
    s.numeric.push_back(t.column(num_cols[static_cast<std::size_t>(a)]).name());
    for (int b = 0; b < nn; ++b) s.correlation.push_back(corr[static_cast<std::size_t>(a * d + b)]);
  }
  if (label_pos >= 0) {
    for (int a = 0; a < nn; ++a) {
      s.columns[static_cast<std::size_t>(num_cols[static_cast<std::size_t>(a)])].label_correlation =
          a == label_pos ? kNaN : corr[static_cast<std::size_t>(a * d + label_pos)];
    }
  }
  for (int a = 0; a < nn; ++a) {
    for (int b = a + 1; b < nn; ++b) {
      if (a == label_pos || b == label_pos) continue;
      const double r = corr[static_cast<std::size_t>(a * d + b)];
      if (std::isfinite(r))
        s.top_pairs.push_back(
            {s.numeric[static_cast<std::size_t>(a)], s.numeric[static_cast<std::size_t>(b)], r});
    }
  }
  std::sort(s.top_pairs.begin(), s.top_pairs.end(), [](const auto& x, const auto& y) {
    return std::fabs(x.r) != std::fabs(y.r) ? std::fabs(x.r) > std::fabs(y.r)
                                            : std::tie(x.a, x.b) < std::tie(y.a, y.b);
  });
  if (s.top_pairs.size() > static_cast<std::size_t>(options.top_pairs)) {
    s.top_pairs.resize(static_cast<std::size_t>(options.top_pairs));
  }
}

// The numeric columns for correlations; a two-class categorical label joins them as 0/1.
CorrelationColumns FindCorrelationColumns(const data::Table& t, const SummaryOptions& options,
                                          const TableSummary& s) {
  CorrelationColumns cc;
  std::vector<int>& num_cols = cc.num_cols;
  for (int j = 0; j < t.num_columns(); ++j) {
    if (t.column(j).type() != data::DataType::kCategorical) num_cols.push_back(j);
  }
  if (options.label.empty()) return cc;
  const int li = t.ColumnIndex(options.label);
  const auto it = std::find(num_cols.begin(), num_cols.end(), li);
  if (it != num_cols.end()) {
    cc.label_pos = static_cast<int>(it - num_cols.begin());
    return cc;
  }
  const ColumnSummary& label = s.columns[static_cast<std::size_t>(li)];
  if (label.distinct_exact && label.distinct == 2 && label.top.size() == 2) {
    cc.label_binary_cat = true;
    cc.label_positive = std::max(label.top[0].key, label.top[1].key);
    cc.label_pos = static_cast<int>(num_cols.size());
  }
  return cc;
}

// Pass 2: histograms and IQR outliers per numeric column (columns in parallel, then summed over
// the ranks in column order).
void Histograms(const data::Table& t, const std::vector<int>& num_cols, int bins, TableSummary& s,
                Communicator& comm) {
  std::vector<std::vector<std::int64_t>> hists(num_cols.size());
  ParallelFor(num_cols.size(), 1, [&](std::size_t b, std::size_t e) {
    std::vector<double> buf(kChunk);
    for (std::size_t k = b; k < e; ++k) {
      const int j = num_cols[k];
      const ColumnSummary& cs = s.columns[static_cast<std::size_t>(j)];
      const data::Column& c = t.column(j);
      auto& hist = hists[k];
      hist.assign(static_cast<std::size_t>(bins) + 1, 0);  // last: outliers
      const double lo = cs.min, hi = cs.max;
      const double fence_lo = cs.q25 - 1.5 * (cs.q75 - cs.q25);
      const double fence_hi = cs.q75 + 1.5 * (cs.q75 - cs.q25);
      for (std::int64_t r = 0; r < c.size(); r += kChunk) {
        const std::int64_t end = std::min(c.size(), r + kChunk);
        ReadChunk(c, r, end, buf.data());
        for (std::int64_t i = 0; i < end - r; ++i) {
          const double v = buf[static_cast<std::size_t>(i)];
          if (!std::isfinite(v)) continue;
          int bin = hi > lo ? static_cast<int>((v - lo) / (hi - lo) * bins) : 0;
          bin = std::clamp(bin, 0, bins - 1);
          ++hist[static_cast<std::size_t>(bin)];
          if (v < fence_lo || v > fence_hi) ++hist.back();
        }
      }
    }
  });
  for (std::size_t k = 0; k < num_cols.size(); ++k) {
    auto& hist = hists[k];
    comm.AllReduce(std::span<std::int64_t>(hist), ReduceOp::kSum);
    ColumnSummary& cs = s.columns[static_cast<std::size_t>(num_cols[k])];
    cs.outliers = hist.back();
    hist.pop_back();
    cs.histogram = std::move(hist);
  }
}

void ValidateOptions(const SummaryOptions& o) {
  ESCALA_CHECK(o.histogram_bins >= 1 && o.histogram_bins <= kMaxHistogramBins, kInvalidArgument,
               "histogram bins (--bins) must be in [1, {}], got {}", kMaxHistogramBins,
               o.histogram_bins);
  ESCALA_CHECK(o.top_k >= 0 && o.top_k <= kMaxTopValues, kInvalidArgument,
               "top values per column (--top) must be in [0, {}], got {}", kMaxTopValues, o.top_k);
  ESCALA_CHECK(o.top_pairs >= 0, kInvalidArgument, "top_pairs must be >= 0, got {}", o.top_pairs);
  ESCALA_CHECK(o.sketch_k >= 8, kInvalidArgument, "sketch_k must be >= 8, got {}", o.sketch_k);
  ESCALA_CHECK(o.max_correlation_columns >= 0, kInvalidArgument,
               "max_correlation_columns must be >= 0, got {}", o.max_correlation_columns);
}

}  // namespace

TableSummary Summarize(const data::Table& t, const SummaryOptions& options, Communicator& comm) {
  ValidateOptions(options);
  TableSummary s;
  s.label = options.label;
  if (!options.label.empty()) t.column(options.label);  // unknown label: a clear error now
  s.rows = comm.AllReduceScalar<std::int64_t>(t.num_rows(), ReduceOp::kSum);
  const int ncol = t.num_columns();
  s.columns.resize(static_cast<std::size_t>(ncol));

  // Pass 1: moments, quantile sketches, distinct counts, frequent values, per column in parallel.
  std::vector<NumericSummary> sums(static_cast<std::size_t>(ncol));
  std::vector<QuantileSketch> sketches(static_cast<std::size_t>(ncol),
                                       QuantileSketch(options.sketch_k));
  std::vector<DistinctCounter> distinct(static_cast<std::size_t>(ncol));
  std::vector<FrequentItems> frequent;
  // A numeric column's values are counted exactly up to this many distinct values (a column
  // with more is continuous and shows no top values); ~64 MiB of counters at most in all.
  const auto numeric_distinct =
      static_cast<std::size_t>(std::clamp((1 << 20) / std::max(1, ncol), 64, 4096));
  for (int j = 0; j < ncol; ++j) {
    const bool cat = t.column(j).type() == data::DataType::kCategorical;
    frequent.emplace_back(cat ? 4096 : numeric_distinct,
                          cat ? FrequentItems::Mode::kCategorical : FrequentItems::Mode::kNumeric);
  }
  const bool exact_quantiles = comm.size() == 1 && t.num_rows() <= kExactQuantileRows;
  const double kQuartiles[] = {0.25, 0.5, 0.75};
  std::vector<std::array<double, 3>> quartiles(static_cast<std::size_t>(ncol));
  ParallelFor(static_cast<std::size_t>(ncol), 1, [&](std::size_t b, std::size_t e) {
    std::vector<double> buf(kChunk);
    std::vector<double> values;  // exact_quantiles: the column's finite values
    for (std::size_t j = b; j < e; ++j) {
      const data::Column& c = t.column(static_cast<int>(j));
      if (c.type() == data::DataType::kCategorical) {
        for (std::int64_t i = 0; i < c.size(); ++i) {
          if (c.is_missing(i)) {
            sums[j].AddMissing();
            continue;
          }
          const std::string_view v = c.category(i);
          distinct[j].AddString(v);
          frequent[j].Add(v);
        }
        continue;
      }
      values.clear();
      for (std::int64_t r = 0; r < c.size(); r += kChunk) {
        const std::int64_t end = std::min(c.size(), r + kChunk);
        ReadChunk(c, r, end, buf.data());
        const auto n = static_cast<std::size_t>(end - r);
        sums[j].AddBatch(std::span<const double>(buf.data(), n));
        for (std::size_t i = 0; i < n; ++i) {
          const double v = buf[i];
          if (!std::isfinite(v)) continue;
          if (exact_quantiles) {
            values.push_back(v);
          } else {
            sketches[j].Add(v);
          }
          distinct[j].AddDouble(v);
          frequent[j].AddNumber(v);
        }
      }
      if (exact_quantiles) SelectQuantiles(values, kQuartiles, quartiles[j].data());
    }
  });
  for (int j = 0; j < ncol; ++j) {
    const auto jj = static_cast<std::size_t>(j);
    sums[jj] = AllMerge(sums[jj], comm);
    if (!exact_quantiles) sketches[jj] = AllMerge(sketches[jj], comm);
    distinct[jj] = AllMerge(distinct[jj], comm);
    frequent[jj] = AllMerge(frequent[jj], comm);
    const data::Column& c = t.column(j);
    ColumnSummary& cs = s.columns[jj];
    cs.name = c.name();
    cs.type = c.type();
    cs.missing = sums[jj].missing();
    cs.infinite = sums[jj].infinite();
    cs.distinct = distinct[jj].Estimate();
    cs.distinct_exact = distinct[jj].exact();
    cs.top = frequent[jj].Top(static_cast<std::size_t>(options.top_k));
    if (frequent[jj].saturated() && exact_quantiles &&
        cs.distinct < 0.5 * static_cast<double>(sums[jj].count())) {
      // Too many distinct values to count on the way, but they repeat (codes, zip codes): one
      // rank has the whole column, so count them exactly from a sorted copy.
      cs.top = ExactTopValues(c, static_cast<std::size_t>(options.top_k));
    }
    cs.label_correlation = kNaN;
    if (c.type() == data::DataType::kCategorical) {
      cs.count = frequent[jj].total();
      cs.mean = cs.stddev = cs.min = cs.q25 = cs.median = cs.q75 = cs.max = kNaN;
      continue;
    }
    cs.count = sums[jj].count();
    cs.mean = sums[jj].mean();
    cs.stddev = sums[jj].stddev();
    cs.min = sums[jj].min();
    cs.max = sums[jj].max();
    const std::array<double, 3> q = exact_quantiles ? quartiles[jj] : [&] {
      const auto v = sketches[jj].Quantiles(kQuartiles);
      return std::array<double, 3>{v[0], v[1], v[2]};
    }();
    cs.q25 = q[0];
    cs.median = q[1];
    cs.q75 = q[2];
    cs.quantiles_exact = exact_quantiles || sketches[jj].exact();
  }

  const CorrelationColumns cc = FindCorrelationColumns(t, options, s);
  Histograms(t, cc.num_cols, options.histogram_bins, s, comm);
  const int d = static_cast<int>(cc.num_cols.size()) + (cc.label_binary_cat ? 1 : 0);
  if (d > options.max_correlation_columns + (cc.label_binary_cat ? 1 : 0)) {
    s.correlation_skipped = static_cast<std::int64_t>(cc.num_cols.size());
  } else if (d > 0) {
    Correlate(t, options, cc, s, comm);
  }
  if (options.duplicates) s.duplicate_rows = FindDuplicates(t, comm).global_duplicates;
  return s;
}

std::string FormatText(const TableSummary& s) {
  std::string out = fmt::format("{} rows, {} columns", s.rows, s.columns.size());
  if (s.duplicate_rows >= 0) out += fmt::format(", {} duplicate rows", s.duplicate_rows);
  out += "\n\n";
  out += fmt::format(
      "{:<24} {:<11} {:>9} {:>8} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>9} {:>8}  "
      "{}\n",
      "column", "type", "count", "missing", "mean", "std", "min", "25%", "50%", "75%", "max",
      "distinct", "outliers", "top");
  for (const auto& c : s.columns) {
    std::string top;
    if (!c.top.empty()) top = fmt::format("{} ({})", c.top[0].key, c.top[0].count);
    out += fmt::format(
        "{:<24} {:<11} {:>9} {:>8} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>9} {:>8}  "
        "{}\n",
        c.name.size() > 24 ? c.name.substr(0, 23) + "~" : c.name, data::DataTypeName(c.type),
        c.count, c.missing, Num(c.mean), Num(c.stddev), Num(c.min), Num(c.q25), Num(c.median),
        Num(c.q75), Num(c.max),
        fmt::format("{}{}", c.distinct_exact ? "" : "~", Num(std::round(c.distinct))),
        c.type == data::DataType::kCategorical ? std::string() : std::to_string(c.outliers), top);
  }
  if (!s.label.empty()) {
    std::vector<std::pair<double, std::string>> lc;
    for (const auto& c : s.columns) {
      if (std::isfinite(c.label_correlation)) lc.emplace_back(c.label_correlation, c.name);
    }
    std::sort(lc.begin(), lc.end(),
              [](const auto& a, const auto& b) { return std::fabs(a.first) > std::fabs(b.first); });
    if (!lc.empty()) {
      out += fmt::format("\ncorrelation with the label '{}':\n", s.label);
      for (const auto& [r, name] : lc) out += fmt::format("  {:<24} {:+.4f}\n", name, r);
    }
  }
  if (s.correlation_skipped > 0) {
    out += fmt::format(
        "\ncorrelations skipped: {} numeric columns (more than the limit of the correlation "
        "matrix; its memory grows with columns^2)\n",
        s.correlation_skipped);
  }
  if (!s.top_pairs.empty()) {
    out += "\nstrongest pairwise correlations:\n";
    for (const auto& p : s.top_pairs)
      out += fmt::format("  {:<24} {:<24} {:+.4f}\n", p.a, p.b, p.r);
  }
  return out;
}

std::string FormatJson(const TableSummary& s) {
  std::string out = fmt::format(
      "{{\n  \"rows\": {},\n  \"duplicate_rows\": {},\n  \"label\": {},\n  \"columns\": [\n",
      s.rows, s.duplicate_rows, JsonString(s.label));
  for (std::size_t i = 0; i < s.columns.size(); ++i) {
    const auto& c = s.columns[i];
    std::string top = "[";
    for (std::size_t k = 0; k < c.top.size(); ++k) {
      top += fmt::format("{}{{\"value\": {}, \"count\": {}}}", k ? ", " : "",
                         JsonString(c.top[k].key), c.top[k].count);
    }
    top += "]";
    std::string hist = "[";
    for (std::size_t k = 0; k < c.histogram.size(); ++k)
      hist += fmt::format("{}{}", k ? ", " : "", c.histogram[k]);
    hist += "]";
    out += fmt::format(
        "    {{\"name\": {}, \"type\": \"{}\", \"count\": {}, \"missing\": {}, \"infinite\": {}, "
        "\"mean\": {}, \"std\": {}, \"min\": {}, \"q25\": {}, \"median\": {}, \"q75\": {}, "
        "\"max\": {}, \"quantiles_exact\": {}, \"distinct\": {}, \"distinct_exact\": {}, "
        "\"outliers\": {}, \"label_correlation\": {}, \"top\": {}, \"histogram\": {}}}{}\n",
        JsonString(c.name), data::DataTypeName(c.type), c.count, c.missing, c.infinite,
        JsonNum(c.mean), JsonNum(c.stddev), JsonNum(c.min), JsonNum(c.q25), JsonNum(c.median),
        JsonNum(c.q75), JsonNum(c.max), c.quantiles_exact ? "true" : "false", JsonNum(c.distinct),
        c.distinct_exact ? "true" : "false", c.outliers, JsonNum(c.label_correlation), top, hist,
        i + 1 < s.columns.size() ? "," : "");
  }
  out += "  ],\n  \"numeric\": [";
  for (std::size_t i = 0; i < s.numeric.size(); ++i)
    out += (i ? ", " : "") + JsonString(s.numeric[i]);
  out += "],\n  \"correlation\": [";
  const std::size_t d = s.numeric.size();
  for (std::size_t i = 0; i < d; ++i) {
    out += i ? ",\n    [" : "\n    [";
    for (std::size_t j = 0; j < d; ++j) out += (j ? ", " : "") + JsonNum(s.correlation[i * d + j]);
    out += "]";
  }
  out += d ? "\n  ],\n" : "],\n";
  out += "  \"top_pairs\": [";
  for (std::size_t i = 0; i < s.top_pairs.size(); ++i) {
    const auto& p = s.top_pairs[i];
    out += fmt::format("{}{{\"a\": {}, \"b\": {}, \"r\": {}}}", i ? ", " : "", JsonString(p.a),
                       JsonString(p.b), JsonNum(p.r));
  }
  out += "]\n}\n";
  return out;
}

namespace {

std::string HistogramSvg(const ColumnSummary& c) {
  constexpr int kW = 220, kH = 70;
  std::string svg = fmt::format("<svg width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\">", kW,
                                kH + 14, kW, kH + 14);
  std::vector<std::pair<std::string, std::int64_t>> bars;
  if (c.type == data::DataType::kCategorical) {
    for (const auto& item : c.top) bars.emplace_back(item.key, item.count);
  } else {
    for (std::size_t i = 0; i < c.histogram.size(); ++i) bars.emplace_back("", c.histogram[i]);
  }
  if (bars.empty()) return svg + "</svg>";
  std::int64_t peak = 1;
  for (const auto& b : bars) peak = std::max(peak, b.second);
  const double w = static_cast<double>(kW) / static_cast<double>(bars.size());
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const double h = static_cast<double>(bars[i].second) / static_cast<double>(peak) * kH;
    svg += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"#4a7ab8\">"
        "<title>{}{}</title></rect>",
        static_cast<double>(i) * w + 0.5, kH - h, std::max(w - 1.0, 0.5), h,
        bars[i].first.empty() ? "" : Html(bars[i].first) + ": ", bars[i].second);
  }
  if (c.type != data::DataType::kCategorical) {
    svg +=
        fmt::format("<text x=\"0\" y=\"{}\" font-size=\"10\">{}</text>", kH + 12, Html(Num(c.min)));
    svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text>", kW,
                       kH + 12, Html(Num(c.max)));
  } else {
    svg += fmt::format("<text x=\"0\" y=\"{}\" font-size=\"10\">top {} of {}</text>", kH + 12,
                       bars.size(), Num(std::round(c.distinct)));
  }
  return svg + "</svg>";
}

std::string HeatmapSvg(const TableSummary& s) {
  const std::size_t d = s.numeric.size();
  if (d == 0) return "";
  const int cell = d > 40 ? 10 : 22;
  const int label_w = 140;
  const int size = label_w + static_cast<int>(d) * cell;
  std::string svg =
      fmt::format("<svg width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\">", size, size, size, size);
  for (std::size_t i = 0; i < d; ++i) {
    svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
                       label_w - 4, label_w + static_cast<int>(i) * cell + cell * 0.7,
                       Html(s.numeric[i]));
    svg += fmt::format(
        "<text font-size=\"10\" transform=\"translate({},{}) rotate(-60)\">{}</text>",
        label_w + static_cast<int>(i) * cell + cell * 0.6, label_w - 4, Html(s.numeric[i]));
    for (std::size_t j = 0; j < d; ++j) {
      const double r = s.correlation[i * d + j];
      std::string fill = "#dddddd";
      if (std::isfinite(r)) {
        // Blue for negative, red for positive, white at 0.
        const int k = static_cast<int>(255 * (1 - std::fabs(r)));
        fill = r >= 0 ? fmt::format("#ff{:02x}{:02x}", k, k) : fmt::format("#{:02x}{:02x}ff", k, k);
      }
      svg += fmt::format(
          "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{} / {}: "
          "{}</title></rect>",
          label_w + static_cast<int>(j) * cell, label_w + static_cast<int>(i) * cell, cell - 1,
          cell - 1, fill, Html(s.numeric[i]), Html(s.numeric[j]),
          std::isfinite(r) ? fmt::format("{:+.3f}", r) : "n/a");
    }
  }
  return svg + "</svg>";
}

}  // namespace

std::string FormatHtml(const TableSummary& s, const std::string& title) {
  std::string h = fmt::format(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title><style>"
      "body{{font-family:sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse;font-"
      "size:12px}}"
      "td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right;vertical-align:middle}}"
      "th{{background:#f0f0f0}}td.name{{text-align:left;font-weight:bold}}h2{{margin-top:32px}}"
      "</style></head><body>\n<h1>{}</h1>\n<p>{} rows, {} columns{}.</p>\n",
      Html(title), Html(title), s.rows, s.columns.size(),
      s.duplicate_rows >= 0 ? fmt::format(", {} exact duplicate rows", s.duplicate_rows) : "");
  h += "<h2>Columns</h2>\n<table><tr><th>column</th><th>type</th><th>count</th><th>missing</th>"
       "<th>mean</th><th>std</th><th>min</th><th>25%</th><th>50%</th><th>75%</th><th>max</th>"
       "<th>distinct</th><th>outliers (1.5 IQR)</th><th>top</th>";
  if (!s.label.empty()) h += "<th>corr. with " + Html(s.label) + "</th>";
  h += "<th>distribution</th></tr>\n";
  for (const auto& c : s.columns) {
    std::string top;
    for (std::size_t k = 0; k < c.top.size() && k < 3; ++k) {
      top += fmt::format("{}{} ({})", k ? "<br>" : "", Html(c.top[k].key), c.top[k].count);
    }
    const bool cat = c.type == data::DataType::kCategorical;
    h += fmt::format(
        "<tr><td class=\"name\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</"
        "td>",
        Html(c.name), data::DataTypeName(c.type), c.count, c.missing, Num(c.mean), Num(c.stddev),
        Num(c.min), Num(c.q25), Num(c.median), Num(c.q75), Num(c.max), c.distinct_exact ? "" : "~",
        Num(std::round(c.distinct)), cat ? "" : std::to_string(c.outliers), top);
    if (!s.label.empty()) {
      h += fmt::format("<td>{}</td>", std::isfinite(c.label_correlation)
                                          ? fmt::format("{:+.3f}", c.label_correlation)
                                          : "");
    }
    h += "<td>" + HistogramSvg(c) + "</td></tr>\n";
  }
  h += "</table>\n";
  if (!s.numeric.empty()) {
    h += "<h2>Correlations (Pearson, pairwise complete)</h2>\n" + HeatmapSvg(s) + "\n";
  }
  if (!s.top_pairs.empty()) {
    h += "<h2>Strongest pairs</h2>\n<table><tr><th>column</th><th>column</th><th>r</th></tr>\n";
    for (const auto& p : s.top_pairs) {
      h += fmt::format(
          "<tr><td class=\"name\">{}</td><td class=\"name\">{}</td><td>{:+.4f}</td></tr>\n",
          Html(p.a), Html(p.b), p.r);
    }
    h += "</table>\n";
  }
  h += "<p style=\"color:#888;font-size:11px\">Generated by escala stats.</p>\n</body></html>\n";
  return h;
}

}  // namespace escala::features
