// escala's ONNX runtime (escala/models/onnx.h) against reference outputs made by
// tests/python/onnx_models.py (skipped when python3-onnx, numpy or PyTorch is absent): every
// covered operator in graphs built with onnx.helper, PyTorch MLPs exported by torch.onnx.export
// (activations, batch-norm, dropout, softmax heads; opsets 13 and 17), then the same graphs as
// models (OnnxModel, bundles, the Predictor), and models that must be refused with the place at
// fault named.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/core/file_util.h"
#include "escala/io/bundle.h"
#include "escala/io/model_file.h"
#include "escala/models/onnx.h"
#include "onnx/ops.h"
#include "test_util/temp_dir.h"

namespace escala::models {
namespace {

OnnxTensor ReadTensor(const std::string& path) {
  onnx::TensorProto t;
  const std::string bytes = ReadFileToString(path);
  EXPECT_TRUE(t.ParseFromString(bytes)) << path;
  return onnxrt::FromProto(t, path);
}

std::vector<OnnxTensor> ReadTensors(const std::string& dir, const std::string& prefix) {
  std::vector<OnnxTensor> out;
  for (int k = 0;; ++k) {
    const std::string path = dir + "/" + prefix + "_" + std::to_string(k) + ".pb";
    if (!std::filesystem::exists(path)) return out;
    out.push_back(ReadTensor(path));
  }
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

void ExpectNear(const OnnxTensor& got, const OnnxTensor& want, const std::string& what) {
  ASSERT_EQ(OnnxTypeName(got.type), OnnxTypeName(want.type)) << what;
  ASSERT_EQ(got.shape, want.shape) << what;
  EXPECT_EQ(got.i, want.i) << what;
  EXPECT_EQ(got.b, want.b) << what;
  EXPECT_EQ(got.s, want.s) << what;
  double worst = 0;
  for (std::size_t k = 0; k < want.f.size(); ++k) {
    const double d =
        std::abs(double{got.f[k]} - want.f[k]) / std::max(1.0, std::abs(double{want.f[k]}));
    worst = std::max(worst, std::isnan(got.f[k]) != std::isnan(want.f[k]) ? 1e9
                            : std::isnan(d)                               ? 0
                                                                          : d);
  }
  EXPECT_LE(worst, 1e-5) << what;
}

class OnnxReference : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::ScriptOutputDir("tests/python/onnx_models.py", "onnx", &rc_, &output_);
  }
  void SetUp() override {
    if (rc_ == 77 || rc_ == 127) GTEST_SKIP() << "python3 with onnx, numpy and torch is absent";
    ASSERT_EQ(rc_, 0) << output_;
  }
  static std::string Case(const std::string& name) { return dir_ + "/" + name; }
  static std::shared_ptr<const OnnxGraph> Load(const std::string& name) {
    return OnnxGraph::Load(ReadFileToString(Case(name) + "/model.onnx"), name);
  }
  // The case's inputs, run through the graph; outputs compared with the reference.
  static void RunCase(const std::string& name) {
    SCOPED_TRACE(name);
    std::shared_ptr<const OnnxGraph> graph;
    try {
      graph = Load(name);
    } catch (const Error& e) {
      FAIL() << e.what();
    }
    const std::vector<OnnxTensor> inputs = ReadTensors(Case(name), "input");
    const std::vector<OnnxTensor> want = ReadTensors(Case(name), "output");
    std::vector<const OnnxTensor*> ptrs;
    for (const auto& t : inputs) ptrs.push_back(&t);
    auto scratch = graph->NewScratch();
    for (int pass = 0; pass < 2; ++pass) {  // the second reuses every buffer
      const auto got = graph->Run(ptrs, *scratch);
      ASSERT_EQ(got.size(), want.size());
      for (std::size_t k = 0; k < want.size(); ++k) {
        ExpectNear(*got[k], want[k], name + " output " + std::to_string(k));
      }
    }
  }

  static std::string dir_;
  static int rc_;
  static std::string output_;
};

std::string OnnxReference::dir_;
int OnnxReference::rc_ = 0;
std::string OnnxReference::output_;

TEST_F(OnnxReference, EveryOperatorAndExportedMlpMatchesItsReference) {
  const auto cases = ReadLines(Case("cases.txt"));
  EXPECT_GE(cases.size(), 80u);
  for (const std::string& name : cases) RunCase(name);
}

TEST_F(OnnxReference, ModelsThatCannotRunAreRefusedNamingWhere) {
  const auto bad = ReadLines(Case("bad.txt"));
  EXPECT_GE(bad.size(), 10u);
  for (const std::string& line : bad) {
    const std::string name = line.substr(0, line.find('\t'));
    const std::string expect = line.substr(line.find('\t') + 1);
    SCOPED_TRACE(name);
    try {
      OnnxGraph::Load(ReadFileToString(Case("bad/" + name + ".onnx")), name + ".onnx");
      ADD_FAILURE() << "loaded";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
      EXPECT_NE(e.message().find(expect), std::string::npos) << e.what();
      EXPECT_NE(e.message().find(name + ".onnx"), std::string::npos) << e.what();
    }
  }
}

TEST_F(OnnxReference, GraphInputsAndOutputsAreReportedAsDeclared) {
  const auto g = Load("torch_mlp_64_256_256_1");
  ASSERT_EQ(g->inputs().size(), 1u);
  EXPECT_EQ(g->inputs()[0].name, "input");
  EXPECT_EQ(g->inputs()[0].shape, (std::vector<std::int64_t>{-1, 64}));
  ASSERT_EQ(g->outputs().size(), 1u);
  EXPECT_EQ(g->outputs()[0].name, "output");
  EXPECT_EQ(g->outputs()[0].shape, (std::vector<std::int64_t>{-1, 1}));
  EXPECT_EQ(g->opset(), 17);
  EXPECT_NE(g->producer().find("pytorch"), std::string::npos);
  // metadata_props feature_names names the matrix's columns.
  const OnnxModel m(g);
  EXPECT_EQ(m.feature_names().front(), "f0");
  EXPECT_EQ(m.feature_names().back(), "f63");
}

TEST_F(OnnxReference, AnInputOfTheWrongShapeOrTypeIsRefusedNamingIt) {
  const auto g = Load("torch_mlp_64_256_256_1");
  auto scratch = g->NewScratch();
  OnnxTensor x;
  x.Resize(OnnxType::kFloat, {3, 63});
  const OnnxTensor* in[] = {&x};
  try {
    g->Run(in, *scratch);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("'input'"), std::string::npos) << e.what();
    EXPECT_NE(e.message().find("[3, 63]"), std::string::npos) << e.what();
  }
  x.Resize(OnnxType::kInt64, {3, 64});
  EXPECT_THROW(g->Run(in, *scratch), Error);
}

// An OnnxModel predicts what the graph computes, through a bundle and the Predictor.
TEST_F(OnnxReference, ARegressionGraphScoresAsAModelBundle) {
  const std::string name = "torch_relu_opset17";
  const auto bundle =
      std::make_shared<const io::ModelBundle>(io::LoadModelFile(Case(name) + "/model.onnx"));
  EXPECT_EQ(bundle->training_config.at("source"), "onnx");
  EXPECT_EQ(bundle->model->task(), Task::kRegression);
  EXPECT_EQ(bundle->input_schema().num_fields(), 16);
  EXPECT_EQ(bundle->input_schema().field(0).name, "input_0");
  const OnnxTensor x = ReadTensor(Case(name) + "/input_0.pb");
  const OnnxTensor want = ReadTensor(Case(name) + "/output_0.pb");
  MatrixF features(x.shape[0], x.shape[1]), out(x.shape[0], 1);
  std::copy(x.f.begin(), x.f.end(), features.data());
  io::PredictScratch scratch;
  io::Predictor(bundle).PredictFeatures(features.view(), out.view(), scratch);
  for (std::int64_t i = 0; i < out.rows(); ++i) {
    EXPECT_NEAR(out(i, 0), want.f[static_cast<std::size_t>(i)], 1e-5) << i;
  }
}

TEST_F(OnnxReference, ClassifierGraphsReadAsClassifiersWithTheirLabels) {
  auto multi = OnnxModel(Load("linear_classifier"));
  EXPECT_EQ(multi.task(), Task::kMulticlass);
  EXPECT_EQ(multi.num_outputs(), 3);
  EXPECT_EQ(multi.class_labels(), (std::vector<std::string>{"ant", "bee", "cat"}));
  EXPECT_EQ(multi.prediction_output(), "zip");
  EXPECT_EQ(multi.label_output(), "label");
  EXPECT_TRUE(multi.graph().IsZipMap("zip"));
  auto binary = OnnxModel(Load("linear_classifier_binary"));
  EXPECT_EQ(binary.task(), Task::kBinary);
  EXPECT_EQ(binary.class_labels(), (std::vector<std::string>{"0", "1"}));
  const OnnxTensor x = ReadTensor(Case("linear_classifier_binary") + "/input_0.pb");
  const OnnxTensor prob = ReadTensor(Case("linear_classifier_binary") + "/output_1.pb");
  MatrixF features(x.shape[0], x.shape[1]), p(x.shape[0], 1);
  std::copy(x.f.begin(), x.f.end(), features.data());
  auto ws = binary.NewWorkspace();
  binary.Predict(features.view(), p.view(), *ws);  // no link on top of the graph's own
  for (std::int64_t i = 0; i < p.rows(); ++i) {
    EXPECT_NEAR(p(i, 0), prob.f[static_cast<std::size_t>(i * 2 + 1)], 1e-6);
  }
}

TEST_F(OnnxReference, AFixedBatchGraphRunsRowByRowAndThreadsShareAGraph) {
  const auto fixed = Load("torch_fixed_batch");
  const OnnxModel model(fixed);
  MatrixF x(50, 16), y(50, 1);
  for (std::int64_t k = 0; k < x.size(); ++k) x.data()[k] = std::sin(static_cast<float>(k));
  auto ws = model.NewWorkspace();
  model.Logits(x.view(), y.view(), *ws);
  const OnnxModel big(Load("torch_mlp_64_256_256_1"));
  MatrixF xb(200, 64), ref(200, 1);
  for (std::int64_t k = 0; k < xb.size(); ++k) xb.data()[k] = std::cos(static_cast<float>(k));
  big.Logits(xb.view(), ref.view(), *big.NewWorkspace());
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto w = big.NewWorkspace();
      MatrixF out(200, 1);
      for (int rep = 0; rep < 20; ++rep) {
        big.Logits(xb.view(), out.view(), *w);
        for (std::int64_t i = 0; i < 200; ++i)
          mismatches[static_cast<std::size_t>(t)] += out(i, 0) != ref(i, 0);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
  // Row 0 of 50 run row by row is the reference's one row.
  const OnnxTensor x1 = ReadTensor(Case("torch_fixed_batch") + "/input_0.pb");
  const OnnxTensor y1 = ReadTensor(Case("torch_fixed_batch") + "/output_0.pb");
  std::copy(x1.f.begin(), x1.f.end(), x.data());
  model.Logits(x.view(), y.view(), *ws);
  EXPECT_NEAR(y(0, 0), y1.f[0], 1e-5);
  EXPECT_NE(y(1, 0), y(2, 0));
}

TEST_F(OnnxReference, ModelFilesAreToldApartByContent) {
  const std::string bytes = ReadFileToString(Case("torch_relu_opset13") + "/model.onnx");
  EXPECT_EQ(io::DetectModelFormat(bytes), io::ModelFormat::kOnnx);
  EXPECT_FALSE(LooksLikeOnnxModel("{\"learner\": {}}"));
  EXPECT_FALSE(LooksLikeOnnxModel(""));
  testing::TempDir tmp;
  testing::WriteFile(tmp.File("m.bin"), bytes);
  EXPECT_EQ(io::LoadModelFile(tmp.File("m.bin")).training_config.at("source"), "onnx");
}

}  // namespace
}  // namespace escala::models
