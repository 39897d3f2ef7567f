// The compiled plan of a feature pipeline: slots (named columns of values), ops over slots, and
// Pipeline::Impl, which holds the fitted steps and the plan compiled from them. Private to the
// features module: pipeline.cc (spec, transform, serialisation), pipeline_fit.cc (fitting),
// pipeline_ops.cc (the op kernels) and the step kinds (pipeline_steps.h) share it.
#ifndef ESCALA_SRC_FEATURES_PIPELINE_IMPL_H_
#define ESCALA_SRC_FEATURES_PIPELINE_IMPL_H_

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "escala/features/expression.h"
#include "escala/features/pipeline.h"
#include "escala/features/sketches.h"
#include "escala/features/v1/pipeline.pb.h"
#include "features/pipeline_spec.h"

namespace escala::features {

namespace internal {

namespace pb = escala::features::v1;

inline constexpr std::int64_t kBlock = 1024;
inline constexpr std::uint64_t kMissingCat = 0;
inline constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
// The vocabulary entry that stands for "missing" when missing values were seen at fit time.
inline constexpr char kMissingName[] = "<missing>";

inline std::uint64_t CatHash(std::string_view s) {
  return HashBytes(s, 0x0ca7) | 1;
}

// "a, b, c", or the first `limit` names and the count.
std::string JoinNames(const std::vector<std::string>& names, std::size_t limit = 12);

struct Slot {
  std::string name;
  bool categorical = false;
  int source = -1;  // raw input index this slot holds unchanged values of (for messages)
};

enum class OpKind {
  kInputNum,
  kInputCat,
  kIndicator,
  kImputeNum,
  kImputeCat,
  kAffine,
  kClip,
  kUnary,
  kOneHot,
  kOrdinal,
  kHash,
  kBucketize,
  kPoly,
  kExpr,
  // Runs of consecutive ops of one elementwise kind, fused for serving (FuseElementwise):
  kInputNumMany,   // ins: raw input indices, outs: slots
  kImputeNumMany,  // ins: slots, p0: fill values
  kAffineMany      // ins: slots, p0, p1, p2: center, scale, offset
};

enum class UnaryFn { kLog1p, kLog, kSqrt, kAbs };
enum class Unknown { kError, kIgnore, kOther, kUseValue };

struct Op {
  OpKind kind;
  int step = -1;
  int in = -1;
  int out = -1;
  std::vector<int> ins;
  std::vector<int> outs;
  float a = 0, b = 0, c = 0;
  UnaryFn fn = UnaryFn::kLog1p;
  Unknown unknown = Unknown::kError;
  std::uint64_t hash = 0;
  std::string fill;  // kImputeCat: the category whose hash is `hash`
  std::vector<float> boundaries;
  std::vector<std::pair<std::uint64_t, int>> vocab;  // sorted by hash
  std::vector<std::string> vocab_names;              // by output index, for messages
  int missing_index = -1;
  int other_index = -1;
  std::vector<std::uint64_t> col_hashes;
  std::vector<std::vector<int>> terms;  // poly: indices into ins
  std::shared_ptr<const Expression> expr;
  std::vector<float> p0, p1, p2;  // the fused kinds' per-slot parameters
};

// Slot buffers for a range of rows: full columns while fitting, a block while transforming.
struct Store {
  std::int64_t n = 0;
  std::vector<float*> num;
  std::vector<std::uint64_t*> cat;
};

struct RunContext {
  const RawBatch* raw = nullptr;
  std::int64_t row_offset = 0;  // rows of the store start at this raw row
  const std::vector<std::vector<std::uint64_t>>* dict_hashes = nullptr;  // per input, kCodes
  ExpressionScratch* expr_scratch = nullptr;
  std::vector<const float*>* ptrs = nullptr;
};

// A step as fitted: what the bundle stores (escala.features.v1.Step).
struct FittedStep {
  std::string kind;
  std::string spec;
  std::vector<std::string> columns;
  std::map<std::string, std::string> options;
  std::vector<pb::ColumnParams> params;
};

// The live slot named `name`, or -1.
int FindLive(const std::vector<Slot>& slots, const std::vector<int>& live, std::string_view name);
std::vector<std::string> LiveNames(const std::vector<Slot>& slots, const std::vector<int>& live);

// The unknown= policy of an encoder; kInvalidArgument naming the step otherwise.
Unknown ParseUnknown(const std::string& s, const std::string& step);

}  // namespace internal

struct Pipeline::Impl {
  using Slot = internal::Slot;
  using Op = internal::Op;
  using Store = internal::Store;
  using RunContext = internal::RunContext;
  using FittedStep = internal::FittedStep;

  std::string spec;
  std::vector<internal::StepDef> defs;
  bool fitted = false;
  bool keep_missing = false;
  data::Schema inputs;
  std::vector<FittedStep> steps;
  std::vector<std::string> outputs;
  // Compiled:
  std::vector<Slot> slots;
  std::vector<Op> ops;
  std::vector<int> output_slots;
  std::vector<std::int64_t> output_categories;  // per output: an ordinal code's categories, or 0

  void Compile();
  // One op per input column, reading it into a slot of its own; the slots become live.
  void AddInputOps(std::vector<int>* live);
  void CompileStep(int index, const FittedStep& step, std::vector<int>* live);
  void FuseElementwise();
  int AddSlot(std::string name, bool categorical, int source = -1) {
    slots.push_back(Slot{std::move(name), categorical, source});
    return static_cast<int>(slots.size() - 1);
  }
  std::string StepText(int step) const {
    return step >= 0 ? steps[static_cast<std::size_t>(step)].spec : std::string("input");
  }
  void RunOp(const Op& op, Store& st, const RunContext& ctx) const;
  void ReadInputNum(int input, float* out, std::int64_t n, const RunContext& ctx) const;
  void RunFusedOp(const Op& op, Store& st, const RunContext& ctx) const;
  void RunOps(std::size_t first, std::size_t last, Store& st, const RunContext& ctx) const {
    for (std::size_t i = first; i < last; ++i) RunOp(ops[i], st, ctx);
  }
  std::string RawString(int input, std::int64_t row, const RunContext& ctx) const;

 private:
  void ReadInputCat(const Op& op, Store& st, const RunContext& ctx) const;
  void RunEncoder(const Op& op, Store& st, const RunContext& ctx) const;
  [[noreturn]] void ThrowUnknownCategory(const Op& op, std::uint64_t h, std::int64_t row,
                                         const RunContext& ctx) const;
};

}  // namespace escala::features

#endif  // ESCALA_SRC_FEATURES_PIPELINE_IMPL_H_
