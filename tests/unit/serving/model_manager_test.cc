// The manager end to end over a repository on disk: the directory source, every version policy,
// reloads that keep unchanged versions, and failed loads that leave the served set as it was.
#include "serving/model_manager.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/core/file_util.h"
#include "serving/repository_source.h"
#include "test_util/bundles.h"
#include "test_util/temp_dir.h"

namespace escala::serving::internal {
namespace {

namespace fs = std::filesystem;
using Names = std::vector<std::string>;

class Repository {
 public:
  // Writes <repo>/m/<version>/model.bundle (atomically, as a trainer does).
  void Put(int version, std::uint64_t seed = 1) {
    const auto dir = dir_.path() / "m" / std::to_string(version);
    fs::create_directories(dir);
    WriteFileAtomic((dir / "model.bundle").string(),
                    testing::NumericLogisticBundle(4, seed)->SerializeToString());
  }
  void PutCorrupt(int version) {
    std::string bytes = testing::NumericLogisticBundle(4, 9)->SerializeToString();
    bytes[bytes.size() / 2] ^= 0x55;
    const auto dir = dir_.path() / "m" / std::to_string(version);
    fs::create_directories(dir);
    WriteFileAtomic((dir / "model.bundle").string(), bytes);
  }
  void Remove(int version) { fs::remove_all(dir_.path() / "m" / std::to_string(version)); }
  std::string path() const { return dir_.path().string(); }

 private:
  testing::TempDir dir_;
};

struct Served {
  explicit Served(const Repository& repo, std::string_view policy) {
    ServerOptions o;
    o.model_repository = repo.path();
    o.version_policy = VersionPolicy::Parse(policy);
    manager = std::make_unique<ModelManager>(o, &metrics);
  }
  Names Versions() const { return manager->Versions("m"); }

  MetricsRegistry metrics;
  std::unique_ptr<ModelManager> manager;
};

TEST(ModelManager, LatestNServesTheNewestNAndFollowsNewVersions) {
  Repository repo;
  for (int v : {1, 2, 3}) repo.Put(v);
  Served s(repo, "latest:2");
  s.manager->Poll();
  EXPECT_EQ(s.Versions(), Names({"2", "3"}));
  const auto three = s.manager->Get("m", "3");
  repo.Put(4);
  s.manager->Poll();
  EXPECT_EQ(s.Versions(), Names({"3", "4"}));
  EXPECT_EQ(s.manager->Get("m", "3"), three) << "an unchanged version was reloaded";
  EXPECT_EQ(s.manager->Get("m", "")->version, 4);
  repo.Remove(4);
  repo.Remove(3);
  s.manager->Poll();
  EXPECT_EQ(s.Versions(), Names({"1", "2"}));
}

TEST(ModelManager, LatestNWithFewerVersionsServesThemAll) {
  Repository repo;
  repo.Put(5);
  Served s(repo, "latest:3");
  s.manager->Poll();
  EXPECT_EQ(s.Versions(), Names({"5"}));
}

TEST(ModelManager, SpecificServesTheListedVersionsAsTheyAppear) {
  Repository repo;
  for (int v : {1, 2, 3, 4}) repo.Put(v);
  Served s(repo, "specific:1,3,5");
  s.manager->Poll();
  EXPECT_EQ(s.Versions(), Names({"1", "3"}));
  repo.Put(5);
  s.manager->Poll();
  EXPECT_EQ(s.Versions(), Names({"1", "3", "5"}));
  repo.Remove(1);
  s.manager->Poll();
  EXPECT_EQ(s.Versions(), Names({"3", "5"}));
  EXPECT_THROW(s.manager->Get("m", "4"), Error);
}

TEST(ModelManager, SpecificWithNoListedVersionPresentServesNothing) {
  Repository repo;
  repo.Put(1);
  Served s(repo, "specific:7");
  s.manager->Poll();
  EXPECT_TRUE(s.Versions().empty());
  EXPECT_FALSE(s.manager->HasReadyModel());
  try {
    s.manager->LoadModel("m");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

TEST(ModelManager, AllServesEveryVersionAndDropsDeletedOnes) {
  Repository repo;
  for (int v : {1, 2, 3}) repo.Put(v);
  Served s(repo, "all");
  s.manager->Poll();
  EXPECT_EQ(s.Versions(), Names({"1", "2", "3"}));
  repo.Remove(2);
  repo.Put(10);
  s.manager->Poll();
  EXPECT_EQ(s.Versions(), Names({"1", "3", "10"}));
}

TEST(ModelManager, NonNumericAndHalfWrittenVersionDirectoriesAreIgnored) {
  Repository repo;
  repo.Put(1);
  for (const char* name : {"tmp", "0", "-2", "1.5", "3abc"}) {
    fs::create_directories(fs::path(repo.path()) / "m" / name);
    WriteFileAtomic((fs::path(repo.path()) / "m" / name / "model.bundle").string(), "junk");
  }
  fs::create_directories(fs::path(repo.path()) / "m" / "7");  // bundle not written yet
  WriteFileAtomic((fs::path(repo.path()) / "m" / "8").string(), "a file, not a directory");
  const auto on_disk = ListVersions(repo.path(), "m");
  ASSERT_EQ(on_disk.size(), 1u);
  EXPECT_EQ(on_disk.begin()->first, 1);
  Served s(repo, "all");
  s.manager->Poll();
  EXPECT_EQ(s.Versions(), Names({"1"}));
  EXPECT_EQ(s.metrics.Render().find("escala_model_load_failures_total{model=\"m\"} 1"),
            std::string::npos);
}

// A one-tree XGBoost regression (f0 < 0.5 -> 1, else 3; base score 2) in its JSON format.
constexpr char kXgboostModel[] = R"({"learner": {"feature_names": ["a"], "feature_types": [],
  "gradient_booster": {"name": "gbtree", "model": {"tree_info": [0], "trees": [{
    "default_left": [1, 0, 0], "left_children": [1, -1, -1], "right_children": [2, -1, -1],
    "loss_changes": [4, 0, 0], "split_conditions": [0.5, -1, 1], "split_indices": [0, 0, 0],
    "sum_hessian": [10, 4, 6]}]}},
  "learner_model_param": {"base_score": "2E0", "num_class": "0", "num_feature": "1"},
  "objective": {"name": "reg:squarederror"}}, "version": [1, 7, 4]})";

TEST(ModelManager, AVersionHoldingAnXgboostModelIsServedBesideBundles) {
  Repository repo;
  repo.Put(1);
  const auto two = fs::path(repo.path()) / "m" / "2";
  fs::create_directories(two);
  WriteFileAtomic((two / "model.json").string(), kXgboostModel);
  Served s(repo, "all");
  s.manager->Poll();
  EXPECT_EQ(s.Versions(), Names({"1", "2"}));
  const auto m = s.manager->Get("m", "2");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->source, (two / "model.json").string());
  EXPECT_EQ(m->bundle->training_config.at("source"), "xgboost");
  MatrixF x(2, 1), y(2, 1);
  x(0, 0) = 0.0f;
  x(1, 0) = 1.0f;
  auto scratch = m->Acquire();
  m->predictor->PredictFeatures(std::as_const(x).view(), y.view(), scratch->predict);
  EXPECT_FLOAT_EQ(y(0, 0), 1.0f);
  EXPECT_FLOAT_EQ(y(1, 0), 3.0f);
  m->Release(std::move(scratch));
}

TEST(ModelManager, AFailingLoadLeavesTheServedSetAsItWas) {
  Repository repo;
  for (int v : {2, 3}) repo.Put(v);
  Served s(repo, "latest:2");
  s.manager->Poll();
  const auto two = s.manager->Get("m", "2");
  repo.PutCorrupt(4);
  s.manager->Poll();
  EXPECT_EQ(s.Versions(), Names({"2", "3"}));
  EXPECT_EQ(s.manager->Get("m", "2"), two);
  bool reported = false;
  for (const auto& m : s.manager->Index()) {
    if (m.version == "4") {
      reported =
          m.state == "UNAVAILABLE" && m.reason.find("model 'm' version 4") != std::string::npos;
    }
  }
  EXPECT_TRUE(reported);
  s.manager->Poll();  // the same broken file is not retried
  EXPECT_NE(s.metrics.Render().find("escala_model_load_failures_total{model=\"m\"} 1"),
            std::string::npos)
      << s.metrics.Render();
  repo.Put(4);  // fixed
  s.manager->Poll();
  EXPECT_EQ(s.Versions(), Names({"3", "4"}));
  for (const auto& m : s.manager->Index()) EXPECT_EQ(m.state, "READY") << m.version;
}

TEST(ModelManager, AChangedFileIsReloadedAndAnExplicitLoadReloadsEverything) {
  Repository repo;
  repo.Put(1, 1);
  Served s(repo, "latest");
  s.manager->Poll();
  const auto first = s.manager->Get("m", "1");
  repo.Put(1, 2);  // a new file under the same version
  s.manager->Poll();
  const auto second = s.manager->Get("m", "1");
  EXPECT_NE(second, first);
  s.manager->LoadModel("m");
  EXPECT_NE(s.manager->Get("m", "1"), second);
  EXPECT_EQ(s.Versions(), Names({"1"}));
}

TEST(ModelManager, UnloadedModelsStayUnloadedUntilLoaded) {
  Repository repo;
  repo.Put(1);
  Served s(repo, "latest");
  s.manager->Poll();
  s.manager->UnloadModel("m");
  s.manager->Poll();
  EXPECT_TRUE(s.Versions().empty());
  s.manager->LoadModel("m");
  EXPECT_EQ(s.Versions(), Names({"1"}));
}

TEST(ModelManager, InMemoryVersionsSurviveRepositoryScans) {
  Repository repo;
  repo.Put(2);
  Served s(repo, "latest");
  s.manager->AddInMemory("m", testing::NumericLogisticBundle(4, 5), 1);
  s.manager->Poll();
  EXPECT_EQ(s.Versions(), Names({"1", "2"}));
}

TEST(ModelManager, AnUnreadableRepositoryLeavesEverythingAsItWas) {
  Repository repo;
  ServerOptions o;
  o.model_repository = repo.path() + "/absent";
  MetricsRegistry metrics;
  ModelManager manager(o, &metrics);
  manager.AddInMemory("x", testing::NumericLogisticBundle(4), 1);
  EXPECT_NO_THROW(manager.Poll());
  EXPECT_EQ(manager.Versions("x"), Names({"1"}));
  EXPECT_THROW(ListModels(o.model_repository), Error);
}

}  // namespace
}  // namespace escala::serving::internal
