#include "test_util/bundles.h"

#include <random>

#include "escala/core/communicator.h"
#include "escala/models/factory.h"
#include "escala/train/estimator.h"
#include "escala/train/trainer.h"

namespace escala::testing {

namespace {

std::shared_ptr<io::ModelBundle> Fit(const data::Table& t, const std::string& spec,
                                     std::vector<float> y, models::ModelSpec mspec,
                                     std::vector<std::string> classes, const std::string& label) {
  auto comm = MakeSelfCommunicator();
  auto b = std::make_shared<io::ModelBundle>();
  b->pipeline = features::Pipeline::FromSpec(spec);
  b->pipeline.Fit(t, {}, *comm);
  MatrixF x;
  b->pipeline.Transform(t, &x);
  mspec.num_features = b->pipeline.num_outputs();
  auto model = models::MakeModel(mspec);
  train::TrainOptions o;
  o.optimizer.name = "lbfgs";
  o.optimizer.l2 = 1e-3f;
  o.progress = false;
  train::Trainer(*model, o, *comm).Fit({std::as_const(x).view(), y, {}}, nullptr);
  b->model = std::move(model);
  b->class_names = std::move(classes);
  b->label = label;
  b->name = "test";
  return b;
}

}  // namespace

std::shared_ptr<io::ModelBundle> NumericLogisticBundle(int features, std::uint64_t seed) {
  const std::int64_t n = 400;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0, 1);
  std::vector<data::Column> cols;
  std::vector<double> score(n, 0.0);
  for (int j = 0; j < features; ++j) {
    data::Column c("f" + std::to_string(j), data::DataType::kFloat32, n);
    const double w = g(rng);
    for (std::int64_t i = 0; i < n; ++i) {
      const double v = g(rng) * (j + 1);
      c.mutable_f32()[static_cast<std::size_t>(i)] = static_cast<float>(v);
      score[static_cast<std::size_t>(i)] += w * v / (j + 1);
    }
    cols.push_back(std::move(c));
  }
  std::vector<float> y(n);
  for (std::int64_t i = 0; i < n; ++i)
    y[static_cast<std::size_t>(i)] =
        score[static_cast<std::size_t>(i)] + 0.3 * g(rng) > 0 ? 1.0f : 0.0f;
  models::ModelSpec spec;
  spec.kind = "logistic";
  return Fit(data::Table(cols), "standardize", y, spec, {"no", "yes"}, "label");
}

std::shared_ptr<io::ModelBundle> MixedSoftmaxBundle(std::uint64_t seed) {
  const std::int64_t n = 300;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0, 1);
  data::Column x("x", data::DataType::kFloat64, n), y("y", data::DataType::kFloat64, n),
      color("color", data::DataType::kCategorical, n);
  color.mutable_dictionary() = {"red", "green", "blue"};
  std::vector<float> label(n);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto u = static_cast<std::size_t>(i);
    const int c = static_cast<int>(rng() % 3);
    x.mutable_f64()[u] = g(rng) + c;
    y.mutable_f64()[u] = g(rng);
    color.mutable_codes()[u] = c;
    if (i % 10 == 0) x.SetMissing(i);
    label[u] = static_cast<float>((c + (y.mutable_f64()[u] > 1 ? 1 : 0)) % 3);
  }
  models::ModelSpec spec;
  spec.kind = "softmax";
  spec.task = models::Task::kMulticlass;
  spec.num_classes = 3;
  return Fit(data::Table({x, y, color}),
             "impute(mean) | standardize | onehot(color, unknown=ignore)", label, spec,
             {"a", "b", "c"}, "label");
}

std::shared_ptr<io::ModelBundle> MixedTreesBundle(std::uint64_t seed) {
  const std::int64_t n = 400;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0, 1);
  data::Column x("x", data::DataType::kFloat64, n), y("y", data::DataType::kFloat64, n),
      color("color", data::DataType::kCategorical, n), label("label", data::DataType::kFloat64, n);
  color.mutable_dictionary() = {"red", "green", "blue"};
  for (std::int64_t i = 0; i < n; ++i) {
    const auto u = static_cast<std::size_t>(i);
    const int c = static_cast<int>(rng() % 3);
    x.mutable_f64()[u] = g(rng);
    y.mutable_f64()[u] = g(rng);
    color.mutable_codes()[u] = c;
    const bool yes = (x.f64()[u] > 0) != (c == 2) || (i % 9 == 0);
    if (i % 9 == 0) x.SetMissing(i);  // missing x: always "yes"
    label.mutable_f64()[u] = yes ? 1.0 : 0.0;
  }
  train::TrainSpec spec;
  spec.label = "label";
  spec.model = "gbdt";
  spec.trees.rounds = 20;
  spec.trees.max_depth = 3;
  auto comm = MakeSelfCommunicator();
  train::TrainOutcome out =
      train::TrainTable(spec, data::Table({x, y, color, label}), std::nullopt, *comm);
  out.bundle.name = "trees";
  return std::make_shared<io::ModelBundle>(std::move(out.bundle));
}

std::shared_ptr<io::ModelBundle> RegressionBundle() {
  const std::int64_t n = 200;
  data::Column x("x", data::DataType::kFloat64, n), y("y", data::DataType::kFloat64, n);
  std::vector<float> t(n);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto u = static_cast<std::size_t>(i);
    x.mutable_f64()[u] = static_cast<double>(i % 17);
    y.mutable_f64()[u] = static_cast<double>(i % 5);
    t[u] = static_cast<float>(2 * (i % 17) - 3 * (i % 5) + 1);
  }
  models::ModelSpec spec;
  spec.kind = "linear";
  return Fit(data::Table({x, y}), "", t, spec, {}, "target");
}

}  // namespace escala::testing
