// Weighted training against peers (tests/python/weights_reference.py; skipped when python3 with
// scikit-learn is absent): scikit-learn's LogisticRegression (C = 1) and LinearRegression with
// sample_weight, and XGBoost's boosted trees with weights in its DMatrix.
#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "escala/core/thread_communicator.h"
#include "escala/data/csv.h"
#include "escala/data/table.h"
#include "escala/models/model.h"
#include "escala/train/estimator.h"
#include "escala/train/gbdt.h"
#include "test_util/temp_dir.h"

namespace escala::train {
namespace {

class WeightsReference : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::ScriptOutputDir("tests/python/weights_reference.py", "weights", &rc_, &output_);
    if (rc_ == 77 || rc_ == 127) GTEST_SKIP() << "python3 with scikit-learn is absent";
    ASSERT_EQ(rc_, 0) << output_;
  }
  std::string File(const std::string& name) const { return dir_ + "/" + name; }
  std::map<std::string, double> Ref(const std::string& name) const {
    std::map<std::string, double> ref;
    std::ifstream in(File(name + ".ref"));
    std::string line;
    while (std::getline(in, line)) {
      const auto comma = line.find(',');
      ref[line.substr(0, comma)] = std::stod(line.substr(comma + 1));
    }
    return ref;
  }
  // A linear model trained by TrainTable on the reference rows as they are.
  std::span<const float> TrainLinear(const std::string& name, const std::string& model,
                                     std::optional<float> l2) {
    TrainSpec spec;
    spec.label = "y";
    spec.weight = "w";
    spec.model = model;
    spec.pipeline = "";
    spec.l2 = l2;
    spec.options.progress = false;
    spec.options.lbfgs_tolerance = 1e-10;
    spec.options.lbfgs_max_iterations = 2000;
    auto comm = MakeSelfCommunicator();
    outcome_ = TrainTable(spec, data::ReadCsv(File(name + ".csv")), std::nullopt, *comm);
    return dynamic_cast<const models::GradientModel&>(*outcome_->bundle.model).parameters();
  }
  void ExpectParameters(std::span<const float> p, const std::map<std::string, double>& ref,
                        double tol) {
    const std::size_t d = p.size() - 1;
    for (std::size_t i = 0; i < d; ++i) {
      const double r = ref.at("w" + std::to_string(i));
      EXPECT_NEAR(p[i], r, tol * (1 + std::fabs(r))) << "coefficient " << i;
    }
    const double b = ref.at("b0");
    EXPECT_NEAR(p[d], b, tol * (1 + std::fabs(b))) << "intercept";
  }

  std::string dir_, output_;
  int rc_ = 0;
  std::optional<TrainOutcome> outcome_;
};

TEST_F(WeightsReference, LogisticRegressionMatchesScikitLearnsWithSampleWeight) {
  // The default l2, 1 / (the weight sum), is scikit-learn's C = 1 with weights.
  ExpectParameters(TrainLinear("logistic", "logistic", std::nullopt), Ref("logistic"), 2e-3);
}

TEST_F(WeightsReference, LinearRegressionMatchesScikitLearnsWithSampleWeight) {
  ExpectParameters(TrainLinear("linear", "linear", 0.0f), Ref("linear"), 1e-3);
}

TEST_F(WeightsReference, BoostedTreesMatchXgboostWithWeights) {
  if (!std::ifstream(File("xgboost.ref"))) GTEST_SKIP() << "python3-xgboost is absent";
  const data::Table t = data::ReadCsv(File("xgboost.csv"));
  MatrixF x;
  const std::vector<std::string> features = {"f0", "f1", "f2", "f3", "f4", "f5"};
  data::CopyColumnsToMatrix(t, features, &x);
  const std::vector<float> y = data::ColumnToFloat(t, "y"), w = data::ColumnToFloat(t, "w");
  GbdtOptions o;
  o.rounds = 20;
  o.max_depth = 4;
  o.learning_rate = 0.3f;
  auto comm = MakeSelfCommunicator();
  const auto model =
      TrainGbdt(o, models::Task::kBinary, 0, {std::as_const(x).view(), y, {}, w}, nullptr, *comm);
  MatrixF m(x.rows(), 1);
  auto ws = model->NewWorkspace();
  model->Logits(std::as_const(x).view(), m.view(), *ws);
  const auto ref = Ref("xgboost");
  for (std::int64_t i = 0; i < m.rows(); ++i) {
    EXPECT_NEAR(m(i, 0), ref.at("p" + std::to_string(i)), 1e-3) << "row " << i;
  }
}

}  // namespace
}  // namespace escala::train
