// The NCCL communicator's logic (escala/gpu/nccl.h): bootstrap, operation tracking, the watchdog
// and abort, written against NcclDriver so that it compiles and is tested without CUDA.
#ifndef ESCALA_CUDA_SRC_NCCL_NCCL_COMMUNICATOR_H_
#define ESCALA_CUDA_SRC_NCCL_NCCL_COMMUNICATOR_H_

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "escala/core/communicator.h"
#include "escala/gpu/nccl.h"
#include "nccl/nccl_driver.h"

namespace escala::gpu::internal {

class NcclCommunicator final : public Communicator {
 public:
  // Runs the bootstrap over `host` (see escala/gpu/nccl.h) and returns the ready communicator.
  // Throws as MakeNcclCommunicator says; on failure the driver was aborted.
  static std::unique_ptr<NcclCommunicator> Create(std::unique_ptr<Communicator> host,
                                                  std::unique_ptr<NcclDriver> driver,
                                                  const NcclBootstrap& bootstrap,
                                                  const NcclOptions& options);
  ~NcclCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string_view backend() const override { return "nccl"; }

  std::shared_ptr<Work> AllReduceAsync(void* data, std::size_t count, DType dtype, ReduceOp op,
                                       const CollectiveOptions& options) override;
  std::shared_ptr<Work> BroadcastAsync(void* data, std::size_t bytes, int root,
                                       const CollectiveOptions& options) override;
  std::shared_ptr<Work> AllGatherAsync(const void* in, std::size_t bytes, void* out,
                                       const CollectiveOptions& options) override;
  std::shared_ptr<Work> AllGatherVAsync(std::span<const std::byte> in,
                                        std::vector<std::vector<std::byte>>* out,
                                        const CollectiveOptions& options) override;
  std::shared_ptr<Work> BarrierAsync(const CollectiveOptions& options) override;
  void Abort(const Status& reason) override;

  // The first failure, or OK.
  Status poison_status() const;
  Communicator& host() { return *host_; }

 private:
  NcclCommunicator(std::unique_ptr<Communicator> host, std::unique_ptr<NcclDriver> driver,
                   const NcclBootstrap& bootstrap, const NcclOptions& options);

  using StartFn = std::function<std::unique_ptr<NcclDriver::Op>()>;
  std::shared_ptr<Work> EnqueueDevice(std::string_view name, const CollectiveOptions& options,
                                      const StartFn& start);
  void WatchdogLoop();
  // Poisons the communicator (first call only), aborts NCCL and the host communicator, and fails
  // every pending operation with `status`.
  void Fail(const Status& status);

  struct Pending {
    std::unique_ptr<NcclDriver::Op> op;
    std::shared_ptr<Work> work;
    std::chrono::steady_clock::time_point deadline;
    std::chrono::milliseconds timeout{0};
    std::string what;  // "allreduce #12 (tag 7)"
  };

  std::unique_ptr<Communicator> host_;
  std::unique_ptr<NcclDriver> driver_;
  NcclBootstrap bootstrap_;
  NcclOptions options_;
  int rank_ = 0;
  int size_ = 1;
  int failure_handler_ = -1;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> pending_;  // guarded by mu_, in issue order
  std::uint64_t next_seq_ = 0;   // guarded by mu_
  Status poison_;                // guarded by mu_
  bool stop_ = false;            // guarded by mu_
  std::thread watchdog_;
};

}  // namespace escala::gpu::internal

#endif  // ESCALA_CUDA_SRC_NCCL_NCCL_COMMUNICATOR_H_
