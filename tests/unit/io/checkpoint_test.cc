// The checkpoint file on its own: everything round-trips; damage is named.
#include "escala/io/checkpoint.h"

#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/core/file_util.h"
#include "escala/models/factory.h"
#include "test_util/temp_dir.h"

namespace escala::io {
namespace {

TrainingCheckpoint Sample() {
  models::ModelSpec spec;
  spec.kind = "logistic";
  spec.num_features = 3;
  auto model = models::MakeModel(spec);
  model->parameters()[1] = 0.25f;
  TrainingCheckpoint c;
  c.config_fingerprint = "model=logistic;seed=1";
  c.model = models::SerializeModel(*model);
  c.optimizer_state = {{1, 2, 3, 4}, {5, 6, 7, 8}};
  c.optimizer_steps = 17;
  c.epoch = 2;
  c.next_batch = 5;
  c.global_step = 21;
  c.epoch_loss_sum = 3.5;
  c.epoch_loss_count = 40;
  c.best_metric = 0.25;
  c.best_epoch = 2;
  c.epochs_without_improvement = 1;
  c.best_parameters = {0.5f, 0.25f, 0, 1};
  EpochRecord r;
  r.epoch = 1;
  r.train_loss = 0.7;
  r.valid["accuracy"] = 0.8;
  c.history = {r, r};
  c.world_size = 2;
  c.global_rows = 100;
  return c;
}

TEST(TrainingCheckpoint, EveryFieldRoundTrips) {
  testing::TempDir dir;
  const TrainingCheckpoint c = Sample();
  c.Save(dir.File("c.ckpt"));
  const TrainingCheckpoint back = TrainingCheckpoint::Load(dir.File("c.ckpt"));
  EXPECT_EQ(back.config_fingerprint, c.config_fingerprint);
  EXPECT_EQ(back.model, c.model);
  EXPECT_EQ(back.optimizer_state, c.optimizer_state);
  EXPECT_EQ(back.optimizer_steps, 17u);
  EXPECT_EQ(back.epoch, 2);
  EXPECT_EQ(back.next_batch, 5);
  EXPECT_EQ(back.global_step, 21u);
  EXPECT_EQ(back.epoch_loss_sum, 3.5);
  EXPECT_EQ(back.epoch_loss_count, 40);
  EXPECT_EQ(back.best_metric, 0.25);
  EXPECT_EQ(back.best_epoch, 2);
  EXPECT_EQ(back.epochs_without_improvement, 1);
  EXPECT_EQ(back.best_parameters, c.best_parameters);
  ASSERT_EQ(back.history.size(), 2u);
  EXPECT_EQ(back.history[1].valid.at("accuracy"), 0.8);
  EXPECT_EQ(back.world_size, 2);
  EXPECT_EQ(back.global_rows, 100);
}

TEST(TrainingCheckpoint, DamageIsDataLossNamingTheFile) {
  testing::TempDir dir;
  const std::string path = dir.File("c.ckpt");
  Sample().Save(path);
  std::string bytes = ReadFileToString(path);
  bytes[bytes.size() - 3] ^= 1;
  WriteFileAtomic(path, bytes);
  try {
    TrainingCheckpoint::Load(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDataLoss);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace escala::io
