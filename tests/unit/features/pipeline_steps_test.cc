// The registry of pipeline step kinds (src/features/pipeline_steps.h).
#include "features/pipeline_steps.h"

#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/features/pipeline.h"
#include "features/pipeline_spec.h"

namespace escala::features::internal {
namespace {

// The steps of the spec grammar, as escala/features/pipeline.h documents them.
const std::vector<std::string> kGrammarKinds = {
    "impute",    "clip",          "standardize", "minmax", "robust",  "log1p",
    "log",       "sqrt",          "abs",         "onehot", "ordinal", "hash",
    "bucketize", "quantile_bins", "poly",        "expr",   "drop"};

Error ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error";
  return Error(ErrorCode::kOk, "");
}

TEST(PipelineSteps, EveryKindOfTheSpecGrammarIsRegisteredInItsOrder) {
  std::vector<std::string> registered;
  for (const StepKind* k : StepKinds()) {
    registered.emplace_back(k->name);
    EXPECT_NE(k->fit, nullptr) << k->name;
    EXPECT_NE(k->compile, nullptr) << k->name;
  }
  EXPECT_EQ(registered, kGrammarKinds);
  for (const auto& name : kGrammarKinds) {
    ASSERT_NE(LookupStepKind(name), nullptr) << name;
    EXPECT_EQ(&FindStepKind(name), LookupStepKind(name));
    const auto defs = ParseSpec(name + "(x)");
    ASSERT_EQ(defs.size(), 1u);
    EXPECT_EQ(defs[0].kind, name);
  }
}

TEST(PipelineSteps, AliasesParseToRegisteredKinds) {
  EXPECT_EQ(ParseSpec("scale")[0].kind, "standardize");
  EXPECT_EQ(ParseSpec("Standard_Scaler")[0].kind, "standardize");
  EXPECT_EQ(ParseSpec("one_hot(c)")[0].kind, "onehot");
}

TEST(PipelineSteps, AnUnknownKindInASpecNamesTheStepAndTheKnownKinds) {
  const Error e = ErrorOf([] { Pipeline::FromSpec("impute | Frobnicate(x, y=2)"); });
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.message(),
            "pipeline step 'Frobnicate(x, y=2)': unknown step 'frobnicate' (known: impute, clip, "
            "standardize, minmax, robust, log1p, log, sqrt, abs, onehot, ordinal, hash, "
            "bucketize, quantile_bins, poly, expr, drop)");
  EXPECT_EQ(LookupStepKind("frobnicate"), nullptr);
}

TEST(PipelineSteps, AnUnknownStoredKindIsDataLoss) {
  const Error direct = ErrorOf([] { FindStepKind("frobnicate"); });
  EXPECT_EQ(direct.code(), ErrorCode::kDataLoss);
  EXPECT_EQ(direct.message(), "pipeline: unknown step kind 'frobnicate'");

  // A bundle whose step kind was damaged ("standardize" is stored as the kind of "scale").
  data::Column x("x", data::DataType::kFloat64, 3);
  for (int i = 0; i < 3; ++i) x.mutable_f64()[i] = i;
  auto p = Pipeline::FromSpec("scale");
  auto comm = MakeSelfCommunicator();
  p.Fit(data::Table({x}), {}, *comm);
  std::string bytes = p.Serialize();
  const auto at = bytes.find("standardize");
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at, 11, "standardizz");
  const Error stored = ErrorOf([&] { Pipeline::Parse(bytes); });
  EXPECT_EQ(stored.code(), ErrorCode::kDataLoss);
  EXPECT_EQ(stored.message(),
            "pipeline: stored steps are inconsistent: pipeline: unknown step kind 'standardizz'");
}

}  // namespace
}  // namespace escala::features::internal
