// `escala train --memory-budget` on a CSV four times larger than the budget: the process stays
// within the budget plus its fixed footprint (peak RSS from /proc, as the command logs it), and
// L-BFGS gives the model that training on the table read whole gives.
#include <regex>

#include <gtest/gtest.h>

#include "escala/core/thread_communicator.h"
#include "escala/data/dataset.h"
#include "escala/io/bundle.h"
#include "escala/train/labels.h"
#include "escala/train/metrics.h"
#include "test_util/temp_dir.h"

namespace escala {
namespace {

using testing::CliPath;
using testing::RunCommand;
using testing::TempDir;

constexpr std::uint64_t kMiB = 1 << 20;
// What the command holds beside the data, whatever the budget (docs/training.md, "Data larger
// than memory"): its code and libraries (about 20 MiB), and per thread its allocator arena and
// parse buffers (up to 8 MiB each).
constexpr std::uint64_t kFootprint = 20 * kMiB;
constexpr std::uint64_t kPerThread = 8 * kMiB;

std::uint64_t PeakOf(const std::string& log) {
  std::smatch m;
  if (!std::regex_search(log, m, std::regex("peak memory ([0-9]+) MiB"))) return 0;
  return std::stoull(m[1]) * kMiB;
}

double LogLoss(const std::string& bundle_path, const data::Table& test) {
  auto bundle = std::make_shared<const io::ModelBundle>(io::ModelBundle::Load(bundle_path));
  io::Predictor predictor(bundle);
  MatrixF p;
  predictor.PredictTable(test, &p);
  const auto y = train::EncodeLabels(test, "label", bundle->class_names);
  return train::Evaluate(bundle->model->task(), std::as_const(p).view(), y).values.at("logloss");
}

TEST(StreamedTrain, FourTimesTheBudgetTrainsWithinItAndAsTheTableReadWhole) {
  TempDir dir;
  const std::string gen = CliPath() +
                          " datagen --task classification --features 32 --informative 8"
                          " --classes 2 --noise 0.05 --seed 9 ";
  std::string out;
  ASSERT_EQ(RunCommand(gen + "--rows 240000 --out " + dir.File("train.csv"), &out), 0) << out;
  ASSERT_EQ(RunCommand(gen + "--rows 5000 --start-row 240000 --out " + dir.File("test.csv"), &out),
            0)
      << out;
  const std::uint64_t budget = 16 * kMiB;
  ASSERT_GE(std::filesystem::file_size(dir.File("train.csv")), 4 * budget);
  const std::string train =
      CliPath() + " train --data " + dir.File("train.csv") + " --label label --threads 2 --out ";
  ASSERT_EQ(RunCommand(train + dir.File("streamed.bundle") + " --memory-budget 16MiB", &out), 0)
      << out;
  EXPECT_NE(out.find("training streamed"), std::string::npos) << out;
  const std::uint64_t streamed_peak = PeakOf(out);
  ASSERT_GT(streamed_peak, 0u) << out;
  // The model is a few hundred bytes; the rest is the documented footprint.
  EXPECT_LE(streamed_peak, budget + kFootprint + 2 * kPerThread) << out;

  ASSERT_EQ(RunCommand(train + dir.File("whole.bundle"), &out), 0) << out;
  EXPECT_EQ(out.find("training streamed"), std::string::npos) << out;
  // Read whole, the same command needs more than that bound: the bound is what streaming buys.
  EXPECT_GT(PeakOf(out), budget + kFootprint + 2 * kPerThread) << out;

  const data::Table test = data::Dataset::Open(dir.File("test.csv")).ReadTable();
  const double whole = LogLoss(dir.File("whole.bundle"), test);
  EXPECT_NEAR(LogLoss(dir.File("streamed.bundle"), test), whole, 1e-6 * whole);
}

TEST(StreamedTrain, AnMlpStreamsAndWhatCannotStreamIsRefusedNamingWhy) {
  TempDir dir;
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() +
                           " datagen --task classification --features 8 --informative 4"
                           " --classes 2 --rows 20000 --seed 3 --out " +
                           dir.File("t.csv"),
                       &out),
            0)
      << out;
  const std::string train = CliPath() + " train --data " + dir.File("t.csv") +
                            " --label label --memory-budget 64KiB --out " + dir.File("m.bundle");
  ASSERT_EQ(RunCommand(train + " --model mlp --hidden 8 --epochs 2", &out), 0) << out;
  EXPECT_NE(out.find("training streamed"), std::string::npos) << out;
  EXPECT_NE(out.find("(streamed, 64 KiB chunks)"), std::string::npos) << out;
  EXPECT_TRUE(std::filesystem::exists(dir.File("m.bundle")));
  std::filesystem::remove(dir.File("m.bundle"));
  EXPECT_NE(RunCommand(train + " --cv 3", &out), 0);
  EXPECT_NE(out.find("--memory-budget 0.1 MiB; it cannot stream: cv / search"), std::string::npos)
      << out;
  EXPECT_FALSE(std::filesystem::exists(dir.File("m.bundle")));
}

}  // namespace
}  // namespace escala
