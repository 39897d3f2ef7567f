// Training on a CUDA GPU: a backend for train::Trainer (escala/train/backend.h).
//
//   train::TrainOptions o;
//   o.backend = gpu::CudaBackend({.device = 0, .precision = gpu::Precision::kTf32});
//   train::Trainer(model, o, comm).Fit(shard, &valid);
//
// The backend keeps the parameters, gradients and optimizer state on the device and runs every
// step there: cuBLAS GEMMs, fused bias + activation (+ dropout) kernels, the loss and its
// gradient, and one fused optimizer kernel. Batches come from the training shard copied to the
// device once (when it fits) or are gathered on the host into pinned memory and copied on a
// separate stream while the previous step computes. Gradients are summed over ranks through the
// trainer's communicator: in layer buckets on the GPU, overlapped with the backward pass, when it
// is the NCCL communicator (escala/gpu/nccl.h); through host memory otherwise. Parameters come
// back to the host for validation, checkpoints and the end of training, so a model trained here
// is an ordinary model: its bundle serves on the CPU.
//
// Supported: linear, logistic, softmax and MLP models (every activation, dropout with the CPU's
// masks), optimizers sgd, momentum, nesterov, adam and adamw with l2, l1, weight decay and
// gradient clipping. L-BFGS runs on the CPU only.
//
// In a CPU-only build CudaBackend throws kUnimplemented ("built without CUDA").
//
// Thread-safety: a factory may be called from any thread; each backend is used by one thread.
#ifndef ESCALA_GPU_TRAIN_H_
#define ESCALA_GPU_TRAIN_H_

#include "escala/train/backend.h"

namespace escala::gpu {

enum class Precision {
  kFp32,  // IEEE float32 GEMMs
  kTf32,  // GEMM inputs rounded to TensorFloat-32 (10-bit mantissa) on tensor cores, float32
          // accumulation: several times faster on Ampere and Hopper, ~1e-3 relative error
};
// "fp32" or "tf32"; throws kInvalidArgument.
Precision ParsePrecision(std::string_view text);

enum class DataPlacement {
  kAuto,      // resident when the shard takes at most resident_fraction of free device memory
  kResident,  // the whole training shard on the device; batches gathered there
  kStreamed,  // batches gathered on the host into pinned memory and copied every step
};

struct CudaTrainOptions {
  int device = 0;
  Precision precision = Precision::kFp32;
  DataPlacement data = DataPlacement::kAuto;
  double resident_fraction = 0.5;
};

// A factory for TrainOptions::backend. Checks the device at once: throws kUnimplemented in a
// CPU-only build, kUnavailable without a device, kNotFound for a device that does not exist.
train::BackendFactory CudaBackend(const CudaTrainOptions& options);

}  // namespace escala::gpu

#endif  // ESCALA_GPU_TRAIN_H_
