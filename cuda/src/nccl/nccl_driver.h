// What the NCCL communicator needs from NCCL and CUDA, behind an interface with no CUDA or NCCL
// types: the real driver (cuda_nccl_driver.cc) wraps the libraries; tests substitute a fake, so
// that the bootstrap, watchdog and abort logic is tested on machines without a GPU.
//
// Thread-safety: Poll, Abort and Op::Done may be called from the watchdog thread while the owner
// enqueues operations on its own thread; everything else from the owner's thread.
#ifndef ESCALA_CUDA_SRC_NCCL_NCCL_DRIVER_H_
#define ESCALA_CUDA_SRC_NCCL_NCCL_DRIVER_H_

#include <cstddef>
#include <memory>
#include <string>

#include "escala/core/communicator.h"

namespace escala::gpu::internal {

class NcclDriver {
 public:
  virtual ~NcclDriver() = default;

  // Identifies this rank's GPU among all of the job's GPUs: "<hostname>/<GPU UUID>".
  virtual std::string DeviceIdentity() = 0;
  // A fresh NCCL unique id (ncclGetUniqueId), as bytes.
  virtual std::string NewUniqueId() = 0;
  // Starts creating the communicator without blocking (ncclCommInitRankConfig, blocking = 0).
  virtual void StartInit(const std::string& unique_id, int world, int rank) = 0;

  enum class State { kReady, kInProgress, kFailed };
  // The communicator's state (ncclCommGetAsyncError); on kFailed, *error says why.
  virtual State Poll(std::string* error) = 0;
  // Aborts the communicator (ncclCommAbort): pending operations end, resources are released.
  // Idempotent.
  virtual void Abort() = 0;
  // Clean shutdown of a healthy communicator with nothing pending (finalise, then destroy).
  virtual void Destroy() = 0;

  // A collective in flight.
  class Op {
   public:
    virtual ~Op() = default;
    // Whether the collective has completed on the device (cudaEventQuery).
    virtual bool Done() = 0;
  };
  // Each enqueues on the communication stream after the work already enqueued on `stream` (a
  // cudaStream_t), makes `stream` wait for the collective, and returns its handle.
  virtual std::unique_ptr<Op> AllReduce(void* data, std::size_t count, DType dtype, ReduceOp op,
                                        void* stream) = 0;
  virtual std::unique_ptr<Op> Broadcast(void* data, std::size_t bytes, int root, void* stream) = 0;
  virtual std::unique_ptr<Op> AllGather(const void* in, std::size_t bytes, void* out,
                                        void* stream) = 0;
};

}  // namespace escala::gpu::internal

#endif  // ESCALA_CUDA_SRC_NCCL_NCCL_DRIVER_H_
