#include "distributed/transport.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>

#include <fmt/format.h>
#include <grpcpp/alarm.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "core/rpc/grpc_edge.h"
#include "core/rpc/listen_check.h"
#include "distributed/grpc_util.h"
#include "escala/core/logging.h"
#include "escala/distributed/v1/collective.pb.h"

namespace escala::distributed::internal {
namespace {

using Clock = std::chrono::steady_clock;
using ::escala::internal::ListenFailureReason;
using ::escala::rpc::FromGrpcStatus;
using ::escala::rpc::MakeChannelCredentials;
using ::escala::rpc::MakeServerCredentials;
using ::escala::rpc::ToGrpcStatus;
namespace pb = ::escala::distributed::v1;

constexpr char kLinkMethod[] = "/escala.distributed.v1.Collective/Link";
// Upper bound on one blocking poll, so that deadlines and late payload releases are noticed.
constexpr auto kPollSlice = std::chrono::milliseconds(50);
constexpr std::size_t kMaxHeaderBytes = 64 << 10;
constexpr std::size_t kMaxErrorMessage = 4096;

// Zero-copy accounting. Allocated apart from the Transport so that a payload released by gRPC
// after the Transport is gone never touches freed memory.
struct PayloadRefs {
  std::atomic<std::int64_t> outstanding{0};
};

void ReleasePayload(void* refs) {
  static_cast<PayloadRefs*>(refs)->outstanding.fetch_sub(1, std::memory_order_acq_rel);
}

void PutVarint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void ToProto(const FrameMeta& m, pb::FrameHeader* h) {
  h->set_type(static_cast<pb::FrameHeader::Type>(m.type));
  h->set_op(static_cast<pb::FrameHeader::Op>(m.op));
  h->set_seq(m.seq);
  h->set_step(m.step);
  h->set_offset(m.offset);
  h->set_count(m.count);
  h->set_dtype(static_cast<std::uint32_t>(m.dtype));
  h->set_reduce_op(static_cast<std::uint32_t>(m.reduce_op));
  h->set_root(m.root);
  h->set_from_rank(m.from_rank);
  h->set_block(m.block);
  h->set_block_bytes(m.block_bytes);
  if (m.type == FrameType::kError) {
    h->set_error_rank(m.error_rank);
    h->set_error_code(m.error_code);
    h->set_error_message(m.error_message.substr(0, kMaxErrorMessage));
  }
}

bool FromProto(const pb::FrameHeader& h, FrameMeta* m) {
  if (h.type() > pb::FrameHeader::Type(static_cast<int>(FrameType::kAnnounce)) ||
      h.op() > pb::FrameHeader::Op(static_cast<int>(OpKind::kBarrier)) ||
      h.dtype() > static_cast<std::uint32_t>(DType::kUInt8) ||
      h.reduce_op() > static_cast<std::uint32_t>(ReduceOp::kMin)) {
    return false;
  }
  m->type = static_cast<FrameType>(h.type());
  m->op = static_cast<OpKind>(h.op());
  m->seq = h.seq();
  m->step = h.step();
  m->offset = h.offset();
  m->count = h.count();
  m->dtype = static_cast<DType>(h.dtype());
  m->reduce_op = static_cast<ReduceOp>(h.reduce_op());
  m->root = h.root();
  m->from_rank = h.from_rank();
  m->block = h.block();
  m->block_bytes = h.block_bytes();
  m->error_rank = h.error_rank();
  m->error_code = h.error_code();
  m->error_message = h.error_message();
  return true;
}

// Frame = [0x0A varint(len) FrameHeader][0x12 varint(len) payload]: the protobuf encoding of
// `Frame`, with the payload as a slice of its own that points at the caller's memory.
grpc::ByteBuffer Encode(const FrameMeta& meta, const void* payload, std::size_t bytes, bool copy,
                        PayloadRefs* refs) {
  thread_local pb::FrameHeader header;
  thread_local std::string prefix;
  header.Clear();
  ToProto(meta, &header);
  const std::size_t hlen = header.ByteSizeLong();
  prefix.clear();
  prefix.push_back(0x0A);
  PutVarint(prefix, hlen);
  const std::size_t at = prefix.size();
  prefix.resize(at + hlen);
  header.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t*>(prefix.data() + at));
  if (bytes > 0) {
    prefix.push_back(0x12);
    PutVarint(prefix, bytes);
  }
  grpc::Slice slices[2] = {grpc::Slice(prefix.data(), prefix.size()), grpc::Slice()};
  if (bytes == 0) return grpc::ByteBuffer(slices, 1);
  if (copy) {
    slices[1] = grpc::Slice(payload, bytes);
  } else {
    refs->outstanding.fetch_add(1, std::memory_order_acq_rel);
    slices[1] = grpc::Slice(const_cast<void*>(payload), bytes, &ReleasePayload, refs);
  }
  return grpc::ByteBuffer(slices, 2);
}

// Walks the bytes of a list of slices.
class Cursor {
 public:
  explicit Cursor(const std::vector<grpc::Slice>& slices) : slices_(slices) { Skip(); }
  bool ReadByte(std::uint8_t* b) {
    if (i_ >= slices_.size()) return false;
    *b = slices_[i_].begin()[off_];
    Advance(1);
    return true;
  }
  bool ReadVarint(std::uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      std::uint8_t b;
      if (!ReadByte(&b)) return false;
      *v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  bool Read(std::string* out, std::size_t n) {
    out->clear();
    while (n > 0) {
      if (i_ >= slices_.size()) return false;
      const std::size_t take = std::min(n, slices_[i_].size() - off_);
      out->append(reinterpret_cast<const char*>(slices_[i_].begin() + off_), take);
      Advance(take);
      n -= take;
    }
    return true;
  }
  bool AtEnd() const { return i_ >= slices_.size(); }
  // The remaining bytes as spans.
  std::size_t Rest(std::vector<std::span<const std::byte>>* spans) {
    std::size_t total = 0;
    for (; i_ < slices_.size(); ++i_, off_ = 0) {
      const auto* p = reinterpret_cast<const std::byte*>(slices_[i_].begin()) + off_;
      const std::size_t n = slices_[i_].size() - off_;
      if (n > 0) spans->emplace_back(p, n);
      total += n;
    }
    return total;
  }

 private:
  void Advance(std::size_t n) {
    off_ += n;
    Skip();
  }
  void Skip() {
    while (i_ < slices_.size() && off_ >= slices_[i_].size()) {
      ++i_;
      off_ = 0;
    }
  }
  const std::vector<grpc::Slice>& slices_;
  std::size_t i_ = 0;
  std::size_t off_ = 0;
};

}  // namespace

struct InFrame::Storage {
  std::vector<grpc::Slice> slices;
};

InFrame::InFrame() = default;
InFrame::~InFrame() = default;
InFrame::InFrame(InFrame&&) noexcept = default;
InFrame& InFrame::operator=(InFrame&&) noexcept = default;

// Decodes a received Frame (a grpc::ByteBuffer) without copying its payload. Returns an error
// text on failure.
std::string DecodeFrame(void* byte_buffer, InFrame* frame) {
  grpc::ByteBuffer& buf = *static_cast<grpc::ByteBuffer*>(byte_buffer);
  std::vector<std::span<const std::byte>>* spans = &frame->spans_;
  std::size_t* payload_size = &frame->payload_size_;
  std::unique_ptr<InFrame::Storage>* out = &frame->storage_;
  auto storage = std::make_unique<InFrame::Storage>();
  if (!buf.Dump(&storage->slices).ok()) return "unreadable message";
  buf.Clear();
  Cursor c(storage->slices);
  std::uint8_t tag;
  std::uint64_t hlen;
  if (!c.ReadByte(&tag) || tag != 0x0A || !c.ReadVarint(&hlen) || hlen > kMaxHeaderBytes) {
    return "no frame header";
  }
  thread_local std::string hbytes;
  thread_local pb::FrameHeader header;
  if (!c.Read(&hbytes, hlen) || !header.ParseFromString(hbytes) ||
      !FromProto(header, &frame->meta)) {
    return "malformed frame header";
  }
  spans->clear();
  *payload_size = 0;
  if (!c.AtEnd()) {
    std::uint64_t plen;
    if (!c.ReadByte(&tag) || tag != 0x12 || !c.ReadVarint(&plen)) return "malformed payload";
    *payload_size = c.Rest(spans);
    if (*payload_size != plen) {
      return fmt::format("payload of {} bytes announced as {}", *payload_size, plen);
    }
  }
  *out = std::move(storage);
  return {};
}

// ---- links ---------------------------------------------------------------------------------

struct Transport::Tag {
  enum Kind : std::uint8_t { kStart, kRead, kWrite, kFinish, kAccept, kRejectDone, kAlarm };
  Kind kind;
  Link* link = nullptr;
  Accept* accept = nullptr;
};

// One pending or rejected server-side call.
struct Transport::Accept {
  grpc::GenericServerContext ctx;
  grpc::GenericServerAsyncReaderWriter stream{&ctx};
  Tag tag{Tag::kAccept};
  Tag done_tag{Tag::kRejectDone};
  Accept() {
    tag.accept = this;
    done_tag.accept = this;
  }
};

struct Transport::Link {
  int peer = -1;
  std::string address;  // dialled address (client side) or "inbound"
  bool client = false;

  // Client side. Declaration order is destruction order in reverse: the call goes first.
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<grpc::GenericStub> stub;
  std::unique_ptr<grpc::ClientContext> client_ctx;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> client_call;
  // Server side: the accepted call.
  std::unique_ptr<Accept> server;

  Tag start_tag{Tag::kStart};
  Tag read_tag{Tag::kRead};
  Tag write_tag{Tag::kWrite};
  Tag finish_tag{Tag::kFinish};

  bool ready = false;  // HELLO exchanged
  bool read_pending = false;
  bool read_paused = false;  // inbox full: reading resumes when the algorithm consumes
  bool read_closed = false;  // no more frames will come
  bool write_pending = false;
  bool write_failed = false;
  bool finish_pending = false;
  bool finished = false;
  bool bye_received = false;
  bool bye_sent = false;

  grpc::ByteBuffer read_buf;
  std::deque<grpc::ByteBuffer> write_queue;
  std::deque<InFrame> inbox;
  std::size_t inbox_bytes = 0;
  grpc::Status finish_status;
  std::string error;  // why the link ended, for messages

  Link(int p, std::string addr, bool is_client)
      : peer(p), address(std::move(addr)), client(is_client) {
    start_tag.link = read_tag.link = write_tag.link = finish_tag.link = this;
  }
  void Read() {
    if (client) {
      client_call->Read(&read_buf, &read_tag);
    } else {
      server->stream.Read(&read_buf, &read_tag);
    }
  }
  void Write(const grpc::ByteBuffer& b) {
    if (client) {
      client_call->Write(b, &write_tag);
    } else {
      server->stream.Write(b, &write_tag);
    }
  }
  bool Busy() const { return write_pending || !write_queue.empty(); }
  std::string Name() const {
    return client ? fmt::format("rank {} ({})", peer, address) : fmt::format("rank {}", peer);
  }
};

struct Transport::Impl {
  std::unique_ptr<grpc::AsyncGenericService> service;
  std::unique_ptr<grpc::ServerCompletionQueue> cq;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::unique_ptr<Accept> pending_accept;
  std::vector<std::unique_ptr<Accept>> rejected;
  std::shared_ptr<grpc::ChannelCredentials> channel_creds;
  std::unique_ptr<grpc::ChannelArguments> channel_args;
  std::vector<bool> expected;  // peers this rank links with
  PayloadRefs* refs = new PayloadRefs;
  std::optional<FailureOrigin> pending_failure;  // from an ERROR frame, not yet thrown

  std::atomic<bool> interrupted{false};
  std::mutex interrupt_mu;
  Status interrupt_reason;    // guarded by interrupt_mu
  bool cq_shut_down = false;  // guarded by interrupt_mu
  grpc::Alarm alarm;
  Tag alarm_tag{Tag::kAlarm};
};

Transport::Transport(TransportOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  impl_->channel_creds = MakeChannelCredentials(options_.tls);
  impl_->channel_args = std::make_unique<grpc::ChannelArguments>(
      MakeChannelArguments(options_.tls, options_.max_message_bytes, /*data_plane=*/true));

  grpc::ServerBuilder builder;
  impl_->service = std::make_unique<grpc::AsyncGenericService>();
  builder.AddListeningPort(options_.bind_address, MakeServerCredentials(options_.tls),
                           &impl_->port);
  builder.RegisterAsyncGenericService(impl_->service.get());
  ConfigureServerBuilder(builder, options_.max_message_bytes, /*data_plane=*/true);
  impl_->cq = builder.AddCompletionQueue();
  impl_->server = builder.BuildAndStart();
  if (impl_->server == nullptr || impl_->port == 0) {
    impl_->cq->Shutdown();
    void* tag;
    bool ok;
    while (impl_->cq->Next(&tag, &ok)) {
    }
    delete impl_->refs;  // nothing was sent: no payload holds it (the destructor will not run)
    Throw(ErrorCode::kUnavailable, "cannot listen for peers on {}: {}", options_.bind_address,
          ListenFailureReason(options_.bind_address));
  }
  PostAccept();
}

Transport::~Transport() {
  try {
    Close(Clock::now());
  } catch (const std::exception& e) {
    ESCALA_LOG_WARN("rank {}: closing the data plane: {}", rank_, e.what());
  }
  links_.clear();
  impl_->pending_accept.reset();
  impl_->rejected.clear();
  impl_->server.reset();
  impl_->cq.reset();
  if (impl_->refs->outstanding.load() == 0) {
    delete impl_->refs;
  } else {
    // gRPC still holds payload references (it should not); keep the counter alive for them.
    ESCALA_LOG_WARN("rank {}: {} payload buffers still referenced by gRPC at shutdown", rank_,
                    impl_->refs->outstanding.load());
  }
}

int Transport::port() const {
  return impl_->port;
}

std::string Transport::Where(std::string_view what) const {
  return fmt::format("rank {}/{}: {}", rank_, world_, what);
}

Transport::Link& Transport::LinkTo(int peer) {
  ESCALA_ASSERT(peer >= 0 && peer < world_);
  Link* l = links_[static_cast<std::size_t>(peer)].get();
  ESCALA_CHECK(l != nullptr, kInternal, "rank {}: no link to rank {}", rank_, peer);
  return *l;
}

void Transport::PostAccept() {
  impl_->pending_accept = std::make_unique<Accept>();
  Accept* a = impl_->pending_accept.get();
  impl_->service->RequestCall(&a->ctx, &a->stream, impl_->cq.get(), impl_->cq.get(), &a->tag);
}

void Transport::OnAccepted(bool ok) {
  std::unique_ptr<Accept> a = std::move(impl_->pending_accept);
  if (!ok) return;  // server shutting down
  PostAccept();

  const auto& md = a->ctx.client_metadata();
  auto get = [&](const char* key) {
    auto it = md.find(key);
    return it == md.end() ? std::string() : std::string(it->second.data(), it->second.size());
  };
  int from = -1;
  grpc::Status reject;
  const std::string rank_text = get("x-escala-rank");
  try {
    std::size_t used = 0;
    from = std::stoi(rank_text, &used);
    if (used != rank_text.size()) from = -1;
  } catch (const std::exception&) {
    from = -1;
  }
  if (a->ctx.method() != kLinkMethod) {
    reject = ToGrpcStatus(Status(ErrorCode::kUnimplemented, "unknown method " + a->ctx.method()));
  } else if (get("x-escala-job") != options_.job_id) {
    reject = ToGrpcStatus(Status(ErrorCode::kInvalidArgument,
                                 fmt::format("job id '{}' does not match this job ('{}')",
                                             get("x-escala-job"), options_.job_id)));
  } else if (!SecretEquals(get("x-escala-token"), options_.job_token)) {
    reject = ToGrpcStatus(Status(ErrorCode::kPermissionDenied, "wrong job token"));
  } else if (get("x-escala-round") != std::to_string(round_)) {
    reject = ToGrpcStatus(Status(
        ErrorCode::kFailedPrecondition,
        fmt::format("round {} is over (this job is in round {})", get("x-escala-round"), round_)));
  } else if (from <= rank_ || from >= world_ || links_.empty() ||
             !impl_->expected[static_cast<std::size_t>(from)]) {
    reject =
        ToGrpcStatus(Status(ErrorCode::kInvalidArgument,
                            fmt::format("rank {} does not link to rank '{}'", rank_, rank_text)));
  } else if (links_[static_cast<std::size_t>(from)] != nullptr &&
             links_[static_cast<std::size_t>(from)]->server != nullptr) {
    reject = ToGrpcStatus(
        Status(ErrorCode::kAlreadyExists, fmt::format("rank {} is already linked", from)));
  }
  if (!reject.ok()) {
    ESCALA_LOG_WARN("rank {}: refused a data-plane connection from {}: {}", rank_, a->ctx.peer(),
                    reject.error_message());
    a->stream.Finish(reject, &a->done_tag);
    impl_->rejected.push_back(std::move(a));
    return;
  }
  auto& slot = links_[static_cast<std::size_t>(from)];
  if (slot == nullptr) slot = std::make_unique<Link>(from, "inbound", false);
  Link& l = *slot;
  l.server = std::move(a);
  l.ready = true;
  StartRead(l);
  FrameMeta hello;
  hello.type = FrameType::kHello;
  hello.from_rank = rank_;
  l.write_queue.push_back(Encode(hello, nullptr, 0, true, impl_->refs));
  StartNextWrite(l);
}

void Transport::StartRead(Link& l) {
  l.read_pending = true;
  l.read_paused = false;
  l.Read();
}

void Transport::StartNextWrite(Link& l) {
  if (l.write_pending || l.write_queue.empty() || l.write_failed) return;
  l.write_pending = true;
  l.Write(l.write_queue.front());  // gRPC takes its own reference to the slices
  l.write_queue.pop_front();
}

void Transport::OnReadDone(Link& l, bool ok) {
  l.read_pending = false;
  if (!ok) {
    l.read_closed = true;
    if (l.error.empty()) l.error = "connection closed";
    if (l.client && !l.finish_pending && !l.finished) {
      l.finish_pending = true;
      l.client_call->Finish(&l.finish_status, &l.finish_tag);
    }
    return;
  }
  InFrame f;
  const std::string err = DecodeFrame(&l.read_buf, &f);
  if (!err.empty()) {
    l.read_closed = true;
    l.error = "protocol error: " + err;
    if (!impl_->pending_failure) {
      impl_->pending_failure =
          FailureOrigin{rank_, ErrorCode::kDataLoss,
                        fmt::format("malformed frame from rank {}: {}", l.peer, err)};
    }
    return;
  }
  switch (f.meta.type) {
    case FrameType::kHello:
      if (l.client && !l.ready) {
        if (f.meta.from_rank != l.peer) {
          l.read_closed = true;
          l.error = fmt::format("the server at {} is rank {}, not rank {}", l.address,
                                f.meta.from_rank, l.peer);
          return;
        }
        l.ready = true;
      }
      break;
    case FrameType::kError:
      l.read_closed = true;
      l.error = fmt::format("rank {} reported a failure", f.meta.from_rank);
      if (!impl_->pending_failure) {
        impl_->pending_failure = FailureOrigin{
            f.meta.error_rank, static_cast<ErrorCode>(f.meta.error_code), f.meta.error_message};
      }
      return;
    case FrameType::kBye:
      l.bye_received = true;
      l.read_closed = true;
      l.error = "it closed its communicator";
      return;
    case FrameType::kData:
    case FrameType::kAck:
    case FrameType::kAnnounce:
      l.inbox_bytes += f.payload_size();
      l.inbox.push_back(std::move(f));
      break;
  }
  if (l.inbox_bytes < options_.inbox_limit_bytes) {
    StartRead(l);
  } else {
    l.read_paused = true;
  }
}

void Transport::OnWriteDone(Link& l, bool ok) {
  l.write_pending = false;
  if (!ok) {
    l.write_failed = true;
    l.write_queue.clear();
    if (l.error.empty()) l.error = "connection lost while sending";
    return;
  }
  StartNextWrite(l);
}

void Transport::Dispatch(Tag* tag, bool ok) {
  switch (tag->kind) {
    case Tag::kStart:
      // StartCall uses the same operation slot as Write: the first frame waits for it.
      OnWriteDone(*tag->link, ok);
      if (!ok) tag->link->error = "the stream could not start";
      break;
    case Tag::kRead:
      OnReadDone(*tag->link, ok);
      break;
    case Tag::kWrite:
      OnWriteDone(*tag->link, ok);
      break;
    case Tag::kFinish: {
      Link& l = *tag->link;
      l.finish_pending = false;
      l.finished = true;
      if (!l.finish_status.ok()) {
        l.error = FromGrpcStatus(l.finish_status, "gRPC").message();
      }
      break;
    }
    case Tag::kAccept:
      OnAccepted(ok);
      break;
    case Tag::kRejectDone: {
      auto& v = impl_->rejected;
      v.erase(
          std::remove_if(v.begin(), v.end(), [&](const auto& a) { return a.get() == tag->accept; }),
          v.end());
      break;
    }
    case Tag::kAlarm:
      break;
  }
}

void Transport::Progress(Deadline until) {
  const auto slice = std::min(until, Clock::now() + kPollSlice);
  void* tag = nullptr;
  bool ok = false;
  auto status = impl_->cq->AsyncNext(&tag, &ok, ToSystemDeadline(slice));
  while (status == grpc::CompletionQueue::GOT_EVENT) {
    Dispatch(static_cast<Tag*>(tag), ok);
    status = impl_->cq->AsyncNext(&tag, &ok, gpr_time_0(GPR_CLOCK_MONOTONIC));
  }
  ESCALA_CHECK(status != grpc::CompletionQueue::SHUTDOWN, kInternal,
               "rank {}: data-plane completion queue shut down", rank_);
}

void Transport::Interrupt(const Status& reason) {
  std::lock_guard lock(impl_->interrupt_mu);
  if (impl_->interrupted.load()) return;
  impl_->interrupt_reason =
      reason.ok() ? Status(ErrorCode::kAborted, "communicator aborted") : reason;
  impl_->interrupted.store(true, std::memory_order_release);
  if (!impl_->cq_shut_down) {
    impl_->alarm.Set(impl_->cq.get(), gpr_now(GPR_CLOCK_MONOTONIC), &impl_->alarm_tag);
  }
}

void Transport::ThrowIfInterrupted(std::string_view what) {
  if (impl_->pending_failure) {
    peer_failure_ = *impl_->pending_failure;
    const Status s = RelayedFailure(peer_failure_);
    throw Error(s.code(), fmt::format("{} aborted: {}", Where(what), s.message()));
  }
  if (!impl_->interrupted.load(std::memory_order_acquire)) return;
  std::lock_guard lock(impl_->interrupt_mu);
  const Status& r = impl_->interrupt_reason;
  throw Error(r.code(), fmt::format("{} aborted: {}", Where(what), r.message()));
}

void Transport::SetScreen(std::uint64_t seq, std::function<void(const FrameMeta&)> screen) {
  screen_seq_ = seq;
  screen_ = std::move(screen);
  if (screen_) ScreenInboxes();
}

bool Transport::interrupted() const {
  return impl_->interrupted.load(std::memory_order_acquire);
}

void Transport::ScreenInboxes() {
  for (const auto& lp : links_) {
    if (lp == nullptr) continue;
    auto& inbox = lp->inbox;
    while (!inbox.empty()) {
      const FrameMeta& m = inbox.front().meta;
      if (m.seq == screen_seq_ && screen_) screen_(m);
      if (m.type != FrameType::kAnnounce || m.seq > screen_seq_) break;
      inbox.pop_front();  // an announcement has done its job once screened
    }
  }
}

void Transport::Connect(int rank, int world, std::uint64_t round, const std::vector<int>& peers,
                        const std::vector<std::string>& addresses, Deadline deadline) {
  const auto start = Clock::now();
  ESCALA_ASSERT(links_.empty() && rank >= 0 && rank < world);
  rank_ = rank;
  world_ = world;
  round_ = round;
  links_.resize(static_cast<std::size_t>(world_));
  impl_->expected.assign(static_cast<std::size_t>(world_), false);
  for (int p : peers) {
    ESCALA_ASSERT(p >= 0 && p < world_ && p != rank_);
    impl_->expected[static_cast<std::size_t>(p)] = true;
  }
  for (int p : peers) {
    auto& slot = links_[static_cast<std::size_t>(p)];
    if (p > rank_) {
      if (slot == nullptr) slot = std::make_unique<Link>(p, "inbound", false);
      continue;
    }
    const std::string& address = addresses.at(static_cast<std::size_t>(p));
    ESCALA_CHECK(!address.empty(), kInvalidArgument,
                 "rank {}: rank {} registered no data-plane address", rank_, p);
    slot = std::make_unique<Link>(p, address, true);
    Link& l = *slot;
    l.channel = grpc::CreateCustomChannel(address, impl_->channel_creds, *impl_->channel_args);
    l.stub = std::make_unique<grpc::GenericStub>(l.channel);
    l.client_ctx = std::make_unique<grpc::ClientContext>();
    // A connect attempt that fails transiently (seen under CI load: "failed to connect to all
    // addresses") is retried by the channel's reconnect backoff (100 ms to 1 s) instead of failing
    // the round; a peer that is gone is reported by the coordinator, which interrupts the wait,
    // and connect_timeout bounds the rest.
    l.client_ctx->set_wait_for_ready(true);
    l.client_ctx->AddMetadata("x-escala-job", options_.job_id);
    l.client_ctx->AddMetadata("x-escala-token", options_.job_token);
    l.client_ctx->AddMetadata("x-escala-rank", std::to_string(rank_));
    l.client_ctx->AddMetadata("x-escala-round", std::to_string(round_));
    l.client_call = l.stub->PrepareCall(l.client_ctx.get(), kLinkMethod, impl_->cq.get());
    ESCALA_CHECK(l.client_call != nullptr, kInternal, "rank {}: cannot prepare a call to {}", rank_,
                 address);
    l.write_pending = true;  // until the start completes (see Dispatch)
    l.client_call->StartCall(&l.start_tag);
    StartRead(l);
  }
  for (;;) {
    std::vector<int> missing;
    for (int p : peers) {
      Link& l = *links_[static_cast<std::size_t>(p)];
      if (l.ready) continue;
      if (l.client && l.read_closed && !l.finish_pending) {
        const std::string context =
            fmt::format("rank {}/{}: cannot connect to rank {} at {}", rank_, world_, p, l.address);
        Status s = l.finished && !l.finish_status.ok()
                       ? FromGrpcStatus(l.finish_status, context)
                       : Status(ErrorCode::kUnavailable, context + ": " + l.error);
        if (s.code() == ErrorCode::kCancelled) s = Status(ErrorCode::kUnavailable, s.message());
        s.ThrowIfError();
      }
      missing.push_back(p);
    }
    if (missing.empty()) return;
    ThrowIfInterrupted("connecting to peers");
    if (Clock::now() >= deadline) {
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
      for (int p : missing) {
        // A peer whose address kept refusing or failing connections: unreachable, not slow.
        const Link& l = *links_[static_cast<std::size_t>(p)];
        if (l.client && l.channel->GetState(false) == GRPC_CHANNEL_TRANSIENT_FAILURE) {
          Throw(ErrorCode::kUnavailable,
                "rank {}/{}: cannot connect to rank {} at {}: connections failed for {} ms", rank_,
                world_, p, l.address, ms);
        }
      }
      std::string list;
      for (int p : missing) list += (list.empty() ? "" : ", ") + std::to_string(p);
      Throw(ErrorCode::kDeadlineExceeded,
            "rank {}/{}: links to rank(s) {} not up after {} ms (grpc-ring)", rank_, world_, list,
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
    }
    Progress(deadline);
  }
}

void Transport::Send(int peer, const FrameMeta& meta, const void* payload, std::size_t bytes,
                     bool copy) {
  Link& l = LinkTo(peer);
  if (l.write_failed) return;  // reported by the next Recv/Flush
  l.write_queue.push_back(Encode(meta, payload, bytes, copy, impl_->refs));
  StartNextWrite(l);
}

InFrame Transport::Recv(int peer, Deadline deadline, std::string_view what,
                        std::chrono::milliseconds timeout) {
  Link& l = LinkTo(peer);
  for (;;) {
    ThrowIfInterrupted(what);
    if (!l.inbox.empty()) {
      InFrame f = std::move(l.inbox.front());
      l.inbox.pop_front();
      l.inbox_bytes -= f.payload_size();
      if (l.read_paused && l.inbox_bytes < options_.inbox_limit_bytes) StartRead(l);
      if (f.meta.type == FrameType::kAnnounce && f.meta.seq <= screen_seq_) {
        if (f.meta.seq == screen_seq_ && screen_) screen_(f.meta);
        continue;
      }
      return f;
    }
    if (l.read_closed || l.write_failed) {
      if (l.finish_pending && Clock::now() < deadline) {
        Progress(std::min(deadline, Clock::now() + std::chrono::milliseconds(500)));
        continue;
      }
      Throw(ErrorCode::kAborted, "{}: connection to {} lost: {}", Where(what), l.Name(), l.error);
    }
    if (Clock::now() >= deadline) {
      Throw(ErrorCode::kDeadlineExceeded,
            "{} timed out after {} ms waiting for rank(s) {} (grpc-ring)", Where(what),
            timeout.count(), peer);
    }
    Progress(deadline);
    ScreenInboxes();
  }
}

void Transport::Flush(Deadline deadline, std::string_view what, std::chrono::milliseconds timeout) {
  for (;;) {
    ThrowIfInterrupted(what);
    int busy = -1;
    for (const auto& lp : links_) {
      if (lp == nullptr) continue;
      if (lp->write_failed) {
        Throw(ErrorCode::kAborted, "{}: connection to {} lost: {}", Where(what), lp->Name(),
              lp->error);
      }
      if (lp->Busy()) busy = lp->peer;
    }
    const bool referenced = impl_->refs->outstanding.load(std::memory_order_acquire) != 0;
    if (busy < 0 && !referenced) return;
    if (Clock::now() >= deadline) {
      Throw(ErrorCode::kDeadlineExceeded,
            "{} timed out after {} ms waiting for rank(s) {} to take its data (grpc-ring)",
            Where(what), timeout.count(), busy < 0 ? rank_ : busy);
    }
    // Payload references can be dropped by gRPC without a completion event: poll briefly.
    Progress(busy < 0 ? std::min(deadline, Clock::now() + std::chrono::milliseconds(1)) : deadline);
  }
}

void Transport::SendErrorFrames(const FailureOrigin& origin, std::chrono::milliseconds drain) {
  if (error_frames_sent_ || closed_) return;
  error_frames_sent_ = true;
  FrameMeta m;
  m.type = FrameType::kError;
  m.from_rank = rank_;
  m.error_rank = origin.rank;
  m.error_code = static_cast<std::int32_t>(origin.code);
  m.error_message = origin.message;
  for (const auto& lp : links_) {
    if (lp == nullptr || !lp->ready || lp->write_failed) continue;
    lp->write_queue.push_back(Encode(m, nullptr, 0, true, impl_->refs));
    StartNextWrite(*lp);
  }
  const Deadline until = Clock::now() + drain;
  while (Clock::now() < until) {
    bool busy = false;
    for (const auto& lp : links_)
      busy |= lp != nullptr && lp->ready && lp->Busy() && !lp->write_failed;
    if (!busy) break;
    Progress(until);
  }
}

void Transport::Close(Deadline linger) {
  if (closed_) return;
  closed_ = true;
  // Say goodbye, then wait for every peer's goodbye (or its end): a peer sends BYE only after
  // its last collective, i.e. after it consumed everything this rank sent it.
  FrameMeta bye;
  bye.type = FrameType::kBye;
  bye.from_rank = rank_;
  for (const auto& lp : links_) {
    if (lp == nullptr || !lp->ready || lp->write_failed || lp->bye_sent) continue;
    lp->bye_sent = true;
    lp->write_queue.push_back(Encode(bye, nullptr, 0, true, impl_->refs));
    StartNextWrite(*lp);
  }
  try {
    for (;;) {
      bool waiting = false;
      for (const auto& lp : links_) {
        if (lp == nullptr || !lp->ready) continue;
        // Frames still unread by the algorithm are dropped now: keep reading until BYE.
        lp->inbox.clear();
        lp->inbox_bytes = 0;
        if (lp->read_paused) StartRead(*lp);
        if (!lp->read_closed || lp->Busy()) waiting = waiting || !lp->write_failed;
      }
      if (!waiting || Clock::now() >= linger) break;
      Progress(linger);
    }
  } catch (const std::exception& e) {
    ESCALA_LOG_WARN("rank {}: while closing links: {}", rank_, e.what());
  }
  // Tear down: cancel the streams we dialled, stop the server (cancelling the accepted ones),
  // then drain the queue so that no tag outlives the objects it points to.
  for (const auto& lp : links_) {
    if (lp != nullptr && lp->client && lp->client_ctx != nullptr) lp->client_ctx->TryCancel();
  }
  impl_->server->Shutdown(gpr_time_0(GPR_CLOCK_MONOTONIC));
  for (const auto& lp : links_) {
    if (lp != nullptr && lp->client && lp->client_call != nullptr && !lp->finished &&
        !lp->finish_pending) {
      lp->finish_pending = true;
      lp->client_call->Finish(&lp->finish_status, &lp->finish_tag);
    }
  }
  {
    std::lock_guard lock(impl_->interrupt_mu);
    impl_->cq_shut_down = true;
  }
  impl_->cq->Shutdown();
  void* tag;
  bool ok;
  while (impl_->cq->Next(&tag, &ok)) {
  }
}

}  // namespace escala::distributed::internal
