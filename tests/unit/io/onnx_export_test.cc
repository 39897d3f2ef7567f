#include "escala/io/onnx_export.h"

#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include "escala/core/communicator.h"
#include "escala/core/error.h"
#include "escala/models/factory.h"
#include "escala/train/estimator.h"
#include "test_util/bundles.h"
#include "test_util/temp_dir.h"

namespace escala::io {
namespace {

onnx::ModelProto Exported(const ModelBundle& b, const OnnxExportOptions& options = {}) {
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(ExportOnnx(b, options)));
  onnx::checker::check_model(m);
  return m;
}

// name -> (element type, shape as "N,1" text).
std::map<std::string, std::pair<int, std::string>> Signature(
    const google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>& values) {
  std::map<std::string, std::pair<int, std::string>> out;
  for (const auto& v : values) {
    std::string shape;
    for (const auto& d : v.type().tensor_type().shape().dim()) {
      shape += (shape.empty() ? "" : ",") +
               (d.has_dim_param() ? d.dim_param() : std::to_string(d.dim_value()));
    }
    out[v.name()] = {v.type().tensor_type().elem_type(), shape};
  }
  return out;
}

std::set<std::string> OpTypes(const onnx::ModelProto& m) {
  std::set<std::string> ops;
  for (const auto& n : m.graph().node()) ops.insert(n.op_type());
  return ops;
}

ErrorCode CodeOf(const std::function<void()>& fn, std::string* message = nullptr) {
  try {
    fn();
  } catch (const Error& e) {
    if (message != nullptr) *message = e.what();
    return e.code();
  }
  return ErrorCode::kOk;
}

constexpr int kFloat = onnx::TensorProto_DataType_FLOAT;
constexpr int kString = onnx::TensorProto_DataType_STRING;

TEST(OnnxExport, SoftmaxOverAMixedPipelineHasOneInputPerRawColumnAndTwoOutputs) {
  const auto m = Exported(*testing::MixedSoftmaxBundle());
  const auto in = Signature(m.graph().input());
  EXPECT_EQ(in.at("x"), std::make_pair(kFloat, std::string("N,1")));
  EXPECT_EQ(in.at("y"), std::make_pair(kFloat, std::string("N,1")));
  EXPECT_EQ(in.at("color"), std::make_pair(kString, std::string("N,1")));
  EXPECT_EQ(in.size(), 3u);
  const auto out = Signature(m.graph().output());
  EXPECT_EQ(out.at("probabilities"), std::make_pair(kFloat, std::string("N,3")));
  EXPECT_EQ(out.at("label"), std::make_pair(kString, std::string("N")));
  EXPECT_EQ(m.opset_import(0).version(), 17);
  EXPECT_TRUE(OpTypes(m).count("LabelEncoder"));
  EXPECT_TRUE(OpTypes(m).count("Gemm"));
}

TEST(OnnxExport, TreesBecomeOneTreeEnsembleRegressorWithCategoricalSplitsAsEqualityChains) {
  const auto m = Exported(*testing::MixedTreesBundle(), {.opset = 13});
  EXPECT_EQ(m.opset_import(0).version(), 13);
  const auto ops = OpTypes(m);
  EXPECT_TRUE(ops.count("TreeEnsembleRegressor"));
  EXPECT_TRUE(ops.count("Sigmoid"));
  const auto out = Signature(m.graph().output());
  EXPECT_EQ(out.at("probabilities"), std::make_pair(kFloat, std::string("N,2")));
  EXPECT_EQ(out.at("label").first, kString);
}

TEST(OnnxExport, RegressionHasOnePredictionOutput) {
  auto b = testing::RegressionBundle();
  const auto m = Exported(*b);
  const auto out = Signature(m.graph().output());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out.at("prediction"), std::make_pair(kFloat, std::string("N,1")));
}

TEST(OnnxExport, OnlyTheAgreedOperatorsAreEmitted) {
  const std::set<std::string> allowed = {
      "Gemm",      "MatMul", "Add",     "Sub",          "Mul",
      "Div",       "Relu",   "Sigmoid", "Tanh",         "Erf",
      "Sqrt",      "Pow",    "Softmax", "Concat",       "Squeeze",
      "Identity",  "Cast",   "Gather",  "ArgMax",       "Clip",
      "IsNaN",     "Where",  "Greater", "Less",         "Equal",
      "ReduceSum", "Exp",    "Log",     "Abs",          "Neg",
      "Max",       "Min",    "Floor",   "LabelEncoder", "TreeEnsembleRegressor"};
  for (const auto& b : {testing::MixedSoftmaxBundle(), testing::MixedTreesBundle(),
                        testing::RegressionBundle(), testing::NumericLogisticBundle(4)}) {
    for (const auto& op : OpTypes(Exported(*b))) EXPECT_TRUE(allowed.count(op)) << op;
  }
}

std::shared_ptr<ModelBundle> BundleWithPipeline(const std::string& spec) {
  const std::int64_t n = 60;
  data::Column x("x", data::DataType::kFloat64, n), c("c", data::DataType::kCategorical, n);
  c.mutable_dictionary() = {"p", "q"};
  for (std::int64_t i = 0; i < n; ++i) {
    x.mutable_f64()[static_cast<std::size_t>(i)] = static_cast<double>(i % 7);
    c.mutable_codes()[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i % 2);
  }
  auto comm = MakeSelfCommunicator();
  auto b = std::make_shared<ModelBundle>();
  b->pipeline = features::Pipeline::FromSpec(spec);
  b->pipeline.Fit(data::Table({x, c}), {}, *comm);
  models::ModelSpec ms;
  ms.kind = "linear";
  ms.num_features = b->pipeline.num_outputs();
  b->model = models::MakeModel(ms);
  return b;
}

TEST(OnnxExport, EveryExpressibleStepExports) {
  const auto b = BundleWithPipeline(
      "impute(mean, indicator=true) | impute(most_frequent, indicator=true) | clip(min=0,max=5) "
      "| expr(r = x / (x + 1) + (x % 1 == 0) * 0) | bucketize(x, boundaries=1,3) | log1p(r) "
      "| sqrt(x) | abs(x) | poly(degree=2, cols=x,r) | standardize | onehot(c, unknown=other)");
  std::string msg;
  // The % operator is refused, naming the step and the expression.
  EXPECT_EQ(CodeOf([&] { ExportOnnx(*b); }, &msg), ErrorCode::kFailedPrecondition);
  EXPECT_NE(msg.find("% operator"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expr(r ="), std::string::npos) << msg;
  const auto ok = BundleWithPipeline(
      "impute(mean, indicator=true) | impute(most_frequent, indicator=true) | clip(min=0,max=5) "
      "| expr(r = min(x, 2) / (x + 1) + ceil(x) * (x >= 1 or not isnan(x))) "
      "| expr(k = 3) | bucketize(x, boundaries=1,3) | log1p(r) | sqrt(x) | abs(x) "
      "| poly(degree=2, cols=x,r) | minmax | ordinal(c, unknown=use_value)");
  Exported(*ok);
}

TEST(OnnxExport, HashIsRefusedByNameAndNoFileIsWritten) {
  const auto b = BundleWithPipeline("hash(c, buckets=4)");
  testing::TempDir dir;
  const std::string path = dir.File("m.onnx");
  std::string msg;
  EXPECT_EQ(CodeOf([&] { ExportOnnxFile(*b, path); }, &msg), ErrorCode::kFailedPrecondition);
  EXPECT_NE(msg.find("hash(c, buckets=4)"), std::string::npos) << msg;
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(OnnxExport, OpsetOutOfRangeIsInvalidArgument) {
  const auto b = testing::RegressionBundle();
  std::string msg;
  EXPECT_EQ(CodeOf([&] { ExportOnnx(*b, {.opset = 12}); }, &msg), ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("opset 12"), std::string::npos) << msg;
  EXPECT_EQ(CodeOf([&] { ExportOnnx(*b, {.opset = 18}); }), ErrorCode::kInvalidArgument);
}

TEST(OnnxExport, FileIsWrittenAndReadsBack) {
  testing::TempDir dir;
  const std::string path = dir.File("m.onnx");
  ExportOnnxFile(*testing::NumericLogisticBundle(3), path);
  onnx::checker::check_model(path);
}

}  // namespace
}  // namespace escala::io
