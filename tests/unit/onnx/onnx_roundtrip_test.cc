// Bundles exported by `escala export --onnx` (escala/io/onnx_export.h) and run by escala's own
// ONNX runtime (escala/models/onnx.h) predict what the bundle predicts: the whole pipeline
// (imputation, scaling, one-hot with unseen and missing categories) and every model family.
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/io/bundle.h"
#include "escala/io/onnx_export.h"
#include "escala/models/onnx.h"
#include "test_util/bundles.h"

namespace escala::models {
namespace {

// Rows for the bundle's input schema: numeric columns normal (NaN every 7th row when
// `missing`), categorical ones red/green/blue plus an unseen "purple" and, when `missing`,
// empty (missing) entries.
data::Table RawRows(const io::ModelBundle& b, std::int64_t n, bool missing) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> g(0, 1.5);
  std::vector<data::Column> cols;
  for (const auto& f : b.input_schema().fields()) {
    const bool cat = f.type == data::DataType::kCategorical;
    data::Column c(f.name, cat ? data::DataType::kCategorical : data::DataType::kFloat64, n);
    if (cat) c.mutable_dictionary() = {"red", "green", "blue", "purple"};
    for (std::int64_t i = 0; i < n; ++i) {
      const auto u = static_cast<std::size_t>(i);
      if (cat) {
        c.mutable_codes()[u] = static_cast<std::int32_t>(rng() % 4);
      } else {
        c.mutable_f64()[u] = g(rng);
      }
      if (missing && i % 7 == 3) c.SetMissing(i);
    }
    cols.push_back(std::move(c));
  }
  return data::Table(std::move(cols));
}

// The table's columns as the exported graph's inputs: [N, 1] float or string each.
std::vector<OnnxTensor> GraphInputs(const data::Table& t) {
  std::vector<OnnxTensor> in(static_cast<std::size_t>(t.num_columns()));
  for (int j = 0; j < t.num_columns(); ++j) {
    const data::Column& c = t.column(j);
    OnnxTensor& x = in[static_cast<std::size_t>(j)];
    const bool cat = c.type() == data::DataType::kCategorical;
    x.Resize(cat ? OnnxType::kString : OnnxType::kFloat, {t.num_rows(), 1});
    for (std::int64_t i = 0; i < t.num_rows(); ++i) {
      const auto u = static_cast<std::size_t>(i);
      if (cat) {
        x.s[u] = std::string(c.category(i));
      } else {
        x.f[u] = static_cast<float>(c.GetDouble(i));
      }
    }
  }
  return in;
}

void ExpectSamePredictions(const std::shared_ptr<io::ModelBundle>& bundle, bool missing) {
  SCOPED_TRACE(bundle->name + " " + std::string(bundle->model->kind()));
  const data::Table rows = RawRows(*bundle, 500, missing);
  MatrixF want;
  io::Predictor(bundle).PredictTable(rows, &want);
  const auto graph = OnnxGraph::Load(io::ExportOnnx(*bundle, {}), "exported");
  const std::vector<OnnxTensor> in = GraphInputs(rows);
  std::vector<const OnnxTensor*> ptrs;
  for (const auto& t : in) ptrs.push_back(&t);
  auto scratch = graph->NewScratch();
  const auto out = graph->Run(ptrs, *scratch);
  const OnnxTensor& p = *out[0];  // prediction or probabilities
  const Task task = bundle->model->task();
  ASSERT_EQ(p.shape[0], rows.num_rows());
  double worst = 0;
  for (std::int64_t i = 0; i < want.rows(); ++i) {
    for (std::int64_t k = 0; k < want.cols(); ++k) {
      const std::int64_t col = task == Task::kBinary ? 1 : k;
      const double got = p.f[static_cast<std::size_t>(i * p.shape[1] + col)];
      worst =
          std::max(worst, std::abs(got - want(i, k)) / std::max(1.0, std::abs(double{want(i, k)})));
    }
  }
  EXPECT_LE(worst, 1e-5);
  if (task == Task::kRegression) return;
  const OnnxTensor& label = *out[1];
  std::vector<std::int32_t> cls;
  io::Predictor::Classes(task, want.view(), &cls);
  int differ = 0;
  for (std::size_t i = 0; i < cls.size(); ++i) {
    differ += label.s[i] != bundle->class_names[static_cast<std::size_t>(cls[i])];
  }
  EXPECT_EQ(differ, 0);
}

TEST(OnnxRoundTrip, ExportedBundlesRunByEscalasRuntimePredictAsTheBundle) {
  ExpectSamePredictions(testing::MixedSoftmaxBundle(), true);
  ExpectSamePredictions(testing::MixedTreesBundle(), true);
  ExpectSamePredictions(testing::RegressionBundle(), false);
  ExpectSamePredictions(testing::NumericLogisticBundle(6), false);
}

}  // namespace
}  // namespace escala::models
