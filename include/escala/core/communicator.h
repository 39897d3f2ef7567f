// The collective-communication interface that every data-parallel component is written against.
//
// A Communicator connects `size()` ranks; each process (or thread) holds the one for its own
// rank. Collectives must be issued in the same order on every rank (as in MPI, NCCL and Gloo):
// the n-th collective call on one rank is matched with the n-th call on every other rank. A
// mismatch in kind, element count or dtype is detected and reported as kInvalidArgument on every
// rank rather than silently corrupting data.
//
// Every collective is asynchronous: the *Async call enqueues it and returns a Work handle; the
// caller must keep the buffers alive and untouched until Work::Wait() returns. Operations on one
// communicator complete in issue order. The synchronous helpers call Async and Wait.
//
// Nothing waits forever. Each operation has a timeout (CollectiveOptions::timeout, or the
// communicator's default), counted from the moment the operation starts executing. When it
// expires, or when any rank fails or calls Abort(), the communicator is poisoned: the pending
// operation and every later one fail (kDeadlineExceeded for the rank that timed out, kAborted on
// the others), with a message naming the rank, the peer(s), the operation and its sequence
// number and tag. A poisoned communicator cannot be repaired; recreate the group.
//
// Implementations: MakeSelfCommunicator() (size 1), ThreadGroup (ranks as threads in one
// process; tests and multi-threaded local training), the gRPC ring (distributed) and NCCL (cuda).
//
// Thread-safety: issue collectives on one communicator from one thread at a time (Wait() may be
// called from any thread). Abort() may be called from any thread at any time.
#ifndef ESCALA_CORE_COMMUNICATOR_H_
#define ESCALA_CORE_COMMUNICATOR_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "escala/core/dtype.h"
#include "escala/core/error.h"

namespace escala {

enum class ReduceOp : std::uint8_t { kSum, kAvg, kMax, kMin };
std::string_view ReduceOpName(ReduceOp op);

// Where a collective's buffers live. Host memory works everywhere; device memory only with a
// communicator built for it (NCCL).
enum class MemoryLocation : std::uint8_t { kHost, kDevice };

struct CollectiveOptions {
  // Zero: the communicator's default timeout.
  std::chrono::milliseconds timeout{0};
  // Caller-chosen label shown in errors and logs (e.g. the training step); not matched.
  std::uint64_t tag = 0;
  MemoryLocation location = MemoryLocation::kHost;
  // kDevice only: the CUDA stream (a cudaStream_t; null: the legacy default stream) that
  // produces the buffers. A device communicator orders the collective after the work enqueued on
  // it so far, and the work enqueued on it afterwards after the collective.
  void* stream = nullptr;
};

// Completion handle of an asynchronous collective.
class Work {
 public:
  Work() = default;
  Work(const Work&) = delete;
  Work& operator=(const Work&) = delete;

  // Blocks until the operation finished; throws its error (escala::Error) if it failed.
  void Wait();
  // Blocks at most `timeout`; returns whether the operation finished (it may have failed).
  bool WaitFor(std::chrono::milliseconds timeout);
  bool IsCompleted() const;
  // The outcome; OK until completion.
  Status status() const;

  // For implementations: records the outcome and wakes waiters. Called exactly once.
  void Complete(Status status);

  // For implementations: lets Wait() run the operation on the waiting thread when it has not
  // started yet, instead of sleeping while another thread runs it (QueuedCommunicator does this:
  // a synchronous collective then costs no thread hand-off). `run` is called without any lock of
  // this Work held; it returns when the operation is complete or when it declined to run it.
  // WaitFor() never runs it (it would not honour its timeout).
  void SetInlineRunner(std::function<void()> run);

  // A Work that is already complete.
  static std::shared_ptr<Work> Done(Status status = Status::Ok());

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;                    // guarded by mu_
  Status status_;                        // guarded by mu_
  std::function<void()> inline_runner_;  // guarded by mu_
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // A short description for logs and errors ("threads", "grpc-ring", "nccl").
  virtual std::string_view backend() const = 0;

  // In place: data[i] = op over ranks of data[i], count elements of dtype. kAvg divides the sum
  // by size() (integer division for int64).
  virtual std::shared_ptr<Work> AllReduceAsync(void* data, std::size_t count, DType dtype,
                                               ReduceOp op, const CollectiveOptions& options) = 0;
  // Copies `bytes` bytes from root's buffer into every other rank's buffer.
  virtual std::shared_ptr<Work> BroadcastAsync(void* data, std::size_t bytes, int root,
                                               const CollectiveOptions& options) = 0;
  // Every rank contributes `bytes` bytes; out (size() * bytes) receives rank r's at r * bytes.
  virtual std::shared_ptr<Work> AllGatherAsync(const void* in, std::size_t bytes, void* out,
                                               const CollectiveOptions& options) = 0;
  // Variable-size all-gather of host bytes: (*out)[r] receives rank r's contribution. Used to
  // exchange serialised statistics and metadata.
  virtual std::shared_ptr<Work> AllGatherVAsync(std::span<const std::byte> in,
                                                std::vector<std::vector<std::byte>>* out,
                                                const CollectiveOptions& options) = 0;
  virtual std::shared_ptr<Work> BarrierAsync(const CollectiveOptions& options) = 0;

  // Poisons the communicator: pending and later operations fail with kAborted carrying
  // `reason`, on this rank and (as soon as the transport can tell them) on every other rank.
  virtual void Abort(const Status& reason) = 0;

  std::chrono::milliseconds default_timeout() const { return default_timeout_; }
  void set_default_timeout(std::chrono::milliseconds t) { default_timeout_ = t; }

  // ---- synchronous helpers -----------------------------------------------------------------
  template <typename T>
  void AllReduce(std::span<T> data, ReduceOp op, const CollectiveOptions& options = {}) {
    AllReduceAsync(data.data(), data.size(), kDTypeOf<T>, op, options)->Wait();
  }
  template <typename T>
  T AllReduceScalar(T value, ReduceOp op, const CollectiveOptions& options = {}) {
    AllReduce(std::span<T>(&value, 1), op, options);
    return value;
  }
  template <typename T>
  void Broadcast(std::span<T> data, int root, const CollectiveOptions& options = {}) {
    BroadcastAsync(data.data(), data.size_bytes(), root, options)->Wait();
  }
  // Broadcasts a string of any length from root (two collectives: length, then bytes).
  void BroadcastString(std::string& value, int root, const CollectiveOptions& options = {});
  template <typename T>
  std::vector<T> AllGather(std::span<const T> in, const CollectiveOptions& options = {}) {
    std::vector<T> out(in.size() * static_cast<std::size_t>(size()));
    AllGatherAsync(in.data(), in.size_bytes(), out.data(), options)->Wait();
    return out;
  }
  std::vector<std::vector<std::byte>> AllGatherV(std::span<const std::byte> in,
                                                 const CollectiveOptions& options = {}) {
    std::vector<std::vector<std::byte>> out;
    AllGatherVAsync(in, &out, options)->Wait();
    return out;
  }
  void Barrier(const CollectiveOptions& options = {}) { BarrierAsync(options)->Wait(); }

 protected:
  std::chrono::milliseconds ResolveTimeout(const CollectiveOptions& options) const {
    return options.timeout.count() > 0 ? options.timeout : default_timeout_;
  }

 private:
  std::chrono::milliseconds default_timeout_{std::chrono::minutes(5)};
};

// The communicator of a single-process job: every collective is the identity (kAvg divides by
// one), so single-worker training runs the same code path as N workers.
std::unique_ptr<Communicator> MakeSelfCommunicator();

// ---- reductions shared by the host-memory implementations ----------------------------------

// acc[i] = acc[i] op in[i] for count elements (kAvg accumulates a sum).
void ReduceInto(void* acc, const void* in, std::size_t count, DType dtype, ReduceOp op);
// Final step of kAvg: divides count elements by world.
void DivideBy(void* data, std::size_t count, DType dtype, int world);

}  // namespace escala

#endif  // ESCALA_CORE_COMMUNICATOR_H_
