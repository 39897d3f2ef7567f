// The real NcclDriver: NCCL (loaded at run time) on a communication stream of its own, with one
// CUDA event per operation for the watchdog to poll; and MakeNcclCommunicator.
#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>

#include "cuda_check.h"
#include "escala/core/error.h"
#include "escala/gpu/device.h"
#include "escala/gpu/nccl.h"
#include "memory.h"
#include "nccl/nccl_communicator.h"
#include "nccl/nccl_driver.h"
#include "nccl/nccl_library.h"

namespace escala::gpu {
namespace internal {
namespace {

ncclDataType_t NcclType(DType t) {
  switch (t) {
    case DType::kFloat32:
      return ncclFloat32;
    case DType::kFloat64:
      return ncclFloat64;
    case DType::kInt64:
      return ncclInt64;
    case DType::kInt32:
      return ncclInt32;
    case DType::kUInt8:
      return ncclUint8;
  }
  return ncclFloat32;
}

ncclRedOp_t NcclOp(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kAvg:
      return ncclAvg;
    case ReduceOp::kMax:
      return ncclMax;
    case ReduceOp::kMin:
      return ncclMin;
  }
  return ncclSum;
}

class EventOp final : public NcclDriver::Op {
 public:
  explicit EventOp(cudaEvent_t event) : event_(event) {}
  ~EventOp() override {
    if (cudaEventDestroy(event_) != cudaSuccess) cudaGetLastError();
  }
  bool Done() override {
    const cudaError_t e = cudaEventQuery(event_);
    if (e == cudaErrorNotReady) return false;
    // Any other error is a device fault; the async-error poll or the timeout reports it.
    if (e != cudaSuccess) return false;
    return true;
  }

 private:
  cudaEvent_t event_;
};

class CudaNcclDriver final : public NcclDriver {
 public:
  explicit CudaNcclDriver(int device) : lib_(NcclLibrary::Get()), device_(device) {
    UseDevice(device_);
    stream_.emplace();
    ready_.emplace();
  }

  ~CudaNcclDriver() override { Abort(); }

  std::string DeviceIdentity() override {
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
    std::string uuid;
    for (char c : prop.uuid.bytes) {
      uuid += fmt::format("{:02x}", static_cast<unsigned char>(c));
    }
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    return fmt::format("{}/GPU-{} (cuda:{}, {})", host, uuid, device_, prop.name);
  }

  std::string NewUniqueId() override {
    ncclUniqueId id;
    NCCL_CHECK(lib_, lib_.GetUniqueId(&id));
    return std::string(id.internal, sizeof(id.internal));
  }

  void StartInit(const std::string& unique_id, int world, int rank) override {
    ESCALA_CHECK(unique_id.size() == sizeof(ncclUniqueId::internal), kInvalidArgument,
                 "NCCL unique id of {} bytes (expected {})", unique_id.size(),
                 sizeof(ncclUniqueId::internal));
    UseDevice(device_);
    ncclUniqueId id;
    std::memcpy(id.internal, unique_id.data(), sizeof(id.internal));
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;  // the caller polls, with a deadline
    const ncclResult_t r = lib_.CommInitRankConfig(&comm_, world, id, rank, &config);
    if (r != ncclInProgress) NCCL_CHECK(lib_, r);
  }

  State Poll(std::string* error) override {
    if (comm_ == nullptr || aborted_.load()) {
      *error = "the NCCL communicator was aborted";
      return State::kFailed;
    }
    ncclResult_t state = ncclSuccess;
    const ncclResult_t r = lib_.CommGetAsyncError(comm_, &state);
    if (r != ncclSuccess) state = r;
    if (state == ncclInProgress) return State::kInProgress;
    if (state == ncclSuccess) return State::kReady;
    const char* last = lib_.GetLastError(comm_);
    *error = fmt::format("{}{}{}", lib_.ErrorString(state), last != nullptr ? ": " : "",
                         last != nullptr ? last : "");
    return State::kFailed;
  }

  void Abort() override {
    if (comm_ == nullptr || aborted_.exchange(true)) return;
    UseDevice(device_);
    lib_.CommAbort(comm_);
  }

  void Destroy() override {
    if (comm_ == nullptr || aborted_.load()) return;
    UseDevice(device_);
    // Finalize flushes outstanding work; with a non-blocking communicator it may be in progress
    // for a while. Bounded: a communicator that does not finalise is aborted instead.
    ncclResult_t r = lib_.CommFinalize(comm_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::string error;
    while ((r == ncclSuccess || r == ncclInProgress) && Poll(&error) == State::kInProgress) {
      if (std::chrono::steady_clock::now() >= deadline) {
        r = ncclInternalError;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (r != ncclSuccess && r != ncclInProgress) {
      Abort();
      return;
    }
    aborted_.store(true);  // nothing may touch comm_ from here on
    lib_.CommDestroy(comm_);
  }

  std::unique_ptr<Op> AllReduce(void* data, std::size_t count, DType dtype, ReduceOp op,
                                void* stream) override {
    return Launch(stream, [&](cudaStream_t s) {
      return lib_.AllReduce(data, data, count, NcclType(dtype), NcclOp(op), comm_, s);
    });
  }

  std::unique_ptr<Op> Broadcast(void* data, std::size_t bytes, int root, void* stream) override {
    return Launch(stream, [&](cudaStream_t s) {
      return lib_.Broadcast(data, data, bytes, ncclUint8, root, comm_, s);
    });
  }

  std::unique_ptr<Op> AllGather(const void* in, std::size_t bytes, void* out,
                                void* stream) override {
    return Launch(stream, [&](cudaStream_t s) {
      return lib_.AllGather(in, out, bytes, ncclUint8, comm_, s);
    });
  }

 private:
  // Orders the collective after `user`'s work, runs it on our stream, and makes `user` wait.
  template <typename F>
  std::unique_ptr<Op> Launch(void* user_stream, F&& call) {
    ESCALA_CHECK(!aborted_.load(), kAborted, "the NCCL communicator was aborted");
    UseDevice(device_);
    const auto user = static_cast<cudaStream_t>(user_stream);
    ready_->Record(user);
    ready_->Block(stream_->get());
    ncclResult_t r = call(stream_->get());
    if (r == ncclInProgress) {
      // Non-blocking communicator: the enqueue finishes asynchronously.
      std::string error;
      State st;
      while ((st = Poll(&error)) == State::kInProgress) std::this_thread::yield();
      ESCALA_CHECK(st == State::kReady, kAborted, "NCCL: {}", error);
      r = ncclSuccess;
    }
    NCCL_CHECK(lib_, r);
    cudaEvent_t done = nullptr;
    CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    auto op = std::make_unique<EventOp>(done);
    CUDA_CHECK(cudaEventRecord(done, stream_->get()));
    CUDA_CHECK(cudaStreamWaitEvent(user, done, 0));
    return op;
  }

  const NcclLibrary& lib_;
  int device_;
  ncclComm_t comm_ = nullptr;
  std::atomic<bool> aborted_{false};
  std::optional<Stream> stream_;
  std::optional<Event> ready_;
};

}  // namespace
}  // namespace internal

std::unique_ptr<Communicator> MakeNcclCommunicator(std::unique_ptr<Communicator> host,
                                                   const NcclBootstrap& bootstrap,
                                                   const NcclOptions& options) {
  RequireDevice("the NCCL communicator");
  GetDeviceInfo(options.device);
  auto driver = std::make_unique<internal::CudaNcclDriver>(options.device);
  return internal::NcclCommunicator::Create(std::move(host), std::move(driver), bootstrap, options);
}

}  // namespace escala::gpu
