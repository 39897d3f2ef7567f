// Steady-state transforms and predictions allocate nothing: a counting operator new (this test
// binary only) watches repeated batches after the first one.
#include <gtest/gtest.h>

#include "escala/core/communicator.h"
#include "escala/features/pipeline.h"
#include "escala/io/bundle.h"
#include "escala/models/mlp.h"
#include "test_util/counting_new.h"

namespace escala::features {
namespace {

data::Table MakeTable(std::int64_t n) {
  data::Column a("a", data::DataType::kFloat64, n), b("b", data::DataType::kFloat32, n),
      c("color", data::DataType::kCategorical, n);
  c.mutable_dictionary() = {"red", "green", "blue"};
  for (std::int64_t i = 0; i < n; ++i) {
    const auto u = static_cast<std::size_t>(i);
    a.mutable_f64()[u] = static_cast<double>(i % 13);
    b.mutable_f32()[u] = static_cast<float>(i % 7) * 0.5f;
    c.mutable_codes()[u] = static_cast<std::int32_t>(i % 3);
    if (i % 5 == 0) a.SetMissing(i);
  }
  return data::Table({a, b, c});
}

TEST(NoAllocation, PipelineTransformAndModelPredictInSteadyState) {
  const data::Table t = MakeTable(5000);
  auto comm = MakeSelfCommunicator();
  auto p = Pipeline::FromSpec(
      "impute(mean, indicator=true) | standardize | expr(r = a / (b + 1)) | onehot(color)");
  p.Fit(t, {}, *comm);
  models::MlpSpec spec;
  spec.task = models::Task::kBinary;
  spec.num_features = p.num_outputs();
  spec.hidden = {64, 32};
  models::Mlp mlp(spec);
  mlp.Initialize(1);
  const RawBatch batch = BatchFromTable(t, p.input_schema());
  TransformScratch scratch;
  MatrixF features(batch.rows, p.num_outputs()), out(batch.rows, 1);
  auto ws = mlp.NewWorkspace();
  // Warm-up: buffers grow to their final size.
  p.TransformInto(batch, features.view(), scratch);
  mlp.Predict(std::as_const(features).view(), out.view(), *ws);
  testing::StartCountingAllocations();
  for (int i = 0; i < 20; ++i) {
    p.TransformInto(batch, features.view(), scratch);
    mlp.Predict(std::as_const(features).view(), out.view(), *ws);
  }
  EXPECT_EQ(testing::StopCountingAllocations(), 0) << "allocations in 20 steady-state batches";
}

}  // namespace
}  // namespace escala::features
