// `escala train`, `evaluate` and `score` as real processes, including a training run killed with
// SIGKILL and resumed from its checkpoint.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <signal.h>
#include <sstream>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include "escala/core/file_util.h"
#include "escala/data/npy.h"
#include "escala/gpu/device.h"
#include "escala/io/bundle.h"
#include "test_util/temp_dir.h"

namespace escala {
namespace {

using testing::CliPath;
using testing::RunCommand;
using testing::SourcePath;
using testing::TempDir;

TEST(TrainCli, TrainEvaluateScoreOnThePenguins) {
  TempDir dir;
  const std::string data = SourcePath("examples/data/penguins.csv");
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() + " train --data " + data +
                           " --label species --model mlp --hidden 16 --epochs 40 --batch-size 32"
                           " --lr 0.01 --valid-fraction 0.2 --history " +
                           dir.File("h.csv") + " --out " + dir.File("m.bundle"),
                       &out),
            0)
      << out;
  EXPECT_NE(out.find("validation: accuracy"), std::string::npos) << out;
  const auto bundle = io::ModelBundle::Load(dir.File("m.bundle"));
  EXPECT_EQ(bundle.class_names, (std::vector<std::string>{"Adelie", "Chinstrap", "Gentoo"}));
  EXPECT_GT(bundle.metrics.at("valid_accuracy"), 0.9);
  EXPECT_EQ(bundle.history.size(), 40u);
  ASSERT_EQ(
      RunCommand(CliPath() + " evaluate --model " + dir.File("m.bundle") + " --data " + data, &out),
      0)
      << out;
  EXPECT_NE(out.find("accuracy"), std::string::npos) << out;
  EXPECT_NE(out.find("confusion matrix"), std::string::npos) << out;
  ASSERT_EQ(RunCommand(CliPath() + " score --model " + dir.File("m.bundle") + " --data " + data +
                           " --keep species --out " + dir.File("p.csv"),
                       &out),
            0)
      << out;
  const std::string csv = testing::ReadFile(dir.File("p.csv"));
  EXPECT_EQ(csv.rfind("species,p_Adelie,p_Chinstrap,p_Gentoo,label\n", 0), 0u)
      << csv.substr(0, 200);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 345);
  ASSERT_EQ(RunCommand(CliPath() + " score --model " + dir.File("m.bundle") + " --data " + data +
                           " --out " + dir.File("p.npy"),
                       &out),
            0)
      << out;
  const auto npy = data::ReadNpy(dir.File("p.npy"));
  EXPECT_EQ(npy.shape, (std::vector<std::int64_t>{344, 3}));
}

// Boosted trees through the whole command: trained with its parameters as flags, on the
// penguins' numeric and categorical columns (through the default pipeline), evaluated and scored.
TEST(TrainCli, GbdtTrainsEvaluatesAndScoresThePenguins) {
  TempDir dir;
  const std::string data = SourcePath("examples/data/penguins.csv");
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() + " train --data " + data +
                           " --label species --model gbdt --rounds 20 --max-depth 3"
                           " --learning-rate 0.3 --valid-fraction 0.2 --out " +
                           dir.File("m.bundle"),
                       &out),
            0)
      << out;
  EXPECT_NE(out.find("gbdt round 20/20: valid logloss"), std::string::npos) << out;
  const auto bundle = io::ModelBundle::Load(dir.File("m.bundle"));
  EXPECT_EQ(bundle.model->kind(), "gbdt");
  EXPECT_EQ(bundle.training_config.at("max_depth"), "3");
  EXPECT_GT(bundle.metrics.at("valid_accuracy"), 0.9);
  ASSERT_EQ(RunCommand(CliPath() + " score --model " + dir.File("m.bundle") + " --data " + data +
                           " --out " + dir.File("p.csv"),
                       &out),
            0)
      << out;
  const std::string csv = testing::ReadFile(dir.File("p.csv"));
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 345);
  EXPECT_EQ(
      RunCommand(CliPath() + " train --data " + data +
                     " --label species --model gbdt --max-bin 1 --out " + dir.File("x.bundle"),
                 &out),
      2)
      << out;
  EXPECT_NE(out.find("max_bin"), std::string::npos) << out;
}

// --init-from continues boosting: from an escala gbdt bundle (20 + 10 rounds) and from a model
// XGBoost trained (its features by name, its trees first).
TEST(TrainCli, GbdtContinuesBoostingFromABundleOrAnXgboostModel) {
  TempDir dir;
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() +
                           " datagen --task classification --rows 800 --features 5 "
                           "--informative 3 --classes 2 --seed 4 --out " +
                           dir.File("d.csv"),
                       &out),
            0)
      << out;
  const std::string train = CliPath() + " train --data " + dir.File("d.csv") +
                            " --label label --model gbdt --max-depth 3 ";
  ASSERT_EQ(RunCommand(train + "--rounds 20 --out " + dir.File("a.bundle"), &out), 0) << out;
  ASSERT_EQ(RunCommand(train + "--rounds 10 --init-from " + dir.File("a.bundle") + " --out " +
                           dir.File("b.bundle"),
                       &out),
            0)
      << out;
  const auto a = io::ModelBundle::Load(dir.File("a.bundle"));
  const auto b = io::ModelBundle::Load(dir.File("b.bundle"));
  EXPECT_NE(b.model->Describe().find("(30 trees"), std::string::npos) << b.model->Describe();
  EXPECT_EQ(a.pipeline.Serialize(), b.pipeline.Serialize());
  // A forest does not continue; a refusal names why.
  EXPECT_EQ(
      RunCommand(CliPath() + " train --data " + dir.File("d.csv") +
                     " --label label --model random_forest --init-from " + dir.File("a.bundle"),
                 &out),
      2)
      << out;
  EXPECT_NE(out.find("random forest does not continue"), std::string::npos) << out;

  const int rc = RunCommand(
      "/usr/bin/python3 -c 'import sys, pandas as pd, xgboost as xgb\n"
      "d = pd.read_csv(sys.argv[1]); y = d.pop(\"label\")\n"
      "xgb.train({\"objective\": \"binary:logistic\", \"max_depth\": 3}, "
      "xgb.DMatrix(d, y), 5).save_model(sys.argv[2])' " +
          dir.File("d.csv") + " " + dir.File("x.json"),
      &out);
  if (rc != 0) GTEST_SKIP() << "python3 with XGBoost and pandas is absent: " << out;
  ASSERT_EQ(RunCommand(train + "--rounds 10 --init-from " + dir.File("x.json") + " --out " +
                           dir.File("c.bundle"),
                       &out),
            0)
      << out;
  const auto c = io::ModelBundle::Load(dir.File("c.bundle"));
  EXPECT_NE(c.model->Describe().find("(15 trees"), std::string::npos) << c.model->Describe();
}

// Missing values reach the trees (the trees' default pipeline keeps them), training stops early
// on the validation loss, importance is printed, and `score --contributions` writes TreeSHAP
// values that sum to each prediction (squared error: the raw score is the prediction).
TEST(TrainCli, GbdtKeepsMissingValuesStopsEarlyAndExplainsItsPredictions) {
  TempDir dir;
  const std::string data = SourcePath("examples/data/penguins.csv");
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() + " train --data " + data +
                           " --label body_mass_g --drop-missing-labels --model gbdt --rounds 500"
                           " --learning-rate 0.3"
                           " --early-stopping 5 --valid-fraction 0.25 --subsample 0.8"
                           " --colsample-bynode 0.8 --out " +
                           dir.File("m.bundle"),
                       &out),
            0)
      << out;
  EXPECT_NE(out.find("(missing values kept)"), std::string::npos) << out;
  EXPECT_NE(out.find("early stop after"), std::string::npos) << out;
  EXPECT_NE(out.find("feature importance"), std::string::npos) << out;
  EXPECT_NE(out.find("valid mse"), std::string::npos) << out;
  EXPECT_EQ(RunCommand(CliPath() + " train --data " + data +
                           " --label body_mass_g --drop-missing-labels --model gbdt"
                           " --monotone-constraints flipper_length_mm=1,wingspan=1 --out " +
                           dir.File("x.bundle"),
                       &out),
            2)
      << out;
  EXPECT_NE(out.find("no feature 'wingspan'"), std::string::npos) << out;
  const auto bundle = io::ModelBundle::Load(dir.File("m.bundle"));
  EXPECT_TRUE(bundle.pipeline.keep_missing());
  EXPECT_EQ(bundle.model->Describe().find("500 trees"), std::string::npos);  // the best round
  // Rows with missing numbers score without any imputation step.
  ASSERT_EQ(RunCommand(CliPath() + " score --contributions --model " + dir.File("m.bundle") +
                           " --data " + data + " --out " + dir.File("p.csv"),
                       &out),
            0)
      << out;
  std::istringstream csv(testing::ReadFile(dir.File("p.csv")));
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line.rfind("prediction,contrib:", 0), 0u) << line;
  EXPECT_NE(line.find(",contrib:bias"), std::string::npos) << line;
  int rows = 0;
  while (std::getline(csv, line)) {
    std::istringstream fields(line);
    std::string f;
    std::getline(fields, f, ',');
    const double prediction = std::stod(f);
    double sum = 0;
    while (std::getline(fields, f, ',')) sum += std::stod(f);
    EXPECT_NEAR(sum, prediction, 1e-3 * std::fabs(prediction)) << line;
    ++rows;
  }
  EXPECT_EQ(rows, 344);
  // A file whose categorical column is all empty reads it as the categorical input it is.
  testing::WriteFile(dir.File("q.csv"),
                     "species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,sex,year\n"
                     "Adelie,Dream,40,18,190,,2008\nGentoo,Biscoe,48,15,220,,2009\n");
  ASSERT_EQ(RunCommand(CliPath() + " score --model " + dir.File("m.bundle") + " --data " +
                           dir.File("q.csv") + " --out " + dir.File("q.out.csv"),
                       &out),
            0)
      << out;
  // A model without trees has nothing to explain.
  ASSERT_EQ(RunCommand(CliPath() + " train --data " + data +
                           " --label species --model softmax --out " + dir.File("l.bundle"),
                       &out),
            0)
      << out;
  EXPECT_EQ(RunCommand(CliPath() + " score --contributions --model " + dir.File("l.bundle") +
                           " --data " + data + " --out " + dir.File("l.csv"),
                       &out),
            2)
      << out;
  EXPECT_NE(out.find("--contributions"), std::string::npos) << out;
}

// A forest takes its own defaults (full trees) except for the options given, reports its
// out-of-bag loss and scores like any bundle.
TEST(TrainCli, RandomForestKeepsGivenOptionsAndReportsOutOfBag) {
  TempDir dir;
  const std::string data = SourcePath("examples/data/penguins.csv");
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() + " train --data " + data +
                           " --label species --model random_forest --rounds 40 --max-depth 4"
                           " --valid-fraction 0.2 --out " +
                           dir.File("f.bundle"),
                       &out),
            0)
      << out;
  EXPECT_NE(out.find("out-of-bag logloss"), std::string::npos) << out;
  const auto bundle = io::ModelBundle::Load(dir.File("f.bundle"));
  EXPECT_EQ(bundle.model->kind(), "random_forest");
  EXPECT_EQ(bundle.training_config.at("max_depth"), "4");
  EXPECT_EQ(bundle.training_config.at("lambda"), "0");  // the forest's default, not gbdt's 1
  EXPECT_NE(bundle.model->Describe().find("120 trees"), std::string::npos);
  EXPECT_LT(std::stod(bundle.training_config.at("oob_logloss")), 0.3);
  EXPECT_GT(bundle.metrics.at("valid_accuracy"), 0.9);
  ASSERT_EQ(RunCommand(CliPath() + " score --model " + dir.File("f.bundle") + " --data " + data +
                           " --out " + dir.File("p.csv"),
                       &out),
            0)
      << out;
}

// --device cuda where no GPU can be used: a CPU build says it was built without CUDA, a CUDA build
// that there is no device; either way exit status 1 before any work, and no bundle.
// The library's one-call training (examples/train_table.cc, 40 lines) makes the command's bundle.
TEST(TrainCli, TheLibraryExampleReproducesTheCommandsBundle) {
#ifndef ESCALA_EXAMPLE_TRAIN_TABLE
  GTEST_SKIP() << "examples are not built";
#else
  TempDir dir;
  const std::string data = SourcePath("examples/data/penguins.csv");
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() + " train --data " + data + " --label species --model mlp --out " +
                           dir.File("cli.bundle"),
                       &out),
            0)
      << out;
  ASSERT_EQ(RunCommand(
                std::string(ESCALA_EXAMPLE_TRAIN_TABLE) + " " + data + " " + dir.File("lib.bundle"),
                &out),
            0)
      << out;
  const auto a = io::ModelBundle::Load(dir.File("cli.bundle"));
  const auto b = io::ModelBundle::Load(dir.File("lib.bundle"));
  EXPECT_EQ(a.class_names, b.class_names);
  EXPECT_EQ(a.pipeline.spec(), b.pipeline.spec());
  EXPECT_EQ(a.model->Describe(), b.model->Describe());
  EXPECT_EQ(a.history.size(), b.history.size());
  const auto pa = dynamic_cast<const models::GradientModel&>(*a.model).parameters();
  const auto pb = dynamic_cast<const models::GradientModel&>(*b.model).parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) ASSERT_NEAR(pa[i], pb[i], 1e-5f) << "parameter " << i;
#endif
}

TEST(TrainCli, DeviceCudaWithoutAGpuExplainsItself) {
  if (gpu::DeviceCount() > 0) GTEST_SKIP() << "a CUDA device is present";
  TempDir dir;
  const std::string data = SourcePath("examples/data/penguins.csv");
  std::string out;
  EXPECT_EQ(
      RunCommand(CliPath() + " train --data " + data +
                     " --label species --model mlp --device cuda --out " + dir.File("m.bundle"),
                 &out),
      1)
      << out;
  EXPECT_NE(out.find(gpu::BuiltWithCuda() ? "Unavailable: no CUDA device is available"
                                          : "Unimplemented: --device cuda: escala was built "
                                            "without CUDA"),
            std::string::npos)
      << out;
  EXPECT_FALSE(std::filesystem::exists(dir.File("m.bundle")));
  // A device that is not a device at all is a usage error (status 2).
  EXPECT_EQ(RunCommand(CliPath() + " train --data " + data +
                           " --label species --device tpu --out " + dir.File("m.bundle"),
                       &out),
            2)
      << out;
  EXPECT_NE(out.find("unknown device 'tpu'"), std::string::npos) << out;
}

TEST(TrainCli, BadInputGivesClearErrorsAndWritesNothing) {
  TempDir dir;
  const std::string data = SourcePath("examples/data/penguins.csv");
  std::string out;
  EXPECT_NE(RunCommand(CliPath() + " train --data " + data + " --label height --out " +
                           dir.File("m.bundle"),
                       &out),
            0);
  EXPECT_NE(out.find("height"), std::string::npos) << out;
  EXPECT_NE(RunCommand(CliPath() + " train --data " + data +
                           " --label species --model logistic --out " + dir.File("m.bundle"),
                       &out),
            0);
  EXPECT_NE(out.find("binary models need exactly 2"), std::string::npos) << out;
  EXPECT_NE(RunCommand(CliPath() + " train --data " + data +
                           " --label sex --model logistic --out " + dir.File("m.bundle"),
                       &out),
            0);
  EXPECT_NE(out.find("missing"), std::string::npos) << out;
  EXPECT_NE(RunCommand(CliPath() + " train --data " + data +
                           " --label species --model softmax --lr=-1 --optimizer sgd --out " +
                           dir.File("m.bundle"),
                       &out),
            0);
  EXPECT_NE(out.find("lr"), std::string::npos) << out;
  EXPECT_NE(
      RunCommand(CliPath() + " train --data " + data +
                     " --label species --model softmax --pipeline 'standardize(island)' --out " +
                     dir.File("m.bundle"),
                 &out),
      0);
  EXPECT_NE(out.find("categorical"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir.File("m.bundle")));
  testing::WriteFile(dir.File("bad.bundle"), "not a bundle at all");
  EXPECT_NE(
      RunCommand(CliPath() + " evaluate --model " + dir.File("bad.bundle") + " --data " + data,
                 &out),
      0);
  EXPECT_NE(out.find("DataLoss"), std::string::npos) << out;
}

// Kill a training process at a random moment (a real SIGKILL), resume from its checkpoint, and
// get exactly the weights of an uninterrupted run.
TEST(TrainCli, SigkillAndResumeGivesTheSameWeights) {
  TempDir dir;
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() +
                           " datagen --task classification --rows 20000 --features 12 "
                           "--informative 6 --classes 2 --seed 5 --out " +
                           dir.File("d.csv"),
                       &out),
            0)
      << out;
  const std::string common =
      " train --threads 2 --data " + dir.File("d.csv") +
      " --label label --model mlp --hidden 32,16 --dropout 0.1 --epochs 4 --batch-size 64 --seed 9";
  ASSERT_EQ(RunCommand(CliPath() + common + " --out " + dir.File("full.bundle"), &out), 0) << out;

  const std::string ckpt = dir.File("ckpt");
  const std::string cmd = CliPath() + common + " --checkpoint-dir " + ckpt +
                          " --checkpoint-every-steps 7 --out " + dir.File("resumed.bundle");
  std::mt19937 rng(static_cast<unsigned>(std::random_device{}()));
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd + " >/dev/null 2>&1").c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until a checkpoint exists, then a random extra delay, then kill.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!std::filesystem::exists(ckpt + "/checkpoint.ckpt") &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 200));
  // The shell exec'd the trainer, so the child pid is the trainer itself.
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(std::filesystem::exists(ckpt + "/checkpoint.ckpt"));
  ASSERT_EQ(RunCommand(cmd + " --resume", &out), 0) << out;
  EXPECT_NE(out.find("resuming from"), std::string::npos) << out;
  const auto a = io::ModelBundle::Load(dir.File("full.bundle"));
  const auto b = io::ModelBundle::Load(dir.File("resumed.bundle"));
  const auto pa = dynamic_cast<const models::GradientModel&>(*a.model).parameters();
  const auto pb = dynamic_cast<const models::GradientModel&>(*b.model).parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) ASSERT_EQ(pa[i], pb[i]) << "parameter " << i;
}

}  // namespace
}  // namespace escala

namespace escala {
namespace {

TEST(TrainCli, ConfigFileHoldsTheSameKeys) {
  TempDir dir;
  testing::WriteFile(dir.File("train.toml"),
                     "# escala train options\n[train]\nlabel = \"species\"\nmodel = \"softmax\"\n"
                     "optimizer = \"adam\"\nlr = 0.05\nepochs = 4\nbatch-size = 32\n"
                     "valid-fraction = 0.25\n");
  std::string out;
  ASSERT_EQ(
      RunCommand(CliPath() + " train --config " + dir.File("train.toml") + " --data " +
                     SourcePath("examples/data/penguins.csv") + " --out " + dir.File("m.bundle"),
                 &out),
      0)
      << out;
  const auto b = io::ModelBundle::Load(dir.File("m.bundle"));
  EXPECT_EQ(b.training_config.at("optimizer"), "adam");
  EXPECT_EQ(b.training_config.at("epochs"), "4");
  EXPECT_EQ(b.history.size(), 4u);
  testing::WriteFile(dir.File("bad.toml"), "[train]\nmodle = \"mlp\"\n");
  EXPECT_NE(
      RunCommand(CliPath() + " train --config " + dir.File("bad.toml") + " --data x --label y",
                 &out),
      0);
}

// Flags, config keys and docs/parameters.md come from one declared table (escala/train/params.h).
TEST(TrainCli, DocsParameterPageIsTheGeneratedOne) {
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() + " params 2>/dev/null", &out), 0) << out;
  EXPECT_EQ(out, testing::ReadFile(SourcePath("docs/parameters.md")))
      << "docs/parameters.md is stale: regenerate it with `escala params > docs/parameters.md`";
}

TEST(TrainCli, DeclaredParametersAreReadAsTheirTypeFromFlagsAndConfigFiles) {
  TempDir dir;
  const std::string base =
      CliPath() + " train --data " + SourcePath("examples/data/penguins.csv") + " --label species ";
  std::string out;
  EXPECT_EQ(RunCommand(base + "--lr fast", &out), 2) << out;
  EXPECT_NE(out.find("--lr: 'fast' is not a number"), std::string::npos) << out;
  EXPECT_EQ(RunCommand(base + "--batch-size 2.5", &out), 2) << out;
  EXPECT_NE(out.find("--batch-size: '2.5' is not an integer"), std::string::npos) << out;
  EXPECT_EQ(RunCommand(base + "--schedule cosin", &out), 2) << out;
  EXPECT_NE(out.find("schedule must be one of constant, step, cosine, linear, got 'cosin'"),
            std::string::npos)
      << out;
  // The same reader behind a config key; a flag on the command line wins over the file.
  testing::WriteFile(dir.File("bad.toml"), "[train]\nlr = \"fast\"\n");
  EXPECT_EQ(RunCommand(base + "--config " + dir.File("bad.toml"), &out), 2) << out;
  EXPECT_NE(out.find("--lr: 'fast' is not a number"), std::string::npos) << out;
  testing::WriteFile(dir.File("ok.toml"),
                     "[train]\nmodel = \"softmax\"\noptimizer = \"sgd\"\nepochs = 7\n"
                     "drop-missing-labels = true\n");
  ASSERT_EQ(RunCommand(base + "--config " + dir.File("ok.toml") + " --epochs 2 --out " +
                           dir.File("m.bundle"),
                       &out),
            0)
      << out;
  const auto b = io::ModelBundle::Load(dir.File("m.bundle"));
  EXPECT_EQ(b.training_config.at("optimizer"), "sgd");
  EXPECT_EQ(b.training_config.at("epochs"), "2");
}

TEST(StatsCli, TwoWorkersReportTheSameStatisticsAsOne) {
  TempDir dir;
  std::string out;
  const std::string data = SourcePath("examples/data/penguins.csv");
  ASSERT_EQ(RunCommand(CliPath() + " stats --data " + data + " --label species --json " +
                           dir.File("one.json") + " --html " + dir.File("one.html"),
                       &out),
            0)
      << out;
  ASSERT_EQ(RunCommand(CliPath() + " launch --nproc 2 -- " + CliPath() + " stats --data " + data +
                           " --label species --json " + dir.File("two.json"),
                       &out),
            0)
      << out;
  const std::string html = testing::ReadFile(dir.File("one.html"));
  EXPECT_NE(html.find("<svg"), std::string::npos);
  if (RunCommand("/usr/bin/python3 -c 'import json'") != 0)
    GTEST_SKIP() << "no python3 to compare JSON";
  const std::string compare =
      "/usr/bin/python3 -c 'import json,sys,math\n"
      "a,b=(json.load(open(f)) for f in sys.argv[1:3])\n"
      "assert a[\"rows\"]==b[\"rows\"]==344 and a[\"duplicate_rows\"]==b[\"duplicate_rows\"]\n"
      "for x,y in zip(a[\"columns\"],b[\"columns\"]):\n"
      "  for k in (\"count\",\"missing\",\"distinct\",\"outliers\"): assert "
      "x[k]==y[k],(x[\"name\"],k)\n"
      "  for k in (\"mean\",\"std\",\"min\",\"max\",\"median\"):\n"
      "    assert (x[k] is None and y[k] is None) or "
      "math.isclose(x[k],y[k],rel_tol=1e-9),(x[\"name\"],k,x[k],y[k])\n"
      "for r,s in zip(a[\"correlation\"],b[\"correlation\"]):\n"
      "  for u,v in zip(r,s): assert (u is None and v is None) or abs(u-v)<1e-6\n"
      "' " +
      dir.File("one.json") + " " + dir.File("two.json");
  EXPECT_EQ(RunCommand(compare, &out), 0) << out;
}

}  // namespace
}  // namespace escala

namespace escala {
namespace {

// The ConfigMap's train.toml in the Kubernetes example (the block under "train.toml: |").
std::string ConfigMapToml(const std::string& manifest) {
  const std::string key = "  train.toml: |\n";
  const auto start = manifest.find(key);
  if (start == std::string::npos) return "";
  std::string toml;
  std::size_t pos = start + key.size();
  while (pos < manifest.size() && manifest.compare(pos, 4, "    ") == 0) {
    const auto end = manifest.find('\n', pos);
    toml += manifest.substr(pos + 4, end - pos - 4) + "\n";
    pos = end + 1;
  }
  return toml;
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (auto p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) {
    s.replace(p, from.size(), to);
  }
  return s;
}

// The config of examples/distributed, as train.sbatch runs it: from a directory holding examples/.
TEST(ConfigFile, TheShippedExampleConfigTrains) {
  TempDir dir;
  std::filesystem::create_directory_symlink(SourcePath("examples"), dir.File("examples"));
  std::string out;
  ASSERT_EQ(RunCommand("cd " + dir.path().string() + " && " + CliPath() +
                           " train --config examples/distributed/train.toml",
                       &out),
            0)
      << out;
  const auto b = io::ModelBundle::Load(dir.File("models/penguins/1/model.bundle"));
  EXPECT_EQ(b.training_config.at("model"), "mlp");
  EXPECT_EQ(b.class_names, (std::vector<std::string>{"Adelie", "Chinstrap", "Gentoo"}));
}

// The Kubernetes Job mounts its ConfigMap at /config and runs /config/train.toml; that file, with
// /data on a local directory, trains.
TEST(ConfigFile, TheKubernetesExampleMountsItsConfigAndTheConfigTrains) {
  const std::string manifest =
      testing::ReadFile(SourcePath("examples/distributed/k8s-indexed-job.yaml"));
  EXPECT_NE(manifest.find(R"("--config", "/config/train.toml")"), std::string::npos);
  EXPECT_NE(manifest.find("mountPath: /config"), std::string::npos);
  EXPECT_NE(manifest.find("configMap:\n            name: escala-train"), std::string::npos);
  const std::string toml = ConfigMapToml(manifest);
  ASSERT_NE(toml.find("[train]"), std::string::npos) << manifest;
  TempDir dir;
  std::filesystem::create_directories(dir.File("train"));
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() + " datagen --task classification --rows 3000 --features 6 " +
                           "--informative 3 --seed 5 --out " + dir.File("train/part-00000.csv"),
                       &out),
            0)
      << out;
  testing::WriteFile(dir.File("train.toml"), ReplaceAll(toml, "\"/data/", "\"" + dir.File("")));
  ASSERT_EQ(RunCommand(CliPath() + " train --config " + dir.File("train.toml"), &out), 0) << out;
  EXPECT_TRUE(std::filesystem::exists(dir.File("models/model.bundle"))) << out;
}

// A config file escala cannot read fails with an error naming the file (and the line and key),
// instead of training with defaults.
TEST(ConfigFile, RefusesWhatItCannotReadNamingFileLineAndKey) {
  TempDir dir;
  const std::string data = SourcePath("examples/data/penguins.csv");
  const std::string good = "[train]\nlabel = \"species\"\nmodel = \"softmax\"\nepochs = 1\n";
  struct Case {
    std::string name, contents, message;
  };
  const std::vector<Case> cases = {
      {"train.yaml", "train:\n  label: species\n",
       "train.yaml: YAML is not read; use TOML ([train] section"},
      {"train.yml", good, "train.yml: YAML is not read"},
      {"train.json", R"({"train": {"label": "species"}})", "train.json: JSON is not read"},
      {"modle.toml", "[train]\nmodle = \"mlp\"\n",
       "modle.toml, line 2: unknown key 'modle' in [train]"},
      {"top.toml", "epochs = 3\n", "top.toml, line 1: unknown key 'epochs' at the top"},
      {"header.toml", "[train\nlabel = \"species\"\n",
       "header.toml, line 1: malformed section header '[train'"},
      {"section.toml", "[trian]\nlabel = \"species\"\n",
       "section.toml, line 1: [trian] names no escala subcommand"},
      {"yaml.toml", "[train]\nlabel: species\n",
       "yaml.toml, line 2: 'label: species' is not key = value (YAML is not read"},
      {"random.toml", std::string("\x7f\x45\x4c\x46\x02\x01\x01\x00\xde\xad\xbe\xef", 12),
       "random.toml, line 1: not text"},
      {"config.toml", "config = \"other.toml\"\n", "config.toml, line 1: 'config' cannot be set"},
  };
  for (const Case& c : cases) {
    testing::WriteFile(dir.File(c.name), c.contents);
    std::string out;
    EXPECT_EQ(RunCommand(CliPath() + " train --config " + dir.File(c.name) + " --data " + data +
                             " --out " + dir.File(c.name + ".bundle"),
                         &out),
              2)
        << c.name << ": " << out;
    EXPECT_NE(out.find("--config " + dir.File(c.message)), std::string::npos)
        << c.name << ": " << out;
    EXPECT_FALSE(std::filesystem::exists(dir.File(c.name + ".bundle"))) << c.name;
  }
  std::string out;
  EXPECT_NE(RunCommand(CliPath() + " train --config " + dir.File("missing.toml"), &out), 0);
  EXPECT_NE(out.find("missing.toml"), std::string::npos) << out;
  // The same keys in a well-formed file train.
  testing::WriteFile(dir.File("good.toml"), good);
  EXPECT_EQ(RunCommand(CliPath() + " train --config " + dir.File("good.toml") + " --data " + data +
                           " --out " + dir.File("good.bundle"),
                       &out),
            0)
      << out;
}

// --weight names a column of sample weights: not a feature, and checked row by row.
TEST(TrainCli, WeightColumnWeighsRowsAndBadWeightsAreRefused) {
  TempDir dir;
  std::string csv = "a,b,y,w\n", bad;
  for (int i = 0; i < 200; ++i) {
    const double a = (i % 23) / 7.0, b = (i % 11) / 3.0;
    csv += fmt::format("{:.3f},{:.3f},{},{}\n", a, b, a - b > 0.3 ? 1 : 0, i % 4);
  }
  testing::WriteFile(dir.File("t.csv"), csv);
  testing::WriteFile(dir.File("bad.csv"), csv + "1,2,1,-3\n");
  std::string out;
  for (const std::string model : {"logistic", "gbdt", "mlp --epochs 2"}) {
    ASSERT_EQ(RunCommand(CliPath() + " train --data " + dir.File("t.csv") +
                             " --label y --weight w --valid-fraction 0.2 --model " + model +
                             " --out " + dir.File("m.bundle"),
                         &out),
              0)
        << out;
    const auto bundle = io::ModelBundle::Load(dir.File("m.bundle"));
    EXPECT_EQ(bundle.model->num_features(), 2) << model << ": w is not a feature";
  }
  EXPECT_NE(RunCommand(CliPath() + " train --data " + dir.File("bad.csv") +
                           " --label y --weight w --out " + dir.File("m.bundle"),
                       &out),
            0);
  EXPECT_NE(out.find("weight column 'w': row 200: weight -3"), std::string::npos) << out;
}

}  // namespace
}  // namespace escala
