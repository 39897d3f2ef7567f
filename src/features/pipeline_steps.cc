#include "features/pipeline_steps.h"

#include <algorithm>
#include <array>
#include <charconv>

#include <fmt/format.h>

#include "escala/core/error.h"

namespace escala::features::internal {

namespace {

// The registered kinds, in the order the spec grammar lists them. An explicit table: every kind
// is linked in, and nothing depends on the order of static initialisation.
constexpr std::array<const StepKind*, 17> kKinds = {
    &kImputeStep,  &kClipStep, &kStandardizeStep, &kMinMaxStep,       &kRobustStep,
    &kLog1pStep,   &kLogStep,  &kSqrtStep,        &kAbsStep,          &kOneHotStep,
    &kOrdinalStep, &kHashStep, &kBucketizeStep,   &kQuantileBinsStep, &kPolyStep,
    &kExprStep,    &kDropStep};

}  // namespace

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

const StepKind* LookupStepKind(std::string_view name) {
  for (const auto* k : kKinds) {
    if (k->name == name) return k;
  }
  return nullptr;
}

const StepKind& FindStepKind(std::string_view name) {
  const StepKind* k = LookupStepKind(name);
  if (k == nullptr) Throw(ErrorCode::kDataLoss, "pipeline: unknown step kind '{}'", name);
  return *k;
}

std::span<const StepKind* const> StepKinds() {
  return kKinds;
}

std::string StepKindList() {
  std::string out;
  for (const auto* k : kKinds) out += (out.empty() ? "" : ", ") + std::string(k->name);
  return out;
}

void CheckColumnsNamed(const StepDef& d) {
  ESCALA_CHECK(!d.positional.empty(), kInvalidArgument,
               "pipeline step '{}': name the columns it applies to", d.text);
}

// ---- StepCompiler ------------------------------------------------------------------------------

int StepCompiler::SlotOf(const std::string& col) const {
  const int id = FindSlot(col);
  ESCALA_CHECK(id >= 0, kInvalidArgument,
               "pipeline step '{}': no column '{}' at this point (columns: {})", step.spec, col,
               LiveList());
  return id;
}

const pb::ColumnParams& StepCompiler::Param(std::size_t i) const {
  ESCALA_CHECK(i < step.params.size(), kDataLoss, "pipeline step '{}': missing fitted parameters",
               step.spec);
  return step.params[i];
}

float StepCompiler::Value(const pb::ColumnParams& p, int i) const {
  ESCALA_CHECK(i < p.values_size(), kDataLoss,
               "pipeline step '{}': fitted parameters for '{}' are incomplete", step.spec,
               p.column());
  return static_cast<float>(p.values(i));
}

// A crafted or damaged bundle is refused by name rather than failing inside the standard library.
int StepCompiler::StoredInt(const std::string& key, int lo, int hi) const {
  const auto it = step.options.find(key);
  int v = 0;
  const bool ok = it != step.options.end() &&
                  std::from_chars(it->second.data(), it->second.data() + it->second.size(), v).ec ==
                      std::errc() &&
                  v >= lo && v <= hi;
  ESCALA_CHECK(ok, kDataLoss,
               "pipeline step {}: option {} is missing or not an integer in [{}, {}]", step.kind,
               key, lo, hi);
  return v;
}

void StepCompiler::ReplaceLive(int old_id, const std::vector<int>& new_ids) {
  auto it = std::find(live_.begin(), live_.end(), old_id);
  const auto pos = it - live_.begin();
  live_.erase(it);
  live_.insert(live_.begin() + pos, new_ids.begin(), new_ids.end());
}

void StepCompiler::InsertLiveAfter(int id, int new_id) {
  live_.insert(std::find(live_.begin(), live_.end(), id) + 1, new_id);
}

void StepCompiler::EraseLive(int id) {
  live_.erase(std::find(live_.begin(), live_.end(), id));
}

}  // namespace escala::features::internal
