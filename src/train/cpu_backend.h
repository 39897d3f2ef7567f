// The CPU training backend: the trainer's step loop when no other backend is given. Private to
// src/train.
//
// Within a rank, the local part of each batch is split over threads (each with its own workspace
// and gradient buffer, summed in a fixed order, so the result does not depend on scheduling); the
// loop allocates nothing per batch. With several ranks, gradients are all-reduced in buckets of
// whole layers, each launched as soon as every thread has finished those layers' backward pass
// (escala/train/backend.h, BackendSetup::bucket_bytes).
//
// Unlike a device backend it trains the model's own parameters in place: Sync copies nothing
// when given the model's parameters.
#ifndef ESCALA_SRC_TRAIN_CPU_BACKEND_H_
#define ESCALA_SRC_TRAIN_CPU_BACKEND_H_

#include <memory>

#include "escala/train/backend.h"

namespace escala::train {

// `model` is the model BackendSetup::model points to; it must outlive the backend.
std::unique_ptr<TrainBackend> MakeCpuBackend(models::GradientModel& model, int threads);

}  // namespace escala::train

#endif  // ESCALA_SRC_TRAIN_CPU_BACKEND_H_
