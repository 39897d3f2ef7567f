// Device memory, streams, events and pinned host memory for the CUDA backend (host code).
//
// Device allocations come from a per-device caching pool: cudaMalloc'd blocks are kept when
// freed and handed out again for requests of the same size class, so that a training loop that
// allocates per Fit (or a test per case) does not pay cudaMalloc/cudaFree each time. The pool
// never synchronises: memory is returned to it only after the streams that used it are done
// (every owner here synchronises its streams before releasing buffers).
//
// Thread-safety: the pool is internally locked; the RAII types are owned by one thread.
#ifndef ESCALA_CUDA_SRC_MEMORY_H_
#define ESCALA_CUDA_SRC_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <cuda_runtime.h>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace escala::gpu::internal {

// Makes `device` current for the calling thread (CUDA's current device is per thread).
void UseDevice(int device);

class DevicePool {
 public:
  // The pool of `device` (created on first use, kept for the life of the process).
  static DevicePool& For(int device);

  // At least `bytes` bytes of device memory, 256-byte aligned. Throws kResourceExhausted when
  // the device is full even after the cache was released.
  void* Allocate(std::size_t bytes);
  // Returns a block from Allocate(bytes) to the cache.
  void Free(void* ptr, std::size_t bytes);
  // Releases every cached block to the driver.
  void ReleaseCached();

  std::size_t cached_bytes() const;
  std::size_t in_use_bytes() const;
  // Size class of a request: powers of two up to 1 MiB, then multiples of 1 MiB.
  static std::size_t RoundUp(std::size_t bytes);

 private:
  explicit DevicePool(int device) : device_(device) {}
  int device_;
  mutable std::mutex mu_;
  std::multimap<std::size_t, void*> free_;  // guarded by mu_: size class -> block
  std::size_t cached_ = 0;                  // guarded by mu_
  std::size_t in_use_ = 0;                  // guarded by mu_
};

// A typed device buffer from the pool. Movable.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(int device, std::size_t count) { Reset(device, count); }
  ~DeviceBuffer() { Release(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      Release();
      std::swap(ptr_, o.ptr_);
      std::swap(count_, o.count_);
      std::swap(device_, o.device_);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  // Replaces the buffer with one of `count` elements (contents undefined).
  void Reset(int device, std::size_t count) {
    Release();
    device_ = device;
    count_ = count;
    if (count > 0) ptr_ = static_cast<T*>(DevicePool::For(device).Allocate(count * sizeof(T)));
  }
  void Release() {
    if (ptr_ != nullptr) DevicePool::For(device_).Free(ptr_, count_ * sizeof(T));
    ptr_ = nullptr;
    count_ = 0;
  }
  T* data() const { return ptr_; }
  std::size_t size() const { return count_; }
  std::size_t bytes() const { return count_ * sizeof(T); }

 private:
  T* ptr_ = nullptr;
  std::size_t count_ = 0;
  int device_ = 0;
};

// Page-locked host memory (cudaMallocHost), so that copies run asynchronously at full speed.
template <typename T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(std::size_t count) { Reset(count); }
  ~PinnedBuffer() { Release(); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  void Reset(std::size_t count);
  void Release();
  T* data() const { return ptr_; }
  std::size_t size() const { return count_; }

 private:
  T* ptr_ = nullptr;
  std::size_t count_ = 0;
};

void* AllocatePinned(std::size_t bytes);
void FreePinned(void* ptr);

template <typename T>
void PinnedBuffer<T>::Reset(std::size_t count) {
  Release();
  if (count > 0) ptr_ = static_cast<T*>(AllocatePinned(count * sizeof(T)));
  count_ = count;
}
template <typename T>
void PinnedBuffer<T>::Release() {
  if (ptr_ != nullptr) FreePinned(ptr_);
  ptr_ = nullptr;
  count_ = 0;
}

// A non-blocking stream (no implicit synchronisation with the legacy default stream).
class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }
  void Synchronize() const;

 private:
  cudaStream_t stream_ = nullptr;
};

// An event without timing (cheap to record and wait on).
class Event {
 public:
  explicit Event(bool timing = false);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return event_; }
  void Record(cudaStream_t stream);
  // Makes `stream` wait for the last Record (on the device; the host does not block).
  void Block(cudaStream_t stream) const;

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace escala::gpu::internal

#endif  // ESCALA_CUDA_SRC_MEMORY_H_
