#include <cmath>
#include <random>
#include <tuple>

#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/model/v1/model.pb.h"
#include "escala/models/factory.h"
#include "escala/models/linear.h"
#include "escala/models/mlp.h"

namespace escala::models {
namespace {

struct Problem {
  MatrixF x;
  std::vector<float> y;
  std::vector<std::uint64_t> ids;
};

Problem MakeProblem(Task task, int classes, std::int64_t n, std::int64_t d, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  Problem p;
  p.x.Resize(n, d);
  for (std::int64_t i = 0; i < n * d; ++i) p.x.data()[i] = g(rng);
  for (std::int64_t i = 0; i < n; ++i) {
    p.ids.push_back(static_cast<std::uint64_t>(1000 + i));
    switch (task) {
      case Task::kRegression:
        p.y.push_back(g(rng));
        break;
      case Task::kBinary:
        p.y.push_back(static_cast<float>(rng() % 2));
        break;
      case Task::kMulticlass:
        p.y.push_back(static_cast<float>(rng() % classes));
        break;
    }
  }
  return p;
}

std::unique_ptr<GradientModel> Make(const std::string& kind, Task task, int classes, std::int64_t d,
                                    Activation act = Activation::kReLU, float dropout = 0.0f) {
  ModelSpec spec;
  spec.kind = kind;
  spec.task = task;
  spec.num_features = d;
  spec.num_classes = classes;
  spec.hidden = {6, 4};
  spec.activation = act;
  spec.dropout = dropout;
  auto m = MakeModel(spec);
  m->Initialize(11);
  // Non-zero biases and weights so every path is exercised.
  std::mt19937_64 rng(5);
  std::normal_distribution<float> g(0.0f, 0.5f);
  for (float& p : m->parameters()) p += g(rng);
  return m;
}

double LossAt(const GradientModel& m, const Problem& p, const BatchContext& ctx, Workspace& ws) {
  std::vector<float> scratch(m.parameters().size());
  return m.AccumulateGradient(p.x.view(), p.y, scratch, ctx, ws);
}

void CheckGradient(GradientModel& m, const Problem& p, const BatchContext& ctx) {
  auto ws = m.NewWorkspace();
  std::vector<float> grad(m.parameters().size(), 0.0f);
  m.AccumulateGradient(p.x.view(), p.y, grad, ctx, *ws);
  auto params = m.parameters();
  auto numeric_at = [&](std::size_t i, float eps) {
    const float saved = params[i];
    params[i] = saved + eps;
    const double up = LossAt(m, p, ctx, *ws);
    params[i] = saved - eps;
    const double down = LossAt(m, p, ctx, *ws);
    params[i] = saved;
    return (up - down) / (2.0 * eps);
  };
  double max_err = 0;
  std::size_t kinks = 0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const float eps = 2e-3f * std::max(1.0f, std::fabs(params[i]));
    const double numeric = numeric_at(i, eps);
    // A ReLU kink within eps makes the loss non-differentiable there: the two estimates then
    // disagree, and the point says nothing about the analytic gradient.
    const double half = numeric_at(i, eps / 2);
    if (std::fabs(numeric - half) > 5e-3 * std::max(1.0, std::fabs(numeric))) {
      ++kinks;
      continue;
    }
    const double err = std::fabs(numeric - grad[i]) / std::max(1.0, std::fabs(numeric));
    max_err = std::max(max_err, err);
    EXPECT_LT(err, 1e-2) << m.Describe() << " parameter " << i << ": analytic " << grad[i]
                         << " numeric " << numeric;
  }
  EXPECT_LE(kinks * 10, params.size()) << "too many non-differentiable points";
  ::testing::Test::RecordProperty("max_relative_error", std::to_string(max_err));
}

class GradientCheck
    : public ::testing::TestWithParam<std::tuple<std::string, Task, Activation, float>> {};

TEST_P(GradientCheck, MatchesFiniteDifferences) {
  const auto [kind, task, act, dropout] = GetParam();
  const int classes = task == Task::kMulticlass ? 3 : 0;
  auto m = Make(kind, task, classes, 5, act, dropout);
  const Problem p = MakeProblem(task, classes, 9, 5, 3);
  BatchContext ctx;
  ctx.training = true;
  ctx.seed = 99;
  ctx.step = 4;
  ctx.row_ids = p.ids;
  CheckGradient(*m, p, ctx);
}

INSTANTIATE_TEST_SUITE_P(
    Linear, GradientCheck,
    ::testing::Values(std::make_tuple("linear", Task::kRegression, Activation::kReLU, 0.0f),
                      std::make_tuple("logistic", Task::kBinary, Activation::kReLU, 0.0f),
                      std::make_tuple("softmax", Task::kMulticlass, Activation::kReLU, 0.0f)));

INSTANTIATE_TEST_SUITE_P(
    Mlp, GradientCheck,
    ::testing::Combine(::testing::Values("mlp"),
                       ::testing::Values(Task::kRegression, Task::kBinary, Task::kMulticlass),
                       ::testing::Values(Activation::kReLU, Activation::kTanh, Activation::kSigmoid,
                                         Activation::kGELU),
                       ::testing::Values(0.0f, 0.3f)));

TEST(Mlp, DropoutMasksDoNotDependOnHowTheBatchIsSplit) {
  auto m = Make("mlp", Task::kBinary, 0, 5, Activation::kReLU, 0.5f);
  const Problem p = MakeProblem(Task::kBinary, 0, 10, 5, 8);
  BatchContext ctx;
  ctx.training = true;
  ctx.seed = 1;
  ctx.step = 2;
  ctx.row_ids = p.ids;
  auto ws = m->NewWorkspace();
  std::vector<float> whole(m->parameters().size(), 0.0f), halves(whole.size(), 0.0f);
  const double loss = m->AccumulateGradient(p.x.view(), p.y, whole, ctx, *ws);
  double split_loss = 0;
  for (int h = 0; h < 2; ++h) {
    BatchContext c = ctx;
    c.row_ids = std::span<const std::uint64_t>(p.ids).subspan(static_cast<std::size_t>(h * 5), 5);
    split_loss += m->AccumulateGradient(
        p.x.view().Rows(h * 5, 5),
        std::span<const float>(p.y).subspan(static_cast<std::size_t>(h * 5), 5), halves, c, *ws);
  }
  EXPECT_NEAR(loss, split_loss, 1e-4);
  for (std::size_t i = 0; i < whole.size(); ++i) EXPECT_NEAR(whole[i], halves[i], 1e-4);
}

TEST(Models, PredictAppliesTheLink) {
  auto m = Make("softmax", Task::kMulticlass, 4, 3);
  const Problem p = MakeProblem(Task::kMulticlass, 4, 6, 3, 1);
  auto ws = m->NewWorkspace();
  MatrixF probs(6, 4);
  m->Predict(p.x.view(), probs.view(), *ws);
  for (std::int64_t i = 0; i < 6; ++i) {
    float s = 0;
    for (std::int64_t j = 0; j < 4; ++j) {
      EXPECT_GE(probs(i, j), 0.0f);
      s += probs(i, j);
    }
    EXPECT_NEAR(s, 1.0f, 1e-5);
  }
}

TEST(Models, InvalidLabelsNameTheRow) {
  auto m = Make("logistic", Task::kBinary, 0, 3);
  Problem p = MakeProblem(Task::kBinary, 0, 4, 3, 1);
  p.y[2] = 0.5f;
  auto ws = m->NewWorkspace();
  std::vector<float> g(m->parameters().size());
  try {
    m->AccumulateGradient(p.x.view(), p.y, g, {}, *ws);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("row 2"), std::string::npos) << e.what();
  }
  auto sm = Make("softmax", Task::kMulticlass, 3, 3);
  p.y = {0, 1, 3, 2};
  std::vector<float> g2(sm->parameters().size());
  EXPECT_THROW(sm->AccumulateGradient(p.x.view(), p.y, g2, {}, *sm->NewWorkspace()), Error);
}

TEST(Models, WrongFeatureCountIsInvalidArgument) {
  auto m = Make("mlp", Task::kBinary, 0, 5);
  MatrixF x(2, 4, 0.0f), out(2, 1);
  EXPECT_THROW(m->Predict(x.view(), out.view(), *m->NewWorkspace()), Error);
}

TEST(Models, LossIsStableForExtremeLogits) {
  MatrixF z(2, 1);
  z(0, 0) = 1e4f;
  z(1, 0) = -1e4f;
  const std::vector<float> y = {0.0f, 1.0f};
  MatrixF g(2, 1);
  const double loss = LossAndLogitGradient(Task::kBinary, z.view(), y, g.view());
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_NEAR(loss, 2e4, 1.0);
  EXPECT_FLOAT_EQ(g(0, 0), 1.0f);
  EXPECT_FLOAT_EQ(g(1, 0), -1.0f);
}

TEST(ModelSerialization, RoundTripGivesIdenticalPredictions) {
  for (const std::string kind : {"linear", "logistic", "softmax", "mlp"}) {
    const Task task = TaskForKind(kind, Task::kMulticlass);
    auto m = Make(kind, task, task == Task::kMulticlass ? 3 : 0, 5, Activation::kGELU, 0.1f);
    auto back = ParseModel(SerializeModel(*m));
    EXPECT_EQ(back->kind(), m->kind());
    EXPECT_EQ(back->Describe(), m->Describe());
    const Problem p = MakeProblem(task, 3, 8, 5, 2);
    MatrixF a(8, m->num_outputs()), b(8, m->num_outputs());
    m->Predict(p.x.view(), a.view(), *m->NewWorkspace());
    back->Predict(p.x.view(), b.view(), *back->NewWorkspace());
    for (std::int64_t i = 0; i < a.size(); ++i) ASSERT_EQ(a.data()[i], b.data()[i]) << kind;
  }
}

TEST(ModelSerialization, CorruptOrInconsistentBytesAreRejected) {
  try {
    ParseModel("\xff\xff\xff garbage");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDataLoss);
  }
  auto m = Make("logistic", Task::kBinary, 0, 5);
  std::string bytes = SerializeModel(*m);
  bytes.resize(bytes.size() - 4);  // truncated parameter array
  EXPECT_THROW(ParseModel(bytes), Error);
}

TEST(Models, SpecValidation) {
  ModelSpec spec;
  spec.kind = "tree";
  spec.num_features = 3;
  EXPECT_THROW(MakeModel(spec), Error);
  spec.kind = "mlp";
  spec.dropout = 1.0f;
  EXPECT_THROW(MakeModel(spec), Error);
  spec.dropout = 0.0f;
  spec.hidden = {0};
  EXPECT_THROW(MakeModel(spec), Error);
  EXPECT_THROW(ParseActivation("swish"), Error);
}

TEST(ModelRegistry, KindsAreRegisteredByNameAndUnknownOnesAreListed) {
  EXPECT_EQ(ModelKinds(), (std::vector<std::string>{"linear", "logistic", "softmax", "mlp", "gbdt",
                                                    "random_forest"}));
  ModelSpec spec;
  spec.kind = "forest";
  spec.num_features = 3;
  try {
    MakeModel(spec);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(
                  "'forest' (expected linear, logistic, softmax, mlp, gbdt or random_forest)"),
              std::string::npos)
        << e.what();
  }
  // A registered kind that gradient trainers do not build is refused by name.
  spec.kind = "gbdt";
  try {
    MakeModel(spec);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gbdt model is not built for gradient training"),
              std::string::npos)
        << e.what();
  }
}

TEST(ModelRegistry, InferenceAndGradientSidesParseTheSameBytes) {
  auto m = Make("mlp", Task::kBinary, 0, 4);
  const std::string bytes = SerializeModel(*m);
  std::unique_ptr<Model> inference = ParseModel(bytes);
  std::unique_ptr<GradientModel> trainable = ParseGradientModel(bytes);
  EXPECT_EQ(SerializeModel(*inference), bytes);
  EXPECT_TRUE(std::ranges::equal(trainable->parameters(), m->parameters()));
  // A model's kind must be registered to be read back.
  escala::model::v1::Model proto;
  ASSERT_TRUE(proto.ParseFromString(bytes));
  proto.set_kind("forest");
  EXPECT_THROW(ParseModel(proto.SerializeAsString()), Error);
}

}  // namespace
}  // namespace escala::models
