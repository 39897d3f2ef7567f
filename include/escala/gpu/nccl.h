// The NCCL communicator: collectives on GPU memory between ranks that each own one GPU.
//
// It implements Communicator. Operations on device memory (CollectiveOptions::location ==
// kDevice) run through NCCL on a communication stream of their own, ordered after the work
// already enqueued on CollectiveOptions::stream, which in turn waits for them: a backward pass
// can start all-reducing one layer's gradients while it computes the next, without the host
// waiting. Host-memory operations, and the variable-size all-gather and the barrier, go to the
// host communicator it wraps (the gRPC ring of distributed::Connect, or any other).
//
// Bootstrap: every rank tells the others which GPU it holds (host name and device UUID) and two
// ranks on one GPU are refused on every rank with kInvalidArgument. Rank 0 creates the NCCL
// unique id and publishes it in the coordinator's key-value store (NcclBootstrap::set; without a
// store it is broadcast over the host communicator); the others read it there. Initialisation is
// non-blocking and bounded by init_timeout: a rank that never arrives yields kDeadlineExceeded
// and an aborted NCCL communicator, not a hang.
//
// Watchdog: a thread polls every pending operation. One that has not completed within its timeout
// (CollectiveOptions::timeout or the default) aborts the NCCL communicator (ncclCommAbort) and
// fails with kDeadlineExceeded naming the rank, the operation and its sequence number; an
// asynchronous NCCL error (a peer that died, a broken link) fails it with kAborted and NCCL's
// message. Either way the communicator is poisoned, every later operation fails, the host
// communicator is aborted too (so the other ranks learn of it), and a failure relayed by the job
// (NcclBootstrap::add_failure_handler) aborts NCCL on this rank. Recreate the group to go on.
//
// Multi-GPU runs have not been tested on real hardware yet (see docs/gpu.md).
//
// Thread-safety: as Communicator.
#ifndef ESCALA_GPU_NCCL_H_
#define ESCALA_GPU_NCCL_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "escala/core/communicator.h"

namespace escala::gpu {

// How the communicator reaches the job's coordinator. distributed::JobSession provides all four
// (Set, Get, AddFailureHandler, RemoveFailureHandler); any may be empty.
struct NcclBootstrap {
  std::function<void(const std::string& key, const std::string& value)> set;
  // Waits up to `timeout` for the key; throws (any escala::Error) when it stays unset.
  std::function<std::string(const std::string& key, std::chrono::milliseconds timeout)> get;
  std::function<int(std::function<void(const Status&)> handler)> add_failure_handler;
  std::function<void(int id)> remove_failure_handler;
};

struct NcclOptions {
  int device = 0;  // this rank's CUDA device
  // Prefix of the store keys; communicators built in the same order on every rank get distinct
  // keys without further care.
  std::string name = "escala";
  std::chrono::milliseconds init_timeout{std::chrono::minutes(5)};
  // How often the watchdog looks at pending operations.
  std::chrono::milliseconds poll_interval{1};
};

// Builds this rank's NCCL communicator over `host` (which it owns from then on; rank and size are
// host's). Throws kUnimplemented in a CPU-only build, kUnavailable when NCCL (libnccl.so.2) cannot
// be loaded or initialisation fails, kInvalidArgument for duplicate devices, kDeadlineExceeded
// when initialisation does not complete in time.
std::unique_ptr<Communicator> MakeNcclCommunicator(std::unique_ptr<Communicator> host,
                                                   const NcclBootstrap& bootstrap,
                                                   const NcclOptions& options);

}  // namespace escala::gpu

#endif  // ESCALA_GPU_NCCL_H_
