// The worker side of the coordinator protocol: registration, the session (heartbeats and failure
// relay on two threads of its own), key-value store and barriers, on gRPC's synchronous API.
#include "escala/distributed/job.h"

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include "core/rpc/grpc_edge.h"
#include "distributed/grpc_util.h"
#include "distributed/transport.h"
#include "escala/core/logging.h"
#include "escala/distributed/v1/coordinator.grpc.pb.h"

namespace escala::distributed {
namespace {

namespace pb = ::escala::distributed::v1;
using Clock = std::chrono::steady_clock;

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

}  // namespace

class JobSession::Impl {
 public:
  explicit Impl(JobOptions options) : options_(std::move(options)) {
    ESCALA_CHECK(!options_.coordinator.empty(), kInvalidArgument,
                 "no coordinator address to rendezvous at");
    channel_ = grpc::CreateCustomChannel(
        options_.coordinator, rpc::MakeChannelCredentials(options_.tls),
        internal::MakeChannelArguments(options_.tls, options_.max_message_bytes, false));
    stub_ = pb::Coordinator::NewStub(channel_);
  }

  ~Impl() { Close(/*goodbye=*/!failure_reported_.load()); }

  void Register(const Registration& reg) {
    pb::RegisterRequest req;
    FillAuth(req.mutable_auth());
    req.set_world_size(reg.world_size);
    req.set_requested_rank(reg.requested_rank);
    req.set_host(reg.host);
    req.set_port(reg.port);
    req.set_hostname(HostName());
    req.set_local_rank(reg.local_rank);
    req.set_pid(static_cast<std::int64_t>(getpid()));
    pb::RegisterResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + options_.rendezvous_timeout);
    ctx.set_wait_for_ready(true);  // the coordinator may not be up yet
    const grpc::Status st = stub_->Register(&ctx, req, &resp);
    if (!st.ok()) {
      if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        const bool connected = channel_->GetState(false) == GRPC_CHANNEL_READY;
        Throw(ErrorCode::kDeadlineExceeded,
              "rendezvous at coordinator {} timed out after {} ms: {}", options_.coordinator,
              options_.rendezvous_timeout.count(),
              connected ? fmt::format("not all {} workers registered", reg.world_size)
                        : std::string("the coordinator could not be reached"));
      }
      rpc::FromGrpcStatus(st, fmt::format("rendezvous at coordinator {}", options_.coordinator))
          .ThrowIfError();
    }
    membership_.rank = resp.rank();
    membership_.world_size = resp.world_size();
    membership_.round = resp.round();
    membership_.observed_host = resp.observed_host();
    membership_.heartbeat_interval = std::chrono::milliseconds(resp.heartbeat_interval_ms());
    membership_.heartbeat_timeout = std::chrono::milliseconds(resp.heartbeat_timeout_ms());
    for (const auto& p : resp.peers()) {
      membership_.peers.push_back(PeerInfo{p.rank(), p.address(), p.hostname(), p.pid()});
    }
    ESCALA_CHECK(membership_.world_size == reg.world_size &&
                     static_cast<int>(membership_.peers.size()) == reg.world_size &&
                     membership_.heartbeat_interval.count() > 0,
                 kInternal, "coordinator {} answered an inconsistent membership",
                 options_.coordinator);
  }

  void StartSession() {
    std::lock_guard lock(mu_);
    if (started_) return;
    started_ = true;
    session_ctx_ = std::make_unique<grpc::ClientContext>();
    pb::WorkerEvent hello;
    FillAuth(hello.mutable_hello()->mutable_auth());
    hello.mutable_hello()->set_rank(membership_.rank);
    hello.mutable_hello()->set_round(membership_.round);
    {
      std::lock_guard wlock(write_mu_);
      stream_ = stub_->Session(session_ctx_.get());
      stream_->Write(hello);
    }
    last_heard_.store(Clock::now().time_since_epoch().count());
    reader_ = std::thread([this] { ReaderLoop(); });
    heartbeat_ = std::thread([this] { HeartbeatLoop(); });
  }

  void Close(bool goodbye) {
    {
      std::lock_guard lock(mu_);
      if (closing_) return;
      closing_ = true;
    }
    if (stream_ != nullptr) {
      {
        std::lock_guard wlock(write_mu_);
        if (goodbye) {
          pb::WorkerEvent ev;
          ev.mutable_goodbye();
          stream_->Write(ev);
        }
        stream_->WritesDone();
        writes_done_ = true;
      }
      // The coordinator ends the stream once it read our half-close; do not wait long for it.
      {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, std::chrono::seconds(5), [&] { return reader_done_; });
        if (!reader_done_) session_ctx_->TryCancel();
        stopping_ = true;
      }
      cv_.notify_all();
      if (reader_.joinable()) reader_.join();
      if (heartbeat_.joinable()) heartbeat_.join();
      stream_->Finish();
    }
  }

  void ReportFailure(const Status& status) {
    if (failure_reported_.exchange(true)) return;
    pb::WorkerEvent ev;
    ev.mutable_failure()->set_code(static_cast<int>(status.code()));
    ev.mutable_failure()->set_message(status.message().substr(0, 4096));
    Write(ev);
  }

  int AddHandler(std::function<void(const Status&)> handler) {
    std::lock_guard lock(handlers_mu_);
    const int id = next_handler_++;
    if (delivered_) {
      handler(failure_);
    } else {
      handlers_.emplace(id, std::move(handler));
    }
    return id;
  }

  void RemoveHandler(int id) {
    std::lock_guard lock(handlers_mu_);
    handlers_.erase(id);
  }

  Status failure() const {
    std::lock_guard lock(handlers_mu_);
    return failure_;
  }

  void Set(const std::string& key, const std::string& value) {
    pb::KeyValueSetRequest req;
    FillAuth(req.mutable_auth());
    req.set_round(membership_.round);
    req.set_key(key);
    req.set_value(value);
    pb::KeyValueSetResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + options_.rpc_timeout);
    Check(stub_->KeyValueSet(&ctx, req, &resp), "set key '" + key + "'");
  }

  std::string Get(const std::string& key, std::chrono::milliseconds timeout) {
    if (timeout.count() <= 0) timeout = options_.rpc_timeout;
    pb::KeyValueGetRequest req;
    FillAuth(req.mutable_auth());
    req.set_round(membership_.round);
    req.set_key(key);
    req.set_wait_ms(timeout.count());
    pb::KeyValueGetResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout + std::chrono::seconds(5));
    Check(stub_->KeyValueGet(&ctx, req, &resp), "get key '" + key + "'");
    return resp.value();
  }

  void Barrier(const std::string& name, std::chrono::milliseconds timeout) {
    if (timeout.count() <= 0) timeout = options_.rpc_timeout;
    pb::BarrierRequest req;
    FillAuth(req.mutable_auth());
    req.set_round(membership_.round);
    req.set_rank(membership_.rank);
    req.set_name(name);
    pb::BarrierResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    Check(stub_->Barrier(&ctx, req, &resp), "barrier '" + name + "'");
  }

  const Membership& membership() const { return membership_; }

  void SetStarted(std::uint64_t n) { collectives_started_.store(n, std::memory_order_relaxed); }
  std::vector<std::uint64_t> PeerProgress() const {
    std::lock_guard lock(progress_mu_);
    return peer_progress_;
  }

 private:
  // Writes an event unless the stream is not open or already half-closed.
  void Write(const pb::WorkerEvent& ev) {
    std::lock_guard wlock(write_mu_);
    if (stream_ == nullptr || writes_done_) return;
    stream_->Write(ev);
  }

  void FillAuth(pb::JobAuth* auth) const {
    auth->set_job_id(options_.job_id);
    auth->set_job_token(options_.job_token);
  }

  void Check(const grpc::Status& st, const std::string& what) const {
    if (st.ok()) return;
    rpc::FromGrpcStatus(st, fmt::format("rank {}: {} at coordinator {}", membership_.rank, what,
                                        options_.coordinator))
        .ThrowIfError();
  }

  void Deliver(const Status& status) {
    std::lock_guard lock(handlers_mu_);
    if (delivered_) return;
    delivered_ = true;
    failure_ = status;
    // Handlers run with handlers_mu_ held, so RemoveHandler() waits for a running one.
    for (auto& [id, h] : handlers_) h(status);
  }

  void ReaderLoop() {
    pb::CoordinatorEvent ev;
    while (stream_->Read(&ev)) {
      last_heard_.store(Clock::now().time_since_epoch().count());
      if (ev.has_heartbeat() && ev.heartbeat().collectives_started_size() > 0) {
        std::lock_guard lock(progress_mu_);
        peer_progress_.assign(ev.heartbeat().collectives_started().begin(),
                              ev.heartbeat().collectives_started().end());
      }
      if (ev.has_abort()) {
        const auto& a = ev.abort();
        Deliver(internal::RelayedFailure(internal::FailureOrigin{
            a.failed_rank(), static_cast<ErrorCode>(a.code()), a.message()}));
      }
    }
    bool expected;
    {
      std::lock_guard lock(mu_);
      expected = closing_;
      reader_done_ = true;
    }
    cv_.notify_all();
    if (!expected) {
      Deliver(Status(ErrorCode::kUnavailable,
                     fmt::format("lost the coordinator at {}: its session ended (coordinator "
                                 "stopped, killed or unreachable)",
                                 options_.coordinator)));
    }
  }

  void HeartbeatLoop() {
    const auto interval = membership_.heartbeat_interval;
    const auto timeout = membership_.heartbeat_timeout;
    std::unique_lock lock(mu_);
    while (!stopping_) {
      cv_.wait_for(lock, interval, [&] { return stopping_; });
      if (stopping_ || closing_) continue;
      const auto heard = Clock::time_point(Clock::duration(last_heard_.load()));
      const auto silent = Clock::now() - heard;
      if (silent > timeout) {
        lock.unlock();
        Deliver(Status(
            ErrorCode::kUnavailable,
            fmt::format("lost the coordinator at {}: no heartbeat for {} ms", options_.coordinator,
                        std::chrono::duration_cast<std::chrono::milliseconds>(silent).count())));
        session_ctx_->TryCancel();
        lock.lock();
        break;
      }
      lock.unlock();
      pb::WorkerEvent ev;
      ev.mutable_heartbeat()->set_collectives_started(
          collectives_started_.load(std::memory_order_relaxed));
      Write(ev);
      lock.lock();
    }
  }

  const JobOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::Coordinator::Stub> stub_;
  Membership membership_;

  std::unique_ptr<grpc::ClientContext> session_ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<pb::WorkerEvent, pb::CoordinatorEvent>> stream_;
  std::thread reader_;
  std::thread heartbeat_;
  std::atomic<Clock::rep> last_heard_{0};
  std::atomic<bool> failure_reported_{false};
  std::atomic<std::uint64_t> collectives_started_{0};
  mutable std::mutex progress_mu_;
  std::vector<std::uint64_t> peer_progress_;  // guarded by progress_mu_

  std::mutex write_mu_;       // one writer on the stream at a time
  bool writes_done_ = false;  // guarded by write_mu_
  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;      // guarded by mu_
  bool closing_ = false;      // guarded by mu_
  bool stopping_ = false;     // guarded by mu_
  bool reader_done_ = false;  // guarded by mu_

  mutable std::mutex handlers_mu_;
  std::map<int, std::function<void(const Status&)>> handlers_;  // guarded by handlers_mu_
  int next_handler_ = 1;                                        // guarded by handlers_mu_
  bool delivered_ = false;                                      // guarded by handlers_mu_
  Status failure_;                                              // guarded by handlers_mu_
};

std::unique_ptr<JobSession> JobSession::Join(const JobOptions& options,
                                             const Registration& registration) {
  ESCALA_CHECK(registration.world_size >= 1, kInvalidArgument, "world size must be >= 1, got {}",
               registration.world_size);
  auto impl = std::make_unique<Impl>(options);
  impl->Register(registration);
  std::unique_ptr<JobSession> session(new JobSession(std::move(impl)));
  session->StartSession();
  return session;
}

JobSession::JobSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JobSession::~JobSession() = default;

const Membership& JobSession::membership() const {
  return impl_->membership();
}
void JobSession::StartSession() {
  impl_->StartSession();
}
int JobSession::AddFailureHandler(std::function<void(const Status&)> handler) {
  return impl_->AddHandler(std::move(handler));
}
void JobSession::RemoveFailureHandler(int id) {
  impl_->RemoveHandler(id);
}
Status JobSession::failure() const {
  return impl_->failure();
}
void JobSession::ReportFailure(const Status& status) {
  impl_->ReportFailure(status);
}
void JobSession::Goodbye() {
  impl_->Close(/*goodbye=*/true);
}
void JobSession::SetCollectivesStarted(std::uint64_t n) {
  impl_->SetStarted(n);
}
std::vector<std::uint64_t> JobSession::PeerCollectivesStarted() const {
  return impl_->PeerProgress();
}
void JobSession::Set(const std::string& key, const std::string& value) {
  impl_->Set(key, value);
}
std::string JobSession::Get(const std::string& key, std::chrono::milliseconds timeout) {
  return impl_->Get(key, timeout);
}
void JobSession::Barrier(const std::string& name, std::chrono::milliseconds timeout) {
  impl_->Barrier(name, timeout);
}

}  // namespace escala::distributed
