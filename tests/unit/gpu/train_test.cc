// Training on the GPU against the CPU: model gradients, whole training runs (accuracy within
// 0.5%), checkpoints and resume, bundles that serve on the CPU, the NCCL path with world size 1
// and the host-staged all-reduce. Skipped without a CUDA device.
//
// Bounds: a model's gradient (forward, loss, backward: a composition of FP32 GEMMs and
// transcendental functions) within 1e-4 of its largest entry, its summed loss within 1e-5
// relative, its logits within 1e-5 of the largest logit; trained models within 0.5% accuracy of
// the CPU's (TF32 included).
#include "escala/gpu/train.h"

#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>

#include "escala/core/thread_communicator.h"
#include "escala/gpu/nccl.h"
#include "escala/io/bundle.h"
#include "escala/models/factory.h"
#include "escala/train/trainer.h"
#include "gpu_test_util.h"
#include "test_util/bundles.h"
#include "test_util/faulty_communicator.h"
#include "test_util/synthetic.h"
#include "test_util/temp_dir.h"
#include "train/device_model.h"

namespace escala::gpu {
namespace {

using namespace testing;
using escala::testing::MakeSynthetic;

std::unique_ptr<models::GradientModel> Make(const std::string& kind, models::Task task,
                                            std::int64_t d, int classes,
                                            models::Activation act = models::Activation::kReLU,
                                            float dropout = 0.0f,
                                            std::vector<std::int64_t> hidden = {24, 16}) {
  models::ModelSpec spec;
  spec.kind = kind;
  spec.task = task;
  spec.num_features = d;
  spec.num_classes = classes;
  spec.hidden = std::move(hidden);
  spec.activation = act;
  spec.dropout = dropout;
  return models::MakeModel(spec);
}

double MaxAbs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

void CompareGradient(models::GradientModel& model, const std::string& what) {
  const std::int64_t d = model.num_features();
  const int rows = 67;
  model.Initialize(17);
  // Linear models start at zero: give them random weights too.
  if (model.kind() != "mlp") {
    const auto w = Random(model.parameters().size(), 18, -0.5f, 0.5f);
    std::copy(w.begin(), w.end(), model.parameters().begin());
  }
  const auto x = Random(static_cast<std::size_t>(rows) * d, 19, -2.0f, 2.0f);
  std::vector<float> labels(rows);
  std::vector<std::uint64_t> ids(rows);
  std::mt19937_64 rng(20);
  for (int i = 0; i < rows; ++i) {
    const auto iu = static_cast<std::size_t>(i);
    labels[iu] = model.task() == models::Task::kRegression ? static_cast<float>(rng() % 100) / 10.0f
                 : model.task() == models::Task::kBinary
                     ? static_cast<float>(rng() % 2)
                     : static_cast<float>(rng() % static_cast<std::uint64_t>(model.num_outputs()));
    ids[iu] = rng() % 100000;
  }
  // CPU reference.
  std::vector<float> cpu_grad(model.parameters().size(), 0.0f);
  models::BatchContext ctx;
  ctx.training = true;
  ctx.seed = 5;
  ctx.step = 3;
  ctx.row_ids = ids;
  auto ws = model.NewWorkspace();
  const double cpu_loss =
      model.AccumulateGradient(ConstMatrixViewF(x.data(), rows, d), labels, cpu_grad, ctx, *ws);
  // GPU.
  internal::Stream stream;
  internal::DeviceModel dm(model, 0, rows, stream.get(), false);
  const std::vector<float> params(model.parameters().begin(), model.parameters().end());
  auto dp = Upload(params);
  auto dx = Upload(x);
  auto dy = Upload(labels);
  auto dids = Upload(ids);
  auto dgrad = Poisoned<float>(params.size());
  auto dloss = Poisoned<double>(1);
  auto dloss_f = Poisoned<float>(1);
  std::vector<std::size_t> order;
  dm.Gradient(dp.data(), dx.data(), dy.data(), dids.data(), rows, 5, 3, dgrad.data(), dloss.data(),
              dloss_f.data(), [&](std::size_t l) { order.push_back(l); });
  stream.Synchronize();
  const auto grad = Download(dgrad, params.size());
  const auto want = ToDouble(cpu_grad);
  const double scale = MaxAbs(want);
  double worst = 0;
  for (std::size_t i = 0; i < grad.size(); ++i) {
    ASSERT_TRUE(std::isfinite(grad[i])) << what << ": unwritten gradient " << i;
    worst = std::max(worst, std::fabs(grad[i] - want[i]) / scale);
  }
  EXPECT_LE(worst, 1e-4) << what;
  const double loss = Download(dloss, 1)[0];
  EXPECT_LE(std::fabs(loss - cpu_loss) / std::fabs(cpu_loss), 1e-5) << what;
  // Layers are reported last first, each once.
  std::vector<std::size_t> expected(dm.layers().size());
  for (std::size_t l = 0; l < expected.size(); ++l) expected[l] = expected.size() - 1 - l;
  EXPECT_EQ(order, expected) << what;

  // Inference logits.
  MatrixF cpu_logits(rows, model.num_outputs());
  model.Logits(ConstMatrixViewF(x.data(), rows, d), cpu_logits.view(), *ws);
  const float* dlog = dm.Logits(dp.data(), dx.data(), rows);
  stream.Synchronize();
  std::vector<float> logits(static_cast<std::size_t>(rows * model.num_outputs()));
  ASSERT_EQ(cudaMemcpy(logits.data(), dlog, logits.size() * sizeof(float), cudaMemcpyDeviceToHost),
            cudaSuccess);
  std::vector<double> want_logits(cpu_logits.data(), cpu_logits.data() + logits.size());
  const double lscale = std::max(MaxAbs(want_logits), 1.0);
  double lworst = 0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    lworst = std::max(lworst, std::fabs(logits[i] - want_logits[i]) / lscale);
  }
  EXPECT_LE(lworst, 1e-5) << what;
}

TEST(GpuTrain, ModelGradientsMatchTheCpu) {
  ESCALA_REQUIRE_GPU();
  using models::Activation;
  using models::Task;
  {
    auto m = Make("logistic", Task::kBinary, 13, 2);
    CompareGradient(*m, "logistic");
  }
  {
    auto m = Make("softmax", Task::kMulticlass, 13, 5);
    CompareGradient(*m, "softmax");
  }
  {
    auto m = Make("linear", Task::kRegression, 13, 0);
    CompareGradient(*m, "linear");
  }
  for (auto act : {Activation::kReLU, Activation::kTanh, Activation::kSigmoid, Activation::kGELU}) {
    for (float dropout : {0.0f, 0.3f}) {
      auto m = Make("mlp", Task::kBinary, 13, 2, act, dropout);
      CompareGradient(*m, fmt::format("mlp {} dropout {}", ActivationName(act), dropout));
    }
  }
  {
    auto m = Make("mlp", Task::kMulticlass, 13, 6, Activation::kReLU, 0.2f, {31});
    CompareGradient(*m, "mlp multiclass");
  }
  {
    auto m = Make("mlp", Task::kRegression, 13, 0, Activation::kTanh, 0.0f, {9, 8, 7});
    CompareGradient(*m, "mlp regression");
  }
}

train::TrainOptions Options() {
  train::TrainOptions o;
  o.progress = false;
  o.epochs = 5;
  o.batch_size = 128;
  o.optimizer.name = "adam";
  o.optimizer.lr = 0.01f;
  o.clip_norm = 1.0;
  return o;
}

struct Outcome {
  train::TrainResult result;
  std::unique_ptr<models::GradientModel> model;
};

Outcome Fit(std::unique_ptr<models::GradientModel> model, train::TrainOptions o,
            const escala::testing::SyntheticData& tr, const escala::testing::SyntheticData& va,
            Communicator* comm = nullptr) {
  auto self = MakeSelfCommunicator();
  train::DataShard vs{va.x.view(), va.y, {}};
  Outcome out;
  out.result =
      train::Trainer(*model, o, comm != nullptr ? *comm : *self).Fit({tr.x.view(), tr.y, {}}, &vs);
  out.model = std::move(model);
  return out;
}

TEST(GpuTrain, MlpTrainsLikeTheCpu) {
  ESCALA_REQUIRE_GPU();
  const auto tr = MakeSynthetic(6000, 16, 2, 31);
  const auto va = MakeSynthetic(3000, 16, 2, 31);
  auto mlp = [] {
    return Make("mlp", models::Task::kBinary, 16, 2, models::Activation::kReLU, 0.1f, {64, 32});
  };
  const auto cpu = Fit(mlp(), Options(), tr, va);
  for (auto placement : {DataPlacement::kResident, DataPlacement::kStreamed}) {
    for (auto precision : {Precision::kFp32, Precision::kTf32}) {
      train::TrainOptions o = Options();
      o.backend = CudaBackend({.device = 0, .precision = precision, .data = placement});
      const auto gpu = Fit(mlp(), o, tr, va);
      const std::string what =
          fmt::format("{} {}", placement == DataPlacement::kResident ? "resident" : "streamed",
                      precision == Precision::kTf32 ? "tf32" : "fp32");
      EXPECT_NEAR(gpu.result.valid.at("accuracy"), cpu.result.valid.at("accuracy"), 0.005) << what;
      EXPECT_NEAR(gpu.result.valid.at("logloss"), cpu.result.valid.at("logloss"), 0.01) << what;
      ASSERT_EQ(gpu.result.history.size(), cpu.result.history.size());
      EXPECT_NEAR(gpu.result.history.back().train_loss, cpu.result.history.back().train_loss,
                  0.01 * cpu.result.history.back().train_loss)
          << what;
    }
  }
}

TEST(GpuTrain, LinearModelsTrainLikeTheCpu) {
  ESCALA_REQUIRE_GPU();
  {
    const auto tr = MakeSynthetic(4000, 10, 4, 41, 0.3f);
    const auto va = MakeSynthetic(2000, 10, 4, 41, 0.3f);
    train::TrainOptions o = Options();
    const auto cpu = Fit(Make("softmax", models::Task::kMulticlass, 10, 4), o, tr, va);
    o.backend = CudaBackend({});
    const auto gpu = Fit(Make("softmax", models::Task::kMulticlass, 10, 4), o, tr, va);
    EXPECT_NEAR(gpu.result.valid.at("accuracy"), cpu.result.valid.at("accuracy"), 0.005);
  }
  {
    const auto tr = MakeSynthetic(4000, 10, 0, 42);
    const auto va = MakeSynthetic(2000, 10, 0, 42);
    train::TrainOptions o = Options();
    o.optimizer.name = "momentum";
    o.optimizer.l2 = 1e-3f;
    o.optimizer.l1 = 1e-4f;
    const auto cpu = Fit(Make("linear", models::Task::kRegression, 10, 0), o, tr, va);
    o.backend = CudaBackend({});
    const auto gpu = Fit(Make("linear", models::Task::kRegression, 10, 0), o, tr, va);
    EXPECT_NEAR(gpu.result.valid.at("rmse"), cpu.result.valid.at("rmse"),
                0.005 * cpu.result.valid.at("rmse"));
  }
  {
    const auto tr = MakeSynthetic(4000, 10, 2, 43);
    const auto va = MakeSynthetic(2000, 10, 2, 43);
    train::TrainOptions o = Options();
    o.optimizer.name = "adamw";
    o.optimizer.weight_decay = 0.01f;
    const auto cpu = Fit(Make("logistic", models::Task::kBinary, 10, 2), o, tr, va);
    o.backend = CudaBackend({});
    const auto gpu = Fit(Make("logistic", models::Task::kBinary, 10, 2), o, tr, va);
    EXPECT_NEAR(gpu.result.valid.at("accuracy"), cpu.result.valid.at("accuracy"), 0.005);
  }
}

TEST(GpuTrain, ResumeOnTheGpuGivesTheSameWeights) {
  ESCALA_REQUIRE_GPU();
  const auto tr = MakeSynthetic(1500, 8, 2, 51);
  const auto va = MakeSynthetic(500, 8, 2, 51);
  escala::testing::TempDir dir;
  train::TrainOptions o = Options();
  o.epochs = 3;
  o.batch_size = 64;
  o.backend = CudaBackend({});
  auto mlp = [] {
    return Make("mlp", models::Task::kBinary, 8, 2, models::Activation::kGELU, 0.2f);
  };
  // Uninterrupted, counting the collectives it issues.
  auto self = MakeSelfCommunicator();
  escala::testing::FaultyCommunicator counter(*self, -1);
  const auto whole = Fit(mlp(), o, tr, va, &counter);
  // The same run with checkpoints, failing at its last collective (the final validation): the
  // last checkpoint is from the middle of epoch 3.
  o.checkpoint.dir = dir.path().string();
  o.checkpoint.every_steps = 10;
  {
    escala::testing::FaultyCommunicator faulty(*self, counter.calls() - 1);
    EXPECT_THROW(Fit(mlp(), o, tr, va, &faulty), Error);
  }
  ASSERT_TRUE(std::filesystem::exists(dir.File("checkpoint.ckpt")));
  o.checkpoint.resume = true;
  const auto resumed = Fit(mlp(), o, tr, va);
  EXPECT_TRUE(resumed.result.resumed);
  const auto a = whole.model->parameters();
  const auto b = resumed.model->parameters();
  ASSERT_EQ(a.size(), b.size());
  // The GPU path is deterministic (cuBLAS on one device, fixed-order reductions): bit for bit.
  for (std::size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << i;
}

TEST(GpuTrain, ABundleTrainedOnTheGpuServesOnTheCpu) {
  ESCALA_REQUIRE_GPU();
  const auto tr = MakeSynthetic(2000, 8, 2, 61);
  train::TrainOptions o = Options();
  o.backend = CudaBackend({});
  auto model = Make("mlp", models::Task::kBinary, 8, 2);
  const auto trained = Fit(std::move(model), o, tr, tr);
  // A fitted 8-feature bundle, its model replaced by the GPU-trained one.
  auto bundle = escala::testing::NumericLogisticBundle(8);
  bundle->model = trained.model->Clone();
  escala::testing::TempDir dir;
  bundle->Save(dir.File("gpu.bundle"));
  auto loaded =
      std::make_shared<const io::ModelBundle>(io::ModelBundle::Load(dir.File("gpu.bundle")));
  io::Predictor predictor(loaded);
  MatrixF served(tr.x.rows(), 1), direct(tr.x.rows(), 1);
  io::PredictScratch scratch;
  predictor.PredictFeatures(tr.x.view(), served.view(), scratch);
  auto ws = trained.model->NewWorkspace();
  trained.model->Predict(tr.x.view(), direct.view(), *ws);
  for (std::int64_t i = 0; i < tr.x.rows(); ++i) ASSERT_EQ(served(i, 0), direct(i, 0)) << i;
}

TEST(GpuTrain, NcclWithWorldSizeOne) {
  ESCALA_REQUIRE_GPU();
  std::unique_ptr<Communicator> nccl;
  try {
    nccl = MakeNcclCommunicator(MakeSelfCommunicator(), {}, {});
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kUnavailable) GTEST_SKIP() << e.what();
    throw;
  }
  EXPECT_EQ(nccl->backend(), "nccl");
  // A device all-reduce of one rank is the identity; kAvg divides by one.
  const auto v = Random(4099, 71);
  auto dv = Upload(v);
  internal::Stream stream;
  CollectiveOptions co;
  co.location = MemoryLocation::kDevice;
  co.stream = stream.get();
  nccl->AllReduceAsync(dv.data(), v.size(), DType::kFloat32, ReduceOp::kSum, co)->Wait();
  nccl->AllReduceAsync(dv.data(), v.size(), DType::kFloat32, ReduceOp::kAvg, co)->Wait();
  stream.Synchronize();
  EXPECT_EQ(Download(dv, v.size()), v);
  // Host memory goes to the host communicator.
  EXPECT_EQ(nccl->AllReduceScalar<std::int64_t>(5, ReduceOp::kSum), 5);
  // Training through NCCL (bucketed device all-reduce) equals training without communication.
  const auto tr = MakeSynthetic(1200, 8, 2, 81);
  train::TrainOptions o = Options();
  o.epochs = 2;
  o.bucket_bytes = 256;  // one bucket per layer
  o.backend = CudaBackend({});
  const auto plain = Fit(Make("mlp", models::Task::kBinary, 8, 2), o, tr, tr);
  const auto via_nccl = Fit(Make("mlp", models::Task::kBinary, 8, 2), o, tr, tr, nccl.get());
  const auto a = plain.model->parameters();
  const auto b = via_nccl.model->parameters();
  for (std::size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << i;
}

TEST(GpuTrain, ThreadRanksSumThroughHostMemory) {
  ESCALA_REQUIRE_GPU();
  // Two ranks on one GPU with a host communicator: gradients are staged through pinned memory;
  // uneven shards give one rank empty batches now and then.
  const auto tr = MakeSynthetic(900, 6, 2, 91);
  train::TrainOptions o = Options();
  o.epochs = 2;
  o.batch_size = 32;
  o.backend = CudaBackend({});
  const auto one = Fit(Make("mlp", models::Task::kBinary, 6, 2), o, tr, tr);
  std::vector<std::unique_ptr<models::GradientModel>> replicas(2);
  RunOnThreadRanks(2, [&](Communicator& comm) {
    const std::int64_t begin = comm.rank() == 0 ? 0 : 40;
    const std::int64_t end = comm.rank() == 0 ? 40 : 900;
    auto m = Make("mlp", models::Task::kBinary, 6, 2);
    train::DataShard shard{
        tr.x.view().Rows(begin, end - begin),
        std::span<const float>(tr.y).subspan(static_cast<std::size_t>(begin),
                                             static_cast<std::size_t>(end - begin)),
        {}};
    train::Trainer(*m, o, comm).Fit(shard, nullptr);
    replicas[static_cast<std::size_t>(comm.rank())] = std::move(m);
  });
  const auto a = one.model->parameters();
  for (const auto& r : replicas) {
    const auto b = r->parameters();
    double worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
      worst = std::max(worst, double(std::fabs(a[i] - b[i])));
    EXPECT_LT(worst, 1e-3);
  }
  EXPECT_TRUE(std::ranges::equal(replicas[0]->parameters(), replicas[1]->parameters()));
}

}  // namespace
}  // namespace escala::gpu
