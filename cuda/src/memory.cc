#include "memory.h"

#include <array>
#include <bit>
#include <memory>

#include "cuda_check.h"
#include "escala/core/logging.h"

namespace escala::gpu::internal {

void UseDevice(int device) {
  CUDA_CHECK(cudaSetDevice(device));
}

DevicePool& DevicePool::For(int device) {
  // Pools live as long as the process: their blocks are released by the driver at exit, after
  // static destructors that would otherwise call cudaFree on a runtime being torn down.
  constexpr int kMaxDevices = 64;
  static std::array<std::unique_ptr<DevicePool>, kMaxDevices>* pools =
      new std::array<std::unique_ptr<DevicePool>, kMaxDevices>();
  static std::mutex mu;
  ESCALA_CHECK(device >= 0 && device < kMaxDevices, kNotFound, "CUDA device {} out of range",
               device);
  std::lock_guard lock(mu);
  auto& p = (*pools)[static_cast<std::size_t>(device)];
  if (!p) p.reset(new DevicePool(device));
  return *p;
}

std::size_t DevicePool::RoundUp(std::size_t bytes) {
  constexpr std::size_t kMiB = std::size_t{1} << 20;
  if (bytes <= 256) return 256;
  if (bytes <= kMiB) return std::bit_ceil(bytes);
  return (bytes + kMiB - 1) / kMiB * kMiB;
}

void* DevicePool::Allocate(std::size_t bytes) {
  const std::size_t size = RoundUp(bytes);
  {
    std::lock_guard lock(mu_);
    auto it = free_.find(size);
    if (it != free_.end()) {
      void* p = it->second;
      free_.erase(it);
      cached_ -= size;
      in_use_ += size;
      return p;
    }
  }
  int current = 0;
  CUDA_CHECK(cudaGetDevice(&current));
  if (current != device_) UseDevice(device_);
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, size);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    ReleaseCached();
    err = cudaMalloc(&p, size);
  }
  if (current != device_) UseDevice(current);
  if (err != cudaSuccess) {
    cudaGetLastError();
    std::size_t free_bytes = 0, total = 0;
    cudaMemGetInfo(&free_bytes, &total);
    Throw(CudaErrorCode(err), "cannot allocate {} bytes on CUDA device {} ({}; {} of {} MiB free)",
          size, device_, cudaGetErrorString(err), free_bytes >> 20, total >> 20);
  }
  std::lock_guard lock(mu_);
  in_use_ += size;
  return p;
}

void DevicePool::Free(void* ptr, std::size_t bytes) {
  if (ptr == nullptr) return;
  const std::size_t size = RoundUp(bytes);
  std::lock_guard lock(mu_);
  free_.emplace(size, ptr);
  cached_ += size;
  in_use_ -= size;
}

void DevicePool::ReleaseCached() {
  std::multimap<std::size_t, void*> blocks;
  {
    std::lock_guard lock(mu_);
    blocks.swap(free_);
    cached_ = 0;
  }
  for (const auto& [size, p] : blocks) {
    if (cudaFree(p) != cudaSuccess) cudaGetLastError();  // the device may be gone
  }
}

std::size_t DevicePool::cached_bytes() const {
  std::lock_guard lock(mu_);
  return cached_;
}

std::size_t DevicePool::in_use_bytes() const {
  std::lock_guard lock(mu_);
  return in_use_;
}

void* AllocatePinned(std::size_t bytes) {
  void* p = nullptr;
  CUDA_CHECK(cudaMallocHost(&p, bytes));
  return p;
}

void FreePinned(void* ptr) {
  if (cudaFreeHost(ptr) != cudaSuccess) cudaGetLastError();
}

Stream::Stream() {
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

Stream::~Stream() {
  if (stream_ != nullptr && cudaStreamDestroy(stream_) != cudaSuccess) cudaGetLastError();
}

void Stream::Synchronize() const {
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

Event::Event(bool timing) {
  CUDA_CHECK(cudaEventCreateWithFlags(&event_, timing ? cudaEventDefault : cudaEventDisableTiming));
}

Event::~Event() {
  if (event_ != nullptr && cudaEventDestroy(event_) != cudaSuccess) cudaGetLastError();
}

void Event::Record(cudaStream_t stream) {
  CUDA_CHECK(cudaEventRecord(event_, stream));
}

void Event::Block(cudaStream_t stream) const {
  CUDA_CHECK(cudaStreamWaitEvent(stream, event_, 0));
}

}  // namespace escala::gpu::internal
