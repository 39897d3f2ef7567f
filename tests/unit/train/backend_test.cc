// The trainer's backend seam (escala/train/backend.h), tested without a GPU: a reference backend
// that runs each step on the CPU exactly as the built-in loop does with one thread and one
// all-reduce per step must give bit-identical models, histories, checkpoints and errors.
#include "escala/train/backend.h"

#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/core/thread_communicator.h"
#include "escala/models/factory.h"
#include "escala/models/linear.h"
#include "escala/train/trainer.h"
#include "test_util/faulty_communicator.h"
#include "test_util/synthetic.h"
#include "test_util/temp_dir.h"

namespace escala::train {
namespace {

using testing::MakeSynthetic;

class ReferenceBackend final : public TrainBackend {
 public:
  explicit ReferenceBackend(int* syncs) : syncs_(syncs) {}

  std::string Describe() const override { return "reference (cpu, one thread)"; }

  void Start(const BackendSetup& s) override {
    setup_ = s;
    model_ = s.model->CloneTrainable();
    ws_ = model_->NewWorkspace();
    const std::size_t np = model_->parameters().size();
    optimizer_ = MakeOptimizer(s.optimizer, np, model_->penalty_mask());
    if (!s.optimizer_state.empty()) optimizer_->state() = s.optimizer_state;
    optimizer_->set_steps(s.optimizer_steps);
    grad_.assign(np, 0.0f);
    reduced_.assign(np + 1, 0.0f);
  }

  double Step(const BackendBatch& b) override {
    const std::int64_t d = model_->num_features();
    const auto m = static_cast<std::int64_t>(b.rows.size());
    EXPECT_LE(m, setup_.max_batch_rows);
    // The rows the trainer announced as next are the rows it passes now.
    if (!expected_next_.empty()) {
      EXPECT_TRUE(std::ranges::equal(expected_next_, b.rows));
    }
    expected_next_.assign(b.next_rows.begin(), b.next_rows.end());
    std::fill(grad_.begin(), grad_.end(), 0.0f);
    double loss = 0;
    if (m > 0) {
      x_.Resize(m, d);
      y_.clear();
      ids_.clear();
      for (std::int64_t r = 0; r < m; ++r) {
        const std::uint32_t li = b.rows[static_cast<std::size_t>(r)];
        std::copy_n(setup_.features.row(li), d, x_.row(r));
        y_.push_back(setup_.labels[li]);
        ids_.push_back(setup_.row_ids[li]);
      }
      models::BatchContext ctx;
      ctx.training = true;
      ctx.seed = b.seed;
      ctx.step = b.step;
      ctx.row_ids = ids_;
      loss = model_->AccumulateGradient(std::as_const(x_).view(), y_, grad_, ctx, *ws_);
    }
    reduced_[0] = static_cast<float>(loss);
    std::copy(grad_.begin(), grad_.end(), reduced_.begin() + 1);
    CollectiveOptions co;
    co.tag = b.step;
    setup_.comm->AllReduce(std::span<float>(reduced_), ReduceOp::kSum, co);
    if (!std::isfinite(reduced_[0])) return reduced_[0];
    std::span<float> g(reduced_.data() + 1, grad_.size());
    const float inv = 1.0f / static_cast<float>(b.global_count);
    for (float& v : g) v *= inv;
    ClipGradNorm(g, setup_.clip_norm);
    optimizer_->Step(model_->parameters(), g, b.lr);
    return reduced_[0];
  }

  std::uint64_t Sync(std::span<float> params,
                     std::vector<std::vector<float>>* optimizer_state) override {
    if (syncs_ != nullptr) ++*syncs_;
    std::copy(model_->parameters().begin(), model_->parameters().end(), params.begin());
    if (optimizer_state != nullptr) *optimizer_state = optimizer_->state();
    return optimizer_->steps();
  }

 private:
  int* syncs_;
  BackendSetup setup_;
  std::unique_ptr<models::GradientModel> model_;
  std::unique_ptr<models::Workspace> ws_;
  std::unique_ptr<Optimizer> optimizer_;
  MatrixF x_;
  std::vector<float> y_;
  std::vector<std::uint64_t> ids_;
  std::vector<float> grad_, reduced_;
  std::vector<std::uint32_t> expected_next_;
};

BackendFactory Reference(int* syncs = nullptr) {
  return [syncs] { return std::make_unique<ReferenceBackend>(syncs); };
}

std::unique_ptr<models::GradientModel> MakeMlp(std::int64_t d, float dropout) {
  models::ModelSpec spec;
  spec.kind = "mlp";
  spec.task = models::Task::kBinary;
  spec.num_features = d;
  spec.hidden = {12, 7};
  spec.dropout = dropout;
  return models::MakeModel(spec);
}

TrainOptions Options() {
  TrainOptions o;
  o.progress = false;
  o.threads = 1;
  o.bucket_bytes = 0;
  o.epochs = 3;
  o.batch_size = 50;  // 700 rows: a partial last batch
  o.optimizer.name = "adam";
  o.optimizer.lr = 0.02f;
  o.optimizer.l2 = 1e-3f;
  o.optimizer.l1 = 1e-4f;
  o.clip_norm = 0.5;
  o.schedule.name = "cosine";
  o.schedule.warmup_steps = 5;
  return o;
}

void ExpectSameParameters(const models::GradientModel& a, const models::GradientModel& b) {
  const auto pa = a.parameters();
  const auto pb = b.parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) ASSERT_EQ(pa[i], pb[i]) << "parameter " << i;
}

TEST(TrainerBackend, ReferenceBackendMatchesTheCpuLoopBitForBit) {
  const auto train = MakeSynthetic(700, 6, 2, 11);
  const auto valid = MakeSynthetic(300, 6, 2, 12);
  DataShard ts{train.x.view(), train.y, {}};
  DataShard vs{valid.x.view(), valid.y, {}};
  auto cpu = MakeMlp(6, 0.2f);
  auto comm = MakeSelfCommunicator();
  const auto rc = Trainer(*cpu, Options(), *comm).Fit(ts, &vs);

  int syncs = 0;
  TrainOptions o = Options();
  o.backend = Reference(&syncs);
  auto seam = MakeMlp(6, 0.2f);
  const auto rb = Trainer(*seam, o, *comm).Fit(ts, &vs);
  ExpectSameParameters(*cpu, *seam);
  ASSERT_EQ(rc.history.size(), rb.history.size());
  for (std::size_t e = 0; e < rc.history.size(); ++e) {
    EXPECT_EQ(rc.history[e].train_loss, rb.history[e].train_loss) << e;
    EXPECT_EQ(rc.history[e].learning_rate, rb.history[e].learning_rate) << e;
    EXPECT_EQ(rc.history[e].valid, rb.history[e].valid) << e;
  }
  EXPECT_EQ(rc.steps, rb.steps);
  EXPECT_EQ(syncs, 4);  // once per epoch, before validation, and at the end
}

TEST(TrainerBackend, TwoThreadRanksThroughTheSeamMatchTheCpuLoop) {
  const auto data = MakeSynthetic(700, 6, 2, 13);
  std::vector<std::unique_ptr<models::GradientModel>> cpu(2), seam(2);
  for (bool use_backend : {false, true}) {
    RunOnThreadRanks(2, [&](Communicator& comm) {
      const std::int64_t begin = comm.rank() == 0 ? 0 : 333;
      const std::int64_t end = comm.rank() == 0 ? 333 : 700;
      DataShard shard{data.x.view().Rows(begin, end - begin),
                      std::span<const float>(data.y).subspan(static_cast<std::size_t>(begin),
                                                             static_cast<std::size_t>(end - begin)),
                      {}};
      TrainOptions o = Options();
      if (use_backend) o.backend = Reference();
      auto m = MakeMlp(6, 0.2f);
      Trainer(*m, o, comm).Fit(shard, nullptr);
      (use_backend ? seam : cpu)[static_cast<std::size_t>(comm.rank())] = std::move(m);
    });
  }
  ExpectSameParameters(*cpu[0], *seam[0]);
  ExpectSameParameters(*cpu[1], *seam[1]);
  ExpectSameParameters(*seam[0], *seam[1]);
}

TEST(TrainerBackend, CheckpointsHoldTheBackendStateAndResumeExactly) {
  const auto data = MakeSynthetic(600, 5, 2, 6);
  testing::TempDir dir;
  TrainOptions o = Options();
  o.backend = Reference();
  o.batch_size = 32;
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
  // The backend's all-reduce number 30 fails (a lost peer), mid-epoch 2.
  {
    auto self = MakeSelfCommunicator();
    testing::FaultyCommunicator faulty(*self, 30);
    auto m = MakeMlp(5, 0.1f);
    EXPECT_THROW(Trainer(*m, o, faulty).Fit(shard, nullptr), Error);
  }
  ASSERT_TRUE(std::filesystem::exists(dir.File("checkpoint.ckpt")));
  testing::TempDir copy;
  std::filesystem::copy_file(dir.File("checkpoint.ckpt"), copy.File("checkpoint.ckpt"));
  // Resuming through the backend continues the same trajectory...
  auto resumed = MakeMlp(5, 0.1f);
  o.checkpoint.resume = true;
  auto comm = MakeSelfCommunicator();
  const auto r = Trainer(*resumed, o, *comm).Fit(shard, nullptr);
  EXPECT_TRUE(r.resumed);
  ExpectSameParameters(*uninterrupted, *resumed);
  // ...and so does the CPU loop from the same checkpoint: the backend's parameters and optimizer
  // moments were stored in the CPU optimizer's layout.
  TrainOptions cpu = o;
  cpu.backend = nullptr;
  cpu.checkpoint.dir = copy.path().string();
  auto on_cpu = MakeMlp(5, 0.1f);
  EXPECT_TRUE(Trainer(*on_cpu, cpu, *comm).Fit(shard, nullptr).resumed);
  ExpectSameParameters(*uninterrupted, *on_cpu);
}

TEST(TrainerBackend, DivergenceLeavesTheLastGoodParameters) {
  auto data = MakeSynthetic(256, 4, 0, 2);
  for (float& v : data.y) v *= 1e3f;
  models::LinearModel model(models::Task::kRegression, 4);
  TrainOptions o = Options();
  o.optimizer.name = "sgd";
  o.optimizer.lr = 10.0f;
  o.optimizer.l1 = 0;
  o.optimizer.l2 = 0;
  o.clip_norm = 0;
  o.schedule.name = "constant";
  o.schedule.warmup_steps = 0;
  o.epochs = 50;
  o.batch_size = 256;
  o.backend = Reference();
  auto comm = MakeSelfCommunicator();
  try {
    Trainer(model, o, *comm).Fit({data.x.view(), data.y, {}}, nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kAborted);
    EXPECT_NE(std::string(e.what()).find("diverged"), std::string::npos) << e.what();
  }
  // The host copy was synced at the failing step: the parameters before it, all finite (the CPU
  // loop would leave the same).
  bool moved = false;
  for (float p : model.parameters()) {
    EXPECT_TRUE(std::isfinite(p));
    moved |= p != 0.0f;  // the model starts at zero: these are the backend's, synced back
  }
  EXPECT_TRUE(moved);
}

TEST(TrainerBackend, LbfgsRefusesABackend) {
  const auto data = MakeSynthetic(100, 3, 2, 1);
  models::LinearModel model(models::Task::kBinary, 3);
  TrainOptions o = Options();
  o.optimizer.name = "lbfgs";
  o.backend = Reference();
  auto comm = MakeSelfCommunicator();
  try {
    Trainer(model, o, *comm).Fit({data.x.view(), data.y, {}}, nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("CPU only"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace escala::train
