#include "train/device_model.h"

#include <algorithm>

#include "cuda_check.h"
#include "escala/core/error.h"
#include "escala/core/random.h"
#include "escala/models/mlp.h"

namespace escala::gpu::internal {

kernels::Dropout DropoutFor(float rate, std::uint64_t seed, std::uint64_t step, std::size_t layer) {
  kernels::Dropout d;
  if (rate <= 0.0f) return d;
  d.enabled = true;
  d.scale = 1.0f / (1.0f - rate);
  d.threshold = static_cast<std::uint64_t>(static_cast<double>(rate) * 18446744073709551616.0);
  d.base = Mix64(seed ^ Mix64(step ^ Mix64(layer + 1)));
  return d;
}

namespace {

std::vector<std::int64_t> LayerSizes(const models::GradientModel& model, kernels::Act* act,
                                     float* dropout) {
  if (model.kind() == "mlp") {
    const auto* mlp = dynamic_cast<const models::Mlp*>(&model);
    ESCALA_CHECK(mlp != nullptr, kInvalidArgument, "model of kind mlp is not an escala MLP");
    *act = static_cast<kernels::Act>(static_cast<int>(mlp->spec().activation));
    *dropout = mlp->spec().dropout;
    return mlp->sizes();
  }
  ESCALA_CHECK(model.kind() == "linear" || model.kind() == "logistic" || model.kind() == "softmax",
               kInvalidArgument, "the CUDA backend cannot train a model of kind '{}'",
               model.kind());
  *act = kernels::Act::kIdentity;
  *dropout = 0.0f;
  return {model.num_features(), model.num_outputs()};
}

}  // namespace

DeviceModel::DeviceModel(const models::GradientModel& model, int device, int max_rows,
                         cudaStream_t stream, bool tf32)
    : device_(device),
      max_rows_(std::max(1, max_rows)),
      stream_(stream),
      task_(model.task()),
      blas_(device, stream, tf32) {
  const auto sizes = LayerSizes(model, &act_, &dropout_);
  std::size_t offset = 0;
  int widest = 1;
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
    DenseLayer layer;
    layer.in = static_cast<int>(sizes[l]);
    layer.out = static_cast<int>(sizes[l + 1]);
    layer.w_offset = offset;
    layer.b_offset = offset + static_cast<std::size_t>(layer.in) * layer.out;
    offset = layer.b_offset + static_cast<std::size_t>(layer.out);
    layers_.push_back(layer);
    widest = std::max({widest, layer.in, layer.out});
  }
  num_params_ = offset;
  ESCALA_CHECK(num_params_ == model.parameters().size(), kInternal,
               "model layout: {} parameters expected, the model has {}", num_params_,
               model.parameters().size());
  const auto rows = static_cast<std::size_t>(max_rows_);
  for (std::size_t l = 0; l + 1 < layers_.size(); ++l) {
    z_.emplace_back(device, rows * static_cast<std::size_t>(layers_[l].out));
    y_.emplace_back(device, rows * static_cast<std::size_t>(layers_[l].out));
  }
  logits_.Reset(device, rows * static_cast<std::size_t>(layers_.back().out));
  delta_[0].Reset(device, rows * static_cast<std::size_t>(widest));
  delta_[1].Reset(device, rows * static_cast<std::size_t>(widest));
  row_loss_.Reset(device, rows);
  scratch_.Reset(device, kernels::kReduceBlocks);
  ones_.Reset(device, rows);
  CUDA_CHECK(kernels::LaunchFill(ones_.data(), rows, 1.0f, stream_));
  step_dropout_.resize(layers_.size());
}

void DeviceModel::Forward(const float* params, const float* x, int rows,
                          const std::uint64_t* row_ids,
                          const std::vector<kernels::Dropout>* dropout) {
  ESCALA_ASSERT(rows >= 1 && rows <= max_rows_);
  const float* input = x;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const DenseLayer& L = layers_[l];
    const bool last = l + 1 == layers_.size();
    float* z = last ? logits_.data() : z_[l].data();
    blas_.Gemm(false, false, rows, L.out, L.in, 1.0f, input, L.in, params + L.w_offset, L.out, 0.0f,
               z, L.out);
    if (last) {
      CUDA_CHECK(kernels::LaunchAddBias(z, params + L.b_offset, rows, L.out, stream_));
    } else {
      const kernels::Dropout d = dropout != nullptr ? (*dropout)[l] : kernels::Dropout{};
      CUDA_CHECK(kernels::LaunchBiasActivation(z, params + L.b_offset, y_[l].data(), rows, L.out,
                                               act_, row_ids, d, stream_));
      input = y_[l].data();
    }
  }
}

const float* DeviceModel::Logits(const float* params, const float* x, int rows) {
  Forward(params, x, rows, nullptr, nullptr);
  return logits_.data();
}

void DeviceModel::Gradient(const float* params, const float* x, const float* labels,
                           const std::uint64_t* row_ids, int rows, std::uint64_t seed,
                           std::uint64_t step, float* grad, double* loss, float* loss_float,
                           const std::function<void(std::size_t layer)>& layer_done) {
  for (std::size_t l = 0; l + 1 < layers_.size(); ++l) {
    step_dropout_[l] = DropoutFor(dropout_, seed, step, l);
  }
  Forward(params, x, rows, row_ids, &step_dropout_);
  const int k = layers_.back().out;
  // The logit gradient overwrites the logits.
  CUDA_CHECK(kernels::LaunchLossGradient(static_cast<kernels::Task>(static_cast<int>(task_)),
                                         logits_.data(), labels, logits_.data(), row_loss_.data(),
                                         rows, k, stream_));
  CUDA_CHECK(kernels::LaunchSum(row_loss_.data(), static_cast<std::size_t>(rows), scratch_.data(),
                                loss, loss_float, stream_));
  float* delta = logits_.data();
  int ping = 0;
  for (std::size_t l = layers_.size(); l-- > 0;) {
    const DenseLayer& L = layers_[l];
    const float* input = l == 0 ? x : y_[l - 1].data();
    // dW = input^T delta (in x out); db = column sums of delta.
    blas_.Gemm(true, false, L.in, L.out, rows, 1.0f, input, L.in, delta, L.out, 0.0f,
               grad + L.w_offset, L.out);
    blas_.ColumnSums(delta, rows, L.out, ones_.data(), 0.0f, grad + L.b_offset);
    if (layer_done) layer_done(l);
    if (l == 0) break;
    // delta of the layer below: (delta W^T) * mask * act'(z).
    float* next = delta_[ping].data();
    ping ^= 1;
    blas_.Gemm(false, true, rows, L.in, L.out, 1.0f, delta, L.out, params + L.w_offset, L.out, 0.0f,
               next, L.in);
    CUDA_CHECK(kernels::LaunchActivationBackward(next, z_[l - 1].data(), next, rows, L.in, act_,
                                                 row_ids, step_dropout_[l - 1], stream_));
    delta = next;
  }
}

}  // namespace escala::gpu::internal
