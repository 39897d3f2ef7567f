// Pipeline::Fit: each step in turn is fitted by its kind (pipeline_steps.h) on the shard as the
// steps before it transformed it, compiled, and run over the shard for the steps after it.
#include <algorithm>
#include <cmath>
#include <span>
#include <unordered_map>

#include "escala/core/error.h"
#include "escala/core/parallel.h"
#include "features/pipeline_impl.h"
#include "features/pipeline_steps.h"

namespace escala::features {

namespace internal {

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

namespace {

// In blocks through AddBatch (two passes over each block, merged): Welford's update per value
// divides once per value and was 6% of fitting the default pipeline on W0.
NumericSummary SummaryOf(const std::vector<float>& x) {
  constexpr std::size_t kBlock = 4096;
  NumericSummary s;
  double block[kBlock];
  for (std::size_t b = 0; b < x.size(); b += kBlock) {
    const std::size_t n = std::min(kBlock, x.size() - b);
    for (std::size_t i = 0; i < n; ++i) block[i] = x[b + i];
    s.AddBatch(std::span<const double>(block, n));
  }
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

// ---- StepFitter --------------------------------------------------------------------------------

int StepFitter::SlotOf(const std::string& col) const {
  return FindLive(plan_.slots, live_, col);
}

bool StepFitter::IsCategorical(const std::string& col) const {
  return plan_.slots[static_cast<std::size_t>(SlotOf(col))].categorical;
}

std::vector<std::string> StepFitter::Resolve(const std::vector<std::string>& named,
                                             bool want_numeric, bool want_categorical) const {
  std::vector<std::string> cols;
  if (named.empty()) {
    for (int id : live_) {
      const Slot& s = plan_.slots[static_cast<std::size_t>(id)];
      if ((s.categorical && want_categorical) || (!s.categorical && want_numeric)) {
        cols.push_back(s.name);
      }
    }
    return cols;
  }
  for (const auto& c : named) {
    ESCALA_CHECK(SlotOf(c) >= 0, kNotFound,
                 "pipeline step '{}': no column '{}' at this point (columns: {})", def.text, c,
                 JoinNames(LiveNames(plan_.slots, live_)));
    if (IsCategorical(c) && !want_categorical) {
      Throw(ErrorCode::kInvalidArgument,
            "pipeline step '{}': column '{}' is categorical; this step needs numbers (encode it "
            "first with onehot, ordinal or hash)",
            def.text, c);
    }
    if (!IsCategorical(c) && !want_numeric) {
      Throw(ErrorCode::kInvalidArgument,
            "pipeline step '{}': column '{}' is numeric; this step encodes categorical columns",
            def.text, c);
    }
    cols.push_back(c);
  }
  return cols;
}

const std::vector<float>& StepFitter::Values(const std::string& col) const {
  return frame_.num[static_cast<std::size_t>(SlotOf(col))];
}

std::vector<NumericSummary> StepFitter::Summaries(const std::vector<std::string>& cols) const {
  std::vector<NumericSummary> out(cols.size());
  ParallelFor(cols.size(), 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) out[i] = SummaryOf(Values(cols[i]));
  });
  for (auto& s : out) s = AllMerge(s, comm_);
  return out;
}

std::vector<QuantileSketch> StepFitter::Sketches(const std::vector<std::string>& cols) const {
  const int k = options_.sketch_k;
  std::vector<QuantileSketch> out(cols.size(), QuantileSketch(k));
  ParallelFor(cols.size(), 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) out[i] = SketchOf(Values(cols[i]), k);
  });
  for (auto& s : out) s = AllMerge(s, comm_);
  return out;
}

FrequentItems StepFitter::Categories(const std::string& col) const {
  return AllMerge(CategoriesOf(frame_.cat[static_cast<std::size_t>(SlotOf(col))], frame_.names,
                               options_.max_tracked_categories),
                  comm_);
}

FrequentItems StepFitter::FrequentNumbers(const std::string& col) const {
  FrequentItems f(4096, FrequentItems::Mode::kNumeric);
  for (float x : Values(col)) {
    if (!std::isnan(x)) f.AddNumber(x);
  }
  return AllMerge(f, comm_);
}

void StepFitter::RequireValues(const std::string& col, const NumericSummary& s) const {
  ESCALA_CHECK(s.count() > 0, kInvalidArgument,
               "pipeline step '{}': column '{}' has no finite values to fit on", def.text, col);
}

void StepFitter::RequireValues(const std::string& col, const QuantileSketch& s) const {
  ESCALA_CHECK(s.count() > 0, kInvalidArgument,
               "pipeline step '{}': column '{}' has no finite values to fit on", def.text, col);
}

void StepFitter::AddParams(const std::string& col, const std::vector<double>& values) {
  pb::ColumnParams p;
  p.set_column(col);
  p.mutable_values()->Assign(values.begin(), values.end());
  step.params.push_back(std::move(p));
}

void StepFitter::AddCategoryName(const std::string& name) {
  frame_.names.emplace(CatHash(name), name);
}

namespace {

// The table's columns minus the excluded ones (the label, ids). Every rank must agree.
data::Schema InputSchema(const data::Table& table, const FitOptions& options, Communicator& comm) {
  std::vector<data::Field> fields;
  for (const auto& f : table.schema().fields()) {
    if (std::find(options.exclude.begin(), options.exclude.end(), f.name) ==
        options.exclude.end()) {
      fields.push_back(f);
    }
  }
  data::Schema inputs(fields);
  const std::uint64_t h = HashBytes(inputs.Serialize());
  const auto all = comm.AllGather(std::span<const std::uint64_t>(&h, 1));
  for (std::size_t r = 0; r < all.size(); ++r) {
    ESCALA_CHECK(all[r] == h, kInvalidArgument,
                 "pipeline fit: rank {} has columns {} but rank {} has different ones; every "
                 "worker must read data with the same schema",
                 comm.rank(), inputs.ToString(), r);
  }
  return inputs;
}

// The fit of one pipeline on this rank's shard: the shard's slot buffers, and the live slots.
class ShardFit {
 public:
  ShardFit(Pipeline::Impl& impl, const data::Table& table, const FitOptions& options,
           Communicator& comm);
  // The input ops, run: every input column in a slot.
  void ReadInputs();
  // Fits, compiles and runs step `index` of the spec.
  void FitStep(std::size_t index);

 private:
  void Run(std::size_t first, std::size_t last);
  void FreeDeadSlots();

  Pipeline::Impl& impl_;
  const FitOptions& options_;
  Communicator& comm_;
  const RawBatch raw_;
  FitFrame frame_;
  std::vector<std::vector<std::uint64_t>> dict_hashes_;  // per input, of its dictionary
  std::vector<int> live_;
};

ShardFit::ShardFit(Pipeline::Impl& impl, const data::Table& table, const FitOptions& options,
                   Communicator& comm)
    : impl_(impl), options_(options), comm_(comm), raw_(BatchFromTable(table, impl.inputs)) {
  frame_.rows = table.num_rows();
  dict_hashes_.resize(raw_.columns.size());
  for (std::size_t i = 0; i < raw_.columns.size(); ++i) {
    const RawColumn& c = raw_.columns[i];
    if (c.kind != RawColumn::Kind::kCodes) continue;
    for (const auto& s : *c.dictionary) {
      const std::uint64_t h = CatHash(s);
      dict_hashes_[i].push_back(h);
      frame_.names.emplace(h, s);
    }
  }
}

// Runs ops [first, last) over the whole shard, in parallel chunks.
void ShardFit::Run(std::size_t first, std::size_t last) {
  const auto& slots = impl_.slots;
  frame_.Ensure(slots);
  ParallelFor(static_cast<std::size_t>(frame_.rows), 16384, [&](std::size_t b, std::size_t e) {
    Store st;
    st.n = static_cast<std::int64_t>(e - b);
    st.num.resize(slots.size(), nullptr);
    st.cat.resize(slots.size(), nullptr);
    for (std::size_t i = 0; i < slots.size(); ++i) {
      if (slots[i].categorical) {
        if (!frame_.cat[i].empty()) st.cat[i] = frame_.cat[i].data() + b;
      } else if (!frame_.num[i].empty()) {
        st.num[i] = frame_.num[i].data() + b;
      }
    }
    ExpressionScratch es;
    std::vector<const float*> ptrs;
    RunContext ctx{&raw_, static_cast<std::int64_t>(b), &dict_hashes_, &es, &ptrs};
    impl_.RunOps(first, last, st, ctx);
  });
}

void ShardFit::ReadInputs() {
  impl_.AddInputOps(&live_);
  Run(0, impl_.ops.size());
}

// The buffers of slots that are no longer live are freed.
void ShardFit::FreeDeadSlots() {
  for (std::size_t i = 0; i < impl_.slots.size(); ++i) {
    if (std::find(live_.begin(), live_.end(), static_cast<int>(i)) == live_.end()) {
      std::vector<float>().swap(frame_.num[i]);
      std::vector<std::uint64_t>().swap(frame_.cat[i]);
    }
  }
}

void ShardFit::FitStep(std::size_t index) {
  const StepDef& d = impl_.defs[index];
  FittedStep fs{.kind = d.kind, .spec = d.text};
  for (const auto& [k, v] : d.options) {
    std::string joined;
    for (std::size_t i = 0; i < v.size(); ++i) joined += (i ? "," : "") + v[i];
    fs.options[k] = joined;
  }
  StepFitter fitter(d, fs, impl_, live_, frame_, options_, comm_);
  FindStepKind(d.kind).fit(fitter);
  const std::size_t first_op = impl_.ops.size();
  impl_.steps.push_back(std::move(fs));
  try {
    impl_.CompileStep(static_cast<int>(index), impl_.steps.back(), &live_);
  } catch (const Error& e) {
    throw e.WithContext("fitting the pipeline");
  }
  Run(first_op, impl_.ops.size());
  FreeDeadSlots();
}

}  // namespace

}  // namespace internal

void Pipeline::Fit(const data::Table& table, const FitOptions& options, Communicator& comm) {
  // Everything is built in a fresh Impl and swapped in at the end: a failure leaves *this as is.
  auto impl = std::make_unique<Impl>();
  impl->spec = impl_->spec;
  impl->defs = impl_->defs;
  impl->inputs = internal::InputSchema(table, options, comm);
  internal::ShardFit shard(*impl, table, options, comm);
  shard.ReadInputs();
  for (std::size_t i = 0; i < impl->defs.size(); ++i) shard.FitStep(i);
  // The plan that serving will run, compiled from the fitted steps alone.
  impl->Compile();
  impl->fitted = true;
  impl_ = std::move(impl);
}

}  // namespace escala::features
