// A base for Communicator implementations whose collectives execute one at a time, in issue
// order, on a background thread owned by the communicator — or on the thread that waits for an
// operation the background thread has not started yet (Work::Wait() then runs it and any earlier
// queued ones itself, which spares a synchronous collective two thread hand-offs).
//
// Derived classes implement the blocking Run* methods; this class turns them into the
// asynchronous interface, resolves timeouts into deadlines, numbers operations (the sequence
// number used in error messages and for matching across ranks), and poisons the communicator
// after the first failure so that no later operation runs on a group in an unknown state.
//
// Thread-safety: as Communicator. Run* methods are called one at a time, in issue order, from the
// worker thread or from a thread blocked in Work::Wait(); never concurrently. They must not rely
// on per-thread state (a GPU backend selects its device in each call).
#ifndef ESCALA_CORE_QUEUED_COMMUNICATOR_H_
#define ESCALA_CORE_QUEUED_COMMUNICATOR_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "escala/core/communicator.h"

namespace escala {

class QueuedCommunicator : public Communicator {
 public:
  ~QueuedCommunicator() override;

  std::shared_ptr<Work> AllReduceAsync(void* data, std::size_t count, DType dtype, ReduceOp op,
                                       const CollectiveOptions& options) final;
  std::shared_ptr<Work> BroadcastAsync(void* data, std::size_t bytes, int root,
                                       const CollectiveOptions& options) final;
  std::shared_ptr<Work> AllGatherAsync(const void* in, std::size_t bytes, void* out,
                                       const CollectiveOptions& options) final;
  std::shared_ptr<Work> AllGatherVAsync(std::span<const std::byte> in,
                                        std::vector<std::vector<std::byte>>* out,
                                        const CollectiveOptions& options) final;
  std::shared_ptr<Work> BarrierAsync(const CollectiveOptions& options) final;
  void Abort(const Status& reason) final;

  // The first failure, or OK while the communicator is healthy.
  Status poison_status() const;

 protected:
  QueuedCommunicator();

  struct OpContext {
    std::uint64_t seq = 0;  // 0-based index of this collective on this communicator
    std::chrono::steady_clock::time_point deadline;
    std::chrono::milliseconds timeout{0};
    std::uint64_t tag = 0;
    MemoryLocation location = MemoryLocation::kHost;
    // "allreduce #12 (tag 7)": for error messages.
    std::string Describe(std::string_view op) const;
  };

  // Blocking implementations; throw escala::Error on failure. Called one at a time (see above).
  virtual void RunAllReduce(void* data, std::size_t count, DType dtype, ReduceOp op,
                            const OpContext& ctx) = 0;
  virtual void RunBroadcast(void* data, std::size_t bytes, int root, const OpContext& ctx) = 0;
  virtual void RunAllGather(const void* in, std::size_t bytes, void* out, const OpContext& ctx) = 0;
  virtual void RunAllGatherV(std::span<const std::byte> in,
                             std::vector<std::vector<std::byte>>* out, const OpContext& ctx) = 0;
  virtual void RunBarrier(const OpContext& ctx) = 0;
  // Called once, from the thread that poisons the communicator (Abort() or a failed operation),
  // so the transport can wake blocked operations and tell peers. Must not block for long.
  virtual void OnPoisoned(const Status& reason) = 0;

  // Derived destructors call this first, so no Run* executes on a half-destroyed object.
  // Pending operations fail with kCancelled.
  void StopWorker();

 private:
  std::shared_ptr<Work> Enqueue(std::string_view name, const CollectiveOptions& options,
                                std::function<void(const OpContext&)> fn);
  void WorkerLoop();
  // Runs queued operations on the calling thread up to `target`, if none is running.
  void RunInline(const Work* target);
  void Poison(const Status& reason);
  struct InlineGate;

  struct Task {
    std::string name;
    CollectiveOptions options;
    std::uint64_t seq;
    std::function<void(const OpContext&)> fn;
    std::shared_ptr<Work> work;
  };
  // Runs one dequeued operation (running_ is set) and completes its Work.
  void Execute(Task task);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;      // guarded by mu_
  std::uint64_t next_seq_ = 0;  // guarded by mu_
  bool stopping_ = false;       // guarded by mu_
  bool running_ = false;        // guarded by mu_: a task is executing (worker or inline)
  Status poison_;               // guarded by mu_
  std::shared_ptr<InlineGate> gate_;
  std::thread worker_;
};

}  // namespace escala

#endif  // ESCALA_CORE_QUEUED_COMMUNICATOR_H_
