#include "escala/core/thread_communicator.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>

#include "escala/core/queued_communicator.h"

namespace escala {
namespace {

enum class Kind { kAllReduce, kBroadcast, kAllGather, kAllGatherV, kBarrier };

std::string_view KindName(Kind k) {
  switch (k) {
    case Kind::kAllReduce:
      return "allreduce";
    case Kind::kBroadcast:
      return "broadcast";
    case Kind::kAllGather:
      return "allgather";
    case Kind::kAllGatherV:
      return "allgatherv";
    case Kind::kBarrier:
      return "barrier";
  }
  return "?";
}

// What one rank brought to a collective.
struct Arrival {
  bool present = false;
  Kind kind = Kind::kBarrier;
  std::size_t count = 0;  // elements (allreduce) or bytes (broadcast, allgather)
  DType dtype = DType::kFloat32;
  ReduceOp op = ReduceOp::kSum;
  int root = 0;
  void* buf = nullptr;       // allreduce/broadcast buffer, allgather output
  const void* in = nullptr;  // allgather input
  std::span<const std::byte> vin;
  std::vector<std::vector<std::byte>>* vout = nullptr;
};

// One collective, as met by all ranks.
struct Meeting {
  std::vector<Arrival> ranks;
  int arrived = 0;
  int done = 0;
  int left = 0;
  Status mismatch;  // set by the last arriver if the ranks disagree
};

std::string RankList(const std::vector<int>& ranks) {
  std::string s;
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(ranks[i]);
  }
  return s;
}

Status Validate(const Meeting& m) {
  const Arrival& a = m.ranks[0];
  for (std::size_t r = 1; r < m.ranks.size(); ++r) {
    const Arrival& b = m.ranks[r];
    std::string diff;
    if (b.kind != a.kind) {
      diff = fmt::format("rank 0 called {} but rank {} called {}", KindName(a.kind), r,
                         KindName(b.kind));
    } else if (a.kind == Kind::kAllReduce &&
               (a.count != b.count || a.dtype != b.dtype || a.op != b.op)) {
      diff = fmt::format("rank 0 has {} x {} ({}), rank {} has {} x {} ({})", a.count,
                         DTypeName(a.dtype), ReduceOpName(a.op), r, b.count, DTypeName(b.dtype),
                         ReduceOpName(b.op));
    } else if (a.kind == Kind::kBroadcast && (a.count != b.count || a.root != b.root)) {
      diff = fmt::format("rank 0 has {} bytes from root {}, rank {} has {} bytes from root {}",
                         a.count, a.root, r, b.count, b.root);
    } else if (a.kind == Kind::kAllGather && a.count != b.count) {
      diff = fmt::format("rank 0 contributes {} bytes, rank {} contributes {} bytes", a.count, r,
                         b.count);
    }
    if (!diff.empty()) return Status(ErrorCode::kInvalidArgument, "mismatched collective: " + diff);
  }
  return Status::Ok();
}

class Group {
 public:
  explicit Group(int world) : world_(world) {}

  int world() const { return world_; }

  // Registers rank's arrival at collective `seq` and blocks until every rank arrived. Throws
  // on timeout, mismatch or poison; then this rank touches no other rank's buffers.
  Meeting& Arrive(int rank, std::uint64_t seq, const Arrival& arrival,
                  std::chrono::steady_clock::time_point deadline, std::chrono::milliseconds timeout,
                  const std::string& what) {
    std::unique_lock lock(mu_);
    if (!poison_.ok()) {
      Throw(ErrorCode::kAborted, "rank {}/{}: {} aborted: {}", rank, world_, what,
            poison_.ToString());
    }
    Meeting& m = meetings_[seq];
    if (m.ranks.empty()) m.ranks.resize(static_cast<std::size_t>(world_));
    m.ranks[static_cast<std::size_t>(rank)] = arrival;
    m.ranks[static_cast<std::size_t>(rank)].present = true;
    if (++m.arrived == world_) {
      m.mismatch = Validate(m);
      cv_.notify_all();
    } else {
      cv_.wait_until(lock, deadline, [&] { return m.arrived == world_ || !poison_.ok(); });
    }
    if (m.arrived == world_) {
      if (!m.mismatch.ok()) {
        const std::string mismatch = m.mismatch.message();
        LeaveLocked(seq, m);  // may free m
        Throw(ErrorCode::kInvalidArgument, "rank {}/{}: {}: {}", rank, world_, what, mismatch);
      }
      return m;
    }
    // Not everyone came: this rank leaves the meeting (it is never completed).
    if (!poison_.ok()) {
      Throw(ErrorCode::kAborted, "rank {}/{}: {} aborted: {}", rank, world_, what,
            poison_.ToString());
    }
    std::vector<int> missing;
    for (int r = 0; r < world_; ++r) {
      if (!m.ranks[static_cast<std::size_t>(r)].present) missing.push_back(r);
    }
    const std::string msg =
        fmt::format("rank {}/{}: {} timed out after {} ms waiting for rank(s) {} (threads)", rank,
                    world_, what, timeout.count(), RankList(missing));
    poison_ = Status(ErrorCode::kDeadlineExceeded, msg);
    cv_.notify_all();
    throw Error(ErrorCode::kDeadlineExceeded, msg);
  }

  // Called after this rank did its part of a completed meeting; returns once every rank has, so
  // that no rank's buffers are released while another rank still reads or writes them.
  void Finish(std::uint64_t seq, Meeting& m) {
    std::unique_lock lock(mu_);
    if (++m.done == world_) cv_.notify_all();
    // Bounded: every rank that arrived is past validation and only copies memory now.
    cv_.wait(lock, [&] { return m.done == world_; });
    LeaveLocked(seq, m);
  }

  void Poison(const Status& reason) {
    {
      std::lock_guard lock(mu_);
      if (!poison_.ok()) return;
      poison_ = reason;
    }
    cv_.notify_all();
  }

 private:
  void LeaveLocked(std::uint64_t seq, Meeting& m) {
    if (++m.left == world_) meetings_.erase(seq);
  }

  const int world_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::uint64_t, Meeting> meetings_;  // guarded by mu_
  Status poison_;                                        // guarded by mu_
};

class ThreadCommunicator final : public QueuedCommunicator {
 public:
  ThreadCommunicator(std::shared_ptr<Group> group, int rank)
      : group_(std::move(group)), rank_(rank) {}
  ~ThreadCommunicator() override { StopWorker(); }

  int rank() const override { return rank_; }
  int size() const override { return group_->world(); }
  std::string_view backend() const override { return "threads"; }

 protected:
  void RunAllReduce(void* data, std::size_t count, DType dtype, ReduceOp op,
                    const OpContext& ctx) override {
    Arrival a;
    a.kind = Kind::kAllReduce;
    a.count = count;
    a.dtype = dtype;
    a.op = op;
    a.buf = data;
    Meeting& m = Meet(a, ctx, "allreduce");
    // This rank owns slice [begin, end) of every buffer: it reduces the slice across ranks in
    // rank order (deterministic) and writes the result into every rank's buffer.
    const int world = size();
    const std::size_t begin = count * static_cast<std::size_t>(rank_) / world;
    const std::size_t end = count * static_cast<std::size_t>(rank_ + 1) / world;
    const std::size_t esize = DTypeSize(dtype);
    constexpr std::size_t kBlockBytes = 32 * 1024;
    const std::size_t block = std::max<std::size_t>(1, kBlockBytes / esize);
    scratch_.resize(block * esize);
    for (std::size_t off = begin; off < end; off += block) {
      const std::size_t n = std::min(block, end - off);
      const std::size_t byte_off = off * esize;
      std::memcpy(scratch_.data(), static_cast<const std::byte*>(m.ranks[0].buf) + byte_off,
                  n * esize);
      for (int r = 1; r < world; ++r) {
        ReduceInto(
            scratch_.data(),
            static_cast<const std::byte*>(m.ranks[static_cast<std::size_t>(r)].buf) + byte_off, n,
            dtype, op);
      }
      if (op == ReduceOp::kAvg) DivideBy(scratch_.data(), n, dtype, world);
      for (int r = 0; r < world; ++r) {
        std::memcpy(static_cast<std::byte*>(m.ranks[static_cast<std::size_t>(r)].buf) + byte_off,
                    scratch_.data(), n * esize);
      }
    }
    group_->Finish(ctx.seq, m);
  }

  void RunBroadcast(void* data, std::size_t bytes, int root, const OpContext& ctx) override {
    Arrival a;
    a.kind = Kind::kBroadcast;
    a.count = bytes;
    a.root = root;
    a.buf = data;
    Meeting& m = Meet(a, ctx, "broadcast");
    const void* src = m.ranks[static_cast<std::size_t>(root)].buf;
    if (rank_ != root && bytes > 0 && src != data) std::memcpy(data, src, bytes);
    group_->Finish(ctx.seq, m);
  }

  void RunAllGather(const void* in, std::size_t bytes, void* out, const OpContext& ctx) override {
    Arrival a;
    a.kind = Kind::kAllGather;
    a.count = bytes;
    a.in = in;
    a.buf = out;
    Meeting& m = Meet(a, ctx, "allgather");
    // Each rank writes its own contribution into everyone's output: disjoint regions.
    for (int r = 0; r < size(); ++r) {
      auto* dst = static_cast<std::byte*>(m.ranks[static_cast<std::size_t>(r)].buf) +
                  static_cast<std::size_t>(rank_) * bytes;
      if (bytes > 0 && dst != in) std::memcpy(dst, in, bytes);
    }
    group_->Finish(ctx.seq, m);
  }

  void RunAllGatherV(std::span<const std::byte> in, std::vector<std::vector<std::byte>>* out,
                     const OpContext& ctx) override {
    Arrival a;
    a.kind = Kind::kAllGatherV;
    a.vin = in;
    a.vout = out;
    Meeting& m = Meet(a, ctx, "allgatherv");
    out->resize(static_cast<std::size_t>(size()));
    for (int r = 0; r < size(); ++r) {
      const auto& src = m.ranks[static_cast<std::size_t>(r)].vin;
      (*out)[static_cast<std::size_t>(r)].assign(src.begin(), src.end());
    }
    group_->Finish(ctx.seq, m);
  }

  void RunBarrier(const OpContext& ctx) override {
    Arrival a;
    a.kind = Kind::kBarrier;
    Meeting& m = Meet(a, ctx, "barrier");
    group_->Finish(ctx.seq, m);
  }

  void OnPoisoned(const Status& reason) override { group_->Poison(reason); }

 private:
  Meeting& Meet(const Arrival& a, const OpContext& ctx, std::string_view name) {
    return group_->Arrive(rank_, ctx.seq, a, ctx.deadline, ctx.timeout, ctx.Describe(name));
  }

  std::shared_ptr<Group> group_;
  const int rank_;
  std::vector<std::byte> scratch_;  // reused across allreduces: no allocation per call
};

}  // namespace

std::vector<std::unique_ptr<Communicator>> MakeThreadGroup(
    int world, std::chrono::milliseconds default_timeout) {
  ESCALA_CHECK(world >= 1, kInvalidArgument, "world size must be >= 1, got {}", world);
  auto group = std::make_shared<Group>(world);
  std::vector<std::unique_ptr<Communicator>> comms;
  comms.reserve(static_cast<std::size_t>(world));
  for (int r = 0; r < world; ++r) {
    comms.push_back(std::make_unique<ThreadCommunicator>(group, r));
    comms.back()->set_default_timeout(default_timeout);
  }
  return comms;
}

void RunOnThreadRanks(int world, const std::function<void(Communicator&)>& fn,
                      std::chrono::milliseconds default_timeout) {
  auto comms = MakeThreadGroup(world, default_timeout);
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(world));
  std::atomic<int> first_failure{-1};
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(world));
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        fn(*comms[static_cast<std::size_t>(r)]);
      } catch (...) {
        errors[static_cast<std::size_t>(r)] = std::current_exception();
        int expected = -1;
        if (first_failure.compare_exchange_strong(expected, r)) {
          // Wake every other rank rather than let it wait for its timeout.
          const Status cause = Status::FromCurrentException();
          for (auto& c : comms) {
            c->Abort(Status(ErrorCode::kAborted,
                            fmt::format("rank {} failed: {}", r, cause.ToString())));
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  if (const int f = first_failure.load(); f >= 0) {
    std::rethrow_exception(errors[static_cast<std::size_t>(f)]);
  }
}

}  // namespace escala
