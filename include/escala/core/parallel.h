// Thread-level parallelism on oneTBB.
//
// escala runs its parallel loops (parsing, feature transforms, gradient sums) on oneTBB. The
// number of threads is process-wide: SetNumThreads() (the CLI's --threads flag and the
// ESCALA_NUM_THREADS environment variable) caps it; 0 means one thread per available core.
// A ThreadArena isolates a component (e.g. a prediction server) on its own set of threads.
//
// Loops take chunks, not single indices, so that the per-call cost of the type-erased body is
// paid once per chunk rather than once per element.
//
// Thread-safety: ParallelFor may be called from any thread, including from inside a body.
#ifndef ESCALA_CORE_PARALLEL_H_
#define ESCALA_CORE_PARALLEL_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace escala {

// A non-owning reference to a callable: what parallel loops take instead of std::function, so that
// passing a lambda never allocates (hot loops call them once per batch). The callable must outlive
// the call it is passed to.
template <typename Signature>
class FunctionRef;

template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
  FunctionRef(F&& f) noexcept  // NOLINT(google-explicit-constructor): a reference, like a span
      : object_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* o, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<Args>(args)...);
        }) {}
  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*call_)(void*, Args...);
};

// Caps the threads used by escala's parallel loops, process-wide. 0 restores the default
// (ESCALA_NUM_THREADS if set, else all available cores). Returns the effective count.
int SetNumThreads(int threads);
// The effective cap.
int NumThreads();
// Whether the cap was chosen (SetNumThreads(n > 0) or ESCALA_NUM_THREADS) rather than defaulted
// to all cores: a distributed worker sharing a node divides the cores only when it was not.
bool NumThreadsIsExplicit();
// Cores available to this process (its CPU affinity mask).
int HardwareConcurrency();

// Calls body(begin, end) on disjoint chunks covering [0, n), in parallel. grain is the smallest
// chunk worth a task (0: choose from n and the thread count). Exceptions thrown by the body
// propagate to the caller (the first one wins; the other chunks may still run).
void ParallelFor(std::size_t n, std::size_t grain,
                 FunctionRef<void(std::size_t begin, std::size_t end)> body);

// Splits [0, n) into exactly `parts` contiguous chunks, calling body(part, begin, end) for each
// in parallel. Use when the partition must not depend on scheduling (deterministic reductions:
// each part accumulates its own partial and the caller combines them in part order).
void ParallelForStatic(
    std::size_t n, std::size_t parts,
    FunctionRef<void(std::size_t part, std::size_t begin, std::size_t end)> body);

// A private set of worker threads. Work submitted through Run() uses only this arena's threads,
// so that, e.g., a server's request handling cannot be starved by a training loop.
class ThreadArena {
 public:
  explicit ThreadArena(int threads);
  ~ThreadArena();
  ThreadArena(const ThreadArena&) = delete;
  ThreadArena& operator=(const ThreadArena&) = delete;

  int threads() const { return threads_; }
  // Runs fn inside the arena (ParallelFor calls within fn use the arena's threads), blocking.
  void Run(const std::function<void()>& fn);

 private:
  struct Impl;
  int threads_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace escala

#endif  // ESCALA_CORE_PARALLEL_H_
