// The pipeline's step kinds, registered by name. Private to src/features: the public side is the
// spec grammar of escala/features/pipeline.h.
//
// A kind's entry says what can be checked of a step before seeing data, how to fit it (choose its
// columns and compute their parameters, merged across ranks) into a FittedStep, and how to compile
// a fitted step into ops. Fitting and loading a bundle compile through the same entry, so serving
// runs the ops training ran. Entries of one family share their functions (the scalers, the unary
// maps, the encoders). The ops' kernels (pipeline_ops.cc) dispatch per op and block of rows, never
// per row. Adding a kind is one entry in the table of pipeline_steps.cc.
#ifndef ESCALA_SRC_FEATURES_PIPELINE_STEPS_H_
#define ESCALA_SRC_FEATURES_PIPELINE_STEPS_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "escala/core/communicator.h"
#include "escala/features/sketches.h"
#include "features/pipeline_impl.h"
#include "features/pipeline_spec.h"

namespace escala::features::internal {

struct FitFrame;

// What step fitters read: the rows of this rank's shard as the steps fitted so far transform
// them, visited in frames (one frame for a shard in memory; one per chunk for a streamed shard,
// each re-read and re-transformed, so that every statistic asked for is one pass).
class FitData {
 public:
  virtual ~FitData() = default;
  // Every row once.
  virtual void ForEachFrame(const std::function<void(const FitFrame&)>& visit) = 0;
  // The name of a category hash: from the frame's raw dictionaries, or one a step introduced.
  const std::string& NameOf(std::uint64_t hash, const FitFrame& frame) const;
  std::unordered_map<std::uint64_t, std::string> added_names;
};

// What a kind's fit sees: its definition, the live columns, and statistics of their values over
// this rank's shard merged across ranks. It fills the FittedStep's columns, options and parameters.
class StepFitter {
 public:
  StepFitter(const StepDef& def, FittedStep& step, const Pipeline::Impl& plan,
             const std::vector<int>& live, FitData& data, const FitOptions& options,
             Communicator& comm)
      : def(def),
        step(step),
        plan_(plan),
        live_(live),
        data_(data),
        options_(options),
        comm_(comm) {}

  const StepDef& def;
  FittedStep& step;

  // The columns named (or, when none are, every live one of a wanted type), each checked to be
  // live and of a wanted type.
  std::vector<std::string> Resolve(bool want_numeric, bool want_categorical) const {
    return Resolve(def.positional, want_numeric, want_categorical);
  }
  std::vector<std::string> Resolve(const std::vector<std::string>& named, bool want_numeric,
                                   bool want_categorical) const;
  bool IsCategorical(const std::string& col) const;

  // Per-column statistics, each call one pass over the data (computed in parallel over columns)
  // and merged across ranks: ask for all the columns a step needs at once.
  std::vector<NumericSummary> Summaries(const std::vector<std::string>& cols) const;
  std::vector<QuantileSketch> Sketches(const std::vector<std::string>& cols) const;
  std::vector<FrequentItems> Categories(const std::vector<std::string>& cols) const;
  // The most frequent finite values of numeric columns.
  std::vector<FrequentItems> FrequentNumbers(const std::vector<std::string>& cols) const;

  // kInvalidArgument naming the step and column when a column has nothing to fit on.
  void RequireValues(const std::string& col, const NumericSummary& s) const;
  void RequireValues(const std::string& col, const QuantileSketch& s) const;
  void AddParams(const std::string& col, const std::vector<double>& values);
  // A category that imputation introduces, so that later steps can name it.
  void AddCategoryName(const std::string& name);
  const FitOptions& options() const { return options_; }

 private:
  int SlotOf(const std::string& col) const;
  std::vector<std::size_t> SlotsOf(const std::vector<std::string>& cols) const;

  const Pipeline::Impl& plan_;
  const std::vector<int>& live_;
  FitData& data_;
  const FitOptions& options_;
  Communicator& comm_;
};

// What a kind's compile sees: the fitted step, the live slots, and the plan to add slots and ops
// to. Errors about stored parameters are kDataLoss (a damaged bundle), about columns
// kInvalidArgument.
class StepCompiler {
 public:
  StepCompiler(Pipeline::Impl& plan, int index, const FittedStep& step, std::vector<int>& live)
      : step(step), index(index), plan_(plan), live_(live) {}

  const FittedStep& step;
  const int index;

  // The live slot of a column; kInvalidArgument listing the live columns otherwise.
  int SlotOf(const std::string& col) const;
  int FindSlot(std::string_view col) const { return FindLive(plan_.slots, live_, col); }
  std::string LiveList() const { return JoinNames(LiveNames(plan_.slots, live_)); }
  const Slot& slot(int id) const { return plan_.slots[static_cast<std::size_t>(id)]; }
  Slot& slot(int id) { return plan_.slots[static_cast<std::size_t>(id)]; }
  const pb::ColumnParams& Param(std::size_t i) const;
  float Value(const pb::ColumnParams& p, int i) const;
  bool OptionIs(const std::string& key, std::string_view value) const {
    const auto it = step.options.find(key);
    return it != step.options.end() && it->second == value;
  }
  // An integer option as stored in a bundle: kDataLoss by name when missing or out of range.
  int StoredInt(const std::string& key, int lo, int hi) const;

  int AddSlot(std::string name, bool categorical) {
    return plan_.AddSlot(std::move(name), categorical);
  }
  void Emit(Op op) { plan_.ops.push_back(std::move(op)); }
  Op NewOp(OpKind kind, int in = -1) const { return Op{.kind = kind, .step = index, .in = in}; }

  std::vector<int>& live() { return live_; }
  // The new slots take the old one's place among the live slots.
  void ReplaceLive(int old_id, const std::vector<int>& new_ids);
  void InsertLiveAfter(int id, int new_id);
  void EraseLive(int id);

 private:
  Pipeline::Impl& plan_;
  std::vector<int>& live_;
};

struct StepKind {
  std::string_view name;
  // What can be checked before seeing data (Pipeline::FromSpec); may be null.
  void (*check)(const StepDef& def) = nullptr;
  void (*fit)(StepFitter& fitter) = nullptr;
  void (*compile)(StepCompiler& compiler) = nullptr;
  // The argument text is one value of the kind's own syntax (StepDef::raw), not split into
  // columns and options.
  bool raw_argument = false;
};

// kInvalidArgument unless the step names the columns it applies to (the unary maps, drop).
void CheckColumnsNamed(const StepDef& def);

// The kind named `name`, or null.
const StepKind* LookupStepKind(std::string_view name);
// The kind of a stored step; kDataLoss naming it otherwise (a spec's kinds are checked when it
// is parsed, so only a bundle can hold an unknown one).
const StepKind& FindStepKind(std::string_view name);
// Every kind, in the order the spec grammar lists them.
std::span<const StepKind* const> StepKinds();
// "impute, clip, ..., drop": the kinds for messages.
std::string StepKindList();

// The entries, defined with their families: pipeline_impute.cc, pipeline_scale.cc (clip, the
// scalers, the unary maps), pipeline_encode.cc (onehot, ordinal, hash, bucketize, quantile_bins),
// pipeline_columns.cc (poly, expr, drop).
extern const StepKind kImputeStep;
extern const StepKind kClipStep;
extern const StepKind kStandardizeStep;
extern const StepKind kMinMaxStep;
extern const StepKind kRobustStep;
extern const StepKind kLog1pStep;
extern const StepKind kLogStep;
extern const StepKind kSqrtStep;
extern const StepKind kAbsStep;
extern const StepKind kOneHotStep;
extern const StepKind kOrdinalStep;
extern const StepKind kHashStep;
extern const StepKind kBucketizeStep;
extern const StepKind kQuantileBinsStep;
extern const StepKind kPolyStep;
extern const StepKind kExprStep;
extern const StepKind kDropStep;

}  // namespace escala::features::internal

#endif  // ESCALA_SRC_FEATURES_PIPELINE_STEPS_H_
