// XGBoost models read into escala (escala/models/xgboost.h, escala/io/model_file.h), against
// XGBoost's own predictions on shared data (tests/python/xgboost_models.py; skipped when Debian's
// python3-xgboost is absent): margins, predictions and TreeSHAP contributions of every supported
// objective, dart, forests, leaf-wise trees and categorical splits, from JSON and UBJSON alike.
// Then hand-made and mutilated files: every defect refused with the place it is in.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "escala/core/error.h"
#include "escala/core/file_util.h"
#include "escala/data/csv.h"
#include "escala/io/model_file.h"
#include "escala/models/tree_ensemble.h"
#include "escala/models/xgboost.h"
#include "test_util/temp_dir.h"

namespace escala::io {
namespace {

using Json = nlohmann::json;

MatrixF ReadMatrix(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<float>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<float>& row = rows.emplace_back();
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) row.push_back(std::stof(cell));
  }
  MatrixF m(static_cast<std::int64_t>(rows.size()), rows.empty() ? 0 : rows[0].size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    for (std::size_t j = 0; j < rows[i].size(); ++j) m(i, j) = rows[i][j];
  }
  return m;
}

// max |a - b| / max(1, |b|) over every cell; the shapes must agree.
double MaxRelError(const MatrixF& a, const MatrixF& b) {
  EXPECT_EQ(a.rows(), b.rows());
  EXPECT_EQ(a.cols(), b.cols());
  double worst = 0;
  for (std::int64_t i = 0; i < std::min(a.rows(), b.rows()); ++i) {
    for (std::int64_t j = 0; j < std::min(a.cols(), b.cols()); ++j) {
      const double d =
          std::abs(double{a(i, j)} - b(i, j)) / std::max(1.0, std::abs(double{b(i, j)}));
      worst = std::max(worst, std::isnan(d) ? 1e9 : d);
    }
  }
  return worst;
}

class XgboostImport : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::ScriptOutputDir("tests/python/xgboost_models.py", "xgboost", &rc_, &output_);
    if (rc_ == 0) table_ = new data::Table(data::ReadCsv(File("x.csv")));
  }
  static void TearDownTestSuite() { delete table_; }
  void SetUp() override {
    if (rc_ == 77 || rc_ == 127) GTEST_SKIP() << "python3 with XGBoost is absent";
    ASSERT_EQ(rc_, 0) << output_;
  }
  static std::string File(const std::string& name) { return dir_ + "/" + name; }
  static MatrixF Features() {
    MatrixF x;
    const std::vector<std::string> names = {"f0", "f1", "f2", "f3", "f4", "f5"};
    data::CopyColumnsToMatrix(*table_, names, &x);
    return x;
  }

  static std::string dir_;
  static data::Table* table_;
  static int rc_;
  static std::string output_;
};

std::string XgboostImport::dir_;
data::Table* XgboostImport::table_ = nullptr;
int XgboostImport::rc_ = 0;
std::string XgboostImport::output_;

TEST_P(XgboostImport, MarginsAndPredictionsMatchXgboost) {
  const std::string name = GetParam();
  MatrixF margin_ref = ReadMatrix(File(name + ".margin.csv"));
  if (name == "poisson" || name == "gamma" || name == "tweedie") {
    // A log-link ensemble's logits are its predictions, exp(margin), as every regression's are.
    for (std::int64_t i = 0; i < margin_ref.rows(); ++i) {
      margin_ref(i, 0) = static_cast<float>(std::exp(double{margin_ref(i, 0)}));
    }
  }
  MatrixF pred_ref = ReadMatrix(File(name + ".pred.csv"));
  if (name == "logitraw") {  // XGBoost predicts the margin; escala P(y = 1)
    for (std::int64_t i = 0; i < pred_ref.rows(); ++i) {
      pred_ref(i, 0) = static_cast<float>(1 / (1 + std::exp(-double{margin_ref(i, 0)})));
    }
  }
  for (const char* ext : {".json", ".ubj"}) {
    SCOPED_TRACE(name + ext);
    const auto bundle = std::make_shared<const ModelBundle>(LoadModelFile(File(name + ext)));
    EXPECT_EQ(bundle->training_config.at("source"), "xgboost");
    const MatrixF x = Features();
    MatrixF margins(x.rows(), bundle->model->num_outputs());
    auto ws = bundle->model->NewWorkspace();
    bundle->model->Logits(x.view(), margins.view(), *ws);
    EXPECT_LE(MaxRelError(margins, margin_ref), 1e-5);
    MatrixF pred;
    Predictor(bundle).PredictTable(*table_, &pred);  // through the identity pipeline
    EXPECT_LE(MaxRelError(pred, pred_ref), 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(Objectives, XgboostImport,
                         ::testing::Values("reg", "bin", "logitraw", "multi", "softmax", "poisson",
                                           "gamma", "tweedie", "huber", "absolute", "lossguide",
                                           "dart", "forest", "cat", "cat_onehot"));

class XgboostContributions : public XgboostImport {};

TEST_P(XgboostContributions, TreeShapMatchesXgboostPredContribs) {
  const std::string name = GetParam();
  const auto m = models::ParseXgboostModel(ReadFileToString(File(name + ".json")), name);
  const MatrixF x = Features();
  const MatrixF ref = ReadMatrix(File(name + ".contrib.csv"));
  MatrixF phi(x.rows(), m.ensemble->num_outputs() * (x.cols() + 1));
  m.ensemble->Contributions(x.view(), phi.view());
  EXPECT_LE(MaxRelError(phi, ref), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Models, XgboostContributions,
                         ::testing::Values("reg", "bin", "multi", "cat"));

TEST_F(XgboostImport, FeatureNamesTypesAndProvenanceAreKept) {
  const auto m = models::ParseXgboostModel(ReadFileToString(File("cat.json")), "cat.json");
  EXPECT_EQ(m.feature_names, (std::vector<std::string>{"f0", "f1", "f2", "f3", "f4", "f5"}));
  EXPECT_EQ(m.categorical, (std::vector<bool>{false, false, false, false, false, true}));
  EXPECT_EQ(m.objective, "reg:squarederror");
  EXPECT_EQ(m.version[0], 1);
  const ModelBundle b = LoadModelFile(File("multi.json"));
  EXPECT_EQ(b.name, "multi");
  EXPECT_EQ(b.class_names, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(b.input_schema().num_fields(), 6);
  EXPECT_TRUE(b.pipeline.keep_missing());
}

// ---- hand-made files ----------------------------------------------------------------------------

// One tree: f0 < 0.5 (missing left) -> -1 else +1, regression, XGBoost 1.7's layout.
Json TinyModel() {
  return Json::parse(R"({
    "learner": {
      "attributes": {}, "feature_names": ["a", "b"], "feature_types": ["float", "float"],
      "gradient_booster": {"name": "gbtree", "model": {
        "gbtree_model_param": {"num_parallel_tree": "1", "num_trees": "1"},
        "tree_info": [0],
        "trees": [{"base_weights": [0, -1, 1], "categories": [], "categories_nodes": [],
                   "categories_segments": [], "categories_sizes": [], "default_left": [1, 0, 0],
                   "id": 0, "left_children": [1, -1, -1], "loss_changes": [4, 0, 0],
                   "parents": [2147483647, 0, 0], "right_children": [2, -1, -1],
                   "split_conditions": [0.5, -1, 1], "split_indices": [0, 0, 0],
                   "split_type": [0, 0, 0], "sum_hessian": [10, 4, 6],
                   "tree_param": {"num_deleted": "0", "num_feature": "2", "num_nodes": "3",
                                  "size_leaf_vector": "0"}}]}},
      "learner_model_param": {"base_score": "2E0", "boost_from_average": "1", "num_class": "0",
                              "num_feature": "2", "num_target": "1"},
      "objective": {"name": "reg:squarederror", "reg_loss_param": {"scale_pos_weight": "1"}}},
    "version": [1, 7, 4]})");
}

float Predict(const models::XgboostModel& m, float a, float b) {
  MatrixF x(1, 2), y(1, 1);
  x(0, 0) = a;
  x(0, 1) = b;
  auto ws = m.ensemble->NewWorkspace();
  m.ensemble->Predict(x.view(), y.view(), *ws);
  return y(0, 0);
}

TEST(XgboostModelFile, ATinyModelPredictsByHand) {
  const auto m = models::ParseXgboostModel(TinyModel().dump(), "tiny");
  EXPECT_FLOAT_EQ(Predict(m, 0.0f, 0.0f), 1.0f);  // 2 - 1
  EXPECT_FLOAT_EQ(Predict(m, 0.5f, 0.0f), 3.0f);  // not < 0.5: right
  EXPECT_FLOAT_EQ(Predict(m, NAN, 0.0f), 1.0f);   // missing: left
  EXPECT_EQ(m.feature_names, (std::vector<std::string>{"a", "b"}));
}

TEST(XgboostModelFile, BareNanAndInfinityAsXgboostWritesThemAreRead) {
  std::string text = TinyModel().dump();
  const std::string cond = "\"split_conditions\":[0.5,-1,1]";
  ASSERT_NE(text.find(cond), std::string::npos);
  text.replace(text.find(cond), cond.size(), "\"split_conditions\":[Infinity,-1,1]");
  const auto m = models::ParseXgboostModel(text, "tiny");
  EXPECT_FLOAT_EQ(Predict(m, 1e30f, 0.0f), 1.0f);  // every finite value is < Infinity: left
}

// A categorical split: categories {1, 3} go to XGBoost's right child.
TEST(XgboostModelFile, CategoricalSetsGoRightAsInXgboost) {
  Json j = TinyModel();
  Json& t = j["learner"]["gradient_booster"]["model"]["trees"][0];
  t["split_type"] = {1, 0, 0};
  t["categories_nodes"] = {0};
  t["categories_segments"] = {0};
  t["categories_sizes"] = {2};
  t["categories"] = {1, 3};
  t["default_left"] = {0, 0, 0};
  std::string text = j.dump();  // XGBoost writes a categorical split's condition as NaN
  text.replace(text.find("[0.5,"), 5, "[NaN,");
  const auto m = models::ParseXgboostModel(text, "tiny");
  EXPECT_FLOAT_EQ(Predict(m, 1.0f, 0.0f), 3.0f);  // in the set: right (+1)
  EXPECT_FLOAT_EQ(Predict(m, 3.0f, 0.0f), 3.0f);
  EXPECT_FLOAT_EQ(Predict(m, 2.0f, 0.0f), 1.0f);   // not in it: left
  EXPECT_FLOAT_EQ(Predict(m, 40.0f, 0.0f), 1.0f);  // past every set: left
  EXPECT_FLOAT_EQ(Predict(m, -1.0f, 0.0f), 1.0f);  // invalid: left
  EXPECT_FLOAT_EQ(Predict(m, NAN, 0.0f), 3.0f);    // missing: XGBoost's default (right)
}

void ExpectRefused(const std::string& text, const std::string& needle) {
  try {
    models::ParseXgboostModel(text, "m.json");
    ADD_FAILURE() << "accepted; expected an error with '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("m.json"), std::string::npos) << e.what();
  }
}

Json& Tree0(Json& j) {
  return j["learner"]["gradient_booster"]["model"]["trees"][0];
}

// XGBoost 3.1 and later write one base score per class: "[a,b]", each a margin.
TEST(XgboostModelFile, PerClassBaseScoresAreEachClassesMargin) {
  Json j = TinyModel();
  j["learner"]["objective"]["name"] = "multi:softprob";
  j["learner"]["learner_model_param"]["num_class"] = "2";
  j["learner"]["learner_model_param"]["base_score"] = "[1E-1,-2E-1]";
  Json& model = j["learner"]["gradient_booster"]["model"];
  model["trees"].push_back(Tree0(j));
  model["tree_info"] = {0, 1};
  const auto m = models::ParseXgboostModel(j.dump(), "tiny");
  EXPECT_EQ(m.ensemble->base_score(), (std::vector<float>{0.1f, -0.2f}));
  j["learner"]["learner_model_param"]["base_score"] = "[1E-1,2E-1,3E-1]";
  ExpectRefused(j.dump(), "3 values for 2 outputs");
}

TEST(XgboostModelFile, DefectsAreRefusedNamingTheField) {
  const std::string good = TinyModel().dump();
  ExpectRefused(good.substr(0, good.size() / 2), "not an XGBoost model file");
  ExpectRefused("{\"learner\": 3, \"version\": [1, 7, 4]}", "learner: expected an object");
  ExpectRefused("{\x01\x02garbage", "not an XGBoost model file");
  const std::vector<std::pair<std::function<void(Json&)>, std::string>> cases = {
      {[](Json& j) {
         j["version"] = {0, 9, 0};
       },
       "XGBoost 0.9.0"},
      {[](Json& j) { j["learner"]["objective"]["name"] = "rank:pairwise"; },
       "objective 'rank:pairwise' is not supported"},
      {[](Json& j) { j["learner"]["gradient_booster"]["name"] = "gblinear"; },
       "booster 'gblinear' is not supported"},
      {[](Json& j) {
         Tree0(j)["left_children"] = {0, -1, -1};
       },
       "reached twice"},
      {[](Json& j) {
         Tree0(j)["right_children"] = {7, -1, -1};
       },
       "out of range"},
      {[](Json& j) {
         Tree0(j)["split_indices"] = {5, 0, 0};
       },
       "split_indices[0]"},
      {[](Json& j) {
         Tree0(j)["sum_hessian"] = {1, 2};
       },
       "trees[0].sum_hessian: 2 values"},
      {[](Json& j) {
         Tree0(j)["split_conditions"] = {0.5, "x", 1};
       },
       "split_conditions[1]: 'x' is not a number"},
      {[](Json& j) { j["learner"]["learner_model_param"]["num_feature"] = "-1"; },
       "num_feature: -1 is not a whole number"},
      {[](Json& j) { j["learner"]["learner_model_param"]["num_target"] = "2"; }, "multi-target"},
      {[](Json& j) { j["learner"]["gradient_booster"]["model"]["tree_info"] = {3}; },
       "tree_info[0]"},
      {[](Json& j) {
         j["learner"]["objective"]["name"] = "binary:logistic";
         j["learner"]["learner_model_param"]["base_score"] = "1.5";
       },
       "base_score: 1.5 is not in (0, 1)"},
      {[](Json& j) {
         Tree0(j)["split_conditions"] = {0.5, -1, "Infinity"};
       },
       "tree 0"},
      {[](Json& j) { j["learner"].erase("gradient_booster"); }, "missing \"gradient_booster\""},
  };
  for (const auto& [mutate, needle] : cases) {
    Json j = TinyModel();
    mutate(j);
    SCOPED_TRACE(needle);
    ExpectRefused(j.dump(), needle);
  }
}

// One large code per node would make gigabytes of bitsets from a small file: refused once the
// sets pass 256 MiB (found by fuzzing: a 176 KB file took 5 GB and 36 s).
TEST(XgboostModelFile, CategorySetsThatWouldTakeGigabytesAreRefused) {
  Json j = TinyModel();
  Json tree = Tree0(j);
  tree["split_type"] = {1, 0, 0};
  tree["categories_nodes"] = {0};
  tree["categories_segments"] = {0};
  tree["categories_sizes"] = {1};
  tree["categories"] = {16777215};  // 2 MiB of bitset for one node
  Json& model = j["learner"]["gradient_booster"]["model"];
  model["trees"] = Json::array();
  model["tree_info"] = Json::array();
  for (int t = 0; t < 200; ++t) {
    model["trees"].push_back(tree);
    model["tree_info"].push_back(0);
  }
  ExpectRefused(j.dump(), "more than 256 MiB as bitsets");
}

TEST(XgboostModelFile, LoadModelFileTellsBundlesFromXgboostByContent) {
  testing::TempDir dir;
  WriteFileAtomic(dir.File("renamed.bundle"), TinyModel().dump());
  EXPECT_EQ(LoadModelFile(dir.File("renamed.bundle")).training_config.at("source"), "xgboost");
  WriteFileAtomic(dir.File("junk.json"), "not a model");
  EXPECT_THROW(LoadModelFile(dir.File("junk.json")), Error);
}

}  // namespace
}  // namespace escala::io
