#include "escala/features/pipeline.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <unordered_map>

#include <fmt/format.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "escala/core/error.h"
#include "escala/core/parallel.h"
#include "escala/features/expression.h"
#include "escala/features/sketches.h"
#include "escala/features/v1/pipeline.pb.h"
#include "features/pipeline_impl.h"
#include "features/pipeline_spec.h"

namespace escala::features {

namespace pb = escala::features::v1;
using internal::CatHash;
using internal::FindLive;
using internal::FittedStep;
using internal::JoinNames;
using internal::kBlock;
using internal::kMissingCat;
using internal::kMissingName;
using internal::LiveNames;
using internal::Op;
using internal::OpKind;
using internal::ParseUnknown;
using internal::RunContext;
using internal::Slot;
using internal::StepDef;
using internal::Store;
using internal::UnaryFn;
using internal::Unknown;

namespace internal {

std::string JoinNames(const std::vector<std::string>& names, std::size_t limit) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < limit; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > limit) s += fmt::format(", ... ({} in all)", names.size());
  return s;
}

int FindLive(const std::vector<Slot>& slots, const std::vector<int>& live, std::string_view name) {
  for (int id : live) {
    if (slots[static_cast<std::size_t>(id)].name == name) return id;
  }
  return -1;
}

std::vector<std::string> LiveNames(const std::vector<Slot>& slots, const std::vector<int>& live) {
  std::vector<std::string> names;
  for (int id : live) names.push_back(slots[static_cast<std::size_t>(id)].name);
  return names;
}

Unknown ParseUnknown(const std::string& s, const std::string& step) {
  if (s == "error") return Unknown::kError;
  if (s == "ignore") return Unknown::kIgnore;
  if (s == "other") return Unknown::kOther;
  if (s == "use_value") return Unknown::kUseValue;
  Throw(ErrorCode::kInvalidArgument,
        "pipeline step '{}': unknown= must be error, ignore, other or use_value, got '{}'", step,
        s);
}

}  // namespace internal

struct TransformScratch::Data {
  std::vector<std::vector<float>> num;
  std::vector<std::vector<std::uint64_t>> cat;
  std::vector<std::vector<std::uint64_t>> dict_hashes;
  ExpressionScratch expr;
  std::vector<const float*> ptrs;
  Store store;
};

TransformScratch::TransformScratch() : data(std::make_unique<Data>()) {}
TransformScratch::~TransformScratch() = default;
TransformScratch::TransformScratch(TransformScratch&&) noexcept = default;
TransformScratch& TransformScratch::operator=(TransformScratch&&) noexcept = default;

namespace {

// An integer option of a fitted step, as stored in a bundle: a crafted or damaged one is refused
// by name (kDataLoss) rather than failing inside the standard library.
int StoredInt(const FittedStep& s, const std::string& key, int lo, int hi) {
  const auto it = s.options.find(key);
  int v = 0;
  const bool ok = it != s.options.end() &&
                  std::from_chars(it->second.data(), it->second.data() + it->second.size(), v).ec ==
                      std::errc() &&
                  v >= lo && v <= hi;
  ESCALA_CHECK(ok, kDataLoss,
               "pipeline step {}: option {} is missing or not an integer in [{}, {}]", s.kind, key,
               lo, hi);
  return v;
}

}  // namespace

// Builds the ops of one fitted step, updating the live slot list. Used while fitting (one step
// at a time) and when compiling a parsed pipeline, so both run exactly the same ops.
void Pipeline::Impl::CompileStep(int index, const FittedStep& s, std::vector<int>* live) {
  auto slot_of = [&](const std::string& col) {
    const int id = FindLive(slots, *live, col);
    ESCALA_CHECK(id >= 0, kInvalidArgument,
                 "pipeline step '{}': no column '{}' at this point (columns: {})", s.spec, col,
                 JoinNames(LiveNames(slots, *live)));
    return id;
  };
  auto replace_live = [&](int old_id, std::vector<int> new_ids) {
    auto it = std::find(live->begin(), live->end(), old_id);
    const auto pos = it - live->begin();
    live->erase(it);
    live->insert(live->begin() + pos, new_ids.begin(), new_ids.end());
  };
  auto param = [&](std::size_t i) -> const pb::ColumnParams& {
    ESCALA_CHECK(i < s.params.size(), kDataLoss, "pipeline step '{}': missing fitted parameters",
                 s.spec);
    return s.params[i];
  };
  auto value = [&](const pb::ColumnParams& p, int i) {
    ESCALA_CHECK(i < p.values_size(), kDataLoss,
                 "pipeline step '{}': fitted parameters for '{}' are incomplete", s.spec,
                 p.column());
    return static_cast<float>(p.values(i));
  };
  const std::string& kind = s.kind;
  if (kind == "drop") {
    for (const auto& col : s.columns) {
      const int id = slot_of(col);
      live->erase(std::find(live->begin(), live->end(), id));
    }
    return;
  }
  if (kind == "impute") {
    const bool indicator = s.options.count("indicator") && s.options.at("indicator") == "true";
    for (std::size_t i = 0; i < s.columns.size(); ++i) {
      const int id = slot_of(s.columns[i]);
      const auto& p = param(i);
      const bool cat = slots[static_cast<std::size_t>(id)].categorical;
      if (indicator) {
        Op ind{.kind = OpKind::kIndicator, .step = index, .in = id};
        ind.out = AddSlot(s.columns[i] + "_missing", false);
        auto it = std::find(live->begin(), live->end(), id);
        live->insert(it + 1, ind.out);
        ops.push_back(ind);
      }
      Op op{.kind = cat ? OpKind::kImputeCat : OpKind::kImputeNum, .step = index, .in = id};
      if (cat) {
        op.hash = CatHash(p.text());
      } else {
        op.a = value(p, 0);
      }
      ops.push_back(op);
      // A numeric slot no longer holds the raw values. A categorical one still does wherever a
      // value was present (only missing ones were filled, with a known category), which is all
      // that messages about unseen categories quote.
      if (!cat) slots[static_cast<std::size_t>(id)].source = -1;
    }
    return;
  }
  if (kind == "clip" || kind == "standardize" || kind == "minmax" || kind == "robust") {
    for (std::size_t i = 0; i < s.columns.size(); ++i) {
      const int id = slot_of(s.columns[i]);
      const auto& p = param(i);
      Op op{.kind = kind == "clip" ? OpKind::kClip : OpKind::kAffine, .step = index, .in = id};
      op.a = value(p, 0);
      op.b = value(p, 1);
      op.c = kind == "clip" ? 0.0f : value(p, 2);
      ops.push_back(op);
    }
    return;
  }
  if (kind == "log1p" || kind == "log" || kind == "sqrt" || kind == "abs") {
    const UnaryFn fn = kind == "log1p"  ? UnaryFn::kLog1p
                       : kind == "log"  ? UnaryFn::kLog
                       : kind == "sqrt" ? UnaryFn::kSqrt
                                        : UnaryFn::kAbs;
    for (const auto& col : s.columns) {
      ops.push_back(Op{.kind = OpKind::kUnary, .step = index, .in = slot_of(col), .fn = fn});
    }
    return;
  }
  if (kind == "onehot" || kind == "ordinal") {
    const Unknown unknown =
        ParseUnknown(s.options.count("unknown") ? s.options.at("unknown")
                                                : (kind == "onehot" ? "error" : "error"),
                     s.spec);
    for (std::size_t i = 0; i < s.columns.size(); ++i) {
      const int id = slot_of(s.columns[i]);
      const auto& p = param(i);
      Op op{.kind = kind == "onehot" ? OpKind::kOneHot : OpKind::kOrdinal, .step = index, .in = id};
      op.unknown = unknown;
      std::vector<int> outs;
      for (int k = 0; k < p.categories_size(); ++k) {
        const std::string& cat = p.categories(k);
        const bool is_missing = cat == kMissingName;
        op.vocab.emplace_back(is_missing ? kMissingCat : CatHash(cat), k);
        op.vocab_names.push_back(cat);
        if (is_missing) op.missing_index = k;
        if (kind == "onehot") outs.push_back(AddSlot(s.columns[i] + "=" + cat, false));
      }
      std::sort(op.vocab.begin(), op.vocab.end());
      if (kind == "onehot" && unknown == Unknown::kOther) {
        op.other_index = static_cast<int>(outs.size());
        outs.push_back(AddSlot(s.columns[i] + "=__other__", false));
      }
      if (kind == "ordinal") {
        op.a = s.options.count("value") ? std::stof(s.options.at("value")) : -1.0f;
        outs.push_back(AddSlot(s.columns[i], false));
      }
      op.outs = outs;
      replace_live(id, outs);
      ops.push_back(std::move(op));
    }
    return;
  }
  if (kind == "hash") {
    const int buckets = StoredInt(s, "buckets", 1, 1 << 20);
    Op op{.kind = OpKind::kHash, .step = index};
    for (const auto& col : s.columns) {
      const int id = slot_of(col);
      op.ins.push_back(id);
      op.col_hashes.push_back(CatHash(col));
    }
    for (int k = 0; k < buckets; ++k) op.outs.push_back(AddSlot(fmt::format("hash_{}", k), false));
    // The hashed columns are replaced by the buckets, placed where the first one was.
    const auto first = std::find(live->begin(), live->end(), op.ins[0]) - live->begin();
    for (int id : op.ins) live->erase(std::find(live->begin(), live->end(), id));
    live->insert(
        live->begin() + std::min<std::ptrdiff_t>(first, static_cast<std::ptrdiff_t>(live->size())),
        op.outs.begin(), op.outs.end());
    ops.push_back(std::move(op));
    return;
  }
  if (kind == "bucketize" || kind == "quantile_bins") {
    for (std::size_t i = 0; i < s.columns.size(); ++i) {
      const int id = slot_of(s.columns[i]);
      const auto& p = param(i);
      Op op{.kind = OpKind::kBucketize, .step = index, .in = id};
      for (double v : p.values()) op.boundaries.push_back(static_cast<float>(v));
      ops.push_back(std::move(op));
    }
    return;
  }
  if (kind == "poly") {
    const int degree = StoredInt(s, "degree", 2, 4);
    const bool interaction_only =
        s.options.count("interaction_only") && s.options.at("interaction_only") == "true";
    Op op{.kind = OpKind::kPoly, .step = index};
    for (const auto& col : s.columns) op.ins.push_back(slot_of(col));
    // All monomials of degree 2..degree over the inputs, in lexicographic order of indices.
    const int n = static_cast<int>(op.ins.size());
    std::vector<int> idx;
    std::function<void(int, int)> gen = [&](int start, int remaining) {
      if (idx.size() >= 2) {
        op.terms.push_back(idx);
        std::string name;
        for (std::size_t k = 0; k < idx.size(); ++k) {
          name += (k ? "*" : "") +
                  slots[static_cast<std::size_t>(op.ins[static_cast<std::size_t>(idx[k])])].name;
        }
        op.outs.push_back(AddSlot(name, false));
      }
      if (remaining == 0) return;
      for (int j = start; j < n; ++j) {
        idx.push_back(j);
        gen(interaction_only ? j + 1 : j, remaining - 1);
        idx.pop_back();
      }
    };
    gen(0, degree);
    live->insert(live->end(), op.outs.begin(), op.outs.end());
    ops.push_back(std::move(op));
    return;
  }
  if (kind == "expr") {
    auto e = std::make_shared<const Expression>(Expression::Parse(s.options.at("expression")));
    Op op{.kind = OpKind::kExpr, .step = index};
    for (const auto& col : e->inputs()) {
      const int id = FindLive(slots, *live, col);
      ESCALA_CHECK(id >= 0, kInvalidArgument,
                   "pipeline step '{}': expression uses unknown column '{}' (columns: {})", s.spec,
                   col, JoinNames(LiveNames(slots, *live)));
      ESCALA_CHECK(!slots[static_cast<std::size_t>(id)].categorical, kInvalidArgument,
                   "pipeline step '{}': expression uses categorical column '{}'; encode it first",
                   s.spec, col);
      op.ins.push_back(id);
    }
    const int existing = FindLive(slots, *live, e->target());
    op.out = AddSlot(e->target(), false);
    if (existing >= 0) {
      replace_live(existing, {op.out});
    } else {
      live->push_back(op.out);
    }
    op.expr = std::move(e);
    ops.push_back(std::move(op));
    return;
  }
  Throw(ErrorCode::kDataLoss, "pipeline: unknown step kind '{}'", kind);
}

// ---- Pipeline: construction, spec, accessors ---------------------------------------------------

Pipeline::Pipeline() : impl_(std::make_unique<Impl>()) {}
Pipeline::~Pipeline() = default;
Pipeline::Pipeline(Pipeline&&) noexcept = default;
Pipeline& Pipeline::operator=(Pipeline&&) noexcept = default;
Pipeline::Pipeline(const Pipeline& o) : impl_(std::make_unique<Impl>(*o.impl_)) {}
Pipeline& Pipeline::operator=(const Pipeline& o) {
  if (this != &o) impl_ = std::make_unique<Impl>(*o.impl_);
  return *this;
}

Pipeline Pipeline::FromSpec(std::string_view spec) {
  Pipeline p;
  p.impl_->spec = std::string(spec);
  p.impl_->defs = internal::ParseSpec(spec);
  // Validate what can be checked before seeing data.
  for (const auto& d : p.impl_->defs) {
    if (d.kind == "expr") Expression::Parse(d.raw);
    if (d.kind == "hash") {
      const double buckets = d.number("buckets", 32);
      ESCALA_CHECK(buckets >= 1 && buckets <= (1 << 20) && buckets == std::floor(buckets),
                   kInvalidArgument, "pipeline step '{}': buckets must be an integer in [1, {}]",
                   d.text, 1 << 20);
    }
    if (d.kind == "clip" && d.has("iqr")) {
      const double k = d.number("iqr", 1.5);
      ESCALA_CHECK(std::isfinite(k) && k >= 0, kInvalidArgument,
                   "pipeline step '{}': iqr must be >= 0, got {}", d.text, k);
    }
    if (d.kind == "clip" && d.has("z")) {
      const double k = d.number("z", 3);
      ESCALA_CHECK(std::isfinite(k) && k > 0, kInvalidArgument,
                   "pipeline step '{}': z must be > 0, got {}", d.text, k);
    }
    if (d.kind == "onehot" || d.kind == "ordinal") {
      const double m = d.number("max_categories", 0);
      ESCALA_CHECK(m >= 0 && m <= (1 << 24) && m == std::floor(m), kInvalidArgument,
                   "pipeline step '{}': max_categories must be an integer >= 0 (0: all), got {}",
                   d.text, m);
    }
    if (d.kind == "bucketize") {
      const auto b = d.numbers("boundaries");
      ESCALA_CHECK(!b.empty() && std::is_sorted(b.begin(), b.end()), kInvalidArgument,
                   "pipeline step '{}': boundaries=B1,B2,... must be given in increasing order",
                   d.text);
    }
    if (d.kind == "log1p" || d.kind == "log" || d.kind == "sqrt" || d.kind == "abs" ||
        d.kind == "drop") {
      ESCALA_CHECK(!d.positional.empty(), kInvalidArgument,
                   "pipeline step '{}': name the columns it applies to", d.text);
    }
  }
  return p;
}

const std::string& Pipeline::spec() const {
  return impl_->spec;
}
bool Pipeline::fitted() const {
  return impl_->fitted;
}
const data::Schema& Pipeline::input_schema() const {
  return impl_->inputs;
}
const std::vector<std::string>& Pipeline::output_names() const {
  return impl_->outputs;
}
std::int64_t Pipeline::num_outputs() const {
  return static_cast<std::int64_t>(impl_->outputs.size());
}

// ---- fitting
// ---------------------------------------------------------------------------------------

namespace {

// Full-length slot buffers of this rank's shard while fitting.
struct FitFrame {
  std::int64_t rows = 0;
  std::vector<std::vector<float>> num;
  std::vector<std::vector<std::uint64_t>> cat;
  std::unordered_map<std::uint64_t, std::string> names;  // category hash -> string

  void Ensure(const std::vector<Slot>& slots) {
    num.resize(slots.size());
    cat.resize(slots.size());
    for (std::size_t i = 0; i < slots.size(); ++i) {
      if (slots[i].categorical) {
        if (cat[i].size() != static_cast<std::size_t>(rows))
          cat[i].resize(static_cast<std::size_t>(rows));
      } else if (num[i].size() != static_cast<std::size_t>(rows)) {
        num[i].resize(static_cast<std::size_t>(rows));
      }
    }
  }
};

NumericSummary SummaryOf(const std::vector<float>& x) {
  NumericSummary s;
  for (float v : x) s.Add(v);
  return s;
}

QuantileSketch SketchOf(const std::vector<float>& x, int k) {
  QuantileSketch s(k);
  for (float v : x) {
    if (std::isfinite(v)) s.Add(v);
  }
  return s;
}

FrequentItems CategoriesOf(const std::vector<std::uint64_t>& x,
                           const std::unordered_map<std::uint64_t, std::string>& names,
                           std::size_t capacity) {
  std::unordered_map<std::uint64_t, std::int64_t> counts;
  for (std::uint64_t h : x) ++counts[h];
  FrequentItems f(capacity);
  for (const auto& [h, c] : counts) {
    if (h == kMissingCat) {
      f.Add(kMissingName, c);
      continue;
    }
    auto it = names.find(h);
    ESCALA_ASSERT(it != names.end());
    f.Add(it->second, c);
  }
  return f;
}

}  // namespace

void Pipeline::Fit(const data::Table& table, const FitOptions& options, Communicator& comm) {
  // Everything is built in a fresh Impl and swapped in at the end: a failure leaves *this as is.
  auto impl = std::make_unique<Impl>();
  impl->spec = impl_->spec;
  impl->defs = impl_->defs;

  // Inputs: the table's columns minus the excluded ones. Every rank must agree.
  std::vector<data::Field> fields;
  for (const auto& f : table.schema().fields()) {
    if (std::find(options.exclude.begin(), options.exclude.end(), f.name) ==
        options.exclude.end()) {
      fields.push_back(f);
    }
  }
  impl->inputs = data::Schema(fields);
  {
    const std::string mine = impl->inputs.Serialize();
    const std::uint64_t h = HashBytes(mine);
    const auto all = comm.AllGather(std::span<const std::uint64_t>(&h, 1));
    for (std::size_t r = 0; r < all.size(); ++r) {
      ESCALA_CHECK(all[r] == h, kInvalidArgument,
                   "pipeline fit: rank {} has columns {} but rank {} has different ones; every "
                   "worker must read data with the same schema",
                   comm.rank(), impl->inputs.ToString(), r);
    }
  }

  const RawBatch raw = BatchFromTable(table, impl->inputs);
  FitFrame frame;
  frame.rows = table.num_rows();
  std::vector<std::vector<std::uint64_t>> dict_hashes(raw.columns.size());
  for (std::size_t i = 0; i < raw.columns.size(); ++i) {
    const RawColumn& c = raw.columns[i];
    if (c.kind != RawColumn::Kind::kCodes) continue;
    for (const auto& s : *c.dictionary) {
      const std::uint64_t h = CatHash(s);
      dict_hashes[i].push_back(h);
      frame.names.emplace(h, s);
    }
  }

  // Runs ops [first, last) over the whole shard, in parallel chunks.
  auto run = [&](std::size_t first, std::size_t last) {
    frame.Ensure(impl->slots);
    ParallelFor(static_cast<std::size_t>(frame.rows), 16384, [&](std::size_t b, std::size_t e) {
      Store st;
      st.n = static_cast<std::int64_t>(e - b);
      st.num.resize(impl->slots.size(), nullptr);
      st.cat.resize(impl->slots.size(), nullptr);
      for (std::size_t i = 0; i < impl->slots.size(); ++i) {
        if (impl->slots[i].categorical) {
          if (!frame.cat[i].empty()) st.cat[i] = frame.cat[i].data() + b;
        } else if (!frame.num[i].empty()) {
          st.num[i] = frame.num[i].data() + b;
        }
      }
      ExpressionScratch es;
      std::vector<const float*> ptrs;
      RunContext ctx{&raw, static_cast<std::int64_t>(b), &dict_hashes, &es, &ptrs};
      impl->RunOps(first, last, st, ctx);
    });
  };

  // Input ops.
  std::vector<int> live;
  for (int i = 0; i < impl->inputs.num_fields(); ++i) {
    const auto& f = impl->inputs.field(i);
    const bool cat = f.type == data::DataType::kCategorical;
    const int id = impl->AddSlot(f.name, cat, i);
    impl->ops.push_back(Op{.kind = cat ? OpKind::kInputCat : OpKind::kInputNum, .out = id});
    impl->ops.back().c = static_cast<float>(i);
    live.push_back(id);
  }
  run(0, impl->ops.size());

  for (std::size_t si = 0; si < impl->defs.size(); ++si) {
    const StepDef& d = impl->defs[si];
    FittedStep fs;
    fs.kind = d.kind;
    fs.spec = d.text;
    for (const auto& [k, v] : d.options) {
      std::string joined;
      for (std::size_t i = 0; i < v.size(); ++i) joined += (i ? "," : "") + v[i];
      fs.options[k] = joined;
    }
    auto is_cat = [&](int id) { return impl->slots[static_cast<std::size_t>(id)].categorical; };
    auto resolve = [&](bool want_numeric, bool want_categorical) {
      std::vector<std::string> cols;
      std::vector<std::string> named = d.positional;
      if (d.kind == "impute" && !named.empty() &&
          (named[0] == "mean" || named[0] == "median" || named[0] == "most_frequent" ||
           named[0] == "constant")) {
        named.erase(named.begin());
      }
      if (named.empty()) {
        for (int id : live) {
          if ((is_cat(id) && want_categorical) || (!is_cat(id) && want_numeric)) {
            cols.push_back(impl->slots[static_cast<std::size_t>(id)].name);
          }
        }
        return cols;
      }
      for (const auto& c : named) {
        const int id = FindLive(impl->slots, live, c);
        ESCALA_CHECK(id >= 0, kNotFound,
                     "pipeline step '{}': no column '{}' at this point (columns: {})", d.text, c,
                     JoinNames(LiveNames(impl->slots, live)));
        if (is_cat(id) && !want_categorical) {
          Throw(ErrorCode::kInvalidArgument,
                "pipeline step '{}': column '{}' is categorical; this step needs numbers (encode "
                "it first with onehot, ordinal or hash)",
                d.text, c);
        }
        if (!is_cat(id) && !want_numeric) {
          Throw(ErrorCode::kInvalidArgument,
                "pipeline step '{}': column '{}' is numeric; this step encodes categorical "
                "columns",
                d.text, c);
        }
        cols.push_back(c);
      }
      return cols;
    };
    auto slot = [&](const std::string& c) { return FindLive(impl->slots, live, c); };
    auto values_of = [&](const std::string& c) -> const std::vector<float>& {
      return frame.num[static_cast<std::size_t>(slot(c))];
    };
    // Per-column statistics, computed in parallel over columns and merged across ranks.
    auto summaries = [&](const std::vector<std::string>& cols) {
      std::vector<NumericSummary> out(cols.size());
      ParallelFor(cols.size(), 1, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) out[i] = SummaryOf(values_of(cols[i]));
      });
      for (auto& s : out) s = AllMerge(s, comm);
      return out;
    };
    auto sketches = [&](const std::vector<std::string>& cols) {
      std::vector<QuantileSketch> out(cols.size(), QuantileSketch(options.sketch_k));
      ParallelFor(cols.size(), 1, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) out[i] = SketchOf(values_of(cols[i]), options.sketch_k);
      });
      for (auto& s : out) s = AllMerge(s, comm);
      return out;
    };
    auto categories = [&](const std::string& c) {
      return AllMerge(CategoriesOf(frame.cat[static_cast<std::size_t>(slot(c))], frame.names,
                                   options.max_tracked_categories),
                      comm);
    };
    auto require_values = [&](const std::string& col, const NumericSummary& s) {
      ESCALA_CHECK(s.count() > 0, kInvalidArgument,
                   "pipeline step '{}': column '{}' has no finite values to fit on", d.text, col);
    };
    auto add_params = [&](const std::string& col, std::vector<double> values) {
      pb::ColumnParams p;
      p.set_column(col);
      p.mutable_values()->Assign(values.begin(), values.end());
      fs.params.push_back(std::move(p));
    };

    if (d.kind == "drop") {
      fs.columns = resolve(true, true);
    } else if (d.kind == "impute") {
      std::string strategy = "mean";
      if (!d.positional.empty() &&
          (d.positional[0] == "mean" || d.positional[0] == "median" ||
           d.positional[0] == "most_frequent" || d.positional[0] == "constant")) {
        strategy = d.positional[0];
      }
      strategy = d.get("strategy", strategy);
      fs.options["strategy"] = strategy;
      fs.options["indicator"] = d.flag("indicator", false) ? "true" : "false";
      // Unnamed columns: numbers for mean/median, categories for most_frequent/constant (a
      // continuous column has no useful mode); named columns may be either for the latter.
      const bool any_type = strategy == "most_frequent" || strategy == "constant";
      const bool named = d.positional.size() >
                         (d.positional.empty() ? 0 : (d.positional[0] == strategy ? 1u : 0u));
      fs.columns = resolve(!any_type || named, any_type);
      std::vector<std::string> num_cols;
      for (const auto& c : fs.columns) {
        if (!is_cat(slot(c))) num_cols.push_back(c);
      }
      std::vector<NumericSummary> sums;
      std::vector<QuantileSketch> sks;
      if (strategy == "mean") sums = summaries(num_cols);
      if (strategy == "median") sks = sketches(num_cols);
      std::size_t ni = 0;
      for (const auto& c : fs.columns) {
        pb::ColumnParams p;
        p.set_column(c);
        if (is_cat(slot(c))) {
          if (strategy == "constant") {
            p.set_text(d.get("value", "missing"));
          } else {
            const auto top = categories(c).Top(2);
            std::string mode;
            for (const auto& item : top) {
              if (item.key != kMissingName) {
                mode = item.key;
                break;
              }
            }
            ESCALA_CHECK(!mode.empty(), kInvalidArgument,
                         "pipeline step '{}': column '{}' has no values to take the most frequent "
                         "from",
                         d.text, c);
            p.set_text(mode);
          }
          frame.names.emplace(CatHash(p.text()), p.text());
        } else {
          double v = 0;
          if (strategy == "mean") {
            require_values(c, sums[ni]);
            v = sums[ni].mean();
          } else if (strategy == "median") {
            ESCALA_CHECK(sks[ni].count() > 0, kInvalidArgument,
                         "pipeline step '{}': column '{}' has no finite values to fit on", d.text,
                         c);
            v = sks[ni].Quantile(0.5);
          } else if (strategy == "constant") {
            v = d.number("value", 0.0);
          } else {
            FrequentItems f(4096, FrequentItems::Mode::kNumeric);
            for (float x : values_of(c)) {
              if (!std::isnan(x)) f.AddNumber(x);
            }
            f = AllMerge(f, comm);
            ESCALA_CHECK(!f.saturated(), kInvalidArgument,
                         "pipeline step '{}': column '{}' has too many distinct values for "
                         "most_frequent; use median",
                         d.text, c);
            const auto top = f.Top(1);
            ESCALA_CHECK(!top.empty(), kInvalidArgument,
                         "pipeline step '{}': column '{}' has no values", d.text, c);
            // Ties resolve to the smallest value, as scikit-learn's SimpleImputer does.
            const auto all = f.Top(4096);
            double best = std::stod(top[0].key);
            for (const auto& item : all) {
              if (item.count == top[0].count) best = std::min(best, std::stod(item.key));
            }
            v = best;
          }
          p.add_values(v);
          ++ni;
        }
        fs.params.push_back(std::move(p));
      }
    } else if (d.kind == "clip") {
      fs.columns = resolve(true, false);
      const auto q = d.numbers("q");
      if (!q.empty()) {
        ESCALA_CHECK(q.size() == 2 && q[0] >= 0 && q[0] < q[1] && q[1] <= 1, kInvalidArgument,
                     "pipeline step '{}': q=LO,HI needs 0 <= LO < HI <= 1", d.text);
        const auto sks = sketches(fs.columns);
        for (std::size_t i = 0; i < fs.columns.size(); ++i) {
          const double qs[] = {q[0], q[1]};
          const auto v = sks[i].Quantiles(qs);
          add_params(fs.columns[i], {v[0], v[1]});
        }
      } else if (d.has("iqr")) {
        const double k = d.number("iqr", 1.5);
        const auto sks = sketches(fs.columns);
        for (std::size_t i = 0; i < fs.columns.size(); ++i) {
          const double qs[] = {0.25, 0.75};
          const auto v = sks[i].Quantiles(qs);
          const double iqr = v[1] - v[0];
          add_params(fs.columns[i], {v[0] - k * iqr, v[1] + k * iqr});
        }
      } else if (d.has("z")) {
        const double k = d.number("z", 3);
        const auto sums = summaries(fs.columns);
        for (std::size_t i = 0; i < fs.columns.size(); ++i) {
          require_values(fs.columns[i], sums[i]);
          const double sd = std::sqrt(sums[i].population_variance());
          add_params(fs.columns[i], {sums[i].mean() - k * sd, sums[i].mean() + k * sd});
        }
      } else {
        const double lo = d.number("min", -std::numeric_limits<double>::infinity());
        const double hi = d.number("max", std::numeric_limits<double>::infinity());
        ESCALA_CHECK(d.has("min") || d.has("max"), kInvalidArgument,
                     "pipeline step '{}': give q=LO,HI, iqr=K, z=K or min=/max=", d.text);
        ESCALA_CHECK(lo <= hi, kInvalidArgument, "pipeline step '{}': min > max", d.text);
        for (const auto& c : fs.columns) add_params(c, {lo, hi});
      }
    } else if (d.kind == "standardize") {
      fs.columns = resolve(true, false);
      const auto sums = summaries(fs.columns);
      for (std::size_t i = 0; i < fs.columns.size(); ++i) {
        require_values(fs.columns[i], sums[i]);
        const double sd = std::sqrt(sums[i].population_variance());
        // A constant column is centred but not scaled (as scikit-learn does).
        add_params(fs.columns[i], {sums[i].mean(), sd > 0 ? 1.0 / sd : 1.0, 0.0});
      }
    } else if (d.kind == "minmax") {
      fs.columns = resolve(true, false);
      auto range = d.numbers("range");
      if (range.empty()) range = {0.0, 1.0};
      ESCALA_CHECK(range.size() == 2 && range[0] < range[1], kInvalidArgument,
                   "pipeline step '{}': range=A,B needs A < B", d.text);
      const auto sums = summaries(fs.columns);
      for (std::size_t i = 0; i < fs.columns.size(); ++i) {
        require_values(fs.columns[i], sums[i]);
        const double span = sums[i].max() - sums[i].min();
        add_params(fs.columns[i],
                   {sums[i].min(), span > 0 ? (range[1] - range[0]) / span : 1.0, range[0]});
      }
    } else if (d.kind == "robust") {
      fs.columns = resolve(true, false);
      const auto sks = sketches(fs.columns);
      for (std::size_t i = 0; i < fs.columns.size(); ++i) {
        ESCALA_CHECK(sks[i].count() > 0, kInvalidArgument,
                     "pipeline step '{}': column '{}' has no finite values to fit on", d.text,
                     fs.columns[i]);
        const double qs[] = {0.25, 0.5, 0.75};
        const auto v = sks[i].Quantiles(qs);
        const double iqr = v[2] - v[0];
        add_params(fs.columns[i], {v[1], iqr > 0 ? 1.0 / iqr : 1.0, 0.0});
      }
    } else if (d.kind == "log1p" || d.kind == "log" || d.kind == "sqrt" || d.kind == "abs") {
      fs.columns = resolve(true, false);
    } else if (d.kind == "onehot" || d.kind == "ordinal") {
      fs.columns = resolve(false, true);
      const std::string unknown = d.get("unknown", "error");
      ParseUnknown(unknown, d.text);
      fs.options["unknown"] = unknown;
      const auto max_categories = static_cast<std::size_t>(d.number("max_categories", 0));
      for (const auto& c : fs.columns) {
        const FrequentItems f = categories(c);
        ESCALA_CHECK(f.exact(), kInvalidArgument,
                     "pipeline step '{}': column '{}' has more than {} categories; use hash({})",
                     d.text, c, options.max_tracked_categories, c);
        auto items = f.Top(std::numeric_limits<std::size_t>::max());
        // Keep the most frequent (ties by name), then order the vocabulary by name, as
        // scikit-learn's encoders do.
        if (d.kind == "onehot" && max_categories > 0 && items.size() > max_categories) {
          items.resize(max_categories);
          if (fs.options["unknown"] == "error") fs.options["unknown"] = "other";
        }
        std::vector<std::string> vocab;
        for (const auto& item : items) vocab.push_back(item.key);
        std::sort(vocab.begin(), vocab.end());
        pb::ColumnParams p;
        p.set_column(c);
        for (const auto& v : vocab) p.add_categories(v);
        fs.params.push_back(std::move(p));
      }
    } else if (d.kind == "hash") {
      fs.columns = resolve(false, true);
      ESCALA_CHECK(!fs.columns.empty(), kInvalidArgument,
                   "pipeline step '{}': no categorical columns to hash", d.text);
      fs.options["buckets"] = fmt::format("{}", static_cast<int>(d.number("buckets", 32)));
    } else if (d.kind == "bucketize") {
      fs.columns = resolve(true, false);
      ESCALA_CHECK(!d.positional.empty(), kInvalidArgument,
                   "pipeline step '{}': name the column(s) to bucketize", d.text);
      for (const auto& c : fs.columns) add_params(c, d.numbers("boundaries"));
    } else if (d.kind == "quantile_bins") {
      fs.columns = resolve(true, false);
      const int bins = static_cast<int>(d.number("bins", 10));
      ESCALA_CHECK(bins >= 2, kInvalidArgument, "pipeline step '{}': bins must be >= 2", d.text);
      const auto sks = sketches(fs.columns);
      for (std::size_t i = 0; i < fs.columns.size(); ++i) {
        std::vector<double> qs;
        for (int b = 1; b < bins; ++b) qs.push_back(static_cast<double>(b) / bins);
        auto edges = sks[i].Quantiles(qs);
        edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
        add_params(fs.columns[i], edges);
      }
    } else if (d.kind == "poly") {
      fs.columns = resolve(true, false);
      const int degree = static_cast<int>(d.number("degree", 2));
      ESCALA_CHECK(degree >= 2 && degree <= 4, kInvalidArgument,
                   "pipeline step '{}': degree must be 2, 3 or 4", d.text);
      ESCALA_CHECK(fs.columns.size() <= 64, kInvalidArgument,
                   "pipeline step '{}': too many columns ({}) for polynomial features", d.text,
                   fs.columns.size());
      fs.options["degree"] = std::to_string(degree);
      fs.options["interaction_only"] = d.flag("interaction_only", false) ? "true" : "false";
    } else if (d.kind == "expr") {
      fs.options["expression"] = d.raw;
    }

    const std::size_t first_op = impl->ops.size();
    impl->steps.push_back(fs);
    try {
      impl->CompileStep(static_cast<int>(si), impl->steps.back(), &live);
    } catch (const Error& e) {
      throw e.WithContext("fitting the pipeline");
    }
    run(first_op, impl->ops.size());
    // Free the buffers of slots that are no longer live.
    for (std::size_t i = 0; i < impl->slots.size(); ++i) {
      if (std::find(live.begin(), live.end(), static_cast<int>(i)) == live.end()) {
        std::vector<float>().swap(frame.num[i]);
        std::vector<std::uint64_t>().swap(frame.cat[i]);
      }
    }
  }

  // The plan that serving will run, compiled from the fitted steps alone.
  impl->Compile();
  impl->fitted = true;
  impl_ = std::move(impl);
}

// ---- transform
// ---------------------------------------------------------------------------------------

RawBatch BatchFromTable(const data::Table& table, const data::Schema& inputs) {
  RawBatch batch;
  batch.rows = table.num_rows();
  for (const auto& f : inputs.fields()) {
    const data::Column& col = table.column(f.name);
    const bool want_cat = f.type == data::DataType::kCategorical;
    ESCALA_CHECK(want_cat == (col.type() == data::DataType::kCategorical), kInvalidArgument,
                 "column '{}' is {} here but the pipeline was fitted on {} values", f.name,
                 data::DataTypeName(col.type()), want_cat ? "categorical" : "numeric");
    RawColumn rc;
    switch (col.type()) {
      case data::DataType::kFloat32:
        rc.kind = RawColumn::Kind::kFloat32;
        rc.values = col.f32().data();
        break;
      case data::DataType::kFloat64:
        rc.kind = RawColumn::Kind::kFloat64;
        rc.values = col.f64().data();
        break;
      case data::DataType::kInt64:
        rc.kind = RawColumn::Kind::kInt64;
        rc.values = col.i64().data();
        break;
      case data::DataType::kCategorical:
        rc.kind = RawColumn::Kind::kCodes;
        rc.values = col.codes().data();
        rc.dictionary = &col.dictionary();
        break;
    }
    rc.missing = col.missing_mask().empty() ? nullptr : col.missing_mask().data();
    batch.columns.push_back(rc);
  }
  return batch;
}

void Pipeline::TransformInto(const RawBatch& batch, MatrixViewF out,
                             TransformScratch& scratch) const {
  const Impl& im = *impl_;
  ESCALA_CHECK(im.fitted, kFailedPrecondition, "pipeline is not fitted");
  ESCALA_CHECK(batch.columns.size() == static_cast<std::size_t>(im.inputs.num_fields()),
               kInvalidArgument, "pipeline expects {} input columns ({}), got {}",
               im.inputs.num_fields(), im.inputs.ToString(), batch.columns.size());
  ESCALA_CHECK(
      out.rows() == batch.rows && out.cols() == static_cast<std::int64_t>(im.outputs.size()),
      kInvalidArgument, "output is {}x{}, expected {}x{}", out.rows(), out.cols(), batch.rows,
      im.outputs.size());
  auto& sd = *scratch.data;
  // Buffers for every slot, one block long; resized once, then reused.
  if (sd.num.size() != im.slots.size()) {
    sd.num.assign(im.slots.size(), {});
    sd.cat.assign(im.slots.size(), {});
  }
  sd.store.num.resize(im.slots.size());
  sd.store.cat.resize(im.slots.size());
  for (std::size_t i = 0; i < im.slots.size(); ++i) {
    if (im.slots[i].categorical) {
      if (sd.cat[i].size() < static_cast<std::size_t>(kBlock)) sd.cat[i].resize(kBlock);
      sd.store.cat[i] = sd.cat[i].data();
      sd.store.num[i] = nullptr;
    } else {
      if (sd.num[i].size() < static_cast<std::size_t>(kBlock)) sd.num[i].resize(kBlock);
      sd.store.num[i] = sd.num[i].data();
      sd.store.cat[i] = nullptr;
    }
  }
  sd.dict_hashes.resize(batch.columns.size());
  for (std::size_t i = 0; i < batch.columns.size(); ++i) {
    const RawColumn& c = batch.columns[i];
    sd.dict_hashes[i].clear();
    if (c.kind == RawColumn::Kind::kCodes) {
      ESCALA_CHECK(c.dictionary != nullptr, kInvalidArgument,
                   "input '{}': categorical codes without a dictionary",
                   im.inputs.field(static_cast<int>(i)).name);
      for (const auto& s : *c.dictionary) sd.dict_hashes[i].push_back(CatHash(s));
    }
  }
  const std::size_t nout = im.output_slots.size();
  for (std::int64_t b = 0; b < batch.rows; b += kBlock) {
    sd.store.n = std::min(kBlock, batch.rows - b);
    RunContext ctx{&batch, b, &sd.dict_hashes, &sd.expr, &sd.ptrs};
    im.RunOps(0, im.ops.size(), sd.store, ctx);
    for (std::size_t k = 0; k < nout; ++k) {
      const float* col = sd.store.num[static_cast<std::size_t>(im.output_slots[k])];
      for (std::int64_t i = 0; i < sd.store.n; ++i) {
        const float v = col[i];
        if (!std::isfinite(v)) [[unlikely]] {
          Throw(ErrorCode::kInvalidArgument,
                "row {}: feature '{}' is {} after the pipeline; impute or clip its column "
                "(spec: {})",
                b + i, im.outputs[k], std::isnan(v) ? "missing (NaN)" : "infinite",
                im.spec.empty() ? "<none>" : im.spec);
        }
        out(b + i, static_cast<std::int64_t>(k)) = v;
      }
    }
  }
}

void Pipeline::Transform(const RawBatch& batch, MatrixF* out) const {
  out->Resize(batch.rows, num_outputs());
  const auto parts = static_cast<std::size_t>(std::max<std::int64_t>(
      1, std::min<std::int64_t>(NumThreads(), (batch.rows + kBlock - 1) / kBlock)));
  std::vector<TransformScratch> scratch(parts);
  ParallelForStatic(
      static_cast<std::size_t>(batch.rows), parts,
      [&](std::size_t p, std::size_t b, std::size_t e) {
        if (b == e) return;
        RawBatch part = batch;
        part.rows = static_cast<std::int64_t>(e - b);
        // Shift every column view to the part's first row.
        for (auto& c : part.columns) {
          const std::int64_t off = static_cast<std::int64_t>(b) * c.stride;
          switch (c.kind) {
            case RawColumn::Kind::kFloat32:
              c.values = static_cast<const float*>(c.values) + off;
              break;
            case RawColumn::Kind::kFloat64:
              c.values = static_cast<const double*>(c.values) + off;
              break;
            case RawColumn::Kind::kInt64:
              c.values = static_cast<const std::int64_t*>(c.values) + off;
              break;
            case RawColumn::Kind::kInt32:
            case RawColumn::Kind::kCodes:
              c.values = static_cast<const std::int32_t*>(c.values) + off;
              break;
            case RawColumn::Kind::kStrings:
              c.values = static_cast<const std::string_view*>(c.values) + off;
              break;
          }
          if (c.missing != nullptr) c.missing += b;
        }
        try {
          TransformInto(part, out->view().Rows(static_cast<std::int64_t>(b), part.rows),
                        scratch[p]);
        } catch (const Error& err) {
          // Row numbers in messages are relative to the part: make them absolute.
          const std::string m = err.message();
          if (m.rfind("row ", 0) == 0) {
            const std::size_t colon = m.find(':');
            const long long r = std::stoll(m.substr(4, colon - 4));
            throw Error(err.code(),
                        fmt::format("row {}{}", r + static_cast<long long>(b), m.substr(colon)));
          }
          throw;
        }
      });
}

void Pipeline::Transform(const data::Table& table, MatrixF* out) const {
  ESCALA_CHECK(impl_->fitted, kFailedPrecondition, "pipeline is not fitted");
  Transform(BatchFromTable(table, impl_->inputs), out);
}

// ---- serialisation
// ---------------------------------------------------------------------------------

std::string Pipeline::Serialize() const {
  pb::Pipeline m;
  m.set_spec(impl_->spec);
  m.set_fitted(impl_->fitted);
  for (const auto& f : impl_->inputs.fields()) {
    auto* in = m.add_inputs();
    in->set_name(f.name);
    in->set_type(std::string(data::DataTypeName(f.type)));
  }
  for (const auto& s : impl_->steps) {
    auto* st = m.add_steps();
    st->set_kind(s.kind);
    st->set_spec(s.spec);
    for (const auto& c : s.columns) st->add_columns(c);
    for (const auto& [k, v] : s.options) (*st->mutable_options())[k] = v;
    for (const auto& p : s.params) *st->add_params() = p;
  }
  for (const auto& o : impl_->outputs) m.add_outputs(o);
  // Deterministic (map entries in key order): the same fitted pipeline gives the same bytes, so
  // bundles are reproducible and a checkpoint can recognise the pipeline it was written under.
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&coded);
  }
  return out;
}

Pipeline Pipeline::Parse(std::string_view bytes) {
  pb::Pipeline m;
  ESCALA_CHECK(m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())), kDataLoss,
               "pipeline: serialized bytes do not parse ({} bytes)", bytes.size());
  Pipeline p = FromSpec(m.spec());
  Impl& im = *p.impl_;
  std::vector<data::Field> fields;
  for (const auto& in : m.inputs()) fields.push_back({in.name(), data::ParseDataType(in.type())});
  im.inputs = data::Schema(fields);
  for (const auto& st : m.steps()) {
    FittedStep fs;
    fs.kind = st.kind();
    fs.spec = st.spec();
    fs.columns.assign(st.columns().begin(), st.columns().end());
    for (const auto& [k, v] : st.options()) fs.options[k] = v;
    fs.params.assign(st.params().begin(), st.params().end());
    im.steps.push_back(std::move(fs));
  }
  im.fitted = m.fitted();
  if (im.fitted) {
    try {
      im.Compile();
    } catch (const Error& e) {
      throw Error(ErrorCode::kDataLoss,
                  fmt::format("pipeline: stored steps are inconsistent: {}", e.message()));
    }
    const std::vector<std::string> stored(m.outputs().begin(), m.outputs().end());
    ESCALA_CHECK(stored == im.outputs, kDataLoss,
                 "pipeline: stored outputs do not match the compiled steps");
  }
  return p;
}

std::string Pipeline::Describe() const {
  std::string s = fmt::format("pipeline: {} input(s) -> {} feature(s)\n",
                              impl_->inputs.num_fields(), impl_->outputs.size());
  for (const auto& st : impl_->steps) {
    s += fmt::format("  {}", st.spec);
    if (!st.columns.empty()) s += fmt::format("  [{}]", JoinNames(st.columns, 8));
    s += "\n";
  }
  return s;
}

}  // namespace escala::features
