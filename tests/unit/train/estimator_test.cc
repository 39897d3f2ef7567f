#include "escala/train/estimator.h"

#include <limits>
#include <random>
#include <utility>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/core/thread_communicator.h"
#include "escala/models/factory.h"
#include "escala/models/model.h"
#include "test_util/temp_dir.h"

namespace escala::train {
namespace {

// n rows: two numbers (one with gaps), a category, and a yes/no label missing every 50th row.
std::string TableCsv(int n) {
  std::string csv = "a,b,color,y\n";
  std::mt19937 rng(11);
  std::normal_distribution<double> noise;
  const char* colors[] = {"red", "green", "blue"};
  for (int i = 0; i < n; ++i) {
    const double a = noise(rng), b = noise(rng);
    const int c = i % 3;
    const bool y = a - 0.5 * b + (c == 1 ? 0.8 : -0.3) + 0.5 * noise(rng) > 0;
    csv += (i % 17 == 0 ? std::string() : fmt::format("{:.5f}", a)) + "," +
           fmt::format("{:.5f}", b) + "," + colors[c] + "," +
           (i % 50 == 7 ? "" : (y ? "yes" : "no")) + "\n";
  }
  return csv;
}

TrainSpec QuietSpec() {
  TrainSpec spec;
  spec.label = "y";
  spec.drop_missing_labels = true;
  spec.options.progress = false;
  spec.options.threads = 2;
  return spec;
}

// The bundle of TrainTable and that of TrainStreamed agree: classes, features, loss, weights.
void ExpectSameModel(const TrainOutcome& whole, const TrainOutcome& streamed) {
  EXPECT_EQ(streamed.bundle.class_names, whole.bundle.class_names);
  EXPECT_EQ(streamed.bundle.pipeline.output_names(), whole.bundle.pipeline.output_names());
  const double loss = whole.result.history.back().train_loss;
  EXPECT_NEAR(streamed.result.history.back().train_loss, loss, 1e-6 * loss);
  const auto& a = dynamic_cast<const models::GradientModel&>(*whole.bundle.model);
  const auto& b = dynamic_cast<const models::GradientModel&>(*streamed.bundle.model);
  ASSERT_EQ(a.parameters().size(), b.parameters().size());
  for (std::size_t i = 0; i < a.parameters().size(); ++i) {
    EXPECT_NEAR(b.parameters()[i], a.parameters()[i], 1e-4) << i;
  }
}

TEST(TrainStreamed, GivesTheBundleOfTrainTableReadingChunks) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("t.csv"), TableCsv(30000));  // about 15 chunks of 64 KiB
  auto comm = MakeSelfCommunicator();
  const auto dataset = data::Dataset::Open(dir.File("t.csv"));
  const TrainSpec spec = QuietSpec();
  const TrainOutcome whole = TrainTable(spec, dataset.ReadTable(), std::nullopt, *comm);
  const TrainOutcome streamed =
      TrainStreamed(spec, dataset, {}, std::nullopt, *comm, {.memory_budget = 64 << 10});
  EXPECT_EQ(streamed.bundle.class_names, (std::vector<std::string>{"no", "yes"}));
  ExpectSameModel(whole, streamed);
}

TEST(TrainStreamed, ShardsOverRanksGiveTheModelOfTheirTables) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("t.csv"), TableCsv(12000));
  const auto dataset = data::Dataset::Open(dir.File("t.csv"));
  const TrainSpec spec = QuietSpec();
  std::vector<std::optional<TrainOutcome>> wholes(3), streams(3);
  RunOnThreadRanks(3, [&](Communicator& comm) {
    const data::Shard shard{comm.rank(), comm.size()};
    const auto r = static_cast<std::size_t>(comm.rank());
    wholes[r] = TrainTable(spec, dataset.ReadTable(shard), std::nullopt, comm);
    streams[r] =
        TrainStreamed(spec, dataset, shard, std::nullopt, comm, {.memory_budget = 64 << 10});
  });
  for (std::size_t r = 0; r < 3; ++r) ExpectSameModel(*wholes[r], *streams[r]);
}

// escala train's in-memory path: the shard as a stream's chunks of float32 numbers.
TEST(TrainChunks, GivesTheBundleOfTrainTableFromFloat32Chunks) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("t.csv"), TableCsv(30000));
  auto comm = MakeSelfCommunicator();
  data::DatasetOptions narrow;
  narrow.label_column = "y";
  narrow.float32_numbers = true;
  const auto dataset = data::Dataset::Open(dir.File("t.csv"), narrow);
  EXPECT_EQ(dataset.table_schema().field(0).type, data::DataType::kFloat32);
  for (const double held_out : {0.0, 0.25}) {
    TrainSpec spec = QuietSpec();
    spec.valid_fraction = held_out;
    const TrainOutcome whole =
        TrainTable(spec, data::Dataset::Open(dir.File("t.csv")).ReadTable(), std::nullopt, *comm);
    data::DatasetStream stream(dataset, {}, {.block_bytes = 64 << 10});
    std::vector<data::Table> chunks;
    data::Table chunk;
    while (stream.Next(&chunk)) chunks.push_back(std::move(chunk));
    ASSERT_GT(chunks.size(), 5u);
    const TrainOutcome chunked = TrainChunks(spec, std::move(chunks), dataset.table_schema(),
                                             std::nullopt, *comm, dataset.schema());
    ExpectSameModel(whole, chunked);
    EXPECT_EQ(chunked.bundle.input_schema(), whole.bundle.input_schema()) << "declared float64";
    EXPECT_EQ(chunked.has_validation, held_out > 0);
    if (held_out > 0) {
      EXPECT_NEAR(chunked.bundle.metrics.at("valid_logloss"),
                  whole.bundle.metrics.at("valid_logloss"), 1e-6);
    }
  }
}

// n rows of three float32 features and a 0/1 label, as one matrix and as a table of the same
// columns.
struct MatrixAndTable {
  MatrixF x;
  std::vector<std::string> names = {"a", "b", "c"};
  data::Table targets, table;
};

MatrixAndTable Numbers(std::int64_t n, unsigned seed) {
  MatrixAndTable m;
  m.x.Resize(n, 3);
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise;
  data::Column y("y", data::DataType::kInt64, n);
  std::vector<data::Column> cols;
  for (int j = 0; j < 3; ++j) cols.emplace_back(m.names[j], data::DataType::kFloat32, n);
  for (std::int64_t i = 0; i < n; ++i) {
    for (int j = 0; j < 3; ++j) {
      m.x(i, j) = noise(rng);
      cols[static_cast<std::size_t>(j)].mutable_f32()[static_cast<std::size_t>(i)] = m.x(i, j);
    }
    y.mutable_i64()[static_cast<std::size_t>(i)] = m.x(i, 0) - 0.5f * m.x(i, 2) + noise(rng) > 0;
  }
  m.targets = data::Table({y});
  cols.push_back(std::move(y));
  m.table = data::Table(std::move(cols));
  return m;
}

MatrixShard ShardOf(const MatrixAndTable& m) {
  return {std::as_const(m.x).view(), m.names, m.targets};
}

// A matrix trains exactly as the table of its columns: logistic regression with the pipeline
// "none", and trees with their default pipeline, on one rank and on two.
TEST(TrainMatrix, GivesTheBundleOfTrainTableOnTheSameColumns) {
  const MatrixAndTable m = Numbers(3000, 5);
  for (const std::string model : {"logistic", "gbdt"}) {
    TrainSpec spec = QuietSpec();
    spec.drop_missing_labels = false;
    spec.model = model;
    if (model == "logistic") spec.pipeline = "";  // the flag's "none"
    spec.trees.rounds = 5;
    auto comm = MakeSelfCommunicator();
    const TrainOutcome table = TrainTable(spec, m.table, std::nullopt, *comm);
    const TrainOutcome matrix = TrainMatrix(spec, ShardOf(m), std::nullopt, *comm);
    EXPECT_EQ(models::SerializeModel(*matrix.bundle.model),
              models::SerializeModel(*table.bundle.model))
        << model;
    EXPECT_EQ(matrix.bundle.pipeline.Serialize(), table.bundle.pipeline.Serialize()) << model;
    EXPECT_EQ(matrix.bundle.class_names, (std::vector<std::string>{"0", "1"}));
    std::vector<std::string> ranks(2);
    RunOnThreadRanks(2, [&](Communicator& c) {
      const std::int64_t half = m.x.rows() / 2, at = c.rank() * half;
      MatrixShard part{std::as_const(m.x).view().Rows(at, half), m.names,
                       m.targets.Slice(at, half)};
      ranks[static_cast<std::size_t>(c.rank())] =
          models::SerializeModel(*TrainMatrix(spec, std::move(part), std::nullopt, c).bundle.model);
    });
    EXPECT_EQ(ranks[0], ranks[1]);
    if (model == "gbdt") {
      EXPECT_EQ(ranks[0], models::SerializeModel(*table.bundle.model));
    }
  }
}

TEST(TrainMatrix, RefusesWhatItCannotTrainNamingWhy) {
  MatrixAndTable m = Numbers(200, 6);
  auto comm = MakeSelfCommunicator();
  TrainSpec spec = QuietSpec();
  spec.drop_missing_labels = false;
  const auto refused = [&](const TrainSpec& s, MatrixShard shard, const std::string& what) {
    try {
      TrainMatrix(s, std::move(shard), std::nullopt, *comm);
      ADD_FAILURE() << "accepted; expected: " << what;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  refused(spec, ShardOf(m), "pipeline 'impute(median)");  // the default has steps to fit
  spec.pipeline = "";
  MatrixShard fewer = ShardOf(m);
  fewer.feature_names.pop_back();
  refused(spec, std::move(fewer), "feature_names: 2 names for a matrix of 3 columns");
  MatrixShard twice = ShardOf(m);
  twice.feature_names[2] = "a";
  refused(spec, std::move(twice), "'a' names two columns");
  m.x(41, 1) = std::numeric_limits<float>::quiet_NaN();
  refused(spec, ShardOf(m), "row 41: feature 'b' is missing (NaN)");
  m.x(41, 1) = 0;
  m.x(7, 2) = std::numeric_limits<float>::infinity();
  refused(spec, ShardOf(m), "row 7: feature 'c' is infinite");
  spec.model = "gbdt";
  refused(spec, ShardOf(m), "row 7: feature 'c' is infinite");
  m.x(7, 2) = std::numeric_limits<float>::quiet_NaN();  // trees keep missing values
  EXPECT_NO_THROW(TrainMatrix(spec, ShardOf(m), std::nullopt, *comm));
  spec.model = "logistic";
  spec.valid_fraction = 0.2;
  refused(spec, ShardOf(m), "valid_fraction");
}

// An mlp streams through minibatches (a shuffle buffer over the chunks): as accurate as the
// mlp trained on the table, within noise, with the same classes and features.
TEST(TrainStreamed, AnMlpTrainsThroughStreamedMinibatches) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("t.csv"), TableCsv(20000));
  auto comm = MakeSelfCommunicator();
  const auto dataset = data::Dataset::Open(dir.File("t.csv"));
  testing::WriteFile(dir.File("v.csv"), TableCsv(3000));
  const data::Table valid = data::Dataset::Open(dir.File("v.csv")).ReadTable();
  TrainSpec spec = QuietSpec();
  spec.model = "mlp";
  spec.hidden = {16};
  spec.epochs = 4;
  const TrainOutcome whole = TrainTable(spec, dataset.ReadTable(), valid, *comm);
  const TrainOutcome streamed =
      TrainStreamed(spec, dataset, {}, valid, *comm, {.memory_budget = 256 << 10});
  EXPECT_EQ(streamed.bundle.class_names, whole.bundle.class_names);
  EXPECT_EQ(streamed.bundle.pipeline.output_names(), whole.bundle.pipeline.output_names());
  EXPECT_EQ(streamed.result.history.size(), 4u);
  EXPECT_EQ(streamed.bundle.training_config.at("optimizer"), "adam");
  EXPECT_NEAR(streamed.bundle.metrics.at("valid_accuracy"),
              whole.bundle.metrics.at("valid_accuracy"), 0.02);
}

TEST(TrainStreamed, WhatCannotStreamIsRefusedNamingWhy) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("t.csv"), TableCsv(100));
  const auto dataset = data::Dataset::Open(dir.File("t.csv"));
  auto comm = MakeSelfCommunicator();
  auto refused = [&](TrainSpec spec, const std::string& why) {
    try {
      TrainStreamed(spec, dataset, {}, std::nullopt, *comm);
      ADD_FAILURE() << "trained: " << why;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  TrainSpec cv = QuietSpec();
  cv.cv = 3;
  refused(cv, "cv / search");
  TrainSpec held_out = QuietSpec();
  held_out.valid_fraction = 0.2;
  refused(held_out, "valid_fraction");
  TrainSpec missing = QuietSpec();
  missing.drop_missing_labels = false;
  refused(missing, "label 'y' is missing in row 7");
}

// Trees take part in model selection by their own parameters: depth 1 cannot fit the label's
// interaction (a sign product), depth 3 can; the search finds it and the final model uses it.
TEST(TrainTable, TreesCrossValidateASearchOverTheirParameters) {
  std::string csv = "a,b,y\n";
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(-1, 1);
  for (int i = 0; i < 600; ++i) {
    const double a = u(rng), b = u(rng);
    csv += fmt::format("{:.4f},{:.4f},{}\n", a, b, a * b > 0 ? "yes" : "no");
  }
  testing::TempDir dir;
  testing::WriteFile(dir.File("t.csv"), csv);
  auto comm = MakeSelfCommunicator();
  TrainSpec spec = QuietSpec();
  spec.model = "gbdt";
  spec.trees.rounds = 20;
  spec.cv = 3;
  spec.search = "max_depth=1,3;learning_rate=0.3";
  const TrainOutcome out =
      TrainTable(spec, data::Dataset::Open(dir.File("t.csv")).ReadTable(), std::nullopt, *comm);
  ASSERT_TRUE(out.selection.has_value());
  const auto& sel = *out.selection;
  ASSERT_EQ(sel.candidates.size(), 2u);
  EXPECT_EQ(sel.metric, "logloss");
  EXPECT_EQ(sel.candidates[static_cast<std::size_t>(sel.best)].params.at("max_depth"), "3");
  EXPECT_LT(sel.candidates[1].mean, sel.candidates[0].mean - 0.1);
  EXPECT_EQ(sel.candidates[0].fold_scores.size(), 3u);
  EXPECT_EQ(out.bundle.training_config.at("max_depth"), "3");
  EXPECT_EQ(out.bundle.metrics.count("cv_logloss"), 1u);
  // A forest cross-validates the same way (its defaults apply to what the search leaves).
  spec.model = "random_forest";
  spec.search = "max_depth=2,8";
  spec.trees.rounds = 10;
  spec.trees_given = {"rounds"};
  const TrainOutcome forest =
      TrainTable(spec, data::Dataset::Open(dir.File("t.csv")).ReadTable(), std::nullopt, *comm);
  EXPECT_EQ(forest.selection->candidates.size(), 2u);
}

TEST(TrainTable, ATreeSearchOverAnotherFamilysParametersIsRefusedBeforeReading) {
  TrainSpec spec = QuietSpec();
  spec.model = "gbdt";
  spec.search = "lr=0.1,0.2";
  try {
    Validate(spec);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown parameter 'lr' (known: rounds, max_depth"),
              std::string::npos)
        << e.what();
  }
  spec.search = "max_depth=4,99";
  EXPECT_THROW(Validate(spec), Error);
}

}  // namespace
}  // namespace escala::train
