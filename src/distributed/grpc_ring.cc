// Collective algorithms of the gRPC ring communicator, on top of Transport's frames.
//
// Every frame carries what its sender was asked to do (collective kind, sequence number, element
// count, dtype, operation, root), so that a rank whose call differs is detected by the first peer
// that receives one of its frames: that peer fails with kInvalidArgument and tells its own peers
// in ERROR frames, which pass the code on, so every rank reports the mismatch.
#include "distributed/grpc_ring.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "escala/core/logging.h"
#include "escala/core/queued_communicator.h"

namespace escala::distributed::internal {
namespace {

using Clock = std::chrono::steady_clock;

// Broadcast steps: data flows down the tree, then acknowledgements up, then the commit down.
constexpr std::uint32_t kBcastData = 0;
constexpr std::uint32_t kBcastAck = 1;
constexpr std::uint32_t kBcastCommit = 2;
// Recursive doubling: fold of the ranks beyond the largest power of two, exchanges, unfold.
constexpr std::uint32_t kFoldStep = 0;
constexpr std::uint32_t kUnfoldStep = 1000;

// What this rank was asked to do; compared with what each frame says its sender was asked.
struct Call {
  OpKind op = OpKind::kNone;
  std::uint64_t seq = 0;
  std::uint64_t count = 0;
  DType dtype = DType::kUInt8;
  ReduceOp reduce_op = ReduceOp::kSum;
  std::int32_t root = 0;

  FrameMeta Meta(int from_rank) const {
    FrameMeta m;
    m.op = op;
    m.seq = seq;
    m.count = count;
    m.dtype = dtype;
    m.reduce_op = reduce_op;
    m.root = root;
    m.from_rank = from_rank;
    return m;
  }
};

std::string DescribeCall(OpKind op, std::uint64_t count, DType dtype, ReduceOp rop, int root) {
  switch (op) {
    case OpKind::kAllReduce:
      return fmt::format("{} x {} ({})", count, DTypeName(dtype), ReduceOpName(rop));
    case OpKind::kBroadcast:
      return fmt::format("{} bytes from root {}", count, root);
    case OpKind::kAllGather:
      return fmt::format("{} bytes per rank", count);
    default:
      return std::string(OpKindName(op));
  }
}

bool SameCall(const Call& c, const FrameMeta& m) {
  if (c.op != m.op) return false;
  switch (c.op) {
    case OpKind::kAllReduce:
      return c.count == m.count && c.dtype == m.dtype && c.reduce_op == m.reduce_op;
    case OpKind::kBroadcast:
      return c.count == m.count && c.root == m.root;
    case OpKind::kAllGather:
      return c.count == m.count;
    default:
      return true;
  }
}

// Element index where segment i of n begins, for `count` elements: floor(count * i / n) without
// overflow.
std::size_t SegBegin(std::size_t count, int i, int n) {
  const auto ui = static_cast<std::size_t>(i);
  const auto un = static_cast<std::size_t>(n);
  return count / un * ui + (count % un) * ui / un;
}

std::size_t NumChunks(std::size_t len, std::size_t chunk) {
  return len == 0 ? 1 : (len + chunk - 1) / chunk;
}

class GrpcRing final : public QueuedCommunicator {
 public:
  GrpcRing(std::unique_ptr<Transport> transport, std::shared_ptr<JobSession> session,
           std::unique_ptr<Coordinator> hosted, const RingOptions& options,
           std::chrono::milliseconds linger)
      : transport_(std::move(transport)),
        session_(std::move(session)),
        hosted_(std::move(hosted)),
        options_(options),
        linger_(linger),
        rank_(transport_->rank()),
        world_(transport_->world()) {
    chunk_bytes_ = std::max<std::size_t>(options_.chunk_bytes, 64);
    if (session_ != nullptr) {
      handler_id_ = session_->AddFailureHandler([this](const Status& s) { OnRelayedFailure(s); });
    }
  }

  const std::shared_ptr<JobSession>& session() const { return session_; }

  ~GrpcRing() override {
    if (session_ != nullptr && handler_id_ >= 0) session_->RemoveFailureHandler(handler_id_);
    StopWorker();
    const bool healthy = poison_status().ok() && !transport_->interrupted();
    // Wait for the linked peers' goodbyes only on a healthy communicator: then they still need
    // what this rank sent them. A failed group is torn down at once.
    transport_->Close(healthy ? Clock::now() + linger_ : Clock::now());
    transport_.reset();
    if (session_ != nullptr) {
      if (healthy) session_->Goodbye();
      session_.reset();
    }
    if (hosted_ != nullptr) {
      if (healthy && !hosted_->WaitUntilRoundEnds(linger_)) {
        ESCALA_LOG_WARN("rank {}: stopping the coordinator while workers are still running", rank_);
      }
      hosted_.reset();
    }
  }

  int rank() const override { return rank_; }
  int size() const override { return world_; }
  std::string_view backend() const override { return "grpc-ring"; }

 protected:
  void RunAllReduce(void* data, std::size_t count, DType dtype, ReduceOp op,
                    const OpContext& ctx) override {
    Call call{OpKind::kAllReduce, ctx.seq, count, dtype, op, 0};
    Run(call, ctx, [&](const std::string& what) {
      if (world_ == 1) return;
      if (count * DTypeSize(dtype) <= options_.small_message_bytes) {
        RecursiveDoubling(static_cast<std::byte*>(data), call, ctx, what);
      } else {
        Ring(static_cast<std::byte*>(data), call, ctx, what);
      }
    });
  }

  void RunBroadcast(void* data, std::size_t bytes, int root, const OpContext& ctx) override {
    Call call{OpKind::kBroadcast, ctx.seq, bytes, DType::kUInt8, ReduceOp::kSum, root};
    Run(call, ctx, [&](const std::string& what) {
      if (world_ > 1) Broadcast(static_cast<std::byte*>(data), call, ctx, what);
    });
  }

  void RunAllGather(const void* in, std::size_t bytes, void* out, const OpContext& ctx) override {
    Call call{OpKind::kAllGather, ctx.seq, bytes, DType::kUInt8, ReduceOp::kSum, 0};
    Run(call, ctx, [&](const std::string& what) {
      auto* o = static_cast<std::byte*>(out);
      std::byte* mine = o + static_cast<std::size_t>(rank_) * bytes;
      if (bytes > 0 && in != mine) std::memmove(mine, in, bytes);
      if (world_ > 1) AllGather(o, call, ctx, what);
    });
  }

  void RunAllGatherV(std::span<const std::byte> in, std::vector<std::vector<std::byte>>* out,
                     const OpContext& ctx) override {
    Call call{OpKind::kAllGatherV, ctx.seq, 0, DType::kUInt8, ReduceOp::kSum, 0};
    Run(call, ctx, [&](const std::string& what) {
      // Sized once: frames point into these vectors until the collective ends.
      out->assign(static_cast<std::size_t>(world_), {});
      (*out)[static_cast<std::size_t>(rank_)].assign(in.begin(), in.end());
      if (world_ > 1) AllGatherV(out, call, ctx, what);
    });
  }

  void RunBarrier(const OpContext& ctx) override {
    Call call{OpKind::kBarrier, ctx.seq, 0, DType::kUInt8, ReduceOp::kSum, 0};
    Run(call, ctx, [&](const std::string& what) {
      // Dissemination: in round k, signal rank + 2^k and wait for rank - 2^k.
      for (int d = 1, k = 0; d < world_; d <<= 1, ++k) {
        FrameMeta m = call.Meta(rank_);
        m.step = static_cast<std::uint32_t>(k);
        SendTo((rank_ + d) % world_, m, nullptr, 0, true);
        Expect(call, (rank_ - d + world_) % world_, FrameType::kData, m.step, 0, 0, ctx, what);
      }
    });
  }

  void OnPoisoned(const Status& reason) override {
    bool relayed;
    {
      std::lock_guard lock(mu_);
      relayed = relayed_;
      if (!relayed && !origin_) origin_ = FailureOrigin{rank_, reason.code(), reason.message()};
    }
    transport_->Interrupt(reason);
    if (!relayed && session_ != nullptr) session_->ReportFailure(reason);
  }

 private:
  // Runs one collective: sets up mismatch screening, runs the algorithm, waits until every
  // payload was handed over; on failure tells the linked peers before rethrowing.
  template <typename F>
  void Run(const Call& call, const OpContext& ctx, F&& algorithm) {
    const std::string what = ctx.Describe(OpKindName(call.op));
    if (session_ != nullptr) session_->SetCollectivesStarted(call.seq + 1);
    sent_right_ = world_ == 1;
    try {
      transport_->SetScreen(call.seq, [&](const FrameMeta& m) { CheckCall(call, m, what); });
      algorithm(what);
      transport_->Flush(ctx.deadline, what, ctx.timeout);
      transport_->SetScreen(0, {});
    } catch (...) {
      transport_->SetScreen(0, {});
      const Status s = Status::FromCurrentException();
      FailureOrigin origin;
      {
        std::lock_guard lock(mu_);
        if (transport_->peer_failure().rank >= 0) {
          relayed_ = true;
          origin = transport_->peer_failure();
        } else if (origin_) {
          origin = *origin_;  // relayed by the coordinator, or Abort() on this rank
        } else {
          origin = FailureOrigin{rank_, s.code(), s.message()};
        }
      }
      transport_->SendErrorFrames(origin, std::chrono::milliseconds(250));
      if (s.code() == ErrorCode::kDeadlineExceeded && origin.rank == rank_) {
        const std::string laggards = Laggards(call.seq);
        if (!laggards.empty()) throw Error(s.code(), s.message() + laggards);
      }
      throw;
    }
  }

  // The ranks that, at the coordinator's last heartbeat, had not started collective `seq`: the
  // ranks a timed-out collective really waited for (the peer it waited on may itself be waiting).
  std::string Laggards(std::uint64_t seq) const {
    if (session_ == nullptr) return {};
    const std::vector<std::uint64_t> started = session_->PeerCollectivesStarted();
    std::string list;
    for (std::size_t r = 0; r < started.size(); ++r) {
      if (static_cast<int>(r) != rank_ && started[r] <= seq) {
        list += (list.empty() ? "" : ", ") + std::to_string(r);
      }
    }
    if (list.empty()) return {};
    return fmt::format("; at the last heartbeat rank(s) {} had not started collective #{}", list,
                       seq);
  }

  // A failure elsewhere, from the coordinator: the running collective (or the next one) fails
  // with it, and the communicator is poisoned then. Not Abort(): a collective queued but not yet
  // started must still report the relayed code (kInvalidArgument for a mismatch), as it does on
  // every other rank.
  void OnRelayedFailure(const Status& status) {
    {
      std::lock_guard lock(mu_);
      if (relayed_ || origin_) return;
      relayed_ = true;
      // The coordinator's message already names the failed rank.
      origin_ = FailureOrigin{-1, status.code(), status.message()};
    }
    transport_->Interrupt(status);
  }

  void CheckCall(const Call& call, const FrameMeta& m, const std::string& what) const {
    if (call.op != m.op) {
      Throw(ErrorCode::kInvalidArgument,
            "rank {}/{}: {}: mismatched collective: rank {} called {} but rank {} called {}", rank_,
            world_, what, rank_, OpKindName(call.op), m.from_rank, OpKindName(m.op));
    }
    if (!SameCall(call, m)) {
      Throw(ErrorCode::kInvalidArgument,
            "rank {}/{}: {}: mismatched collective: rank {} has {}, rank {} has {}", rank_, world_,
            what, rank_, DescribeCall(call.op, call.count, call.dtype, call.reduce_op, call.root),
            m.from_rank, DescribeCall(m.op, m.count, m.dtype, m.reduce_op, m.root));
    }
    if (m.seq != call.seq) {
      Throw(ErrorCode::kInvalidArgument,
            "rank {}/{}: {}: mismatched collective: rank {} is in collective #{} while rank {} "
            "still expects data of #{}",
            rank_, world_, what, m.from_rank, m.seq, rank_, call.seq);
    }
  }

  void SendTo(int peer, const FrameMeta& meta, const void* payload, std::size_t bytes, bool copy) {
    if (peer == (rank_ + 1) % world_) sent_right_ = true;
    transport_->Send(peer, meta, payload, bytes, copy);
  }

  // The next frame from `peer`. Before this rank's first blocking receive of a collective it
  // makes sure its right neighbour has heard of the call (see FrameType::kAnnounce): otherwise
  // ranks whose calls disagree could wait for each other without ever exchanging a frame.
  InFrame RecvFrom(const Call& call, int peer, const OpContext& ctx, const std::string& what) {
    if (!sent_right_) {
      FrameMeta m = call.Meta(rank_);
      m.type = FrameType::kAnnounce;
      SendTo((rank_ + 1) % world_, m, nullptr, 0, true);
    }
    return transport_->Recv(peer, ctx.deadline, what, ctx.timeout);
  }

  // Receives the next frame from `peer` and checks that it is the expected one.
  InFrame Expect(const Call& call, int peer, FrameType type, std::uint32_t step,
                 std::uint64_t offset, std::size_t payload, const OpContext& ctx,
                 const std::string& what) {
    InFrame f = RecvFrom(call, peer, ctx, what);
    CheckCall(call, f.meta, what);
    if (f.meta.type != type || f.meta.step != step || f.meta.offset != offset ||
        f.payload_size() != payload) {
      Throw(ErrorCode::kInternal,
            "rank {}/{}: {}: protocol error: from rank {} expected frame type {} step {} offset "
            "{} with {} bytes, got type {} step {} offset {} with {} bytes",
            rank_, world_, what, peer, static_cast<int>(type), step, offset, payload,
            static_cast<int>(f.meta.type), f.meta.step, f.meta.offset, f.payload_size());
    }
    return f;
  }

  // Ring all-reduce: reduce-scatter then all-gather, N-1 steps each. Segment i of the buffer is
  // reduced along the ring ending at rank i-1, which then starts it around the ring again. Each
  // segment travels in chunks, and a chunk is forwarded as soon as it is reduced, so chunk k+1 is
  // on the wire while chunk k is reduced. Sends point into the caller's buffer: a region sent in
  // reduce-scatter is overwritten in all-gather only after its reduced value came back around the
  // ring, i.e. after the right neighbour received it.
  void Ring(std::byte* buf, const Call& call, const OpContext& ctx, const std::string& what) {
    const int n = world_;
    const int right = (rank_ + 1) % n;
    const int left = (rank_ - 1 + n) % n;
    const std::size_t esize = DTypeSize(call.dtype);
    const std::size_t chunk = std::max<std::size_t>(1, chunk_bytes_ / esize);
    const std::size_t count = call.count;
    auto seg_begin = [&](int i) { return SegBegin(count, i, n); };
    auto seg_len = [&](int i) { return seg_begin(i + 1) - seg_begin(i); };
    FrameMeta m = call.Meta(rank_);
    auto send_chunk = [&](std::uint32_t step, int seg, std::size_t k) {
      const std::size_t begin = seg_begin(seg) + k * chunk;
      const std::size_t len = std::min(chunk, seg_begin(seg) + seg_len(seg) - begin);
      m.step = step;
      m.offset = begin;
      SendTo(right, m, buf + begin * esize, len * esize, /*copy=*/false);
    };
    auto recv_chunk = [&](std::uint32_t step, int seg, std::size_t k, std::size_t* begin,
                          std::size_t* len) {
      *begin = seg_begin(seg) + k * chunk;
      *len = std::min(chunk, seg_begin(seg) + seg_len(seg) - *begin);
      return Expect(call, left, FrameType::kData, step, *begin, *len * esize, ctx, what);
    };
    const auto last = static_cast<std::uint32_t>(n - 1);
    for (std::size_t k = 0; k < NumChunks(seg_len(rank_), chunk); ++k) send_chunk(0, rank_, k);
    for (int s = 0; s + 1 < n; ++s) {  // reduce-scatter
      const int seg = (rank_ - s - 1 + n) % n;
      for (std::size_t k = 0; k < NumChunks(seg_len(seg), chunk); ++k) {
        std::size_t begin, len;
        InFrame f = recv_chunk(static_cast<std::uint32_t>(s), seg, k, &begin, &len);
        f.ReduceInto(buf + begin * esize, call.dtype, call.reduce_op);
        if (s + 2 < n) {
          send_chunk(static_cast<std::uint32_t>(s + 1), seg, k);
        } else {
          // This rank owns the fully reduced segment: finish it and start the all-gather.
          if (call.reduce_op == ReduceOp::kAvg) DivideBy(buf + begin * esize, len, call.dtype, n);
          send_chunk(last, seg, k);
        }
      }
    }
    for (int s = 0; s + 1 < n; ++s) {  // all-gather
      const int seg = (rank_ - s + n) % n;
      for (std::size_t k = 0; k < NumChunks(seg_len(seg), chunk); ++k) {
        std::size_t begin, len;
        InFrame f = recv_chunk(last + static_cast<std::uint32_t>(s), seg, k, &begin, &len);
        f.CopyTo(buf + begin * esize);
        if (s + 2 < n) send_chunk(last + static_cast<std::uint32_t>(s + 1), seg, k);
      }
    }
  }

  // Recursive doubling for small messages: log2(p) exchanges of the whole buffer, after folding
  // the ranks beyond the largest power of two p into their partners. Partners combine as
  // (lower rank's value) op (higher rank's value), so every rank ends with the same bits.
  void RecursiveDoubling(std::byte* buf, const Call& call, const OpContext& ctx,
                         const std::string& what) {
    const std::size_t esize = DTypeSize(call.dtype);
    const std::size_t bytes = call.count * esize;
    int p = 1;
    while (p * 2 <= world_) p *= 2;
    const int extra = world_ - p;
    FrameMeta m = call.Meta(rank_);
    if (rank_ >= p) {
      m.step = kFoldStep;
      SendTo(rank_ - p, m, buf, bytes, true);
      Expect(call, rank_ - p, FrameType::kData, kUnfoldStep, 0, bytes, ctx, what).CopyTo(buf);
      return;
    }
    if (rank_ < extra) {
      Expect(call, rank_ + p, FrameType::kData, kFoldStep, 0, bytes, ctx, what)
          .ReduceInto(buf, call.dtype, call.reduce_op);
    }
    std::uint32_t step = 1;
    for (int mask = 1; mask < p; mask <<= 1, ++step) {
      const int partner = rank_ ^ mask;
      m.step = step;
      SendTo(partner, m, buf, bytes, true);
      InFrame f = Expect(call, partner, FrameType::kData, step, 0, bytes, ctx, what);
      if (rank_ < partner) {
        f.ReduceInto(buf, call.dtype, call.reduce_op);
      } else {
        scratch_.resize(bytes);
        f.CopyTo(scratch_.data());
        ReduceInto(scratch_.data(), buf, call.count, call.dtype, call.reduce_op);
        if (bytes > 0) std::memcpy(buf, scratch_.data(), bytes);
      }
    }
    if (call.reduce_op == ReduceOp::kAvg) DivideBy(buf, call.count, call.dtype, world_);
    if (rank_ < extra) {
      m.step = kUnfoldStep;
      SendTo(rank_ + p, m, buf, bytes, true);
    }
  }

  // Binomial tree rooted at `root`, chunks forwarded as they arrive. The root completes only
  // after every rank acknowledged (so that a mismatched receiver fails the root too), and every
  // rank only after the root's commit came back down.
  void Broadcast(std::byte* buf, const Call& call, const OpContext& ctx, const std::string& what) {
    const int n = world_;
    const int vr = (rank_ - call.root + n) % n;
    int parent = -1;
    int mask = 1;
    for (; mask < n; mask <<= 1) {
      if ((vr & mask) != 0) {
        parent = (vr - mask + call.root) % n;
        break;
      }
    }
    std::vector<int> children;
    for (int c = mask >> 1; c > 0; c >>= 1) {
      if (vr + c < n) children.push_back((vr + c + call.root) % n);
    }
    const std::size_t bytes = call.count;
    const std::size_t nchunks = NumChunks(bytes, chunk_bytes_);
    FrameMeta m = call.Meta(rank_);
    m.step = kBcastData;
    for (std::size_t k = 0; k < nchunks; ++k) {
      const std::size_t off = k * chunk_bytes_;
      const std::size_t len = std::min(chunk_bytes_, bytes - std::min(bytes, off));
      if (parent >= 0) {
        Expect(call, parent, FrameType::kData, kBcastData, off, len, ctx, what).CopyTo(buf + off);
      }
      m.offset = off;
      for (int c : children) SendTo(c, m, buf + off, len, /*copy=*/false);
    }
    m.type = FrameType::kAck;
    m.offset = 0;
    for (int c : children) Expect(call, c, FrameType::kAck, kBcastAck, 0, 0, ctx, what);
    if (parent >= 0) {
      m.step = kBcastAck;
      SendTo(parent, m, nullptr, 0, true);
      Expect(call, parent, FrameType::kAck, kBcastCommit, 0, 0, ctx, what);
    }
    m.step = kBcastCommit;
    for (int c : children) SendTo(c, m, nullptr, 0, true);
  }

  // Ring all-gather: in step s, forward block (rank - s) to the right neighbour.
  void AllGather(std::byte* out, const Call& call, const OpContext& ctx, const std::string& what) {
    const int n = world_;
    const int right = (rank_ + 1) % n;
    const int left = (rank_ - 1 + n) % n;
    const std::size_t bytes = call.count;
    const std::size_t nchunks = NumChunks(bytes, chunk_bytes_);
    FrameMeta m = call.Meta(rank_);
    auto send_block = [&](std::uint32_t step, int b) {
      m.step = step;
      m.block = static_cast<std::uint64_t>(b);
      for (std::size_t k = 0; k < nchunks; ++k) {
        const std::size_t off = k * chunk_bytes_;
        const std::size_t len = std::min(chunk_bytes_, bytes - std::min(bytes, off));
        m.offset = off;
        SendTo(right, m, out + static_cast<std::size_t>(b) * bytes + off, len, false);
      }
    };
    send_block(0, rank_);
    for (int s = 0; s + 1 < n; ++s) {
      const int b = (rank_ - s - 1 + n) % n;
      std::byte* dst = out + static_cast<std::size_t>(b) * bytes;
      for (std::size_t k = 0; k < nchunks; ++k) {
        const std::size_t off = k * chunk_bytes_;
        const std::size_t len = std::min(chunk_bytes_, bytes - std::min(bytes, off));
        InFrame f = Expect(call, left, FrameType::kData, static_cast<std::uint32_t>(s), off, len,
                           ctx, what);
        if (f.meta.block != static_cast<std::uint64_t>(b)) {
          Throw(ErrorCode::kInternal, "rank {}/{}: {}: protocol error: block {} instead of {}",
                rank_, world_, what, f.meta.block, b);
        }
        f.CopyTo(dst + off);
      }
      if (s + 2 < n) send_block(static_cast<std::uint32_t>(s + 1), b);
    }
  }

  // Ring all-gather of blocks whose sizes only their owners know: the first frame of a block
  // announces its size.
  void AllGatherV(std::vector<std::vector<std::byte>>* out, const Call& call, const OpContext& ctx,
                  const std::string& what) {
    const int n = world_;
    const int right = (rank_ + 1) % n;
    const int left = (rank_ - 1 + n) % n;
    FrameMeta m = call.Meta(rank_);
    auto send_block = [&](std::uint32_t step, int b) {
      const auto& v = (*out)[static_cast<std::size_t>(b)];
      m.step = step;
      m.block = static_cast<std::uint64_t>(b);
      m.block_bytes = v.size();
      for (std::size_t k = 0; k < NumChunks(v.size(), chunk_bytes_); ++k) {
        const std::size_t off = k * chunk_bytes_;
        const std::size_t len = std::min(chunk_bytes_, v.size() - std::min(v.size(), off));
        m.offset = off;
        SendTo(right, m, v.data() + off, len, false);
      }
    };
    send_block(0, rank_);
    for (int s = 0; s + 1 < n; ++s) {
      const int b = (rank_ - s - 1 + n) % n;
      auto& v = (*out)[static_cast<std::size_t>(b)];
      std::size_t nchunks = 1;
      for (std::size_t k = 0; k < nchunks; ++k) {
        InFrame f = RecvFrom(call, left, ctx, what);
        CheckCall(call, f.meta, what);
        const std::size_t off = k * chunk_bytes_;
        if (k == 0) {
          v.resize(f.meta.block_bytes);
          nchunks = NumChunks(v.size(), chunk_bytes_);
        }
        const std::size_t len = std::min(chunk_bytes_, v.size() - std::min(v.size(), off));
        if (f.meta.type != FrameType::kData || f.meta.step != static_cast<std::uint32_t>(s) ||
            f.meta.block != static_cast<std::uint64_t>(b) || f.meta.block_bytes != v.size() ||
            f.meta.offset != off || f.payload_size() != len) {
          Throw(ErrorCode::kInternal,
                "rank {}/{}: {}: protocol error in block {} from rank {} (step {}, offset {}, "
                "{} bytes)",
                rank_, world_, what, b, left, f.meta.step, f.meta.offset, f.payload_size());
        }
        f.CopyTo(v.data() + off);
      }
      if (s + 2 < n) send_block(static_cast<std::uint32_t>(s + 1), b);
    }
  }

  std::unique_ptr<Transport> transport_;
  std::shared_ptr<JobSession> session_;
  std::unique_ptr<Coordinator> hosted_;
  const RingOptions options_;
  const std::chrono::milliseconds linger_;
  const int rank_;
  const int world_;
  std::size_t chunk_bytes_ = 0;
  int handler_id_ = -1;
  bool sent_right_ = false;         // this collective already sent something to rank + 1
  std::vector<std::byte> scratch_;  // recursive doubling; reused across calls

  std::mutex mu_;
  bool relayed_ = false;                 // guarded by mu_: the failure started elsewhere
  std::optional<FailureOrigin> origin_;  // guarded by mu_
};

}  // namespace

std::vector<int> LinkedPeers(int rank, int world) {
  std::set<int> peers;
  for (int d = 1; d < world; d <<= 1) {
    peers.insert((rank + d) % world);
    peers.insert((rank - d % world + world) % world);
  }
  int p = 1;
  while (p * 2 <= world) p *= 2;
  if (rank < p) {
    for (int mask = 1; mask < p; mask <<= 1) peers.insert(rank ^ mask);
    if (rank < world - p) peers.insert(rank + p);
  } else {
    peers.insert(rank - p);
  }
  peers.erase(rank);
  return {peers.begin(), peers.end()};
}

std::unique_ptr<Communicator> MakeGrpcRing(std::unique_ptr<Transport> transport,
                                           std::shared_ptr<JobSession> session,
                                           std::unique_ptr<Coordinator> hosted,
                                           const RingOptions& options,
                                           std::chrono::milliseconds linger) {
  return std::make_unique<GrpcRing>(std::move(transport), std::move(session), std::move(hosted),
                                    options, linger);
}

}  // namespace escala::distributed::internal

namespace escala::distributed {

std::shared_ptr<JobSession> JobSessionOf(const Communicator& comm) {
  const auto* ring = dynamic_cast<const internal::GrpcRing*>(&comm);
  return ring != nullptr ? ring->session() : nullptr;
}

}  // namespace escala::distributed
