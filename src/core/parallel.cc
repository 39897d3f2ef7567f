#include "escala/core/parallel.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <sched.h>

#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "escala/core/error.h"
#include "escala/core/logging.h"

namespace escala {
namespace {

std::mutex g_mu;
std::unique_ptr<tbb::global_control> g_control;  // guarded by g_mu
int g_threads = 0;                               // guarded by g_mu; 0: not yet initialised
bool g_explicit = false;                         // guarded by g_mu

// Requires g_mu.
int DefaultThreads() {
  g_explicit = false;
  if (const char* env = std::getenv("ESCALA_NUM_THREADS"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v > 0 && v < 4096) {
      g_explicit = true;
      return static_cast<int>(v);
    }
    ESCALA_LOG_WARN("ignoring ESCALA_NUM_THREADS='{}': expected a positive integer", env);
  }
  return HardwareConcurrency();
}

int EnsureInit() {
  std::lock_guard lock(g_mu);
  if (g_threads == 0) {
    g_threads = DefaultThreads();
    g_control = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                      static_cast<std::size_t>(g_threads));
  }
  return g_threads;
}

}  // namespace

int HardwareConcurrency() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return std::max(1, tbb::this_task_arena::max_concurrency());
}

int SetNumThreads(int threads) {
  ESCALA_CHECK(threads >= 0, kInvalidArgument, "thread count must be >= 0, got {}", threads);
  std::lock_guard lock(g_mu);
  g_threads = threads == 0 ? DefaultThreads() : threads;
  if (threads > 0) g_explicit = true;
  g_control.reset();
  g_control = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                    static_cast<std::size_t>(g_threads));
  return g_threads;
}

int NumThreads() {
  return EnsureInit();
}

bool NumThreadsIsExplicit() {
  EnsureInit();
  std::lock_guard lock(g_mu);
  return g_explicit;
}

void ParallelFor(std::size_t n, std::size_t grain,
                 FunctionRef<void(std::size_t, std::size_t)> body) {
  if (n == 0) return;
  const int threads = EnsureInit();
  if (grain == 0) grain = std::max<std::size_t>(1, n / (static_cast<std::size_t>(threads) * 8));
  if (threads == 1 || n <= grain) {
    body(0, n);
    return;
  }
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, grain),
                    [&](const tbb::blocked_range<std::size_t>& r) { body(r.begin(), r.end()); });
}

void ParallelForStatic(std::size_t n, std::size_t parts,
                       FunctionRef<void(std::size_t, std::size_t, std::size_t)> body) {
  if (parts == 0) return;
  EnsureInit();
  auto chunk = [&](std::size_t p) {
    const std::size_t begin = n * p / parts;
    const std::size_t end = n * (p + 1) / parts;
    body(p, begin, end);
  };
  if (parts == 1) {
    chunk(0);
    return;
  }
  tbb::parallel_for(std::size_t{0}, parts, [&](std::size_t p) { chunk(p); });
}

struct ThreadArena::Impl {
  explicit Impl(int threads) : arena(threads) {}
  tbb::task_arena arena;
};

ThreadArena::ThreadArena(int threads)
    : threads_(threads > 0 ? threads : HardwareConcurrency()),
      impl_(std::make_unique<Impl>(threads_)) {}

ThreadArena::~ThreadArena() = default;

void ThreadArena::Run(const std::function<void()>& fn) {
  impl_->arena.execute(fn);
}

}  // namespace escala
