#include "escala/core/queued_communicator.h"

#include <algorithm>

#include <fmt/format.h>

namespace escala {

std::string QueuedCommunicator::OpContext::Describe(std::string_view op) const {
  if (tag != 0) return fmt::format("{} #{} (tag {})", op, seq, tag);
  return fmt::format("{} #{}", op, seq);
}

// Lets Work::Wait() reach the communicator while it exists: the owner is cleared (under mu, so
// after any operation running inline has finished) before the communicator goes away.
struct QueuedCommunicator::InlineGate {
  std::mutex mu;
  QueuedCommunicator* owner = nullptr;  // guarded by mu
};

QueuedCommunicator::QueuedCommunicator()
    : gate_(std::make_shared<InlineGate>()), worker_([this] { WorkerLoop(); }) {
  gate_->owner = this;
}

QueuedCommunicator::~QueuedCommunicator() {
  // Derived classes must have called StopWorker(); calling it again is harmless.
  StopWorker();
}

void QueuedCommunicator::StopWorker() {
  bool running = false;
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !worker_.joinable()) return;
    stopping_ = true;
    running = running_;
  }
  // A collective still blocked on its peers would hold up destruction until its deadline:
  // poison the communicator so that the transport wakes it now.
  if (running) {
    Poison(Status(ErrorCode::kCancelled, "communicator destroyed while a collective was running"));
  }
  cv_.notify_all();
  {
    // Waits for an operation running inline on a waiting thread (poisoned above, so it ends).
    std::lock_guard gate(gate_->mu);
    gate_->owner = nullptr;
  }
  if (worker_.joinable() && worker_.get_id() != std::this_thread::get_id()) worker_.join();
}

Status QueuedCommunicator::poison_status() const {
  std::lock_guard lock(mu_);
  return poison_;
}

void QueuedCommunicator::Poison(const Status& reason) {
  {
    std::lock_guard lock(mu_);
    if (!poison_.ok()) return;
    poison_ = reason;
  }
  OnPoisoned(reason);
}

void QueuedCommunicator::Abort(const Status& reason) {
  Poison(reason.ok() ? Status(ErrorCode::kAborted, fmt::format("rank {} aborted", rank()))
                     : reason);
}

std::shared_ptr<Work> QueuedCommunicator::Enqueue(std::string_view name,
                                                  const CollectiveOptions& options,
                                                  std::function<void(const OpContext&)> fn) {
  auto work = std::make_shared<Work>();
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      work->Complete(Status(ErrorCode::kCancelled, "communicator is shutting down"));
      return work;
    }
    queue_.push_back(Task{std::string(name), options, next_seq_++, std::move(fn), work});
  }
  // A thread that waits for this operation before the worker picked it up runs it itself.
  work->SetInlineRunner([gate = gate_, target = work.get()] {
    std::lock_guard lock(gate->mu);
    if (gate->owner != nullptr) gate->owner->RunInline(target);
  });
  cv_.notify_all();
  return work;
}

void QueuedCommunicator::WorkerLoop() {
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mu_);
      // One operation at a time: wait while one runs inline on a waiting thread.
      cv_.wait(lock, [&] { return stopping_ || (!queue_.empty() && !running_); });
      if (stopping_) {
        // Fail what is left rather than run collectives on a communicator being destroyed.
        cv_.wait(lock, [&] { return !running_; });
        while (!queue_.empty()) {
          queue_.front().work->Complete(
              Status(ErrorCode::kCancelled, "communicator destroyed with operations pending"));
          queue_.pop_front();
        }
        return;
      }
      task = std::move(queue_.front());
      queue_.pop_front();
      running_ = true;
    }
    Execute(std::move(task));
  }
}

void QueuedCommunicator::RunInline(const Work* target) {
  for (;;) {
    Task task;
    {
      std::lock_guard lock(mu_);
      if (running_ || stopping_) return;
      const bool queued = std::any_of(queue_.begin(), queue_.end(),
                                      [&](const Task& t) { return t.work.get() == target; });
      if (!queued) return;
      // Operations run in issue order: earlier ones first.
      task = std::move(queue_.front());
      queue_.pop_front();
      running_ = true;
    }
    const bool done = task.work.get() == target;
    Execute(std::move(task));
    if (done) return;
  }
}

void QueuedCommunicator::Execute(Task task) {
  OpContext ctx;
  ctx.seq = task.seq;
  ctx.timeout = ResolveTimeout(task.options);
  ctx.deadline = std::chrono::steady_clock::now() + ctx.timeout;
  ctx.tag = task.options.tag;
  ctx.location = task.options.location;

  Status result;
  const Status poisoned = poison_status();
  if (!poisoned.ok()) {
    result = Status(ErrorCode::kAborted,
                    fmt::format("rank {}/{}: {} not started: communicator failed earlier: {}",
                                rank(), size(), ctx.Describe(task.name), poisoned.ToString()));
  } else {
    try {
      task.fn(ctx);
    } catch (...) {
      result = Status::FromCurrentException();
    }
    if (!result.ok()) Poison(result);
  }
  {
    std::lock_guard lock(mu_);
    running_ = false;
  }
  cv_.notify_all();
  task.work->Complete(std::move(result));
}

std::shared_ptr<Work> QueuedCommunicator::AllReduceAsync(void* data, std::size_t count, DType dtype,
                                                         ReduceOp op,
                                                         const CollectiveOptions& options) {
  return Enqueue("allreduce", options,
                 [=, this](const OpContext& ctx) { RunAllReduce(data, count, dtype, op, ctx); });
}

std::shared_ptr<Work> QueuedCommunicator::BroadcastAsync(void* data, std::size_t bytes, int root,
                                                         const CollectiveOptions& options) {
  if (root < 0 || root >= size()) {
    return Work::Done(
        Status(ErrorCode::kInvalidArgument,
               fmt::format("broadcast root {} out of range for world size {}", root, size())));
  }
  return Enqueue("broadcast", options,
                 [=, this](const OpContext& ctx) { RunBroadcast(data, bytes, root, ctx); });
}

std::shared_ptr<Work> QueuedCommunicator::AllGatherAsync(const void* in, std::size_t bytes,
                                                         void* out,
                                                         const CollectiveOptions& options) {
  return Enqueue("allgather", options,
                 [=, this](const OpContext& ctx) { RunAllGather(in, bytes, out, ctx); });
}

std::shared_ptr<Work> QueuedCommunicator::AllGatherVAsync(std::span<const std::byte> in,
                                                          std::vector<std::vector<std::byte>>* out,
                                                          const CollectiveOptions& options) {
  return Enqueue("allgatherv", options,
                 [=, this](const OpContext& ctx) { RunAllGatherV(in, out, ctx); });
}

std::shared_ptr<Work> QueuedCommunicator::BarrierAsync(const CollectiveOptions& options) {
  return Enqueue("barrier", options, [this](const OpContext& ctx) { RunBarrier(ctx); });
}

}  // namespace escala
