// ONNX graphs run without allocating in steady state: after a first call has grown every slot,
// the same-sized calls allocate nothing (a counting operator new, this test binary only), for
// the graphs of tests/python/onnx_models.py that exercise the kernels a served model runs: a
// PyTorch MLP (Gemm, Relu; batch-norm, softmax), PyTorch's dynamic-batch flatten (Shape, Gather,
// Unsqueeze, Concat, Reshape), broadcasting arithmetic, a transpose, a batched MatMul, a linear
// classifier with its ZipMap and a tree ensemble.
#include <filesystem>

#include <gtest/gtest.h>

#include "escala/core/file_util.h"
#include "escala/models/onnx.h"
#include "onnx/ops.h"
#include "test_util/counting_new.h"
#include "test_util/temp_dir.h"

namespace escala::models {
namespace {

std::vector<OnnxTensor> Inputs(const std::string& dir) {
  std::vector<OnnxTensor> out;
  for (int k = 0;; ++k) {
    const std::string path = dir + "/input_" + std::to_string(k) + ".pb";
    if (!std::filesystem::exists(path)) return out;
    onnx::TensorProto t;
    EXPECT_TRUE(t.ParseFromString(ReadFileToString(path)));
    out.push_back(onnxrt::FromProto(t, path));
  }
}

// tests/python/onnx_models.py's output; "" when its Python packages are absent (any other
// failure fails the test).
std::string ReferenceDir() {
  int rc = 0;
  std::string output;
  const std::string ref =
      escala::testing::ScriptOutputDir("tests/python/onnx_models.py", "onnx", &rc, &output);
  if (rc == 77 || rc == 127) return {};
  EXPECT_EQ(rc, 0) << output;
  return ref;
}

TEST(NoAllocation, OnnxGraphsInSteadyState) {
  const std::string ref = ReferenceDir();
  if (ref.empty()) GTEST_SKIP() << "python3 with onnx, numpy and torch is absent";
  for (const char* name :
       {"torch_mlp_64_256_256_1", "torch_bn_dropout_softmax_opset17", "shape_gather", "add",
        "transpose", "matmul_batched", "linear_classifier", "tree_classifier_multiclass"}) {
    SCOPED_TRACE(name);
    const std::string dir = ref + "/" + name;
    const auto graph = OnnxGraph::Load(ReadFileToString(dir + "/model.onnx"), name);
    const std::vector<OnnxTensor> inputs = Inputs(dir);
    std::vector<const OnnxTensor*> ptrs;
    for (const auto& t : inputs) ptrs.push_back(&t);
    auto scratch = graph->NewScratch();
    graph->Run(ptrs, *scratch);  // warm-up: slots grow to their size
    escala::testing::StartCountingAllocations();
    for (int i = 0; i < 10; ++i) graph->Run(ptrs, *scratch);
    EXPECT_EQ(escala::testing::StopCountingAllocations(), 0) << "allocations in 10 runs";
  }
}

TEST(NoAllocation, AnOnnxModelPredictsWithoutAllocating) {
  const std::string ref = ReferenceDir();
  if (ref.empty()) GTEST_SKIP() << "python3 with onnx, numpy and torch is absent";
  const OnnxModel model(
      OnnxGraph::Load(ReadFileToString(ref + "/torch_mlp_64_256_256_1/model.onnx"), "mlp"));
  MatrixF x(256, 64), y(256, 1);
  for (std::int64_t k = 0; k < x.size(); ++k) x.data()[k] = static_cast<float>(k % 17) * 0.1f;
  auto ws = model.NewWorkspace();
  for (std::int64_t rows : {256, 1}) {  // a batch, then one row as a served request
    const auto xv = std::as_const(x).view().Rows(0, rows);
    const auto yv = y.view().Rows(0, rows);
    model.Predict(xv, yv, *ws);
    escala::testing::StartCountingAllocations();
    for (int i = 0; i < 10; ++i) model.Predict(xv, yv, *ws);
    EXPECT_EQ(escala::testing::StopCountingAllocations(), 0) << rows << " rows";
  }
}

}  // namespace
}  // namespace escala::models
