// Sample weights (TrainSpec::weight, DataShard::weights): integer weights train as duplicated
// rows, zero weights as dropped rows, N workers as one, and bad weights are refused by name.
#include <cmath>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/core/thread_communicator.h"
#include "escala/data/csv.h"
#include "escala/data/dataset.h"
#include "escala/train/estimator.h"
#include "escala/train/metrics.h"
#include "test_util/temp_dir.h"

namespace escala::train {
namespace {

struct Row {
  double a, b;
  int y;  // regression: the target is y + a / 4
  int w;
};

std::vector<Row> MakeRows(int n, int classes) {
  std::mt19937 rng(7);
  std::normal_distribution<double> noise;
  std::vector<Row> rows;
  for (int i = 0; i < n; ++i) {
    // One decimal: few distinct values, so trees' bins are the values whatever the row counts.
    const double a = std::round(10 * noise(rng)) / 10, b = std::round(10 * noise(rng)) / 10;
    const double s = a - 0.7 * b + 0.8 * noise(rng);
    int y = s > 0 ? 1 : 0;
    if (classes == 3) y = s < -0.5 ? 0 : (s < 0.5 ? 1 : 2);
    if (classes == 0) y = static_cast<int>(std::round(3 * s));
    rows.push_back({a, b, y, i % 5 == 0 ? 2 : (i % 7 == 0 ? 0 : (i % 3 == 0 ? 3 : 1))});
  }
  return rows;
}

// How the weights are written: as a column, as copies of the rows (weight k: k copies), or not.
enum class Form { kWeighted, kCopies, kNone };

std::string Csv(const std::vector<Row>& rows, Form form) {
  std::string csv = form == Form::kNone ? "a,b,y\n" : "a,b,y,w\n";
  for (const Row& r : rows) {
    const std::string line = fmt::format("{:.1f},{:.1f},{}", r.a, r.b, r.y);
    if (form == Form::kNone) {
      csv += line + "\n";
    } else if (form == Form::kWeighted) {
      csv += fmt::format("{},{}\n", line, r.w);
    } else {
      for (int k = 0; k < r.w; ++k) csv += line + ",1\n";
    }
  }
  return csv;
}

data::Table ReadTable(const std::string& csv) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("t.csv"), csv);
  return data::ReadCsv(dir.File("t.csv"));
}

TrainSpec Spec(const std::string& model, const std::string& task) {
  TrainSpec spec;
  spec.label = "y";
  spec.model = model;
  spec.task = task;
  spec.pipeline = "";  // the pipeline is fitted unweighted: keep the numbers as they are
  spec.options.progress = false;
  spec.options.threads = 2;
  spec.options.lbfgs_tolerance = 1e-9;
  spec.options.lbfgs_max_iterations = 500;
  spec.trees.rounds = 20;
  spec.trees_given = {"rounds"};
  return spec;
}

// The model's outputs on a grid of feature values.
MatrixF Outputs(const TrainOutcome& out) {
  MatrixF x(41, 2);
  for (std::int64_t i = 0; i < 41; ++i) {
    x(i, 0) = static_cast<float>(-2 + 0.1 * static_cast<double>(i));
    x(i, 1) = static_cast<float>(1.5 - 0.07 * static_cast<double>(i));
  }
  const models::Model& m = *out.bundle.model;
  MatrixF z(41, m.num_outputs());
  auto ws = m.NewWorkspace();
  m.Logits(std::as_const(x).view(), z.view(), *ws);
  return z;
}

void ExpectSameOutputs(const TrainOutcome& a, const TrainOutcome& b, double tol) {
  const MatrixF za = Outputs(a), zb = Outputs(b);
  for (std::int64_t i = 0; i < za.rows(); ++i) {
    for (std::int64_t j = 0; j < za.cols(); ++j) {
      EXPECT_NEAR(za(i, j), zb(i, j), tol * (1 + std::fabs(za(i, j)))) << i << "," << j;
    }
  }
}

struct Case {
  std::string model, task;
  int classes;
};

const Case kCases[] = {{"linear", "regression", 0},  {"logistic", "binary", 2},
                       {"softmax", "multiclass", 3}, {"gbdt", "regression", 0},
                       {"gbdt", "binary", 2},        {"gbdt", "multiclass", 3}};

TEST(SampleWeights, IntegerWeightsTrainAsDuplicatedRows) {
  auto comm = MakeSelfCommunicator();
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.model + " " + c.task);
    const auto rows = MakeRows(400, c.classes);
    TrainSpec weighted = Spec(c.model, c.task);
    weighted.weight = "w";
    TrainSpec copies = weighted;
    const auto a = TrainTable(weighted, ReadTable(Csv(rows, Form::kWeighted)), std::nullopt, *comm);
    const auto b = TrainTable(copies, ReadTable(Csv(rows, Form::kCopies)), std::nullopt, *comm);
    ExpectSameOutputs(a, b, c.model == "gbdt" ? 1e-5 : 2e-4);
  }
}

TEST(SampleWeights, ZeroWeightsTrainAsDroppedRows) {
  auto comm = MakeSelfCommunicator();
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.model + " " + c.task);
    auto rows = MakeRows(400, c.classes);
    for (Row& r : rows) r.w = r.w == 0 ? 0 : 1;
    std::vector<Row> kept;
    for (const Row& r : rows) {
      if (r.w > 0) kept.push_back(r);
    }
    TrainSpec spec = Spec(c.model, c.task);
    spec.weight = "w";
    spec.trees.min_data_in_leaf = 0;  // counts rows, whatever their weight
    const auto a = TrainTable(spec, ReadTable(Csv(rows, Form::kWeighted)), std::nullopt, *comm);
    const auto b = TrainTable(spec, ReadTable(Csv(kept, Form::kWeighted)), std::nullopt, *comm);
    ExpectSameOutputs(a, b, c.model == "gbdt" ? 1e-5 : 2e-4);
  }
}

TEST(SampleWeights, ScalingEveryWeightChangesNothing) {
  auto comm = MakeSelfCommunicator();
  for (const std::string model : {"logistic", "random_forest", "gbdt"}) {
    SCOPED_TRACE(model);
    auto rows = MakeRows(300, 2);
    for (Row& r : rows) r.w = 1;
    TrainSpec plain = Spec(model, "binary");
    plain.l2 = 0.01f;  // its default, 1 / the weight sum, is scikit-learn's C = 1: it scales
    TrainSpec tripled = plain;
    tripled.weight = "w";
    // Sums of hessians, as XGBoost's: min_child_weight and the leaves' lambda do not scale.
    for (TrainSpec* s : {&plain, &tripled}) {
      s->trees.min_child_weight = 0;
      s->trees.lambda = 0;
      s->trees_given.insert({"min_child_weight", "lambda"});
    }
    const auto a = TrainTable(plain, ReadTable(Csv(rows, Form::kNone)), std::nullopt, *comm);
    // The boosted trees choose splits on gradients quantised to 18 bits of the largest: scaled by
    // a power of two they quantise alike; by 3, near-equal splits may swap (docs/training.md).
    for (Row& r : rows) r.w = model == "gbdt" ? 4 : 3;
    const auto b = TrainTable(tripled, ReadTable(Csv(rows, Form::kWeighted)), std::nullopt, *comm);
    ExpectSameOutputs(a, b, 1e-4);
  }
}

TEST(SampleWeights, WeightsChangeTheModel) {
  auto comm = MakeSelfCommunicator();
  for (const std::string model : {"logistic", "random_forest", "gbdt", "mlp"}) {
    SCOPED_TRACE(model);
    auto rows = MakeRows(300, 2);
    TrainSpec spec = Spec(model, "binary");
    spec.epochs = 3;
    const auto a = TrainTable(spec, ReadTable(Csv(rows, Form::kNone)), std::nullopt, *comm);
    spec.weight = "w";
    const auto b = TrainTable(spec, ReadTable(Csv(rows, Form::kWeighted)), std::nullopt, *comm);
    const MatrixF za = Outputs(a), zb = Outputs(b);
    double diff = 0;
    for (std::int64_t i = 0; i < za.rows(); ++i) diff += std::fabs(za(i, 0) - zb(i, 0));
    EXPECT_GT(diff, 1e-3);
  }
}

// Data-parallel training stays exact: 2 thread workers with weights give 1 worker's model.
TEST(SampleWeights, TwoWorkersTrainTheModelOfOne) {
  testing::TempDir dir;
  const auto rows = MakeRows(600, 3);
  testing::WriteFile(dir.File("t.csv"), Csv(rows, Form::kWeighted));
  const auto dataset = data::Dataset::Open(dir.File("t.csv"));
  for (const std::string model : {"softmax", "gbdt", "random_forest", "mlp"}) {
    SCOPED_TRACE(model);
    TrainSpec spec = Spec(model, "multiclass");
    spec.weight = "w";
    spec.epochs = 3;
    spec.hidden = {8};
    spec.valid_fraction = 0.2;
    auto self = MakeSelfCommunicator();
    const auto one = TrainTable(spec, dataset.ReadTable(), std::nullopt, *self);
    std::vector<std::optional<TrainOutcome>> two(2);
    RunOnThreadRanks(2, [&](Communicator& comm) {
      const data::Shard shard{comm.rank(), comm.size()};
      two[static_cast<std::size_t>(comm.rank())] =
          TrainTable(spec, dataset.ReadTable(shard), std::nullopt, comm);
    });
    ExpectSameOutputs(one, *two[0], 1e-4);
    EXPECT_NEAR(two[1]->result.valid.at("logloss"), one.result.valid.at("logloss"), 1e-5);
  }
}

void ExpectRefused(const std::string& csv, const std::string& model, const std::string& what) {
  auto comm = MakeSelfCommunicator();
  TrainSpec spec = Spec(model, "binary");
  spec.weight = "w";
  try {
    TrainTable(spec, ReadTable(csv), std::nullopt, *comm);
    ADD_FAILURE() << "not refused: " << what;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

TEST(SampleWeights, BadWeightsAreRefusedNamingTheColumnAndRow) {
  const std::string head = "a,b,y,w\n1,2,0,1\n2,1,1,1\n3,3,0,";
  for (const std::string model : {"logistic", "gbdt", "mlp"}) {
    ExpectRefused(head + "-1\n", model, "weight column 'w': row 2: weight -1");
    ExpectRefused(head + "inf\n", model, "weight column 'w': row 2: weight inf");
    ExpectRefused(head + "\n", model, "weight column 'w': row 2: weight (missing)");
    ExpectRefused("a,b,y,w\n1,2,0,0\n2,1,1,0\n", model, "weight column 'w': every weight is 0");
    ExpectRefused("a,b,y,w\n1,2,0,x\n2,1,1,y\n", model, "weight column 'w' holds");
  }
  TrainSpec spec = Spec("logistic", "binary");
  spec.weight = "y";
  EXPECT_THROW(Validate(spec), Error);
}

TEST(SampleWeights, WeightedMetricsEqualThoseOfDuplicatedRows) {
  const std::vector<float> p = {0.9f, 0.2f, 0.6f, 0.4f}, y = {1, 0, 0, 1}, w = {2, 1, 3, 0};
  const std::vector<float> pd = {0.9f, 0.9f, 0.2f, 0.6f, 0.6f, 0.6f}, yd = {1, 1, 0, 0, 0, 0};
  const auto weighted = Evaluate(models::Task::kBinary, ConstMatrixViewF(p.data(), 4, 1), y, w);
  const auto copies = Evaluate(models::Task::kBinary, ConstMatrixViewF(pd.data(), 6, 1), yd);
  for (const char* m : {"logloss", "accuracy"}) {
    EXPECT_NEAR(weighted.at(m), copies.at(m), 1e-12) << m;
  }
  const auto r = Evaluate(models::Task::kRegression, ConstMatrixViewF(p.data(), 4, 1), y, w);
  const auto rd = Evaluate(models::Task::kRegression, ConstMatrixViewF(pd.data(), 6, 1), yd);
  for (const char* m : {"rmse", "mse", "mae", "r2"}) EXPECT_NEAR(r.at(m), rd.at(m), 1e-6) << m;
}

}  // namespace
}  // namespace escala::train
