// The CUDA training backend (escala/gpu/train.h): parameters, gradients and optimizer state on
// the device; one training step = gather the batch, forward, loss, backward (gradients summed
// over ranks in layer buckets), clip, optimizer kernel, one 4-byte copy of the loss to the host.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "cuda_check.h"
#include "escala/core/error.h"
#include "escala/core/parallel.h"
#include "escala/gpu/device.h"
#include "escala/gpu/train.h"
#include "kernels/kernels.h"
#include "memory.h"
#include "train/device_model.h"

namespace escala::gpu {
namespace {

using internal::DeviceBuffer;
using internal::PinnedBuffer;

kernels::OptimizerKind KindOf(const std::string& name) {
  if (name == "sgd") return kernels::OptimizerKind::kSgd;
  if (name == "momentum") return kernels::OptimizerKind::kMomentum;
  if (name == "nesterov") return kernels::OptimizerKind::kNesterov;
  if (name == "adam") return kernels::OptimizerKind::kAdam;
  if (name == "adamw") return kernels::OptimizerKind::kAdamW;
  Throw(ErrorCode::kInvalidArgument,
        "optimizer '{}' has no GPU form (sgd, momentum, nesterov, adam and adamw do)", name);
}

// Moments kept per parameter, as the CPU optimizers' state() (optimizer.cc).
int MomentsOf(kernels::OptimizerKind kind) {
  switch (kind) {
    case kernels::OptimizerKind::kSgd:
      return 0;
    case kernels::OptimizerKind::kMomentum:
    case kernels::OptimizerKind::kNesterov:
      return 1;
    default:
      return 2;
  }
}

// The CPU's label checks (models/model.cc), once for the whole shard instead of per batch.
void CheckLabels(models::Task task, std::int64_t classes, std::span<const float> labels) {
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const float y = labels[i];
    switch (task) {
      case models::Task::kRegression:
        ESCALA_CHECK(std::isfinite(y), kInvalidArgument, "row {}: label {} is not finite", i, y);
        break;
      case models::Task::kBinary:
        ESCALA_CHECK(y == 0.0f || y == 1.0f, kInvalidArgument,
                     "row {}: binary label must be 0 or 1, got {}", i, y);
        break;
      case models::Task::kMulticlass:
        ESCALA_CHECK(y >= 0 && y < static_cast<float>(classes) && y == std::floor(y),
                     kInvalidArgument, "row {}: class label must be an integer in [0, {}), got {}",
                     i, classes, y);
        break;
    }
  }
}

// Contiguous copy of a possibly strided host matrix to the device.
void UploadMatrix(ConstMatrixViewF x, float* dst) {
  if (x.empty()) return;
  CUDA_CHECK(cudaMemcpy2D(dst, static_cast<std::size_t>(x.cols()) * sizeof(float), x.data(),
                          static_cast<std::size_t>(x.stride()) * sizeof(float),
                          static_cast<std::size_t>(x.cols()) * sizeof(float),
                          static_cast<std::size_t>(x.rows()), cudaMemcpyHostToDevice));
}

class CudaTrainBackend final : public train::TrainBackend {
 public:
  explicit CudaTrainBackend(const CudaTrainOptions& o) : o_(o) {}

  ~CudaTrainBackend() override {
    // Buffers go back to the pool only once nothing uses them.
    if (compute_) cudaStreamSynchronize(compute_->get());
    if (copy_) cudaStreamSynchronize(copy_->get());
    cudaGetLastError();
  }

  std::string Describe() const override {
    return fmt::format("cuda:{} ({}, {}, training data {})", o_.device, device_name_,
                       o_.precision == Precision::kTf32 ? "tf32" : "fp32",
                       resident_ ? "resident on the device" : "streamed from pinned memory");
  }

  void Start(const train::BackendSetup& s) override {
    internal::UseDevice(o_.device);
    setup_ = s;
    const models::GradientModel& model = *s.model;
    device_name_ = GetDeviceInfo(o_.device).name;
    d_ = model.num_features();
    n_ = s.features.rows();
    ESCALA_CHECK(s.features.cols() == d_, kInvalidArgument,
                 "data has {} features but the model expects {}", s.features.cols(), d_);
    ESCALA_CHECK(static_cast<std::int64_t>(s.labels.size()) == n_ &&
                     static_cast<std::int64_t>(s.row_ids.size()) == n_,
                 kInvalidArgument, "{} rows, {} labels, {} row ids", n_, s.labels.size(),
                 s.row_ids.size());
    ESCALA_CHECK(n_ <= std::int64_t{1} << 31, kInvalidArgument,
                 "the CUDA backend takes at most 2^31 rows per rank, got {}", n_);
    CheckLabels(model.task(), model.num_outputs(), s.labels);
    kind_ = KindOf(s.optimizer.name);
    max_rows_ = static_cast<int>(std::max<std::int64_t>(1, s.max_batch_rows));

    compute_.emplace();
    copy_.emplace();
    model_ = std::make_unique<internal::DeviceModel>(model, o_.device, max_rows_, compute_->get(),
                                                     o_.precision == Precision::kTf32);
    np_ = model_->num_parameters();
    const int dev = o_.device;
    const auto params = model.parameters();
    params_.Reset(dev, np_);
    CUDA_CHECK(
        cudaMemcpy(params_.data(), params.data(), np_ * sizeof(float), cudaMemcpyHostToDevice));
    mask_.Reset(dev, np_);
    CUDA_CHECK(cudaMemcpy(mask_.data(), model.penalty_mask().data(), np_, cudaMemcpyHostToDevice));
    // [3 floats of padding | loss | gradient]: the gradient is 16-byte aligned for cuBLAS and the
    // loss travels in the all-reduce of the first layer's bucket, as on the CPU.
    grad_buf_.Reset(dev, np_ + kGradOffset);
    CUDA_CHECK(cudaMemset(grad_buf_.data(), 0, grad_buf_.bytes()));
    const int moments = MomentsOf(kind_);
    ESCALA_CHECK(s.optimizer_state.empty() || static_cast<int>(s.optimizer_state.size()) == moments,
                 kFailedPrecondition, "optimizer state has {} moment vectors, {} expects {}",
                 s.optimizer_state.size(), s.optimizer.name, moments);
    for (int k = 0; k < moments; ++k) {
      DeviceBuffer<float>& buf = k == 0 ? m_ : v_;
      buf.Reset(dev, np_);
      const auto ku = static_cast<std::size_t>(k);
      if (ku < s.optimizer_state.size() && !s.optimizer_state[ku].empty()) {
        ESCALA_CHECK(s.optimizer_state[ku].size() == np_, kFailedPrecondition,
                     "optimizer moment {} has {} values for {} parameters", k,
                     s.optimizer_state[ku].size(), np_);
        CUDA_CHECK(cudaMemcpy(buf.data(), s.optimizer_state[ku].data(), np_ * sizeof(float),
                              cudaMemcpyHostToDevice));
      } else {
        CUDA_CHECK(cudaMemset(buf.data(), 0, np_ * sizeof(float)));
      }
    }
    steps_ = s.optimizer_steps;
    scalars_.Reset(dev, 2);  // summed loss (double), squared gradient norm
    scratch_.Reset(dev, kernels::kReduceBlocks);
    loss_host_.Reset(1);

    PlaceData();
    SetUpReduction();
  }

  double Step(const train::BackendBatch& b) override {
    internal::UseDevice(o_.device);
    const cudaStream_t stream = compute_->get();
    const int m = static_cast<int>(b.rows.size());
    ESCALA_CHECK(m <= max_rows_, kInvalidArgument, "batch of {} rows, at most {} announced", m,
                 max_rows_);
    const float *x = nullptr, *y = nullptr;
    const std::uint64_t* ids = nullptr;
    if (m > 0) {
      if (resident_) {
        std::memcpy(index_host_.data(), b.rows.data(), b.rows.size_bytes());
        CUDA_CHECK(cudaMemcpyAsync(index_dev_.data(), index_host_.data(), b.rows.size_bytes(),
                                   cudaMemcpyHostToDevice, stream));
        CUDA_CHECK(kernels::LaunchGatherRows(
            data_x_.data(), static_cast<int>(d_), index_dev_.data(), m, batch_[0].x.data(),
            data_y_.data(), batch_[0].y.data(), data_ids_.data(), batch_[0].ids.data(), stream));
        x = batch_[0].x.data();
        y = batch_[0].y.data();
        ids = batch_[0].ids.data();
      } else {
        int slot = -1;
        for (int k = 0; k < 2; ++k) {
          if (batch_[k].staged && std::ranges::equal(batch_[k].rows, b.rows)) slot = k;
        }
        if (slot < 0) {
          slot = next_slot_;
          Stage(b.rows, slot);
        }
        next_slot_ = slot ^ 1;
        batch_[slot].copied->Block(stream);
        batch_[slot].staged = false;
        x = batch_[slot].x.data();
        y = batch_[slot].y.data();
        ids = batch_[slot].ids.data();
      }
    }

    float* grad = grad_buf_.data() + kGradOffset;
    float* loss_slot = grad_buf_.data() + kGradOffset - 1;
    works_.clear();
    next_bucket_ = 0;
    CollectiveOptions co;
    co.tag = b.step;
    co.location = MemoryLocation::kDevice;
    co.stream = stream;
    auto launch_bucket = [&](std::size_t k) {
      const Bucket& bk = buckets_[k];
      const bool with_loss = k + 1 == buckets_.size();
      float* base = with_loss ? loss_slot : grad + bk.begin;
      const std::size_t count = (with_loss ? 1 : 0) + bk.end - bk.begin;
      works_.push_back(
          setup_.comm->AllReduceAsync(base, count, DType::kFloat32, ReduceOp::kSum, co));
    };
    // Buckets are whole layers from the last one down; bucket k is complete when its lowest
    // layer's gradient has been enqueued.
    std::function<void(std::size_t)> layer_done;
    if (device_reduce_) {
      layer_done = [&](std::size_t layer) {
        while (next_bucket_ < buckets_.size() && buckets_[next_bucket_].first_layer == layer) {
          launch_bucket(next_bucket_++);
        }
      };
    }
    if (m > 0) {
      model_->Gradient(params_.data(), x, y, ids, m, b.seed, b.step, grad, scalars_.data(),
                       loss_slot, layer_done);
    } else {
      // No rows here this step: a zero gradient and loss, still summed with the other ranks.
      CUDA_CHECK(cudaMemsetAsync(grad_buf_.data(), 0, grad_buf_.bytes(), stream));
      if (device_reduce_) {
        for (std::size_t l = model_->layers().size(); l-- > 0;) layer_done(l);
      }
    }
    if (host_reduce_) {
      // A communicator without device support: sum through pinned host memory.
      CUDA_CHECK(cudaMemcpyAsync(host_reduce_buf_.data(), loss_slot, (np_ + 1) * sizeof(float),
                                 cudaMemcpyDeviceToHost, stream));
      compute_->Synchronize();
      CollectiveOptions ho;
      ho.tag = b.step;
      setup_.comm->AllReduce(std::span<float>(host_reduce_buf_.data(), np_ + 1), ReduceOp::kSum,
                             ho);
      CUDA_CHECK(cudaMemcpyAsync(loss_slot, host_reduce_buf_.data(), (np_ + 1) * sizeof(float),
                                 cudaMemcpyHostToDevice, stream));
    }

    const float inv = 1.0f / static_cast<float>(b.global_count);
    double* squared_norm = nullptr;
    if (setup_.clip_norm > 0) {
      squared_norm = scalars_.data() + 1;
      CUDA_CHECK(kernels::LaunchSquaredNorm(grad, np_, inv, scratch_.data(), squared_norm, stream));
    }
    CUDA_CHECK(
        kernels::LaunchOptimizerStep(StepArgs(grad, inv, squared_norm, loss_slot, b.lr), stream));
    // While this step computes, the host gathers the next batch.
    if (!resident_ && !b.next_rows.empty()) Stage(b.next_rows, next_slot_);
    CUDA_CHECK(cudaMemcpyAsync(loss_host_.data(), loss_slot, sizeof(float), cudaMemcpyDeviceToHost,
                               stream));
    for (auto& w : works_) w->Wait();
    compute_->Synchronize();
    const double loss = *loss_host_.data();
    if (std::isfinite(loss)) ++steps_;  // the kernel skipped the update otherwise
    return loss;
  }

  std::uint64_t Sync(std::span<float> params,
                     std::vector<std::vector<float>>* optimizer_state) override {
    internal::UseDevice(o_.device);
    compute_->Synchronize();
    ESCALA_CHECK(params.size() == np_, kInvalidArgument, "{} parameters, the model has {}",
                 params.size(), np_);
    CUDA_CHECK(
        cudaMemcpy(params.data(), params_.data(), np_ * sizeof(float), cudaMemcpyDeviceToHost));
    if (optimizer_state == nullptr) return steps_;
    const int moments = MomentsOf(kind_);
    optimizer_state->resize(static_cast<std::size_t>(moments));
    for (int k = 0; k < moments; ++k) {
      auto& out = (*optimizer_state)[static_cast<std::size_t>(k)];
      out.resize(np_);
      CUDA_CHECK(cudaMemcpy(out.data(), (k == 0 ? m_ : v_).data(), np_ * sizeof(float),
                            cudaMemcpyDeviceToHost));
    }
    return steps_;
  }

 private:
  static constexpr std::size_t kGradOffset = 4;

  struct Bucket {
    std::size_t begin = 0, end = 0;  // parameter range
    std::size_t first_layer = 0;     // the lowest layer in it (its last to finish)
  };

  struct BatchSlot {
    DeviceBuffer<float> x, y;
    DeviceBuffer<std::uint64_t> ids;
    // Streamed mode: the host side and the copy's completion.
    PinnedBuffer<float> px, py;
    PinnedBuffer<std::uint64_t> pids;
    std::optional<internal::Event> copied;
    std::vector<std::uint32_t> rows;
    bool staged = false;
  };

  void PlaceData() {
    const int dev = o_.device;
    const auto n = static_cast<std::size_t>(n_);
    const auto d = static_cast<std::size_t>(d_);
    const std::size_t data_bytes = n * (d * sizeof(float) + sizeof(float) + sizeof(std::uint64_t));
    std::size_t free_bytes = 0, total = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
    resident_ =
        o_.data == DataPlacement::kResident ||
        (o_.data == DataPlacement::kAuto &&
         static_cast<double>(data_bytes) <= o_.resident_fraction * static_cast<double>(free_bytes));
    const auto rows = static_cast<std::size_t>(max_rows_);
    if (resident_) {
      data_x_.Reset(dev, n * d);
      data_y_.Reset(dev, n);
      data_ids_.Reset(dev, n);
      UploadMatrix(setup_.features, data_x_.data());
      CUDA_CHECK(cudaMemcpy(data_y_.data(), setup_.labels.data(), n * sizeof(float),
                            cudaMemcpyHostToDevice));
      CUDA_CHECK(cudaMemcpy(data_ids_.data(), setup_.row_ids.data(), n * sizeof(std::uint64_t),
                            cudaMemcpyHostToDevice));
      index_host_.Reset(rows);
      index_dev_.Reset(dev, rows);
      batch_[0].x.Reset(dev, rows * d);
      batch_[0].y.Reset(dev, rows);
      batch_[0].ids.Reset(dev, rows);
    } else {
      for (BatchSlot& s : batch_) {
        s.x.Reset(dev, rows * d);
        s.y.Reset(dev, rows);
        s.ids.Reset(dev, rows);
        s.px.Reset(rows * d);
        s.py.Reset(rows);
        s.pids.Reset(rows);
        s.copied.emplace();
      }
    }
  }

  // Streamed mode: gathers `rows` into slot's pinned buffers (in parallel on the host) and
  // copies them on the copy stream. The slot's previous contents were used by a step that has
  // completed (every Step ends with a synchronisation).
  void Stage(std::span<const std::uint32_t> rows, int slot) {
    BatchSlot& s = batch_[slot];
    const auto d = static_cast<std::size_t>(d_);
    const std::size_t m = rows.size();
    const ConstMatrixViewF x = setup_.features;
    ParallelFor(m, 64, [&](std::size_t b, std::size_t e) {
      for (std::size_t r = b; r < e; ++r) {
        const std::uint32_t li = rows[r];
        std::memcpy(s.px.data() + r * d, x.row(li), d * sizeof(float));
        s.py.data()[r] = setup_.labels[li];
        s.pids.data()[r] = setup_.row_ids[li];
      }
    });
    const cudaStream_t cs = copy_->get();
    CUDA_CHECK(cudaMemcpyAsync(s.x.data(), s.px.data(), m * d * sizeof(float),
                               cudaMemcpyHostToDevice, cs));
    CUDA_CHECK(
        cudaMemcpyAsync(s.y.data(), s.py.data(), m * sizeof(float), cudaMemcpyHostToDevice, cs));
    CUDA_CHECK(cudaMemcpyAsync(s.ids.data(), s.pids.data(), m * sizeof(std::uint64_t),
                               cudaMemcpyHostToDevice, cs));
    s.copied->Record(cs);
    s.rows.assign(rows.begin(), rows.end());
    s.staged = true;
  }

  void SetUpReduction() {
    Communicator& comm = *setup_.comm;
    device_reduce_ = false;
    host_reduce_ = false;
    buckets_.clear();
    if (comm.size() == 1 && comm.backend() != "nccl") return;
    if (comm.backend() == "nccl") {
      device_reduce_ = true;
      // Whole layers from the last one down, each bucket at least bucket_bytes (0: one bucket).
      const auto& layers = model_->layers();
      Bucket cur;
      cur.end = layers.back().b_offset + static_cast<std::size_t>(layers.back().out);
      for (std::size_t l = layers.size(); l-- > 0;) {
        cur.begin = layers[l].w_offset;
        cur.first_layer = l;
        const bool full =
            setup_.bucket_bytes > 0 && (cur.end - cur.begin) * sizeof(float) >= setup_.bucket_bytes;
        if (full || l == 0) {
          buckets_.push_back(cur);
          cur = Bucket{};
          cur.end = layers[l].w_offset;
        }
      }
    } else {
      host_reduce_ = true;
      host_reduce_buf_.Reset(np_ + 1);
    }
  }

  kernels::OptimizerStep StepArgs(const float* grad, float inv, const double* squared_norm,
                                  const float* loss, float lr) {
    const train::OptimizerConfig& c = setup_.optimizer;
    kernels::OptimizerStep a;
    a.kind = kind_;
    a.w = params_.data();
    a.grad = grad;
    a.m = m_.data();
    a.v = v_.data();
    a.mask = mask_.data();
    a.n = np_;
    a.inv_count = inv;
    a.squared_norm = squared_norm;
    a.clip_norm = setup_.clip_norm;
    a.loss = loss;
    a.lr = lr;
    a.momentum = c.momentum;
    a.beta1 = c.beta1;
    a.beta2 = c.beta2;
    a.l2 = c.l2;
    a.l1_threshold = c.l1 > 0 ? lr * c.l1 : 0.0f;
    if (kind_ == kernels::OptimizerKind::kAdam || kind_ == kernels::OptimizerKind::kAdamW) {
      // The CPU's arithmetic (optimizer.cc), for step t = steps + 1.
      const auto t = static_cast<double>(steps_ + 1);
      const float c1 = static_cast<float>(1.0 - std::pow(static_cast<double>(c.beta1), t));
      const float c2 = static_cast<float>(1.0 - std::pow(static_cast<double>(c.beta2), t));
      a.adam_step = lr * std::sqrt(c2) / c1;
      a.adam_eps = c.epsilon * std::sqrt(c2);
      a.decay = kind_ == kernels::OptimizerKind::kAdamW ? lr * c.weight_decay : 0.0f;
    }
    return a;
  }

  CudaTrainOptions o_;
  train::BackendSetup setup_;
  std::string device_name_;
  std::int64_t d_ = 0, n_ = 0;
  int max_rows_ = 1;
  std::size_t np_ = 0;
  kernels::OptimizerKind kind_ = kernels::OptimizerKind::kSgd;
  std::uint64_t steps_ = 0;

  // Declared before the buffers so that they are destroyed after them (the destructor body
  // synchronises first).
  std::optional<internal::Stream> compute_, copy_;
  std::unique_ptr<internal::DeviceModel> model_;
  DeviceBuffer<float> params_, grad_buf_, m_, v_;
  DeviceBuffer<std::uint8_t> mask_;
  DeviceBuffer<double> scalars_, scratch_;
  PinnedBuffer<float> loss_host_;

  bool resident_ = false;
  DeviceBuffer<float> data_x_, data_y_;
  DeviceBuffer<std::uint64_t> data_ids_;
  PinnedBuffer<std::uint32_t> index_host_;
  DeviceBuffer<std::uint32_t> index_dev_;
  BatchSlot batch_[2];
  int next_slot_ = 0;

  bool device_reduce_ = false, host_reduce_ = false;
  std::vector<Bucket> buckets_;
  std::size_t next_bucket_ = 0;
  std::vector<std::shared_ptr<Work>> works_;
  PinnedBuffer<float> host_reduce_buf_;
};

}  // namespace

train::BackendFactory CudaBackend(const CudaTrainOptions& options) {
  RequireDevice("the CUDA training backend");
  GetDeviceInfo(options.device);  // kNotFound for a device that does not exist
  ESCALA_CHECK(options.resident_fraction >= 0 && options.resident_fraction <= 1, kInvalidArgument,
               "resident_fraction must be in [0, 1], got {}", options.resident_fraction);
  return [options] { return std::make_unique<CudaTrainBackend>(options); };
}

}  // namespace escala::gpu
