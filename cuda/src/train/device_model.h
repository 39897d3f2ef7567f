// A model's forward and backward passes on the GPU (host code driving cuBLAS and the kernels).
//
// Linear, logistic and softmax models and MLPs share one layout (per layer W (in x out,
// row-major) then b, escala/models/mlp.h), so a DeviceModel is a stack of dense layers: hidden
// layers apply the activation and dropout, the last one is the linear head. The parameters,
// inputs and gradients are device buffers owned by the caller; the DeviceModel owns the
// activations of one batch of up to max_rows rows.
//
// Thread-safety: one thread; all work is enqueued on the stream given at construction.
#ifndef ESCALA_CUDA_SRC_TRAIN_DEVICE_MODEL_H_
#define ESCALA_CUDA_SRC_TRAIN_DEVICE_MODEL_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "blas.h"
#include "escala/models/model.h"
#include "kernels/kernels.h"
#include "memory.h"

namespace escala::gpu::internal {

struct DenseLayer {
  int in = 0;
  int out = 0;
  std::size_t w_offset = 0;  // W in the flat parameter vector
  std::size_t b_offset = 0;  // b follows W
};

class DeviceModel {
 public:
  // Throws kInvalidArgument for a model that is not linear/logistic/softmax/mlp.
  DeviceModel(const models::GradientModel& model, int device, int max_rows, cudaStream_t stream,
              bool tf32);

  const std::vector<DenseLayer>& layers() const { return layers_; }
  std::size_t num_parameters() const { return num_params_; }
  int num_features() const { return layers_.front().in; }
  int num_outputs() const { return layers_.back().out; }
  int max_rows() const { return max_rows_; }
  Blas& blas() { return blas_; }

  // Inference-mode logits of x (rows x num_features, rows <= max_rows); the returned device
  // buffer (rows x num_outputs) is valid until the next call.
  const float* Logits(const float* params, const float* x, int rows);

  // Training pass over one batch: overwrites grad (num_parameters floats) with the gradient of
  // the summed loss, and writes the summed loss to *loss (double) and *loss_float. row_ids are
  // the rows' global ids (dropout). layer_done(l) is called on the host right after layer l's
  // gradient has been enqueued, last layer first. rows must be >= 1.
  void Gradient(const float* params, const float* x, const float* labels,
                const std::uint64_t* row_ids, int rows, std::uint64_t seed, std::uint64_t step,
                float* grad, double* loss, float* loss_float,
                const std::function<void(std::size_t layer)>& layer_done);

 private:
  void Forward(const float* params, const float* x, int rows, const std::uint64_t* row_ids,
               const std::vector<kernels::Dropout>* dropout);

  int device_;
  int max_rows_;
  cudaStream_t stream_;
  models::Task task_;
  kernels::Act act_ = kernels::Act::kIdentity;
  float dropout_ = 0.0f;
  std::vector<DenseLayer> layers_;
  std::size_t num_params_ = 0;
  Blas blas_;
  std::vector<DeviceBuffer<float>> z_, y_;  // per hidden layer
  DeviceBuffer<float> logits_;
  DeviceBuffer<float> delta_[2];
  DeviceBuffer<double> row_loss_;
  DeviceBuffer<double> scratch_;
  DeviceBuffer<float> ones_;
  std::vector<kernels::Dropout> step_dropout_;
};

// The dropout of hidden layer `layer` at (seed, step): the CPU's formula (src/models/mlp.cc).
kernels::Dropout DropoutFor(float rate, std::uint64_t seed, std::uint64_t step, std::size_t layer);

}  // namespace escala::gpu::internal

#endif  // ESCALA_CUDA_SRC_TRAIN_DEVICE_MODEL_H_
