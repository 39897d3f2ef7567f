#include "train/cpu_backend.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

#include "escala/core/error.h"
#include "escala/core/parallel.h"

namespace escala::train {

namespace {

using Clock = std::chrono::steady_clock;

// One thread's share of a batch, allocated once.
struct ThreadBuf {
  std::unique_ptr<models::Workspace> ws;
  MatrixF x;
  std::vector<float> y;
  std::vector<std::uint64_t> ids;
  std::vector<float> w;  // the rows' weights, when the setup has weights
  AlignedVector<float> grad;
  double loss = 0;
};

// A run of whole layers all-reduced together.
struct Bucket {
  std::size_t begin = 0, end = 0;  // parameter range
  int groups = 0;
};

// Buckets of about `bytes` from the last layer backwards (the order backward finishes them);
// group_bucket[g] is the bucket of group g.
std::vector<Bucket> MakeBuckets(const std::vector<std::pair<std::size_t, std::size_t>>& groups,
                                std::size_t bytes, std::vector<int>* group_bucket) {
  std::vector<Bucket> buckets;
  group_bucket->assign(groups.size(), 0);
  Bucket cur;
  cur.end = groups.back().second;
  for (std::size_t g = groups.size(); g-- > 0;) {
    cur.begin = groups[g].first;
    ++cur.groups;
    (*group_bucket)[g] = static_cast<int>(buckets.size());
    if ((cur.end - cur.begin) * sizeof(float) >= bytes || g == 0) {
      buckets.push_back(cur);
      cur = Bucket{};
      cur.end = groups[g].first;
    }
  }
  return buckets;
}

class CpuBackend final : public TrainBackend {
 public:
  CpuBackend(models::GradientModel& model, int threads)
      : model_(model), parts_(static_cast<std::size_t>(std::max(1, threads))) {}

  std::string Describe() const override { return fmt::format("cpu ({} threads)", parts_); }
  void Start(const BackendSetup& setup) override;
  double Step(const BackendBatch& batch) override;
  std::uint64_t Sync(std::span<float> params,
                     std::vector<std::vector<float>>* optimizer_state) override;
  double TakeCommSeconds() override { return std::exchange(comm_seconds_, 0.0); }

 private:
  void StartOptimizer(const BackendSetup& setup);
  void StartOverlap();
  void ResetOverlap();
  void ComputePartials(const BackendBatch& batch);
  void SumPartials();
  // Called by each thread as it finishes a layer's backward pass (overlap only).
  void GroupReady(std::size_t begin, std::size_t end);
  void LaunchReady(bool final_bucket);

  models::GradientModel& model_;
  const std::size_t parts_;
  BackendSetup setup_;
  std::size_t np_ = 0;
  std::unique_ptr<Optimizer> optimizer_;
  std::vector<ThreadBuf> tb_;
  // reduced_[0] holds the loss sum and reduced_[1 + i] gradient i, so that the bucket of the first
  // layer (the last to finish backward) carries the loss in the same all-reduce.
  AlignedVector<float> reduced_;
  double comm_seconds_ = 0;
  CollectiveOptions step_opts_;

  // Overlap of the backward pass with all-reduces (several ranks, several layers).
  bool overlap_ = false;
  std::vector<std::pair<std::size_t, std::size_t>> groups_;
  std::vector<Bucket> buckets_;
  std::vector<int> group_bucket_;
  std::unique_ptr<std::atomic<int>[]> group_left_, bucket_left_;
  std::vector<std::uint8_t> bucket_ready_;
  std::vector<std::shared_ptr<Work>> bucket_work_;
  std::mutex launch_mu_;
  std::size_t next_launch_ = 0;
  // Defined once: the hot loop must not allocate.
  models::GradientReadyFn ready_;
};

void CpuBackend::Start(const BackendSetup& setup) {
  ESCALA_CHECK(setup.model == &model_, kInternal, "the CPU backend trains the trainer's model");
  setup_ = setup;
  setup_.optimizer_state.clear();
  np_ = model_.parameters().size();
  StartOptimizer(setup);
  const std::int64_t d = model_.num_features();
  const std::int64_t max_part = setup.max_batch_rows / static_cast<std::int64_t>(parts_) + 1;
  tb_.resize(parts_);
  for (auto& t : tb_) {
    t.ws = model_.NewWorkspace();
    t.x.Resize(max_part, d);
    t.y.reserve(static_cast<std::size_t>(max_part));
    t.ids.reserve(static_cast<std::size_t>(max_part));
    if (!setup.weights.empty()) t.w.reserve(static_cast<std::size_t>(max_part));
    t.grad.assign(np_, 0.0f);
  }
  reduced_.assign(np_ + 1, 0.0f);
  groups_ = model_.ParameterGroups();
  overlap_ = setup.comm->size() > 1 && setup.bucket_bytes > 0 && groups_.size() > 1;
  if (overlap_) StartOverlap();
}

void CpuBackend::StartOptimizer(const BackendSetup& setup) {
  optimizer_ = MakeOptimizer(setup.optimizer, np_, model_.penalty_mask());
  auto& os = optimizer_->state();
  if (!setup.optimizer_state.empty()) {
    ESCALA_CHECK(setup.optimizer_state.size() == os.size(), kFailedPrecondition,
                 "the optimizer state to continue from has {} moment(s); {} keeps {}",
                 setup.optimizer_state.size(), setup.optimizer.name, os.size());
    for (std::size_t i = 0; i < os.size(); ++i) {
      ESCALA_CHECK(setup.optimizer_state[i].size() == np_, kFailedPrecondition,
                   "the optimizer state to continue from has {} values per moment, the model {} "
                   "parameters",
                   setup.optimizer_state[i].size(), np_);
      std::copy(setup.optimizer_state[i].begin(), setup.optimizer_state[i].end(), os[i].begin());
    }
  }
  optimizer_->set_steps(setup.optimizer_steps);
}

void CpuBackend::StartOverlap() {
  buckets_ = MakeBuckets(groups_, setup_.bucket_bytes, &group_bucket_);
  group_left_ = std::make_unique<std::atomic<int>[]>(groups_.size());
  bucket_left_ = std::make_unique<std::atomic<int>[]>(buckets_.size());
  bucket_ready_.assign(buckets_.size(), 0);
  bucket_work_.assign(buckets_.size(), nullptr);
  ready_ = [this](std::size_t begin, std::size_t end) { GroupReady(begin, end); };
}

void CpuBackend::ResetOverlap() {
  for (std::size_t g = 0; g < groups_.size(); ++g) group_left_[g] = static_cast<int>(parts_);
  for (std::size_t k = 0; k < buckets_.size(); ++k) {
    bucket_left_[k] = buckets_[k].groups;
    bucket_ready_[k] = 0;
    bucket_work_[k].reset();
  }
  next_launch_ = 0;
}

// Launches, in bucket order (every rank must issue collectives in the same order), the buckets
// whose layers are all summed; the first layer's bucket waits for the loss.
void CpuBackend::LaunchReady(bool final_bucket) {
  std::lock_guard lock(launch_mu_);
  while (next_launch_ < buckets_.size() && bucket_ready_[next_launch_] &&
         (next_launch_ + 1 < buckets_.size() || final_bucket)) {
    const Bucket& bk = buckets_[next_launch_];
    const bool first_layer = next_launch_ + 1 == buckets_.size();
    float* base = reduced_.data() + (first_layer ? 0 : 1 + bk.begin);
    const std::size_t count = (first_layer ? 1 : 0) + bk.end - bk.begin;
    bucket_work_[next_launch_] =
        setup_.comm->AllReduceAsync(base, count, DType::kFloat32, ReduceOp::kSum, step_opts_);
    ++next_launch_;
  }
}

void CpuBackend::GroupReady(std::size_t begin, std::size_t end) {
  const auto g = static_cast<std::size_t>(
      std::lower_bound(groups_.begin(), groups_.end(), std::make_pair(begin, std::size_t{0})) -
      groups_.begin());
  if (group_left_[g].fetch_sub(1) != 1) return;
  // The last thread to finish this layer sums every thread's partial, in thread order.
  for (std::size_t i = begin; i < end; ++i) {
    float v = tb_[0].grad[i];
    for (std::size_t q = 1; q < parts_; ++q) v += tb_[q].grad[i];
    reduced_[1 + i] = v;
  }
  const auto k = static_cast<std::size_t>(group_bucket_[g]);
  if (bucket_left_[k].fetch_sub(1) == 1) {
    {
      std::lock_guard lock(launch_mu_);
      bucket_ready_[k] = 1;
    }
    LaunchReady(false);
  }
}

// Each thread's gradient over its slice of this rank's rows of the batch.
void CpuBackend::ComputePartials(const BackendBatch& batch) {
  const std::int64_t d = model_.num_features();
  models::BatchContext base;
  base.training = true;
  base.seed = batch.seed;
  base.step = batch.step;
  ParallelForStatic(batch.rows.size(), parts_, [&](std::size_t p, std::size_t b, std::size_t e) {
    ThreadBuf& t = tb_[p];
    std::fill(t.grad.begin(), t.grad.end(), 0.0f);
    t.loss = 0;
    if (b == e) {
      // No rows here: this thread's (zero) partial of every layer is final now.
      if (overlap_) {
        for (std::size_t g = groups_.size(); g-- > 0;)
          GroupReady(groups_[g].first, groups_[g].second);
      }
      return;
    }
    t.x.Resize(static_cast<std::int64_t>(e - b), d);
    t.y.clear();
    t.ids.clear();
    t.w.clear();
    for (std::size_t r = b; r < e; ++r) {
      const std::uint32_t li = batch.rows[r];
      std::memcpy(t.x.row(static_cast<std::int64_t>(r - b)), setup_.features.row(li),
                  static_cast<std::size_t>(d) * sizeof(float));
      t.y.push_back(setup_.labels[li]);
      t.ids.push_back(setup_.row_ids[li]);
      if (!setup_.weights.empty()) t.w.push_back(setup_.weights[li]);
    }
    models::BatchContext ctx = base;
    ctx.row_ids = t.ids;
    ctx.weights = t.w;
    t.loss = model_.AccumulateGradient(std::as_const(t.x).view(), t.y, t.grad, ctx, *t.ws,
                                       overlap_ ? &ready_ : nullptr);
  });
}

// The threads' partials, summed in thread order (the same bits for any split of the parameters
// among the summing tasks), then over the ranks.
void CpuBackend::SumPartials() {
  double loss_sum = 0;
  for (std::size_t p = 0; p < parts_; ++p) loss_sum += tb_[p].loss;
  reduced_[0] = static_cast<float>(loss_sum);
  if (overlap_) {
    LaunchReady(true);
    for (auto& w : bucket_work_) w->Wait();
    return;
  }
  ParallelFor(np_, 16384, [&](std::size_t b, std::size_t e) {
    float* __restrict out = reduced_.data() + 1;
    std::copy(tb_[0].grad.data() + b, tb_[0].grad.data() + e, out + b);
    for (std::size_t p = 1; p < parts_; ++p) {
      const float* __restrict g = tb_[p].grad.data();
      for (std::size_t i = b; i < e; ++i) out[i] += g[i];
    }
  });
  setup_.comm->AllReduce(std::span<float>(reduced_), ReduceOp::kSum, step_opts_);
}

double CpuBackend::Step(const BackendBatch& batch) {
  step_opts_.tag = batch.step;
  if (overlap_) ResetOverlap();
  ComputePartials(batch);
  const auto comm_start = Clock::now();
  SumPartials();
  // Communication the backward pass did not hide (the summing of thread partials included).
  comm_seconds_ += std::chrono::duration<double>(Clock::now() - comm_start).count();
  const double batch_loss = reduced_[0];
  if (!std::isfinite(batch_loss)) return batch_loss;  // parameters left as they were
  const float inv =
      1.0f / static_cast<float>(static_cast<double>(batch.global_count) * setup_.mean_weight);
  std::span<float> grad(reduced_.data() + 1, np_);
  ParallelFor(np_, 16384, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) grad[i] *= inv;
  });
  if (setup_.clip_norm > 0) ClipGradNorm(grad, setup_.clip_norm);
  optimizer_->Step(model_.parameters(), grad, batch.lr);
  return batch_loss;
}

std::uint64_t CpuBackend::Sync(std::span<float> params,
                               std::vector<std::vector<float>>* optimizer_state) {
  const auto own = model_.parameters();
  if (params.data() != own.data()) std::copy(own.begin(), own.end(), params.begin());
  if (optimizer_state != nullptr) *optimizer_state = optimizer_->state();
  return optimizer_->steps();
}

}  // namespace

std::unique_ptr<TrainBackend> MakeCpuBackend(models::GradientModel& model, int threads) {
  return std::make_unique<CpuBackend>(model, threads);
}

}  // namespace escala::train
