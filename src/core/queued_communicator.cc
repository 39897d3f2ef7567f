#include "escala/core/queued_communicator.h"

#include <fmt/format.h>

namespace escala {

std::string QueuedCommunicator::OpContext::Describe(std::string_view op) const {
  if (tag != 0) return fmt::format("{} #{} (tag {})", op, seq, tag);
  return fmt::format("{} #{}", op, seq);
}

QueuedCommunicator::QueuedCommunicator() : worker_([this] { WorkerLoop(); }) {}

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
  cv_.notify_one();
  return work;
}

void QueuedCommunicator::WorkerLoop() {
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      if (stopping_) {
        // Fail what is left rather than run collectives on a communicator being destroyed.
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
    OpContext ctx;
    ctx.seq = task.seq;
    ctx.timeout = ResolveTimeout(task.options);
    ctx.deadline = std::chrono::steady_clock::now() + ctx.timeout;
    ctx.tag = task.options.tag;
    ctx.location = task.options.location;

    const Status poisoned = poison_status();
    if (!poisoned.ok()) {
      {
        std::lock_guard lock(mu_);
        running_ = false;
      }
      task.work->Complete(
          Status(ErrorCode::kAborted,
                 fmt::format("rank {}/{}: {} not started: communicator failed earlier: {}", rank(),
                             size(), ctx.Describe(task.name), poisoned.ToString())));
      continue;
    }
    Status result;
    try {
      task.fn(ctx);
    } catch (...) {
      result = Status::FromCurrentException();
    }
    if (!result.ok()) Poison(result);
    {
      std::lock_guard lock(mu_);
      running_ = false;
    }
    task.work->Complete(std::move(result));
  }
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
