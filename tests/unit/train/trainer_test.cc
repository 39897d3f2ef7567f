#include "escala/train/trainer.h"

#include <cmath>
#include <filesystem>
#include <random>

#include <Eigen/Dense>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "escala/core/eigen.h"
#include "escala/core/error.h"
#include "escala/core/file_util.h"
#include "escala/core/thread_communicator.h"
#include "escala/models/factory.h"
#include "escala/models/linear.h"
#include "escala/train/labels.h"
#include "escala/train/source.h"
#include "test_util/faulty_communicator.h"
#include "test_util/synthetic.h"
#include "test_util/temp_dir.h"

namespace escala::train {
namespace {

using testing::MakeSynthetic;

std::unique_ptr<models::GradientModel> MakeMlp(std::int64_t d, float dropout = 0.0f) {
  models::ModelSpec spec;
  spec.kind = "mlp";
  spec.task = models::Task::kBinary;
  spec.num_features = d;
  spec.hidden = {16, 8};
  spec.dropout = dropout;
  return models::MakeModel(spec);
}

TrainOptions QuietOptions() {
  TrainOptions o;
  o.progress = false;
  o.threads = 2;
  return o;
}

TEST(Trainer, LbfgsRidgeMatchesClosedForm) {
  const auto data = MakeSynthetic(500, 6, 0, 3);
  models::LinearModel model(models::Task::kRegression, 6);
  TrainOptions o = QuietOptions();
  o.optimizer.name = "lbfgs";
  o.optimizer.l2 = 0.1f;
  o.lbfgs_tolerance = 0;
  o.lbfgs_max_iterations = 500;
  auto comm = MakeSelfCommunicator();
  Trainer(model, o, *comm).Fit({data.x.view(), data.y, {}}, nullptr);
  // Closed form of (1/n) sum 0.5 (x.w + b - y)^2 + 0.5 l2 |w|^2: center, then solve.
  const auto x = AsEigen(data.x).cast<double>();
  const Eigen::VectorXd y = Eigen::Map<const Eigen::VectorXf>(data.y.data(), 500).cast<double>();
  const Eigen::RowVectorXd mx = x.colwise().mean();
  const double my = y.mean();
  const Eigen::MatrixXd xc = x.rowwise() - mx;
  const Eigen::MatrixXd lhs = xc.transpose() * xc / 500.0 + 0.1 * Eigen::MatrixXd::Identity(6, 6);
  const Eigen::VectorXd w = lhs.ldlt().solve(xc.transpose() * (y.array() - my).matrix() / 500.0);
  const double b = my - mx.dot(w);
  for (int j = 0; j < 6; ++j) EXPECT_NEAR(model.weights()(j, 0), w(j), 1e-4) << j;
  EXPECT_NEAR(model.bias()[0], b, 1e-4);
}

// Defaults reach the optimum of an ill-conditioned problem: correlated columns of very different
// scales (as raw tables have). The old rule (relative decrease below 1e-6) stopped early, and
// more iterations changed nothing.
TEST(Trainer, LbfgsDefaultsReachTheOptimumOfIllConditionedProblems) {
  const std::int64_t n = 400;
  MatrixF xf(n, 3);
  std::vector<float> yf(static_cast<std::size_t>(n));
  std::mt19937_64 gen(7);
  std::normal_distribution<double> normal;
  auto rng = [&] { return normal(gen); };
  for (std::int64_t i = 0; i < n; ++i) {
    const double z = rng(), e = rng();
    xf(i, 0) = static_cast<float>(z);
    xf(i, 1) = static_cast<float>(z + 0.01 * e);
    xf(i, 2) = static_cast<float>(100 * rng());
    yf[static_cast<std::size_t>(i)] =
        static_cast<float>(150 + 3 * z + 40 * e + 0.5 * xf(i, 2) + 5 * rng());
  }
  models::LinearModel model(models::Task::kRegression, 3);
  TrainOptions o = QuietOptions();
  o.optimizer.name = "lbfgs";
  o.optimizer.l2 = 1.0f / static_cast<float>(n);
  auto comm = MakeSelfCommunicator();
  const auto result = Trainer(model, o, *comm).Fit({xf.view(), yf, {}}, nullptr);
  const auto x = AsEigen(xf).cast<double>();
  const Eigen::VectorXd y = Eigen::Map<const Eigen::VectorXf>(yf.data(), n).cast<double>();
  const Eigen::RowVectorXd mx = x.colwise().mean();
  const Eigen::MatrixXd xc = x.rowwise() - mx;
  const double l2 = o.optimizer.l2;
  const Eigen::MatrixXd lhs =
      xc.transpose() * xc / double(n) + l2 * Eigen::MatrixXd::Identity(3, 3);
  const Eigen::VectorXd w = lhs.ldlt().solve(xc.transpose() * (y.array() - y.mean()).matrix() / n);
  const double b = y.mean() - mx.dot(w);
  auto objective = [&](const Eigen::VectorXd& wv, double bv) {
    return 0.5 * ((x * wv).array() + bv - y.array()).square().mean() + 0.5 * l2 * wv.squaredNorm();
  };
  Eigen::VectorXd got(3);
  for (int j = 0; j < 3; ++j) got(j) = model.weights()(j, 0);
  const double best = objective(w, b), reached = objective(got, model.bias()[0]);
  EXPECT_LT((reached - best) / best, 1e-7)
      << result.stop_reason << ": " << reached << " vs " << best;
  EXPECT_NE(result.stop_reason.find("largest gradient component"), std::string::npos)
      << result.stop_reason;
}

TEST(Trainer, LbfgsLogisticLearnsAndReportsMetrics) {
  const auto train = MakeSynthetic(4000, 8, 2, 1);
  const auto valid = MakeSynthetic(1000, 8, 2, 1);  // same generator seed: same true weights
  models::LinearModel model(models::Task::kBinary, 8);
  TrainOptions o = QuietOptions();
  o.optimizer.name = "lbfgs";
  auto comm = MakeSelfCommunicator();
  DataShard vs{valid.x.view(), valid.y, {}};
  const auto r = Trainer(model, o, *comm).Fit({train.x.view(), train.y, {}}, &vs);
  EXPECT_GT(r.valid.at("accuracy"), 0.75);
  EXPECT_GT(r.valid.at("roc_auc"), 0.8);
  EXPECT_LT(r.valid.at("logloss"), 0.55);
  EXPECT_FALSE(r.history.empty());
  EXPECT_NE(r.stop_reason.find("lbfgs"), std::string::npos);
}

// L-BFGS over a source read in chunks sums the same rows: the model of in-memory training, to
// rounding, whatever the chunk size; on thread ranks too.
TEST(Trainer, FullBatchOverChunksGivesTheInMemoryModel) {
  const auto train = MakeSynthetic(5000, 8, 2, 3);
  TrainOptions o = QuietOptions();
  o.optimizer.name = "lbfgs";
  o.optimizer.l2 = 1e-3f;
  auto comm = MakeSelfCommunicator();
  const DataShard shard{train.x.view(), train.y, {}};
  models::LinearModel whole(models::Task::kBinary, 8);
  const auto r = Trainer(whole, o, *comm).Fit(shard, nullptr);
  for (std::int64_t chunk_rows : {1, 333, 4999, 5000, 100000}) {
    models::LinearModel chunked(models::Task::kBinary, 8);
    ShardChunks chunks(shard, chunk_rows);
    const auto rc = Trainer(chunked, o, *comm).FitFullBatch(chunks, nullptr);
    ASSERT_FALSE(rc.history.empty());
    EXPECT_NEAR(rc.history.back().train_loss, r.history.back().train_loss,
                1e-6 * r.history.back().train_loss)
        << chunk_rows;
    for (std::size_t i = 0; i < whole.parameters().size(); ++i) {
      EXPECT_NEAR(chunked.parameters()[i], whole.parameters()[i], 1e-4) << chunk_rows << " " << i;
    }
  }
  // Two thread ranks, each streaming its half in chunks of 100 rows.
  std::vector<float> params;
  RunOnThreadRanks(2, [&](Communicator& c) {
    const std::int64_t half = 2500, begin = c.rank() * half;
    const DataShard mine{train.x.view().Rows(begin, half),
                         std::span<const float>(train.y).subspan(static_cast<std::size_t>(begin),
                                                                 static_cast<std::size_t>(half)),
                         {}};
    models::LinearModel m(models::Task::kBinary, 8);
    ShardChunks chunks(mine, 100);
    Trainer(m, o, c).FitFullBatch(chunks, nullptr);
    if (c.rank() == 0) params.assign(m.parameters().begin(), m.parameters().end());
  });
  for (std::size_t i = 0; i < params.size(); ++i) {
    EXPECT_NEAR(params[i], whole.parameters()[i], 1e-4) << i;
  }
  // Only full-batch optimizers read a chunked source.
  models::LinearModel other(models::Task::kBinary, 8);
  TrainOptions adam = QuietOptions();
  ShardChunks chunks(shard, 100);
  EXPECT_THROW(Trainer(other, adam, *comm).FitFullBatch(chunks, nullptr), Error);
}

// A CSV streamed in small blocks through a fitted pipeline (numbers with missing values and a
// categorical column), L-BFGS over the chunks: the model of the same rows in memory.
TEST(Trainer, FullBatchOverAStreamedCsvGivesTheInMemoryModel) {
  testing::TempDir dir;
  std::string csv = "a,b,color,y\n";
  std::mt19937 rng(4);
  std::normal_distribution<double> noise;
  const char* colors[] = {"red", "green", "blue"};
  for (int i = 0; i < 3000; ++i) {
    const double a = noise(rng), b = noise(rng);
    const int c = i % 3;
    const bool y = a - 0.5 * b + (c == 1 ? 0.8 : -0.3) + 0.5 * noise(rng) > 0;
    csv += (i % 17 == 0 ? std::string() : fmt::format("{:.5f}", a)) + "," +
           fmt::format("{:.5f}", b) + "," + colors[c] + "," + (y ? "1" : "0") + "\n";
  }
  testing::WriteFile(dir.File("t.csv"), csv);
  auto comm = MakeSelfCommunicator();
  const auto dataset = data::Dataset::Open(dir.File("t.csv"));
  const data::Table table = dataset.ReadTable();
  features::Pipeline pipeline = features::Pipeline::FromSpec(
      "impute(median) | impute(most_frequent) | standardize | onehot(unknown=ignore)");
  features::FitOptions fo;
  fo.exclude = {"y"};
  pipeline.Fit(table, fo, *comm);
  const std::vector<std::string> classes = {"0", "1"};
  MatrixF x;
  pipeline.Transform(table, &x);
  const std::vector<float> y = EncodeLabels(table, "y", classes);

  TrainOptions o = QuietOptions();
  o.optimizer.name = "lbfgs";
  o.optimizer.l2 = 1e-3f;
  models::LinearModel whole(models::Task::kBinary, pipeline.num_outputs());
  const auto r = Trainer(whole, o, *comm).Fit({std::as_const(x).view(), y, {}}, nullptr);

  DatasetChunksOptions so;
  so.label = "y";
  so.class_names = classes;
  so.stream.block_bytes = 4096;  // about 100 rows a chunk
  DatasetChunks chunks(dataset, {}, pipeline, so);
  models::LinearModel streamed(models::Task::kBinary, pipeline.num_outputs());
  const auto rs = Trainer(streamed, o, *comm).FitFullBatch(chunks, nullptr);
  EXPECT_EQ(chunks.rows(), 3000);
  EXPECT_NEAR(rs.history.back().train_loss, r.history.back().train_loss,
              1e-6 * r.history.back().train_loss);
  for (std::size_t i = 0; i < whole.parameters().size(); ++i) {
    EXPECT_NEAR(streamed.parameters()[i], whole.parameters()[i], 1e-4) << i;
  }
}

TEST(Trainer, SoftmaxAdamLearnsMulticlass) {
  const auto train = MakeSynthetic(3000, 5, 4, 2, 0.3f);
  auto model = models::MakeModel(
      {.kind = "softmax", .task = models::Task::kMulticlass, .num_features = 5, .num_classes = 4});
  TrainOptions o = QuietOptions();
  o.optimizer.lr = 0.05f;
  o.epochs = 8;
  o.batch_size = 64;
  auto comm = MakeSelfCommunicator();
  DataShard shard{train.x.view(), train.y, {}};
  const auto r = Trainer(*model, o, *comm).Fit(shard, &shard);
  EXPECT_GT(r.valid.at("accuracy"), 0.8);
  EXPECT_EQ(r.history.size(), 8u);
  EXPECT_LT(r.history.back().train_loss, r.history.front().train_loss);
}

// The contract the distributed runtime relies on: N ranks, global batch B, same seed => the same
// model as one rank with batch B, up to rounding.
TEST(Trainer, ThreadRanksMatchOneRankWithTheSameGlobalBatch) {
  const auto data = MakeSynthetic(1000, 6, 2, 9);
  TrainOptions o = QuietOptions();
  o.threads = 1;
  o.epochs = 3;
  o.batch_size = 64;
  o.optimizer.name = "adam";
  o.optimizer.lr = 0.01f;
  auto reference = MakeMlp(6, 0.2f);
  {
    auto comm = MakeSelfCommunicator();
    Trainer(*reference, o, *comm).Fit({data.x.view(), data.y, {}}, nullptr);
  }
  // Every layout: 2 and 4 ranks, 1 or 2 threads per rank, one all-reduce per step or one bucket
  // per layer overlapped with the backward pass.
  for (int world : {2, 4}) {
    for (int threads : {1, 2}) {
      for (std::size_t bucket : {std::size_t{0}, std::size_t{64}}) {
        TrainOptions ro = o;
        ro.threads = threads;
        ro.bucket_bytes = bucket;
        std::vector<std::unique_ptr<models::GradientModel>> replicas(
            static_cast<std::size_t>(world));
        RunOnThreadRanks(world, [&](Communicator& comm) {
          // Uneven contiguous shards.
          const std::int64_t n = 1000;
          const std::int64_t begin = n * comm.rank() / world + (comm.rank() > 0 ? 7 : 0);
          const std::int64_t end = comm.rank() + 1 == world ? n : n * (comm.rank() + 1) / world + 7;
          auto m = MakeMlp(6, 0.2f);
          DataShard shard{
              data.x.view().Rows(begin, end - begin),
              std::span<const float>(data.y).subspan(static_cast<std::size_t>(begin),
                                                     static_cast<std::size_t>(end - begin)),
              {}};
          Trainer(*m, ro, comm).Fit(shard, nullptr);
          replicas[static_cast<std::size_t>(comm.rank())] = std::move(m);
        });
        for (int r = 0; r < world; ++r) {
          const auto a = reference->parameters();
          const auto b = replicas[static_cast<std::size_t>(r)]->parameters();
          double max_diff = 0;
          for (std::size_t i = 0; i < a.size(); ++i)
            max_diff = std::max(max_diff, double(std::fabs(a[i] - b[i])));
          EXPECT_LT(max_diff, 1e-4) << "world " << world << " threads " << threads << " bucket "
                                    << bucket << " rank " << r;
          // Every rank holds the same replica, bit for bit.
          EXPECT_TRUE(std::equal(b.begin(), b.end(), replicas[0]->parameters().begin()));
        }
      }
    }
  }
}

TEST(Trainer, EarlyStoppingRestoresTheBestEpoch) {
  const auto train = MakeSynthetic(400, 10, 2, 4);
  const auto valid = MakeSynthetic(400, 10, 2, 5);  // different weights: overfitting shows
  auto model = MakeMlp(10);
  TrainOptions o = QuietOptions();
  o.epochs = 60;
  o.batch_size = 16;
  o.optimizer.lr = 0.02f;
  o.early_stopping.patience = 2;
  auto comm = MakeSelfCommunicator();
  DataShard vs{valid.x.view(), valid.y, {}};
  Trainer trainer(*model, o, *comm);
  const auto r = trainer.Fit({train.x.view(), train.y, {}}, &vs);
  ASSERT_TRUE(r.early_stopped) << r.stop_reason;
  EXPECT_LT(r.history.size(), 60u);
  double best = 1e9;
  for (const auto& e : r.history) best = std::min(best, e.valid.at("logloss"));
  EXPECT_NEAR(r.valid.at("logloss"), best, 1e-9);
  EXPECT_EQ(r.history[static_cast<std::size_t>(r.best_epoch - 1)].valid.at("logloss"), best);
}

TEST(Trainer, ResumeAfterAFailureGivesTheSameWeights) {
  const auto data = MakeSynthetic(600, 5, 2, 6);
  testing::TempDir dir;
  TrainOptions o = QuietOptions();
  o.epochs = 3;
  o.batch_size = 32;
  o.optimizer.lr = 0.01f;
  o.checkpoint.dir = dir.path().string();
  o.checkpoint.every_steps = 7;
  DataShard shard{data.x.view(), data.y, {}};

  auto uninterrupted = MakeMlp(5, 0.1f);
  {
    auto comm = MakeSelfCommunicator();
    TrainOptions u = o;
    u.checkpoint.dir.clear();
    Trainer(*uninterrupted, u, *comm).Fit(shard, nullptr);
  }
  // Run until the 30th collective fails (a lost peer), mid-epoch 2.
  {
    auto self = MakeSelfCommunicator();
    testing::FaultyCommunicator faulty(*self, 30);
    auto m = MakeMlp(5, 0.1f);
    EXPECT_THROW(Trainer(*m, o, faulty).Fit(shard, nullptr), Error);
  }
  ASSERT_TRUE(std::filesystem::exists(dir.File("checkpoint.ckpt")));
  auto resumed = MakeMlp(5, 0.1f);
  o.checkpoint.resume = true;
  auto comm = MakeSelfCommunicator();
  const auto r = Trainer(*resumed, o, *comm).Fit(shard, nullptr);
  EXPECT_TRUE(r.resumed);
  EXPECT_EQ(r.history.size(), 3u);
  const auto a = uninterrupted->parameters();
  const auto b = resumed->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << i;
}

TEST(Trainer, ResumeRefusesDifferentOptionsAndCorruptCheckpoints) {
  const auto data = MakeSynthetic(200, 4, 2, 6);
  testing::TempDir dir;
  TrainOptions o = QuietOptions();
  o.epochs = 1;
  o.checkpoint.dir = dir.path().string();
  DataShard shard{data.x.view(), data.y, {}};
  auto comm = MakeSelfCommunicator();
  auto m = MakeMlp(4);
  Trainer(*m, o, *comm).Fit(shard, nullptr);
  o.checkpoint.resume = true;
  o.optimizer.lr = 0.5f;
  try {
    Trainer(*m, o, *comm).Fit(shard, nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition) << e.what();
  }
  std::string bytes = ReadFileToString(dir.File("checkpoint.ckpt"));
  bytes[bytes.size() / 2] ^= 0x5a;
  testing::WriteFile(dir.File("checkpoint.ckpt"), bytes);
  o.optimizer.lr = 1e-3f;
  try {
    Trainer(*m, o, *comm).Fit(shard, nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDataLoss) << e.what();
  }
}

TEST(Trainer, DivergenceStopsWithAClearErrorAndKeepsTheLastGoodCheckpoint) {
  auto data = MakeSynthetic(256, 4, 0, 2);
  for (float& v : data.y) v *= 1e3f;
  testing::TempDir dir;
  models::LinearModel model(models::Task::kRegression, 4);
  TrainOptions o = QuietOptions();
  o.optimizer.name = "sgd";
  o.optimizer.lr = 10.0f;
  o.epochs = 50;
  o.batch_size = 256;
  o.checkpoint.dir = dir.path().string();
  auto comm = MakeSelfCommunicator();
  try {
    Trainer(model, o, *comm).Fit({data.x.view(), data.y, {}}, nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kAborted);
    EXPECT_NE(std::string(e.what()).find("diverged"), std::string::npos) << e.what();
  }
  // Whatever checkpoint exists is loadable and finite.
  if (std::filesystem::exists(dir.File("checkpoint.ckpt"))) {
    std::uint32_t version;
    const std::string file = ReadFileToString(dir.File("checkpoint.ckpt"));
    EXPECT_NO_THROW(UnframePayload(file, "ESCALACK", &version, "ckpt"));
  }
}

TEST(Trainer, BadInputsAreRejected) {
  const auto data = MakeSynthetic(50, 4, 2, 1);
  auto comm = MakeSelfCommunicator();
  auto m = MakeMlp(5);  // wrong width
  EXPECT_THROW(Trainer(*m, QuietOptions(), *comm).Fit({data.x.view(), data.y, {}}, nullptr), Error);
  auto ok = MakeMlp(4);
  std::vector<float> bad = data.y;
  bad[3] = 2.0f;  // not a binary label
  EXPECT_THROW(Trainer(*ok, QuietOptions(), *comm).Fit({data.x.view(), bad, {}}, nullptr), Error);
  TrainOptions o = QuietOptions();
  o.batch_size = 0;
  EXPECT_THROW(Trainer(*ok, o, *comm), Error);
  o = QuietOptions();
  o.optimizer.name = "lbfgs";
  EXPECT_THROW(Trainer(*ok, o, *comm).Fit({data.x.view(), data.y, {}}, nullptr), Error);
}

TEST(Trainer, HistoryFiles) {
  const auto data = MakeSynthetic(100, 3, 2, 1);
  auto comm = MakeSelfCommunicator();
  auto m = MakeMlp(3);
  TrainOptions o = QuietOptions();
  o.epochs = 2;
  DataShard shard{data.x.view(), data.y, {}};
  const auto r = Trainer(*m, o, *comm).Fit(shard, &shard);
  testing::TempDir dir;
  WriteHistoryCsv(r.history, dir.File("h.csv"));
  WriteHistoryJson(r.history, dir.File("h.json"));
  const std::string csv = testing::ReadFile(dir.File("h.csv"));
  EXPECT_EQ(csv.rfind("epoch,step,train_loss", 0), 0u) << csv;
  EXPECT_NE(csv.find("valid_accuracy"), std::string::npos);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3);
  EXPECT_NE(testing::ReadFile(dir.File("h.json")).find("\"valid\": {"), std::string::npos);
}

}  // namespace
}  // namespace escala::train

namespace escala::train {
namespace {

// Streamed minibatches (a shuffle buffer over chunks) train the MLP as well as the in-memory
// global shuffle, within noise; with a buffer the size of a chunk, and on two ranks.
TEST(TrainerStreamed, MinibatchEpochsFromChunksMatchInMemoryAccuracy) {
  const auto train = testing::MakeSynthetic(4000, 6, 2, 21, 0.3f);
  const auto test = testing::MakeSynthetic(2000, 6, 2, 21, 0.3f);
  TrainOptions o = QuietOptions();
  o.optimizer.name = "adam";
  o.optimizer.lr = 0.01f;
  o.epochs = 6;
  o.batch_size = 64;
  auto self = MakeSelfCommunicator();
  const DataShard whole{train.x.view(), train.y, {}};
  const DataShard held{test.x.view(), test.y, {}};
  auto in_memory = MakeMlp(6);
  const auto r = Trainer(*in_memory, o, *self).Fit(whole, &held);
  for (const std::int64_t buffer : {std::int64_t{100}, std::int64_t{65536}}) {
    auto streamed = MakeMlp(6);
    ShardChunks chunks(whole, 250);
    const auto rs =
        Trainer(*streamed, o, *self).FitStreamed(chunks, 4000, &held, {.shuffle_rows = buffer});
    EXPECT_EQ(rs.history.size(), 6u);
    EXPECT_EQ(rs.steps, 6u * 63u);  // ceil(4000 / 64) a epoch
    EXPECT_NEAR(rs.valid.at("accuracy"), r.valid.at("accuracy"), 0.03) << buffer;
    EXPECT_LT(rs.history.back().train_loss, rs.history.front().train_loss);
  }
  std::vector<double> accuracy(2);
  RunOnThreadRanks(2, [&](Communicator& comm) {
    const std::int64_t b = comm.rank() == 0 ? 0 : 1500, n = comm.rank() == 0 ? 1500 : 2500;
    const DataShard part{train.x.view().Rows(b, n),
                         std::span<const float>(train.y).subspan(static_cast<std::size_t>(b),
                                                                 static_cast<std::size_t>(n)),
                         {}};
    ShardChunks chunks(part, 300);
    auto model = MakeMlp(6);
    const auto rs = Trainer(*model, o, comm).FitStreamed(chunks, n, &held);
    // Rank 0's 1500 rows at 32 a batch end first: the epoch is rank 1's 2500 / 32 = 79 steps.
    EXPECT_EQ(rs.steps, 6u * 79u);
    accuracy[static_cast<std::size_t>(comm.rank())] = rs.valid.at("accuracy");
  });
  EXPECT_EQ(accuracy[0], accuracy[1]);
  EXPECT_NEAR(accuracy[0], r.valid.at("accuracy"), 0.03);
}

// The same seed reads the same batches: two runs give the same parameters, and a failure in the
// source reaches the caller.
TEST(TrainerStreamed, SeededAndErrorsSurface) {
  const auto train = testing::MakeSynthetic(1000, 4, 2, 5);
  TrainOptions o = QuietOptions();
  o.optimizer.name = "adam";
  o.epochs = 2;
  o.batch_size = 32;
  auto self = MakeSelfCommunicator();
  const DataShard whole{train.x.view(), train.y, {}};
  auto a = MakeMlp(4), b = MakeMlp(4);
  ShardChunks ca(whole, 128), cb(whole, 128);
  Trainer(*a, o, *self).FitStreamed(ca, 1000, nullptr, {.shuffle_rows = 200});
  Trainer(*b, o, *self).FitStreamed(cb, 1000, nullptr, {.shuffle_rows = 200});
  ASSERT_EQ(a->parameters().size(), b->parameters().size());
  for (std::size_t i = 0; i < a->parameters().size(); ++i) {
    ASSERT_EQ(a->parameters()[i], b->parameters()[i]) << i;
  }
  class Failing final : public ChunkSource {
   public:
    std::int64_t cols() const override { return 4; }
    void ForEachChunk(const std::function<void(const DataShard&)>&) override {
      Throw(ErrorCode::kDataLoss, "disk went away");
    }
  } failing;
  auto c = MakeMlp(4);
  try {
    Trainer(*c, o, *self).FitStreamed(failing, 1000, nullptr);
    FAIL() << "trained";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDataLoss);
  }
}

}  // namespace
}  // namespace escala::train
