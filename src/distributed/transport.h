// The data plane under the gRPC ring communicator: one long-lived bidirectional gRPC stream per
// linked peer, driven from a single thread through one completion queue.
//
// Layering: Transport knows frames and peers, not collectives; GrpcRing (grpc_ring.cc) builds the
// algorithms on Send/Recv/Flush. This header carries no gRPC types, so the algorithms compile
// without gRPC headers.
//
// Threading: everything except Interrupt() runs on one thread at a time (the communicator's
// worker thread, then its destructor). Interrupt() may be called from any thread; it wakes a
// waiting Recv/Flush, which then throws.
#ifndef ESCALA_SRC_DIST_TRANSPORT_H_
#define ESCALA_SRC_DIST_TRANSPORT_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "escala/core/communicator.h"
#include "escala/core/dtype.h"
#include "escala/core/error.h"
#include "escala/core/tls.h"

namespace escala::distributed::internal {

using Deadline = std::chrono::steady_clock::time_point;

enum class FrameType : std::uint8_t {
  kData = 0,
  kHello = 1,
  kError = 2,
  kAck = 3,
  kBye = 4,
  kAnnounce = 5,
};
enum class OpKind : std::uint8_t {
  kNone = 0,
  kAllReduce = 1,
  kBroadcast = 2,
  kAllGather = 3,
  kAllGatherV = 4,
  kBarrier = 5,
};
std::string_view OpKindName(OpKind op);

// The header of a frame (FrameHeader in collective.proto).
struct FrameMeta {
  FrameType type = FrameType::kData;
  OpKind op = OpKind::kNone;
  std::uint64_t seq = 0;
  std::uint32_t step = 0;
  std::uint64_t offset = 0;
  std::uint64_t count = 0;
  DType dtype = DType::kUInt8;
  ReduceOp reduce_op = ReduceOp::kSum;
  std::int32_t root = 0;
  std::int32_t from_rank = -1;
  std::uint64_t block = 0;
  std::uint64_t block_bytes = 0;
  std::int32_t error_rank = -1;
  std::int32_t error_code = 0;
  std::string error_message;
};

// A received frame: its header and a zero-copy view of its payload (the gRPC buffers it points
// into stay alive as long as the frame does).
class InFrame;
std::string DecodeFrame(void* byte_buffer, InFrame* frame);

class InFrame {
 public:
  InFrame();
  ~InFrame();
  InFrame(InFrame&&) noexcept;
  InFrame& operator=(InFrame&&) noexcept;

  FrameMeta meta;

  std::size_t payload_size() const { return payload_size_; }
  // Copies the payload to dst (payload_size() bytes).
  void CopyTo(void* dst) const;
  // acc[i] = acc[i] op payload[i] for payload_size() / DTypeSize(dtype) elements. The payload may
  // be split and misaligned in memory; acc must be aligned for dtype.
  void ReduceInto(void* acc, DType dtype, ReduceOp op) const;

  // A frame whose payload is caller memory split into `spans` (tests of CopyTo/ReduceInto).
  static InFrame View(FrameMeta meta, std::vector<std::span<const std::byte>> spans);

  // The gRPC buffers behind the payload (opaque outside transport.cc).
  struct Storage;

 private:
  friend class Transport;
  friend std::string DecodeFrame(void* byte_buffer, InFrame* frame);
  std::unique_ptr<Storage> storage_;
  std::vector<std::span<const std::byte>> spans_;
  std::size_t payload_size_ = 0;
};

// acc[i] op= in[i] where `in` may be misaligned (the reduction of ReduceInto in core, with loads
// that do not assume alignment).
void ReduceUnaligned(void* acc, const std::byte* in, std::size_t count, DType dtype, ReduceOp op);

// The failure that started it all, as carried by ERROR frames and coordinator relays.
struct FailureOrigin {
  int rank = -1;
  ErrorCode code = ErrorCode::kOk;
  std::string message;
};
// How a failure elsewhere is reported on this rank: kInvalidArgument stays (every rank of a
// mismatched collective reports the mismatch), everything else becomes kAborted.
Status RelayedFailure(const FailureOrigin& origin);

// Selects gRPC's "poll" I/O engine for this process unless GRPC_POLL_STRATEGY is set or gRPC is
// already initialised (why: escala/distributed/process_tuning.h, its only caller). Returns the
// engine in use ("poll", or the variable's value, or "default").
std::string PreferPollEngine();

struct TransportOptions {
  std::string job_id;
  std::string job_token;
  std::string bind_address = "127.0.0.1:0";
  std::size_t max_message_bytes = std::size_t{64} << 20;
  // Stop reading from a peer while this many received bytes wait to be consumed.
  std::size_t inbox_limit_bytes = std::size_t{64} << 20;
  TlsOptions tls;
};

class Transport {
 public:
  // Starts the server. Throws kUnavailable if the address cannot be bound.
  explicit Transport(TransportOptions options);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  int port() const;
  int rank() const { return rank_; }
  int world() const { return world_; }

  // Opens links to `peers` once the rendezvous told this process its rank: this rank dials every
  // lower-ranked peer at addresses[peer] and accepts every higher-ranked one (checking job id,
  // token and round). Returns when all links are up. Throws kUnavailable (a peer refused),
  // kPermissionDenied (a peer rejected our token), kDeadlineExceeded.
  void Connect(int rank, int world, std::uint64_t round, const std::vector<int>& peers,
               const std::vector<std::string>& addresses, Deadline deadline);

  // While a Recv waits, frames of collective `seq` that other peers already sent are shown to
  // `screen`, which throws if they disagree with this rank's call (a mismatch is then reported
  // even when the ranks chose different algorithms). Reset with an empty function.
  // Also drops ANNOUNCE frames of earlier collectives (they only matter while their collective
  // runs). Recv never returns ANNOUNCE frames: it screens them and moves on.
  void SetScreen(std::uint64_t seq, std::function<void(const FrameMeta&)> screen);

  // Whether Interrupt() was called.
  bool interrupted() const;

  // Queues a frame for `peer`. With copy=false the payload is referenced, not copied: it must stay
  // valid and unmodified until Flush() returned or the peer provably received it.
  void Send(int peer, const FrameMeta& meta, const void* payload, std::size_t bytes, bool copy);
  // The next frame from `peer`. Throws when the deadline passes (kDeadlineExceeded naming the
  // peer), the link is lost (kAborted), a peer reported a failure (RelayedFailure), or Interrupt()
  // was called. `what` ("allreduce #3 (tag 9)") and `timeout` go into messages.
  InFrame Recv(int peer, Deadline deadline, std::string_view what,
               std::chrono::milliseconds timeout);
  // Waits until every queued frame was written and no payload is referenced any more.
  void Flush(Deadline deadline, std::string_view what, std::chrono::milliseconds timeout);

  // The peer failure seen by the last throwing Recv/Flush, if one came from a peer's ERROR frame.
  const FailureOrigin& peer_failure() const { return peer_failure_; }
  // Tells every linked peer that this communicator failed, and waits up to `drain` for the
  // frames to be written. Once per transport.
  void SendErrorFrames(const FailureOrigin& origin, std::chrono::milliseconds drain);

  // Any thread: makes the current and every later wait throw `reason`. Idempotent.
  void Interrupt(const Status& reason);

  // Ends every link: says goodbye to the peers and waits until `linger` for theirs (so that no
  // peer loses data still in flight), then tears the streams down. Idempotent.
  void Close(Deadline linger);

 private:
  struct Link;
  struct Tag;
  struct Accept;
  struct Impl;

  void Progress(Deadline until);
  void Dispatch(Tag* tag, bool ok);
  void OnAccepted(bool ok);
  void PostAccept();
  void OnReadDone(Link& link, bool ok);
  void OnWriteDone(Link& link, bool ok);
  void StartNextWrite(Link& link);
  void StartRead(Link& link);
  void ThrowIfInterrupted(std::string_view what);
  std::string Where(std::string_view what) const;
  Link& LinkTo(int peer);
  void ScreenInboxes();

  TransportOptions options_;
  int rank_ = 0;
  int world_ = 1;
  std::uint64_t round_ = 0;
  std::uint64_t screen_seq_ = 0;
  std::function<void(const FrameMeta&)> screen_;
  std::unique_ptr<Impl> impl_;
  std::vector<std::unique_ptr<Link>> links_;  // indexed by peer rank
  FailureOrigin peer_failure_;
  bool error_frames_sent_ = false;
  bool closed_ = false;
};

}  // namespace escala::distributed::internal

#endif  // ESCALA_SRC_DIST_TRANSPORT_H_
