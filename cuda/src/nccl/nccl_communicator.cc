#include "nccl/nccl_communicator.h"

#include <random>

#include <fmt/format.h>

#include "escala/core/error.h"
#include "escala/core/logging.h"

namespace escala::gpu::internal {

namespace {

using Clock = std::chrono::steady_clock;

constexpr char kErrorPrefix[] = "error:";

std::string AsString(const std::vector<std::byte>& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::string Who(int rank, int size) {
  return fmt::format("rank {}/{}", rank, size);
}

}  // namespace

std::unique_ptr<NcclCommunicator> NcclCommunicator::Create(std::unique_ptr<Communicator> host,
                                                           std::unique_ptr<NcclDriver> driver,
                                                           const NcclBootstrap& bootstrap,
                                                           const NcclOptions& options) {
  ESCALA_CHECK(host != nullptr && driver != nullptr, kInvalidArgument,
               "NCCL communicator needs a host communicator and a driver");
  const int rank = host->rank();
  const int world = host->size();
  const std::string who = Who(rank, world);

  // 1. One GPU per rank. Rank 0 adds a nonce that names this communicator's keys in the store.
  std::string mine = driver->DeviceIdentity();
  if (rank == 0) mine += "\n" + std::to_string(std::random_device{}());
  const auto gathered = host->AllGatherV(std::as_bytes(std::span(mine.data(), mine.size())));
  std::vector<std::string> ids;
  std::string nonce;
  for (int r = 0; r < world; ++r) {
    std::string s = AsString(gathered[static_cast<std::size_t>(r)]);
    if (r == 0) {
      const auto nl = s.rfind('\n');
      nonce = s.substr(nl + 1);
      s.resize(nl);
    }
    ids.push_back(std::move(s));
  }
  for (int a = 0; a < world; ++a) {
    for (int b = a + 1; b < world; ++b) {
      // Every rank sees the same list, so every rank refuses (no rank is left waiting).
      ESCALA_CHECK(ids[static_cast<std::size_t>(a)] != ids[static_cast<std::size_t>(b)],
                   kInvalidArgument,
                   "{}: ranks {} and {} both use GPU {}; NCCL needs one GPU per rank (start at "
                   "most one worker per GPU, or name devices with --device cuda:N)",
                   who, a, b, ids[static_cast<std::size_t>(a)]);
    }
  }

  // 2. The unique id: rank 0 creates it and publishes it; the others read it.
  const std::string key = fmt::format("{}/nccl/{}/unique-id", options.name, nonce);
  std::string unique_id;
  if (rank == 0) {
    try {
      unique_id = driver->NewUniqueId();
    } catch (const Error& e) {
      // Let the others fail now rather than at their timeout.
      if (bootstrap.set) bootstrap.set(key, kErrorPrefix + std::string(e.what()));
      if (!bootstrap.set && world > 1) {
        std::string marker = kErrorPrefix + std::string(e.what());
        host->BroadcastString(marker, 0);
      }
      throw;
    }
    if (bootstrap.set) {
      bootstrap.set(key, unique_id);
    } else if (world > 1) {
      std::string copy = unique_id;
      host->BroadcastString(copy, 0);
    }
  } else {
    if (bootstrap.get) {
      try {
        unique_id = bootstrap.get(key, options.init_timeout);
      } catch (const Error& e) {
        Throw(ErrorCode::kDeadlineExceeded,
              "{}: the NCCL unique id from rank 0 did not arrive within {} ms ({})", who,
              options.init_timeout.count(), e.what());
      }
    } else {
      host->BroadcastString(unique_id, 0);
    }
    ESCALA_CHECK(unique_id.rfind(kErrorPrefix, 0) != 0, kAborted,
                 "{}: rank 0 could not create the NCCL communicator: {}", who,
                 unique_id.substr(sizeof(kErrorPrefix) - 1));
  }

  // 3. Non-blocking initialisation, bounded by init_timeout.
  driver->StartInit(unique_id, world, rank);
  const auto deadline = Clock::now() + options.init_timeout;
  for (;;) {
    std::string error;
    const auto state = driver->Poll(&error);
    if (state == NcclDriver::State::kReady) break;
    if (state == NcclDriver::State::kFailed) {
      driver->Abort();
      Throw(ErrorCode::kUnavailable, "{}: NCCL initialisation failed: {}", who, error);
    }
    if (Clock::now() >= deadline) {
      driver->Abort();
      Throw(ErrorCode::kDeadlineExceeded,
            "{}: NCCL initialisation did not complete within {} ms (a rank that never started, "
            "or no network path between the GPUs); the NCCL communicator was aborted",
            who, options.init_timeout.count());
    }
    std::this_thread::sleep_for(std::min(options.poll_interval, std::chrono::milliseconds(10)));
  }
  ESCALA_LOG_DEBUG("{}: NCCL communicator ready on {}", who, ids[static_cast<std::size_t>(rank)]);
  return std::unique_ptr<NcclCommunicator>(
      new NcclCommunicator(std::move(host), std::move(driver), bootstrap, options));
}

NcclCommunicator::NcclCommunicator(std::unique_ptr<Communicator> host,
                                   std::unique_ptr<NcclDriver> driver,
                                   const NcclBootstrap& bootstrap, const NcclOptions& options)
    : host_(std::move(host)),
      driver_(std::move(driver)),
      bootstrap_(bootstrap),
      options_(options),
      rank_(host_->rank()),
      size_(host_->size()) {
  set_default_timeout(host_->default_timeout());
  watchdog_ = std::thread([this] { WatchdogLoop(); });
  if (bootstrap_.add_failure_handler) {
    // A failure the job relays (another worker died) aborts NCCL here too.
    failure_handler_ = bootstrap_.add_failure_handler([this](const Status& s) { Abort(s); });
  }
}

NcclCommunicator::~NcclCommunicator() {
  if (failure_handler_ >= 0 && bootstrap_.remove_failure_handler) {
    bootstrap_.remove_failure_handler(failure_handler_);
  }
  std::deque<Pending> left;
  bool healthy;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    left.swap(pending_);
    healthy = poison_.ok() && left.empty();
  }
  cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  try {
    if (healthy) {
      driver_->Destroy();
    } else {
      driver_->Abort();
    }
  } catch (const std::exception& e) {
    ESCALA_LOG_WARN("{}: closing the NCCL communicator: {}", Who(rank_, size_), e.what());
  }
  for (auto& p : left) {
    p.work->Complete(Status(ErrorCode::kCancelled,
                            fmt::format("{}: {} cancelled: the NCCL communicator was destroyed",
                                        Who(rank_, size_), p.what)));
  }
}

Status NcclCommunicator::poison_status() const {
  std::lock_guard lock(mu_);
  return poison_;
}

std::shared_ptr<Work> NcclCommunicator::EnqueueDevice(std::string_view name,
                                                      const CollectiveOptions& options,
                                                      const StartFn& start) {
  std::string what;
  {
    std::lock_guard lock(mu_);
    what = fmt::format("{} #{} (tag {})", name, next_seq_++, options.tag);
    if (!poison_.ok()) {
      return Work::Done(
          Status(ErrorCode::kAborted,
                 fmt::format("{}: {} refused: the NCCL communicator failed earlier: {}",
                             Who(rank_, size_), what, poison_.message())));
    }
  }
  std::unique_ptr<NcclDriver::Op> op;
  try {
    op = start();
  } catch (const Error& e) {
    const Status s(e.code(),
                   fmt::format("{}: {} could not start: {}", Who(rank_, size_), what, e.what()));
    Fail(s);
    return Work::Done(s);
  }
  auto work = std::make_shared<Work>();
  const auto timeout = ResolveTimeout(options);
  {
    std::lock_guard lock(mu_);
    if (!poison_.ok()) {
      // Failed while starting (an abort from another thread): the op will never be tracked.
      work->Complete(
          Status(ErrorCode::kAborted,
                 fmt::format("{}: {} aborted: {}", Who(rank_, size_), what, poison_.message())));
      return work;
    }
    pending_.push_back(Pending{std::move(op), work, Clock::now() + timeout, timeout, what});
  }
  cv_.notify_all();
  return work;
}

void NcclCommunicator::WatchdogLoop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (pending_.empty()) {
      cv_.wait(lock, [&] { return stop_ || !pending_.empty(); });
      continue;
    }
    // Operations complete in issue order (one communication stream).
    while (!pending_.empty() && pending_.front().op->Done()) {
      Pending done = std::move(pending_.front());
      pending_.pop_front();
      lock.unlock();
      done.work->Complete(Status::Ok());
      lock.lock();
    }
    if (pending_.empty() || stop_) continue;
    const std::string what = pending_.front().what;
    const auto timeout = pending_.front().timeout;
    const bool expired = Clock::now() >= pending_.front().deadline;
    lock.unlock();
    std::string error;
    if (driver_->Poll(&error) == NcclDriver::State::kFailed) {
      Fail(Status(ErrorCode::kAborted,
                  fmt::format("{}: {} failed: NCCL reported an asynchronous error: {} (nccl); the "
                              "NCCL communicator was aborted",
                              Who(rank_, size_), what, error)));
    } else if (expired) {
      Fail(Status(ErrorCode::kDeadlineExceeded,
                  fmt::format("{}: {} timed out after {} ms on the GPU (nccl; a peer that stopped "
                              "or never issued it); the NCCL communicator was aborted",
                              Who(rank_, size_), what, timeout.count())));
    }
    lock.lock();
    if (!pending_.empty() && !stop_) cv_.wait_for(lock, options_.poll_interval);
  }
}

void NcclCommunicator::Fail(const Status& status) {
  std::deque<Pending> failed;
  {
    std::lock_guard lock(mu_);
    if (!poison_.ok()) return;
    poison_ = status;
    failed.swap(pending_);
  }
  ESCALA_LOG_ERROR("{}", status.message());
  // Aborting NCCL first releases kernels that wait for a peer; then the host communicator tells
  // the other ranks.
  driver_->Abort();
  host_->Abort(status);
  for (auto& p : failed) p.work->Complete(status);
}

void NcclCommunicator::Abort(const Status& reason) {
  Fail(Status(ErrorCode::kAborted,
              fmt::format("{}: aborted: {}", Who(rank_, size_), reason.message())));
}

std::shared_ptr<Work> NcclCommunicator::AllReduceAsync(void* data, std::size_t count, DType dtype,
                                                       ReduceOp op,
                                                       const CollectiveOptions& options) {
  if (options.location == MemoryLocation::kHost) {
    return host_->AllReduceAsync(data, count, dtype, op, options);
  }
  return EnqueueDevice("allreduce", options,
                       [&] { return driver_->AllReduce(data, count, dtype, op, options.stream); });
}

std::shared_ptr<Work> NcclCommunicator::BroadcastAsync(void* data, std::size_t bytes, int root,
                                                       const CollectiveOptions& options) {
  if (options.location == MemoryLocation::kHost) {
    return host_->BroadcastAsync(data, bytes, root, options);
  }
  return EnqueueDevice("broadcast", options,
                       [&] { return driver_->Broadcast(data, bytes, root, options.stream); });
}

std::shared_ptr<Work> NcclCommunicator::AllGatherAsync(const void* in, std::size_t bytes, void* out,
                                                       const CollectiveOptions& options) {
  if (options.location == MemoryLocation::kHost) {
    return host_->AllGatherAsync(in, bytes, out, options);
  }
  return EnqueueDevice("allgather", options,
                       [&] { return driver_->AllGather(in, bytes, out, options.stream); });
}

std::shared_ptr<Work> NcclCommunicator::AllGatherVAsync(std::span<const std::byte> in,
                                                        std::vector<std::vector<std::byte>>* out,
                                                        const CollectiveOptions& options) {
  ESCALA_CHECK(options.location == MemoryLocation::kHost, kInvalidArgument,
               "allgatherv works on host memory only");
  return host_->AllGatherVAsync(in, out, options);
}

std::shared_ptr<Work> NcclCommunicator::BarrierAsync(const CollectiveOptions& options) {
  return host_->BarrierAsync(options);
}

}  // namespace escala::gpu::internal
