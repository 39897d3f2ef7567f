// The encoders: onehot(cols..., max_categories=K, unknown=error|ignore|other),
// ordinal(cols..., unknown=error|use_value), hash(cols..., buckets=N), and the discretisers
// bucketize(col, boundaries=B1,B2,...) and quantile_bins(cols..., bins=K).
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "escala/core/error.h"
#include "features/pipeline_steps.h"

namespace escala::features::internal {

namespace {

// ---- onehot, ordinal ---------------------------------------------------------------------------

void CheckVocabulary(const StepDef& d) {
  const double m = d.number("max_categories", 0);
  ESCALA_CHECK(m >= 0 && m <= (1 << 24) && m == std::floor(m), kInvalidArgument,
               "pipeline step '{}': max_categories must be an integer >= 0 (0: all), got {}",
               d.text, m);
}

// The vocabulary of a column: its categories by name. onehot keeps only the max_categories most
// frequent (ties by name), the rest then counting as unknown, as scikit-learn's encoders do.
template <bool kOneHot>
void FitVocabulary(StepFitter& f, const std::string& col, const FrequentItems& items,
                   std::size_t max_categories) {
  ESCALA_CHECK(items.exact(), kInvalidArgument,
               "pipeline step '{}': column '{}' has more than {} categories; use hash({})",
               f.def.text, col, f.options().max_tracked_categories, col);
  auto top = items.Top(std::numeric_limits<std::size_t>::max());
  if (kOneHot && max_categories > 0 && top.size() > max_categories) {
    top.resize(max_categories);
    if (f.step.options["unknown"] == "error") f.step.options["unknown"] = "other";
  }
  std::vector<std::string> vocab;
  for (const auto& item : top) vocab.push_back(item.key);
  std::sort(vocab.begin(), vocab.end());
  pb::ColumnParams p;
  p.set_column(col);
  for (const auto& v : vocab) p.add_categories(v);
  f.step.params.push_back(std::move(p));
}

template <bool kOneHot>
void FitEncoder(StepFitter& f) {
  f.step.columns = f.Resolve(false, true);
  const std::string unknown = f.def.get("unknown", "error");
  ParseUnknown(unknown, f.def.text);
  f.step.options["unknown"] = unknown;
  const auto max_categories = static_cast<std::size_t>(f.def.number("max_categories", 0));
  const auto categories = f.Categories(f.step.columns);
  for (std::size_t i = 0; i < categories.size(); ++i) {
    FitVocabulary<kOneHot>(f, f.step.columns[i], categories[i], max_categories);
  }
}

// The op of one column: its vocabulary sorted by hash, and its output slots (one per category,
// and __other__ under unknown=other, for onehot; the code, for ordinal).
template <bool kOneHot>
Op EncoderOp(StepCompiler& c, int id, const std::string& col, const pb::ColumnParams& p,
             Unknown unknown) {
  Op op = c.NewOp(kOneHot ? OpKind::kOneHot : OpKind::kOrdinal, id);
  op.unknown = unknown;
  for (int k = 0; k < p.categories_size(); ++k) {
    const std::string& cat = p.categories(k);
    const bool is_missing = cat == kMissingName;
    op.vocab.emplace_back(is_missing ? kMissingCat : CatHash(cat), k);
    op.vocab_names.push_back(cat);
    if (is_missing) op.missing_index = k;
    if (kOneHot) op.outs.push_back(c.AddSlot(col + "=" + cat, false));
  }
  std::sort(op.vocab.begin(), op.vocab.end());
  if (kOneHot && unknown == Unknown::kOther) {
    op.other_index = static_cast<int>(op.outs.size());
    op.outs.push_back(c.AddSlot(col + "=__other__", false));
  }
  if (!kOneHot) {
    const auto value = c.step.options.find("value");
    op.a = value != c.step.options.end() ? std::stof(value->second) : -1.0f;
    op.outs.push_back(c.AddSlot(col, false));
  }
  return op;
}

template <bool kOneHot>
void CompileEncoder(StepCompiler& c) {
  const auto it = c.step.options.find("unknown");
  const Unknown unknown =
      ParseUnknown(it != c.step.options.end() ? it->second : "error", c.step.spec);
  for (std::size_t i = 0; i < c.step.columns.size(); ++i) {
    const std::string& col = c.step.columns[i];
    const int id = c.SlotOf(col);
    Op op = EncoderOp<kOneHot>(c, id, col, c.Param(i), unknown);
    c.ReplaceLive(id, op.outs);
    c.Emit(std::move(op));
  }
}

// ---- hash --------------------------------------------------------------------------------------

void CheckHash(const StepDef& d) {
  const double buckets = d.number("buckets", 32);
  ESCALA_CHECK(buckets >= 1 && buckets <= (1 << 20) && buckets == std::floor(buckets),
               kInvalidArgument, "pipeline step '{}': buckets must be an integer in [1, {}]",
               d.text, 1 << 20);
}

void FitHash(StepFitter& f) {
  f.step.columns = f.Resolve(false, true);
  ESCALA_CHECK(!f.step.columns.empty(), kInvalidArgument,
               "pipeline step '{}': no categorical columns to hash", f.def.text);
  f.step.options["buckets"] = fmt::format("{}", static_cast<int>(f.def.number("buckets", 32)));
}

void CompileHash(StepCompiler& c) {
  const int buckets = c.StoredInt("buckets", 1, 1 << 20);
  Op op = c.NewOp(OpKind::kHash);
  for (const auto& col : c.step.columns) {
    op.ins.push_back(c.SlotOf(col));
    op.col_hashes.push_back(CatHash(col));
  }
  for (int k = 0; k < buckets; ++k) op.outs.push_back(c.AddSlot(fmt::format("hash_{}", k), false));
  // The hashed columns are replaced by the buckets, placed where the first one was.
  auto& live = c.live();
  const auto first = std::find(live.begin(), live.end(), op.ins[0]) - live.begin();
  for (int id : op.ins) c.EraseLive(id);
  live.insert(
      live.begin() + std::min<std::ptrdiff_t>(first, static_cast<std::ptrdiff_t>(live.size())),
      op.outs.begin(), op.outs.end());
  c.Emit(std::move(op));
}

// ---- bucketize, quantile_bins ------------------------------------------------------------------

void CheckBucketize(const StepDef& d) {
  const auto b = d.numbers("boundaries");
  ESCALA_CHECK(!b.empty() && std::is_sorted(b.begin(), b.end()), kInvalidArgument,
               "pipeline step '{}': boundaries=B1,B2,... must be given in increasing order",
               d.text);
}

void FitBucketize(StepFitter& f) {
  f.step.columns = f.Resolve(true, false);
  ESCALA_CHECK(!f.def.positional.empty(), kInvalidArgument,
               "pipeline step '{}': name the column(s) to bucketize", f.def.text);
  for (const auto& c : f.step.columns) f.AddParams(c, f.def.numbers("boundaries"));
}

// Edges at the quantiles 1/bins, ..., (bins-1)/bins; repeated edges (a heavy value) kept once.
void FitQuantileBins(StepFitter& f) {
  const auto& cols = f.step.columns = f.Resolve(true, false);
  const int bins = static_cast<int>(f.def.number("bins", 10));
  ESCALA_CHECK(bins >= 2, kInvalidArgument, "pipeline step '{}': bins must be >= 2", f.def.text);
  const auto sks = f.Sketches(cols);
  for (std::size_t i = 0; i < cols.size(); ++i) {
    std::vector<double> qs;
    for (int b = 1; b < bins; ++b) qs.push_back(static_cast<double>(b) / bins);
    auto edges = sks[i].Quantiles(qs);
    edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
    f.AddParams(cols[i], edges);
  }
}

void CompileBuckets(StepCompiler& c) {
  for (std::size_t i = 0; i < c.step.columns.size(); ++i) {
    Op op = c.NewOp(OpKind::kBucketize, c.SlotOf(c.step.columns[i]));
    for (double v : c.Param(i).values()) op.boundaries.push_back(static_cast<float>(v));
    c.Emit(std::move(op));
  }
}

}  // namespace

const StepKind kOneHotStep = {.name = "onehot",
                              .check = CheckVocabulary,
                              .fit = FitEncoder<true>,
                              .compile = CompileEncoder<true>};
const StepKind kOrdinalStep = {.name = "ordinal",
                               .check = CheckVocabulary,
                               .fit = FitEncoder<false>,
                               .compile = CompileEncoder<false>};
const StepKind kHashStep = {
    .name = "hash", .check = CheckHash, .fit = FitHash, .compile = CompileHash};
const StepKind kBucketizeStep = {
    .name = "bucketize", .check = CheckBucketize, .fit = FitBucketize, .compile = CompileBuckets};
const StepKind kQuantileBinsStep = {
    .name = "quantile_bins", .check = nullptr, .fit = FitQuantileBins, .compile = CompileBuckets};

}  // namespace escala::features::internal
