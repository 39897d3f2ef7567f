// Launchers for escala's CUDA kernels. Plain C++ declarations (no CUDA syntax) so that host code
// compiled by the C++ compiler can call them. Each launcher enqueues on `stream` and returns the
// launch status; callers check it with CUDA_CHECK. All matrices are row-major and contiguous;
// pointers are device pointers unless said otherwise.
//
// The numerics follow the CPU reference (src/models/, src/train/optimizer.cc) formula by formula,
// and the kernels are compiled without fused multiply-add contraction, so the elementwise results
// differ from the CPU's only where a transcendental function (exp, tanh, erf, log1p) does.
#ifndef ESCALA_CUDA_SRC_KERNELS_KERNELS_H_
#define ESCALA_CUDA_SRC_KERNELS_KERNELS_H_

#include <cstddef>
#include <cstdint>
#include <cuda_runtime.h>

namespace escala::gpu::kernels {

// Same values as models::Activation.
enum class Act : int { kIdentity = 0, kReLU = 1, kTanh = 2, kSigmoid = 3, kGELU = 4 };
// Same values as models::Task.
enum class Task : int { kRegression = 0, kBinary = 1, kMulticlass = 2 };

// Inverted dropout of one layer, as the CPU computes it: unit j of the row with global id `id`
// is dropped when Mix64(Mix64(base ^ id) + j) < threshold, and kept ones are scaled by `scale`;
// base = Mix64(seed ^ Mix64(step ^ Mix64(layer + 1))).
struct Dropout {
  bool enabled = false;
  std::uint64_t base = 0;
  std::uint64_t threshold = 0;
  float scale = 1.0f;
};

// out[i] = a[i] + b[i].
cudaError_t LaunchVectorAdd(const float* a, const float* b, float* out, std::size_t n,
                            cudaStream_t stream);

// p[i] = value.
cudaError_t LaunchFill(float* p, std::size_t n, float value, cudaStream_t stream);

// Hidden layer epilogue: z[i][j] += bias[j]; y[i][j] = act(z[i][j]) * mask(i, j), the mask being
// 1 without dropout. row_ids (rows entries) is needed only with dropout.
cudaError_t LaunchBiasActivation(float* z, const float* bias, float* y, int rows, int cols, Act act,
                                 const std::uint64_t* row_ids, Dropout dropout,
                                 cudaStream_t stream);

// Output layer epilogue: z[i][j] += bias[j].
cudaError_t LaunchAddBias(float* z, const float* bias, int rows, int cols, cudaStream_t stream);

// Backward through a hidden layer's activation and dropout: dz = dy * mask * act'(z), in place
// allowed (dz == dy).
cudaError_t LaunchActivationBackward(const float* dy, const float* z, float* dz, int rows, int cols,
                                     Act act, const std::uint64_t* row_ids, Dropout dropout,
                                     cudaStream_t stream);

// Loss and logit gradient per row (the CPU's LossAndLogitGradient): squared error 0.5 (z - y)^2,
// binary cross-entropy with logits, softmax cross-entropy. dlogits may alias logits. row_loss
// receives each row's loss, in double as the CPU sums it. Labels must be valid (checked on the host
// beforehand).
cudaError_t LaunchLossGradient(Task task, const float* logits, const float* labels, float* dlogits,
                               double* row_loss, int rows, int cols, cudaStream_t stream);

// Scratch for the deterministic two-pass reductions below: kReduceBlocks doubles.
constexpr int kReduceBlocks = 256;

// *out = sum of values[i] over n, in a fixed order (the same bits every run). When out_float is
// not null it also receives the sum rounded to float.
cudaError_t LaunchSum(const double* values, std::size_t n, double* scratch, double* out,
                      float* out_float, cudaStream_t stream);

// *out = sum of (double)(values[i] * scale)^2, the product rounded to float first (as the CPU
// scales the gradient, then takes its norm).
cudaError_t LaunchSquaredNorm(const float* values, std::size_t n, float scale, double* scratch,
                              double* out, cudaStream_t stream);

// out[r][:] = x[rows[r]][:] (x with `cols` columns), and when given labels_out[r] =
// labels[rows[r]], ids_out[r] = ids[rows[r]].
cudaError_t LaunchGatherRows(const float* x, int cols, const std::uint32_t* rows, int n, float* out,
                             const float* labels, float* labels_out, const std::uint64_t* ids,
                             std::uint64_t* ids_out, cudaStream_t stream);

// One first-order optimizer step over n parameters (src/train/optimizer.cc, formula by formula):
// g = grad * inv_count, scaled by clip_norm / norm when a norm above clip_norm was measured;
// coupled L2 and the update of the chosen kind; decoupled weight decay (adamw); proximal L1.
// Penalties apply where mask[i] != 0. Nothing changes unless *loss is finite.
enum class OptimizerKind : int { kSgd = 0, kMomentum = 1, kNesterov = 2, kAdam = 3, kAdamW = 4 };
struct OptimizerStep {
  OptimizerKind kind = OptimizerKind::kSgd;
  float* w = nullptr;
  const float* grad = nullptr;
  float* m = nullptr;  // momentum buffer (momentum, nesterov) or first moment (adam)
  float* v = nullptr;  // second moment (adam)
  const std::uint8_t* mask = nullptr;
  std::size_t n = 0;
  float inv_count = 1.0f;
  const double* squared_norm = nullptr;  // of grad * inv_count; null: no clipping
  double clip_norm = 0.0;
  const float* loss = nullptr;  // the step's summed loss; null: always update
  float lr = 0.0f;
  float momentum = 0.0f;
  float beta1 = 0.0f, beta2 = 0.0f;
  float adam_step = 0.0f;  // lr * sqrt(1 - beta2^t) / (1 - beta1^t), computed on the host
  float adam_eps = 0.0f;   // epsilon * sqrt(1 - beta2^t)
  float decay = 0.0f;      // lr * weight_decay (adamw)
  float l2 = 0.0f;
  float l1_threshold = 0.0f;  // lr * l1
};
cudaError_t LaunchOptimizerStep(const OptimizerStep& step, cudaStream_t stream);

}  // namespace escala::gpu::kernels

#endif  // ESCALA_CUDA_SRC_KERNELS_KERNELS_H_
