// Pipeline::Fit: each step in turn is fitted by its kind (pipeline_steps.h) on the shard as the
// steps before it transformed it, compiled, and run over the shard for the steps after it.
#include <algorithm>
#include <cmath>
#include <functional>
#include <span>
#include <unordered_map>

#include "escala/core/error.h"
#include "escala/core/parallel.h"
#include "features/pipeline_impl.h"
#include "features/pipeline_steps.h"

namespace escala::features {

namespace internal {

// Slot buffers of some rows while fitting: the whole shard, or one chunk of a streamed one.
// Buffers every op writes whole (the kernels serve reused scratch too), so they are not zeroed
// when sized: for a shard of a million rows that memset was a third of a Python fit's time.
template <class T>
using FrameBuffer = std::vector<T, data::internal::DefaultInitAllocator<T>>;

struct FitFrame {
  std::int64_t rows = 0;
  std::vector<FrameBuffer<float>> num;
  std::vector<FrameBuffer<std::uint64_t>> cat;
  std::size_t allocated = 0;  // slots [0, allocated) have had their buffers sized
  std::unordered_map<std::uint64_t, std::string> names;  // of the raw dictionaries
};

const std::string& FitData::NameOf(std::uint64_t hash, const FitFrame& frame) const {
  auto it = frame.names.find(hash);
  if (it != frame.names.end()) return it->second;
  auto added = added_names.find(hash);
  ESCALA_ASSERT(added != added_names.end());
  return added->second;
}

namespace {

// In blocks through AddBatch (two passes over each block, merged): Welford's update per value
// divides once per value and was 6% of fitting the default pipeline on W0.
void AddValues(const FrameBuffer<float>& x, NumericSummary* s) {
  constexpr std::size_t kBlock = 4096;
  double block[kBlock];
  for (std::size_t b = 0; b < x.size(); b += kBlock) {
    const std::size_t n = std::min(kBlock, x.size() - b);
    for (std::size_t i = 0; i < n; ++i) block[i] = x[b + i];
    s->AddBatch(std::span<const double>(block, n));
  }
}

void AddValues(const FrameBuffer<float>& x, QuantileSketch* s) {
  for (float v : x) {
    if (std::isfinite(v)) s->Add(v);
  }
}

void AddCategories(const FrameBuffer<std::uint64_t>& x, const FitFrame& frame, const FitData& data,
                   FrequentItems* f) {
  std::unordered_map<std::uint64_t, std::int64_t> counts;
  for (std::uint64_t h : x) ++counts[h];
  for (const auto& [h, c] : counts) {
    f->Add(h == kMissingCat ? std::string(kMissingName) : data.NameOf(h, frame), c);
  }
}

void AddNumbers(const FrameBuffer<float>& x, FrequentItems* f) {
  for (float v : x) {
    if (!std::isnan(v)) f->AddNumber(v);
  }
}

// Per column i, add(frame's buffer of slots[i], &out[i]) over every frame, then merged across
// ranks.
template <typename Stat, typename Add>
std::vector<Stat> Accumulate(FitData& data, const std::vector<std::size_t>& slots, Stat init,
                             Communicator& comm, Add add) {
  std::vector<Stat> out(slots.size(), init);
  if (slots.empty()) return out;  // no pass for nothing (a step whose columns are all elsewhere)
  data.ForEachFrame([&](const FitFrame& frame) {
    ParallelFor(slots.size(), 1, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) add(frame, slots[i], &out[i]);
    });
  });
  for (auto& s : out) s = AllMerge(s, comm);
  return out;
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

std::vector<std::size_t> StepFitter::SlotsOf(const std::vector<std::string>& cols) const {
  std::vector<std::size_t> slots;
  for (const auto& c : cols) slots.push_back(static_cast<std::size_t>(SlotOf(c)));
  return slots;
}

std::vector<NumericSummary> StepFitter::Summaries(const std::vector<std::string>& cols) const {
  return Accumulate(
      data_, SlotsOf(cols), NumericSummary(), comm_,
      [](const FitFrame& f, std::size_t slot, NumericSummary* s) { AddValues(f.num[slot], s); });
}

std::vector<QuantileSketch> StepFitter::Sketches(const std::vector<std::string>& cols) const {
  return Accumulate(
      data_, SlotsOf(cols), QuantileSketch(options_.sketch_k), comm_,
      [](const FitFrame& f, std::size_t slot, QuantileSketch* s) { AddValues(f.num[slot], s); });
}

std::vector<FrequentItems> StepFitter::Categories(const std::vector<std::string>& cols) const {
  return Accumulate(data_, SlotsOf(cols), FrequentItems(options_.max_tracked_categories), comm_,
                    [this](const FitFrame& f, std::size_t slot, FrequentItems* s) {
                      AddCategories(f.cat[slot], f, data_, s);
                    });
}

std::vector<FrequentItems> StepFitter::FrequentNumbers(const std::vector<std::string>& cols) const {
  return Accumulate(
      data_, SlotsOf(cols), FrequentItems(4096, FrequentItems::Mode::kNumeric), comm_,
      [](const FitFrame& f, std::size_t slot, FrequentItems* s) { AddNumbers(f.num[slot], s); });
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
  data_.added_names.emplace(CatHash(name), name);
}

namespace {

// The table's columns minus the excluded ones (the label, ids). Every rank must agree.
data::Schema InputSchema(const data::Schema& schema, const FitOptions& options,
                         Communicator& comm) {
  std::vector<data::Field> fields;
  for (const auto& f : schema.fields()) {
    if (std::find(options.exclude.begin(), options.exclude.end(), f.name) ==
        options.exclude.end()) {
      fields.push_back(f);
    }
  }
  for (auto& f : fields) {
    const int d = options.declared.Find(f.name);
    if (d < 0) continue;
    const data::DataType declared = options.declared.field(d).type;
    const bool numeric = declared != data::DataType::kCategorical;
    if (numeric == (f.type != data::DataType::kCategorical)) f.type = declared;
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

// A raw batch read into a frame, and ops run over the frame in parallel blocks of rows.
class FrameRunner {
 public:
  FrameRunner(const Pipeline::Impl& impl, const data::Table& table, FitFrame* frame)
      : impl_(impl), raw_(BatchFromTable(table, impl.inputs)), frame_(*frame) {
    frame_.rows = table.num_rows();
    frame_.allocated = 0;
    frame_.names.clear();
    dict_hashes_.resize(raw_.columns.size());
    for (std::size_t i = 0; i < raw_.columns.size(); ++i) {
      const RawColumn& c = raw_.columns[i];
      if (c.kind != RawColumn::Kind::kCodes) continue;
      for (const auto& name : *c.dictionary) {
        const std::uint64_t h = CatHash(name);
        dict_hashes_[i].push_back(h);
        frame_.names.emplace(h, name);
      }
    }
  }
  // Runs ops [first, last) over every row of the frame.
  void Run(std::size_t first, std::size_t last);

 private:
  void Allocate();
  Store StoreAt(std::size_t row, std::size_t n) const;

  const Pipeline::Impl& impl_;
  const RawBatch raw_;
  FitFrame& frame_;
  std::vector<std::vector<std::uint64_t>> dict_hashes_;  // per input, of its dictionary
};

// Sizes the buffers of the slots added since the last run. Slots whose buffers were freed (no
// longer live) stay empty: no later op reads them.
void FrameRunner::Allocate() {
  const auto& slots = impl_.slots;
  const auto rows = static_cast<std::size_t>(frame_.rows);
  frame_.num.resize(slots.size());
  frame_.cat.resize(slots.size());
  for (std::size_t i = frame_.allocated; i < slots.size(); ++i) {
    if (slots[i].categorical) {
      frame_.cat[i].resize(rows);
    } else {
      frame_.num[i].resize(rows);
    }
  }
  frame_.allocated = slots.size();
}

Store FrameRunner::StoreAt(std::size_t row, std::size_t n) const {
  const auto& slots = impl_.slots;
  Store st;
  st.n = static_cast<std::int64_t>(n);
  st.num.resize(slots.size(), nullptr);
  st.cat.resize(slots.size(), nullptr);
  for (std::size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].categorical) {
      if (!frame_.cat[i].empty()) st.cat[i] = frame_.cat[i].data() + row;
    } else if (!frame_.num[i].empty()) {
      st.num[i] = frame_.num[i].data() + row;
    }
  }
  return st;
}

void FrameRunner::Run(std::size_t first, std::size_t last) {
  Allocate();
  ParallelFor(static_cast<std::size_t>(frame_.rows), 16384, [&](std::size_t b, std::size_t e) {
    Store st = StoreAt(b, e - b);
    ExpressionScratch es;
    std::vector<const float*> ptrs;
    RunContext ctx{&raw_, static_cast<std::int64_t>(b), &dict_hashes_, &es, &ptrs};
    impl_.RunOps(first, last, st, ctx);
  });
}

// The shard in memory: one frame, each step's ops run over it once as the step is fitted, and
// the buffers of columns no longer live freed.
class ShardData final : public FitData {
 public:
  ShardData(const Pipeline::Impl& impl, const data::Table& table)
      : runner_(impl, table, &frame_), impl_(impl) {}
  void ForEachFrame(const std::function<void(const FitFrame&)>& visit) override { visit(frame_); }
  void Advance(std::size_t first_op, const std::vector<int>& live) {
    runner_.Run(first_op, impl_.ops.size());
    for (std::size_t i = 0; i < frame_.num.size(); ++i) {
      if (std::find(live.begin(), live.end(), static_cast<int>(i)) == live.end()) {
        FrameBuffer<float>().swap(frame_.num[i]);
        FrameBuffer<std::uint64_t>().swap(frame_.cat[i]);
      }
    }
  }

 private:
  FitFrame frame_;
  FrameRunner runner_;
  const Pipeline::Impl& impl_;
};

// A shard read in chunks: each frame is a chunk read again and run through every op so far.
class ChunkData final : public FitData {
 public:
  ChunkData(const Pipeline::Impl& impl, data::TableChunks& chunks) : impl_(impl), chunks_(chunks) {}
  void ForEachFrame(const std::function<void(const FitFrame&)>& visit) override {
    chunks_.ForEachChunk([&](const data::Table& chunk) {
      FrameRunner runner(impl_, chunk, &frame_);
      runner.Run(0, impl_.ops.size());
      visit(frame_);
    });
  }

 private:
  const Pipeline::Impl& impl_;
  data::TableChunks& chunks_;
  FitFrame frame_;  // its buffers are reused from chunk to chunk
};

// Fits step `index` of the spec on `data` and compiles it; returns the first op it added.
std::size_t FitStep(Pipeline::Impl& impl, std::size_t index, std::vector<int>* live, FitData& data,
                    const FitOptions& options, Communicator& comm) {
  const StepDef& d = impl.defs[index];
  FittedStep fs{.kind = d.kind, .spec = d.text};
  for (const auto& [k, v] : d.options) {
    std::string joined;
    for (std::size_t i = 0; i < v.size(); ++i) joined += (i ? "," : "") + v[i];
    fs.options[k] = joined;
  }
  StepFitter fitter(d, fs, impl, *live, data, options, comm);
  FindStepKind(d.kind).fit(fitter);
  const std::size_t first_op = impl.ops.size();
  impl.steps.push_back(std::move(fs));
  try {
    impl.CompileStep(static_cast<int>(index), impl.steps.back(), live);
  } catch (const Error& e) {
    throw e.WithContext("fitting the pipeline");
  }
  return first_op;
}

}  // namespace

}  // namespace internal

std::unique_ptr<Pipeline::Impl> Pipeline::StartFit(const data::Schema& schema,
                                                   const FitOptions& options,
                                                   Communicator& comm) const {
  auto impl = std::make_unique<Impl>();
  impl->spec = impl_->spec;
  impl->defs = impl_->defs;
  impl->inputs = internal::InputSchema(schema, options, comm);
  impl->keep_missing = options.keep_missing;
  return impl;
}

void Pipeline::FinishFit(std::unique_ptr<Impl> impl) {
  // The plan that serving will run, compiled from the fitted steps alone.
  impl->Compile();
  impl->fitted = true;
  impl_ = std::move(impl);
}

void Pipeline::Fit(const data::Table& table, const FitOptions& options, Communicator& comm) {
  // Everything is built in a fresh Impl and swapped in at the end: a failure leaves *this as is.
  auto impl = StartFit(table.schema(), options, comm);
  internal::ShardData data(*impl, table);
  std::vector<int> live;
  impl->AddInputOps(&live);
  // With no step to fit (pipeline "none") the inputs need no pass over the rows at all.
  if (!impl->defs.empty()) data.Advance(0, live);
  for (std::size_t i = 0; i < impl->defs.size(); ++i) {
    data.Advance(internal::FitStep(*impl, i, &live, data, options, comm), live);
  }
  FinishFit(std::move(impl));
}

void Pipeline::Fit(data::TableChunks& chunks, const FitOptions& options, Communicator& comm) {
  auto impl = StartFit(chunks.schema(), options, comm);
  internal::ChunkData data(*impl, chunks);
  std::vector<int> live;
  impl->AddInputOps(&live);
  for (std::size_t i = 0; i < impl->defs.size(); ++i) {
    internal::FitStep(*impl, i, &live, data, options, comm);
  }
  FinishFit(std::move(impl));
}

}  // namespace escala::features
