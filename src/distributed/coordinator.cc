// The coordinator service, on gRPC's callback API: no thread waits on a worker; pending
// registrations, key-value reads and barriers are reactors finished when their condition holds,
// and one timer thread sends heartbeats and checks deadlines.
//
// Locking: mu_ guards the job state. gRPC reactor methods (Finish, StartWrite) are never called
// with mu_ held: the state changes under the lock produce a list of actions run after it.
#include "escala/distributed/coordinator.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include "core/rpc/grpc_edge.h"
#include "core/rpc/listen_check.h"
#include "distributed/grpc_util.h"
#include "escala/core/logging.h"
#include "escala/distributed/v1/coordinator.grpc.pb.h"

namespace escala::distributed {
namespace {

namespace pb = ::escala::distributed::v1;
using Clock = std::chrono::steady_clock;
using ::escala::internal::ListenFailureReason;
using rpc::ToGrpcStatus;

class SessionReactor;

// What the reactors call back into (the coordinator's state lives in Coordinator::Impl).
class ReactorHost {
 public:
  virtual void OnPendingCancelled(std::uint64_t id) = 0;
  virtual void OnWorkerEvent(SessionReactor* s, const pb::WorkerEvent& ev) = 0;
  virtual void OnSessionEnded(SessionReactor* s) = 0;
  virtual void OnSessionDone(SessionReactor* s) = 0;

 protected:
  ~ReactorHost() = default;
};

// A unary call answered later (registration, key-value read, barrier).
class PendingUnary final : public grpc::ServerUnaryReactor {
 public:
  explicit PendingUnary(ReactorHost* impl) : impl_(impl) {}
  void set_id(std::uint64_t id) { id_.store(id, std::memory_order_release); }
  void OnCancel() override {
    const std::uint64_t id = id_.load(std::memory_order_acquire);
    if (id != 0) impl_->OnPendingCancelled(id);
  }
  void OnDone() override { delete this; }

 private:
  ReactorHost* impl_;
  std::atomic<std::uint64_t> id_{0};
};

// A worker's session stream.
class SessionReactor final : public grpc::ServerBidiReactor<pb::WorkerEvent, pb::CoordinatorEvent> {
 public:
  SessionReactor(ReactorHost* impl, grpc::CallbackServerContext* ctx) : impl_(impl), ctx_(ctx) {}

  void Begin() { StartRead(&in_); }

  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Queues an event for the worker. Never called with the coordinator's lock held.
  void Send(const pb::CoordinatorEvent& ev) {
    const pb::CoordinatorEvent* next = nullptr;
    {
      std::lock_guard lock(mu_);
      if (finishing_) return;
      out_.push_back(ev);
      if (writing_) return;
      writing_ = true;
      next = &out_.front();
    }
    StartWrite(next);
  }

  // Ends the stream (after queued writes). Idempotent.
  void FinishWith(const grpc::Status& status) {
    bool now = false;
    {
      std::lock_guard lock(mu_);
      if (finishing_) return;
      finishing_ = true;
      final_ = status;
      if (!writing_) now = finished_ = true;
    }
    if (now) Finish(status);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      impl_->OnSessionEnded(this);
      return;
    }
    impl_->OnWorkerEvent(this, in_);
    bool finishing;
    {
      std::lock_guard lock(mu_);
      finishing = finishing_;
    }
    if (!finishing) StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    const pb::CoordinatorEvent* next = nullptr;
    bool finish = false;
    grpc::Status status;
    {
      std::lock_guard lock(mu_);
      out_.pop_front();
      if (!ok) out_.clear();
      if (!out_.empty()) {
        next = &out_.front();
      } else {
        writing_ = false;
        if (finishing_ && !finished_) {
          finish = finished_ = true;
          status = final_;
        }
      }
    }
    if (next != nullptr) StartWrite(next);
    if (finish) Finish(status);
  }

  void OnDone() override {
    impl_->OnSessionDone(this);
    Unref();
  }

  grpc::CallbackServerContext* context() const { return ctx_; }

  // Identity, set by the coordinator under its lock.
  int rank = -1;
  std::uint64_t round = 0;

 private:
  ReactorHost* impl_;
  grpc::CallbackServerContext* ctx_;
  std::atomic<int> refs_{1};  // gRPC's, dropped in OnDone
  pb::WorkerEvent in_;
  std::mutex mu_;
  std::deque<pb::CoordinatorEvent> out_;  // guarded by mu_; front is being written
  bool writing_ = false;                  // guarded by mu_
  bool finishing_ = false;                // guarded by mu_
  bool finished_ = false;                 // guarded by mu_
  grpc::Status final_;                    // guarded by mu_
};

std::string JoinHostPort(const std::string& host, int port) {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

}  // namespace

class Coordinator::Impl final : public pb::Coordinator::CallbackService, public ReactorHost {
 public:
  explicit Impl(CoordinatorOptions options);
  ~Impl() override;

  void Start();
  void Shutdown();
  int port() const { return port_; }
  std::string address() const { return address_; }
  CoordinatorStats stats() const;
  bool WaitUntil(std::chrono::milliseconds timeout, bool finished_only);

  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext* ctx,
                                     const pb::RegisterRequest* req,
                                     pb::RegisterResponse* resp) override;
  grpc::ServerBidiReactor<pb::WorkerEvent, pb::CoordinatorEvent>* Session(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* KeyValueSet(grpc::CallbackServerContext* ctx,
                                        const pb::KeyValueSetRequest* req,
                                        pb::KeyValueSetResponse* resp) override;
  grpc::ServerUnaryReactor* KeyValueGet(grpc::CallbackServerContext* ctx,
                                        const pb::KeyValueGetRequest* req,
                                        pb::KeyValueGetResponse* resp) override;
  grpc::ServerUnaryReactor* Barrier(grpc::CallbackServerContext* ctx, const pb::BarrierRequest* req,
                                    pb::BarrierResponse* resp) override;

  void OnPendingCancelled(std::uint64_t id) override;
  void OnWorkerEvent(SessionReactor* s, const pb::WorkerEvent& ev) override;
  void OnSessionEnded(SessionReactor* s) override;
  void OnSessionDone(SessionReactor* s) override;

 private:
  using Actions = std::vector<std::function<void()>>;

  enum class Phase { kGathering, kRunning, kFailed, kFinished };
  enum class WaitKind { kRegister, kGet, kBarrier };

  struct Waiter {
    PendingUnary* reactor = nullptr;
    WaitKind kind = WaitKind::kRegister;
    Clock::time_point deadline = Clock::time_point::max();
    // kRegister
    const pb::RegisterRequest* reg = nullptr;
    pb::RegisterResponse* reg_resp = nullptr;
    std::string observed_host;
    // kGet
    std::string key;
    pb::KeyValueGetResponse* get_resp = nullptr;
    // kBarrier
    std::string barrier;
  };

  struct Member {
    bool present = false;
    std::string address;
    std::string hostname;
    std::string host;
    std::int64_t pid = 0;
    SessionReactor* session = nullptr;  // holds a reference
    Clock::time_point last_seen;
    bool goodbye = false;
    std::uint64_t collectives_started = 0;
  };

  struct Round {
    std::uint64_t id = 0;
    int world = 0;
    Phase phase = Phase::kGathering;
    Clock::time_point started;
    std::vector<Member> members;  // by rank, once running
    std::map<std::string, std::string> kv;
    std::map<std::string, int> barrier_counts;
    int finished = 0;
    int failed_rank = -1;  // once failed: who, and why (told to sessions that attach late)
    Status failure;
  };

  bool Authorized(const pb::JobAuth& auth, grpc::Status* status) const;
  // Finishes a pending call later (after the lock is released).
  void FinishLater(Actions& actions, PendingUnary* r, grpc::Status status);
  std::uint64_t AddWaiter(Waiter w);
  void OpenRoundLocked(int world);
  void CompleteRendezvousLocked(Actions& actions);
  void FailRoundLocked(int rank, const Status& cause, Actions& actions);
  void FailWaitersLocked(const grpc::Status& status, Actions& actions);
  void TimerLoop();
  std::string DescribeMember(int rank) const;

  const CoordinatorOptions options_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::string address_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool shutting_down_ = false;               // guarded by mu_
  Round round_;                              // guarded by mu_
  std::uint64_t failed_rounds_ = 0;          // guarded by mu_
  std::uint64_t next_waiter_ = 1;            // guarded by mu_
  std::map<std::uint64_t, Waiter> waiters_;  // guarded by mu_
  std::vector<SessionReactor*> sessions_;    // guarded by mu_: every live session (one ref each)
  std::thread timer_;
};

// ---- Impl --------------------------------------------------------------------------------------

Coordinator::Impl::Impl(CoordinatorOptions options) : options_(std::move(options)) {
  ESCALA_CHECK(options_.world_size >= 0, kInvalidArgument,
               "coordinator: world size must be >= 0 (0: from the workers), got {}",
               options_.world_size);
  ESCALA_CHECK(options_.heartbeat_interval.count() > 0 &&
                   options_.heartbeat_timeout > options_.heartbeat_interval,
               kInvalidArgument,
               "coordinator: heartbeat timeout ({} ms) must exceed the interval ({} ms)",
               options_.heartbeat_timeout.count(), options_.heartbeat_interval.count());
}

Coordinator::Impl::~Impl() {
  Shutdown();
}

void Coordinator::Impl::Start() {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.listen_address, rpc::MakeServerCredentials(options_.tls),
                           &port_);
  builder.RegisterService(this);
  internal::ConfigureServerBuilder(builder, options_.max_message_bytes, /*data_plane=*/false);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    server_.reset();
    Throw(ErrorCode::kUnavailable, "coordinator: cannot listen on {}: {}", options_.listen_address,
          ListenFailureReason(options_.listen_address));
  }
  const auto colon = options_.listen_address.rfind(':');
  address_ = options_.listen_address.substr(0, colon) + ":" + std::to_string(port_);
  timer_ = std::thread([this] { TimerLoop(); });
  ESCALA_LOG_DEBUG("coordinator for job '{}' listening on {}", options_.job_id, address_);
}

void Coordinator::Impl::Shutdown() {
  Actions actions;
  std::vector<SessionReactor*> sessions;
  {
    std::lock_guard lock(mu_);
    if (shutting_down_) return;
    shutting_down_ = true;
    FailWaitersLocked(ToGrpcStatus(Status(ErrorCode::kUnavailable, "the coordinator is stopping")),
                      actions);
    for (SessionReactor* s : sessions_) {
      s->Ref();
      sessions.push_back(s);
    }
  }
  cv_.notify_all();
  if (timer_.joinable()) timer_.join();
  for (auto& a : actions) a();
  for (SessionReactor* s : sessions) {
    s->FinishWith(ToGrpcStatus(Status(ErrorCode::kUnavailable, "the coordinator is stopping")));
    s->Unref();
  }
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    server_->Wait();
  }
}

bool Coordinator::Impl::Authorized(const pb::JobAuth& auth, grpc::Status* status) const {
  if (!internal::SecretEquals(auth.job_token(), options_.job_token) &&
      !options_.job_token.empty()) {
    *status = ToGrpcStatus(Status(ErrorCode::kPermissionDenied,
                                  fmt::format("wrong job token for job '{}'", options_.job_id)));
    return false;
  }
  if (auth.job_id() != options_.job_id) {
    *status = ToGrpcStatus(Status(ErrorCode::kInvalidArgument,
                                  fmt::format("this coordinator serves job '{}', not job '{}'",
                                              options_.job_id, auth.job_id())));
    return false;
  }
  return true;
}

void Coordinator::Impl::FinishLater(Actions& actions, PendingUnary* r, grpc::Status status) {
  actions.push_back([r, status = std::move(status)] { r->Finish(status); });
}

std::uint64_t Coordinator::Impl::AddWaiter(Waiter w) {
  const std::uint64_t id = next_waiter_++;
  w.reactor->set_id(id);
  waiters_.emplace(id, std::move(w));
  return id;
}

std::string Coordinator::Impl::DescribeMember(int rank) const {
  if (rank < 0 || rank >= static_cast<int>(round_.members.size())) {
    return fmt::format("rank {}", rank);
  }
  const Member& m = round_.members[static_cast<std::size_t>(rank)];
  return fmt::format("rank {} (pid {} on {})", rank, m.pid,
                     m.hostname.empty() ? m.host : m.hostname);
}

void Coordinator::Impl::OpenRoundLocked(int world) {
  const std::uint64_t id = round_.id + 1;
  round_ = Round();
  round_.id = id;
  round_.world = options_.world_size > 0 ? options_.world_size : world;
  round_.started = Clock::now();
  ESCALA_LOG_DEBUG("coordinator: round {} of job '{}' gathering {} workers", id, options_.job_id,
                   round_.world);
}

grpc::ServerUnaryReactor* Coordinator::Impl::Register(grpc::CallbackServerContext* ctx,
                                                      const pb::RegisterRequest* req,
                                                      pb::RegisterResponse* resp) {
  auto* reactor = new PendingUnary(this);
  grpc::Status status;
  Actions actions;
  bool pending = false;
  {
    std::lock_guard lock(mu_);
    if (shutting_down_) {
      status = ToGrpcStatus(Status(ErrorCode::kUnavailable, "the coordinator is stopping"));
    } else if (!Authorized(req->auth(), &status)) {
    } else if (req->world_size() < 1) {
      status =
          ToGrpcStatus(Status(ErrorCode::kInvalidArgument,
                              fmt::format("world size must be >= 1, got {}", req->world_size())));
    } else if (options_.world_size > 0 && req->world_size() != options_.world_size) {
      status = ToGrpcStatus(
          Status(ErrorCode::kInvalidArgument,
                 fmt::format("the worker expects world size {} but the job has world size {}",
                             req->world_size(), options_.world_size)));
    } else if (req->requested_rank() < -1 || req->requested_rank() >= req->world_size()) {
      status =
          ToGrpcStatus(Status(ErrorCode::kInvalidArgument,
                              fmt::format("requested rank {} is out of range for world size {}",
                                          req->requested_rank(), req->world_size())));
    } else {
      // A restarted worker may register before the coordinator noticed that the process it
      // replaces is gone (its session already closed): that round is over.
      const int want = req->requested_rank();
      if (round_.phase == Phase::kRunning && want >= 0 &&
          want < static_cast<int>(round_.members.size())) {
        const Member& holder = round_.members[static_cast<std::size_t>(want)];
        if (holder.session == nullptr && !holder.goodbye) {
          FailRoundLocked(want,
                          Status(ErrorCode::kAborted,
                                 fmt::format("{} left; a new worker registered for its rank",
                                             DescribeMember(want))),
                          actions);
        }
      }
      if (round_.id == 0 || round_.phase == Phase::kFailed || round_.phase == Phase::kFinished) {
        OpenRoundLocked(req->world_size());
      }
      int gathered = 0;
      std::string holder;
      for (const auto& [id, w] : waiters_) {
        if (w.kind != WaitKind::kRegister) continue;
        ++gathered;
        if (req->requested_rank() >= 0 && w.reg->requested_rank() == req->requested_rank()) {
          holder = fmt::format("{} (pid {})", w.reg->hostname(), w.reg->pid());
        }
      }
      if (round_.phase == Phase::kRunning) {
        status =
            req->requested_rank() >= 0
                ? ToGrpcStatus(Status(
                      ErrorCode::kAlreadyExists,
                      fmt::format("rank {} is taken: round {} of job '{}' is "
                                  "running with {} workers",
                                  req->requested_rank(), round_.id, options_.job_id, round_.world)))
                : ToGrpcStatus(Status(ErrorCode::kFailedPrecondition,
                                      fmt::format("round {} of job '{}' is already running with "
                                                  "its {} workers",
                                                  round_.id, options_.job_id, round_.world)));
      } else if (req->world_size() != round_.world) {
        status = ToGrpcStatus(
            Status(ErrorCode::kInvalidArgument,
                   fmt::format("the worker expects world size {} but the job has world size {}",
                               req->world_size(), round_.world)));
      } else if (!holder.empty()) {
        status = ToGrpcStatus(Status(
            ErrorCode::kAlreadyExists,
            fmt::format("rank {} is already registered by {}", req->requested_rank(), holder)));
      } else {
        Waiter w;
        w.reactor = reactor;
        w.kind = WaitKind::kRegister;
        w.reg = req;
        w.reg_resp = resp;
        w.observed_host = internal::HostFromPeer(ctx->peer());
        AddWaiter(std::move(w));
        if (gathered + 1 == round_.world) CompleteRendezvousLocked(actions);
        pending = true;
      }
    }
  }
  cv_.notify_all();
  for (auto& a : actions) a();
  // A pending registration is finished when the round completes or fails (maybe by the actions
  // just run); the reactor lives until OnDone either way.
  if (!pending) reactor->Finish(status);
  return reactor;
}

void Coordinator::Impl::CompleteRendezvousLocked(Actions& actions) {
  std::vector<std::pair<std::uint64_t, Waiter*>> regs;
  for (auto& [id, w] : waiters_) {
    if (w.kind == WaitKind::kRegister) regs.emplace_back(id, &w);
  }
  const int world = round_.world;
  std::vector<Waiter*> by_rank(static_cast<std::size_t>(world), nullptr);
  std::vector<Waiter*> unranked;
  for (auto& [id, w] : regs) {
    if (w->reg->requested_rank() >= 0) {
      by_rank[static_cast<std::size_t>(w->reg->requested_rank())] = w;
    } else {
      unranked.push_back(w);
    }
  }
  // Deterministic: by host, then local rank, port and pid.
  std::sort(unranked.begin(), unranked.end(), [](const Waiter* a, const Waiter* b) {
    const std::string ha = a->reg->host().empty() ? a->observed_host : a->reg->host();
    const std::string hb = b->reg->host().empty() ? b->observed_host : b->reg->host();
    return std::make_tuple(ha, a->reg->local_rank(), a->reg->port(), a->reg->pid()) <
           std::make_tuple(hb, b->reg->local_rank(), b->reg->port(), b->reg->pid());
  });
  std::size_t next = 0;
  for (auto& slot : by_rank) {
    if (slot == nullptr) slot = unranked[next++];
  }
  round_.members.assign(static_cast<std::size_t>(world), Member());
  const auto now = Clock::now();
  for (int r = 0; r < world; ++r) {
    const Waiter* w = by_rank[static_cast<std::size_t>(r)];
    Member& m = round_.members[static_cast<std::size_t>(r)];
    m.present = true;
    m.host = w->reg->host().empty() ? w->observed_host : w->reg->host();
    m.address = w->reg->port() > 0 ? JoinHostPort(m.host, w->reg->port()) : std::string();
    m.hostname = w->reg->hostname();
    m.pid = w->reg->pid();
    m.last_seen = now;  // the session must open within the heartbeat timeout
  }
  for (int r = 0; r < world; ++r) {
    Waiter* w = by_rank[static_cast<std::size_t>(r)];
    pb::RegisterResponse* resp = w->reg_resp;
    resp->set_rank(r);
    resp->set_world_size(world);
    resp->set_round(round_.id);
    resp->set_heartbeat_interval_ms(options_.heartbeat_interval.count());
    resp->set_heartbeat_timeout_ms(options_.heartbeat_timeout.count());
    resp->set_observed_host(w->observed_host);
    for (int p = 0; p < world; ++p) {
      const Member& m = round_.members[static_cast<std::size_t>(p)];
      pb::Peer* peer = resp->add_peers();
      peer->set_rank(p);
      peer->set_address(m.address);
      peer->set_hostname(m.hostname);
      peer->set_pid(m.pid);
    }
    FinishLater(actions, w->reactor, grpc::Status::OK);
  }
  for (auto& [id, w] : regs) waiters_.erase(id);
  round_.phase = Phase::kRunning;
  ESCALA_LOG_DEBUG("coordinator: round {} of job '{}' complete with {} workers", round_.id,
                   options_.job_id, world);
}

void Coordinator::Impl::FailWaitersLocked(const grpc::Status& status, Actions& actions) {
  for (auto& [id, w] : waiters_) FinishLater(actions, w.reactor, status);
  waiters_.clear();
}

void Coordinator::Impl::FailRoundLocked(int rank, const Status& cause, Actions& actions) {
  if (round_.phase == Phase::kFailed || round_.phase == Phase::kFinished) return;
  const bool gathering = round_.phase == Phase::kGathering;
  round_.phase = Phase::kFailed;
  round_.failed_rank = rank;
  round_.failure = cause;
  ++failed_rounds_;
  ESCALA_LOG_WARN("coordinator: round {} of job '{}' failed: {}", round_.id, options_.job_id,
                  cause.ToString());
  FailWaitersLocked(
      ToGrpcStatus(Status(ErrorCode::kAborted,
                          gathering ? fmt::format("rendezvous failed: {}", cause.message())
                                    : fmt::format("the job failed: {}", cause.message()))),
      actions);
  pb::CoordinatorEvent ev;
  ev.mutable_abort()->set_failed_rank(rank);
  ev.mutable_abort()->set_code(static_cast<int>(cause.code()));
  ev.mutable_abort()->set_message(cause.message());
  for (Member& m : round_.members) {
    if (m.session == nullptr || m.session->rank == rank) continue;
    SessionReactor* s = m.session;
    s->Ref();
    actions.push_back([s, ev] {
      s->Send(ev);
      s->Unref();
    });
  }
}

void Coordinator::Impl::OnPendingCancelled(std::uint64_t id) {
  Actions actions;
  {
    std::lock_guard lock(mu_);
    auto it = waiters_.find(id);
    if (it == waiters_.end()) return;  // already answered
    Waiter w = std::move(it->second);
    waiters_.erase(it);
    FinishLater(actions, w.reactor, ToGrpcStatus(Status(ErrorCode::kCancelled, "cancelled")));
    if (w.kind == WaitKind::kRegister && round_.phase == Phase::kGathering) {
      // A worker that gives up (or dies) during rendezvous: the others cannot complete.
      FailRoundLocked(-1,
                      Status(ErrorCode::kAborted,
                             fmt::format("worker pid {} on {} (requested rank {}) left before "
                                         "all {} workers registered",
                                         w.reg->pid(), w.reg->hostname(), w.reg->requested_rank(),
                                         round_.world)),
                      actions);
    }
  }
  cv_.notify_all();
  for (auto& a : actions) a();
}

grpc::ServerBidiReactor<pb::WorkerEvent, pb::CoordinatorEvent>* Coordinator::Impl::Session(
    grpc::CallbackServerContext* ctx) {
  auto* s = new SessionReactor(this, ctx);
  bool reject;
  {
    std::lock_guard lock(mu_);
    reject = shutting_down_;
    if (!reject) {
      s->Ref();
      sessions_.push_back(s);
    }
  }
  if (reject) {
    s->FinishWith(ToGrpcStatus(Status(ErrorCode::kUnavailable, "the coordinator is stopping")));
  } else {
    s->Begin();
  }
  return s;
}

void Coordinator::Impl::OnWorkerEvent(SessionReactor* s, const pb::WorkerEvent& ev) {
  Actions actions;
  grpc::Status reject;
  {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    Member* m = nullptr;
    if (s->rank >= 0 && s->round == round_.id &&
        s->rank < static_cast<int>(round_.members.size())) {
      m = &round_.members[static_cast<std::size_t>(s->rank)];
      if (m->session != s) m = nullptr;
    }
    switch (ev.kind_case()) {
      case pb::WorkerEvent::kHello: {
        const auto& h = ev.hello();
        if (!Authorized(h.auth(), &reject)) break;
        if (h.round() != round_.id || round_.phase == Phase::kGathering || h.rank() < 0 ||
            h.rank() >= static_cast<int>(round_.members.size())) {
          reject = ToGrpcStatus(Status(ErrorCode::kFailedPrecondition,
                                       fmt::format("rank {} of round {} is not part of round {}",
                                                   h.rank(), h.round(), round_.id)));
          break;
        }
        Member& mm = round_.members[static_cast<std::size_t>(h.rank())];
        if (mm.session != nullptr) {
          reject = ToGrpcStatus(Status(ErrorCode::kAlreadyExists,
                                       fmt::format("rank {} already has a session", h.rank())));
          break;
        }
        s->rank = h.rank();
        s->round = h.round();
        s->Ref();
        mm.session = s;
        mm.last_seen = now;
        if (round_.phase == Phase::kFailed) {
          // The round failed before this session opened: tell it what happened, at once.
          pb::CoordinatorEvent abort;
          abort.mutable_abort()->set_failed_rank(round_.failed_rank);
          abort.mutable_abort()->set_code(static_cast<int>(round_.failure.code()));
          abort.mutable_abort()->set_message(round_.failure.message());
          s->Ref();
          actions.push_back([s, abort] {
            s->Send(abort);
            s->Unref();
          });
        }
        break;
      }
      case pb::WorkerEvent::kHeartbeat:
        if (m != nullptr) {
          m->last_seen = now;
          m->collectives_started = ev.heartbeat().collectives_started();
        }
        break;
      case pb::WorkerEvent::kFailure:
        if (m != nullptr) {
          m->last_seen = now;
          FailRoundLocked(
              s->rank, Status(static_cast<ErrorCode>(ev.failure().code()), ev.failure().message()),
              actions);
        }
        break;
      case pb::WorkerEvent::kGoodbye:
        if (m != nullptr && !m->goodbye) {
          m->goodbye = true;
          m->last_seen = now;
          if (++round_.finished == round_.world && round_.phase == Phase::kRunning) {
            round_.phase = Phase::kFinished;
            ESCALA_LOG_DEBUG("coordinator: round {} of job '{}' finished", round_.id,
                             options_.job_id);
          }
        }
        break;
      case pb::WorkerEvent::KIND_NOT_SET:
        break;
    }
  }
  cv_.notify_all();
  for (auto& a : actions) a();
  if (!reject.ok()) s->FinishWith(reject);
}

void Coordinator::Impl::OnSessionEnded(SessionReactor* s) {
  Actions actions;
  {
    std::lock_guard lock(mu_);
    if (s->rank >= 0 && s->round == round_.id &&
        s->rank < static_cast<int>(round_.members.size())) {
      Member& m = round_.members[static_cast<std::size_t>(s->rank)];
      if (m.session == s) {
        // While the coordinator stops, every session ends; the workers learn that from the
        // "coordinator is stopping" status, not from a failure relayed between them.
        if (!m.goodbye && round_.phase == Phase::kRunning && !shutting_down_) {
          FailRoundLocked(
              s->rank,
              Status(ErrorCode::kUnavailable,
                     fmt::format("{} disconnected without finishing (crashed or killed)",
                                 DescribeMember(s->rank))),
              actions);
        }
        m.session = nullptr;
        actions.push_back([s] { s->Unref(); });
      }
    }
  }
  cv_.notify_all();
  for (auto& a : actions) a();
  s->FinishWith(grpc::Status::OK);
}

void Coordinator::Impl::OnSessionDone(SessionReactor* s) {
  Actions actions;
  {
    std::lock_guard lock(mu_);
    for (Member& m : round_.members) {
      if (m.session == s) {
        m.session = nullptr;
        actions.push_back([s] { s->Unref(); });
      }
    }
    auto it = std::find(sessions_.begin(), sessions_.end(), s);
    if (it != sessions_.end()) {
      sessions_.erase(it);
      actions.push_back([s] { s->Unref(); });
    }
  }
  for (auto& a : actions) a();
}

grpc::ServerUnaryReactor* Coordinator::Impl::KeyValueSet(grpc::CallbackServerContext*,
                                                         const pb::KeyValueSetRequest* req,
                                                         pb::KeyValueSetResponse*) {
  auto* reactor = new PendingUnary(this);
  grpc::Status status;
  Actions actions;
  {
    std::lock_guard lock(mu_);
    if (Authorized(req->auth(), &status)) {
      if (req->round() != round_.id || round_.phase != Phase::kRunning) {
        status = ToGrpcStatus(Status(ErrorCode::kFailedPrecondition,
                                     fmt::format("round {} is not running", req->round())));
      } else {
        round_.kv[req->key()] = req->value();
        for (auto it = waiters_.begin(); it != waiters_.end();) {
          if (it->second.kind == WaitKind::kGet && it->second.key == req->key()) {
            it->second.get_resp->set_value(req->value());
            FinishLater(actions, it->second.reactor, grpc::Status::OK);
            it = waiters_.erase(it);
          } else {
            ++it;
          }
        }
      }
    }
  }
  for (auto& a : actions) a();
  reactor->Finish(status);
  return reactor;
}

grpc::ServerUnaryReactor* Coordinator::Impl::KeyValueGet(grpc::CallbackServerContext*,
                                                         const pb::KeyValueGetRequest* req,
                                                         pb::KeyValueGetResponse* resp) {
  auto* reactor = new PendingUnary(this);
  grpc::Status status;
  {
    std::lock_guard lock(mu_);
    if (Authorized(req->auth(), &status)) {
      if (req->round() != round_.id || round_.phase != Phase::kRunning) {
        status = ToGrpcStatus(Status(ErrorCode::kFailedPrecondition,
                                     fmt::format("round {} is not running", req->round())));
      } else if (auto it = round_.kv.find(req->key()); it != round_.kv.end()) {
        resp->set_value(it->second);
      } else if (req->wait_ms() <= 0) {
        status = ToGrpcStatus(
            Status(ErrorCode::kNotFound, fmt::format("key '{}' is not set", req->key())));
      } else {
        Waiter w;
        w.reactor = reactor;
        w.kind = WaitKind::kGet;
        w.key = req->key();
        w.get_resp = resp;
        w.deadline = Clock::now() + std::chrono::milliseconds(req->wait_ms());
        AddWaiter(std::move(w));
        return reactor;
      }
    }
  }
  reactor->Finish(status);
  return reactor;
}

grpc::ServerUnaryReactor* Coordinator::Impl::Barrier(grpc::CallbackServerContext* ctx,
                                                     const pb::BarrierRequest* req,
                                                     pb::BarrierResponse*) {
  auto* reactor = new PendingUnary(this);
  grpc::Status status;
  Actions actions;
  bool pending = false;
  {
    std::lock_guard lock(mu_);
    if (Authorized(req->auth(), &status)) {
      if (req->round() != round_.id || round_.phase != Phase::kRunning) {
        status = ToGrpcStatus(Status(ErrorCode::kFailedPrecondition,
                                     fmt::format("round {} is not running", req->round())));
      } else if (++round_.barrier_counts[req->name()] == round_.world) {
        round_.barrier_counts.erase(req->name());
        for (auto it = waiters_.begin(); it != waiters_.end();) {
          if (it->second.kind == WaitKind::kBarrier && it->second.barrier == req->name()) {
            FinishLater(actions, it->second.reactor, grpc::Status::OK);
            it = waiters_.erase(it);
          } else {
            ++it;
          }
        }
      } else {
        Waiter w;
        w.reactor = reactor;
        w.kind = WaitKind::kBarrier;
        w.barrier = req->name();
        w.deadline = ctx->deadline() == std::chrono::system_clock::time_point::max()
                         ? Clock::time_point::max()
                         : Clock::now() + (ctx->deadline() - std::chrono::system_clock::now());
        AddWaiter(std::move(w));
        pending = true;
      }
    }
  }
  for (auto& a : actions) a();
  if (!pending) reactor->Finish(status);
  return reactor;
}

void Coordinator::Impl::TimerLoop() {
  const auto tick = std::min<std::chrono::milliseconds>(options_.heartbeat_interval,
                                                        std::chrono::milliseconds(100));
  auto next_heartbeat = Clock::now();
  std::unique_lock lock(mu_);
  while (!shutting_down_) {
    cv_.wait_for(lock, tick);
    if (shutting_down_) break;
    const auto now = Clock::now();
    Actions actions;
    // Deadlines of waiting key-value reads and barriers.
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->second.kind != WaitKind::kRegister && now >= it->second.deadline) {
        FinishLater(
            actions, it->second.reactor,
            it->second.kind == WaitKind::kGet
                ? ToGrpcStatus(Status(ErrorCode::kNotFound,
                                      fmt::format("key '{}' was not set in time", it->second.key)))
                : ToGrpcStatus(Status(ErrorCode::kDeadlineExceeded,
                                      fmt::format("barrier '{}' timed out", it->second.barrier))));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
    if (round_.phase == Phase::kRunning) {
      for (int r = 0; r < static_cast<int>(round_.members.size()); ++r) {
        const Member& m = round_.members[static_cast<std::size_t>(r)];
        if (m.goodbye || now - m.last_seen <= options_.heartbeat_timeout) continue;
        FailRoundLocked(
            r,
            Status(
                ErrorCode::kDeadlineExceeded,
                fmt::format("{} {} for {} ms", DescribeMember(r),
                            m.session == nullptr ? "opened no session" : "sent no heartbeat",
                            std::chrono::duration_cast<std::chrono::milliseconds>(now - m.last_seen)
                                .count())),
            actions);
        break;
      }
    }
    if (now >= next_heartbeat) {
      next_heartbeat = now + options_.heartbeat_interval;
      pb::CoordinatorEvent hb;
      auto* beat = hb.mutable_heartbeat();
      if (round_.members.size() <= 4096) {
        for (const Member& m : round_.members) beat->add_collectives_started(m.collectives_started);
      }
      for (Member& m : round_.members) {
        if (m.session == nullptr) continue;
        SessionReactor* s = m.session;
        s->Ref();
        actions.push_back([s, hb] {
          s->Send(hb);
          s->Unref();
        });
      }
    }
    if (!actions.empty()) {
      lock.unlock();
      cv_.notify_all();
      for (auto& a : actions) a();
      lock.lock();
    }
  }
}

CoordinatorStats Coordinator::Impl::stats() const {
  std::lock_guard lock(mu_);
  CoordinatorStats s;
  s.round = round_.id;
  s.failed_rounds = failed_rounds_;
  s.finished = round_.finished;
  if (round_.phase == Phase::kGathering) {
    for (const auto& [id, w] : waiters_) s.registered += w.kind == WaitKind::kRegister ? 1 : 0;
  } else {
    s.registered = round_.world;
  }
  s.round_complete = round_.phase != Phase::kGathering;
  s.round_failed = round_.phase == Phase::kFailed;
  s.round_finished = round_.phase == Phase::kFinished;
  return s;
}

bool Coordinator::Impl::WaitUntil(std::chrono::milliseconds timeout, bool finished_only) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] {
    return shutting_down_ || round_.phase == Phase::kFinished ||
           (!finished_only && round_.phase == Phase::kFailed);
  });
  return round_.phase == Phase::kFinished || (!finished_only && round_.phase == Phase::kFailed);
}

// ---- public ------------------------------------------------------------------------------------

Coordinator::Coordinator(CoordinatorOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {
  impl_->Start();
}

Coordinator::~Coordinator() {
  impl_->Shutdown();
}

int Coordinator::port() const {
  return impl_->port();
}

std::string Coordinator::address() const {
  return impl_->address();
}

CoordinatorStats Coordinator::stats() const {
  return impl_->stats();
}

bool Coordinator::WaitUntilFinished(std::chrono::milliseconds timeout) {
  return impl_->WaitUntil(timeout, true);
}

bool Coordinator::WaitUntilRoundEnds(std::chrono::milliseconds timeout) {
  return impl_->WaitUntil(timeout, false);
}

void Coordinator::Shutdown() {
  impl_->Shutdown();
}

}  // namespace escala::distributed
