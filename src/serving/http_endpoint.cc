#include "serving/http_endpoint.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <iterator>
#include <limits>
#include <list>
#include <mutex>
#include <netdb.h>
#include <string_view>
#include <strings.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "core/rpc/listen_check.h"
#include "escala/core/error.h"
#include "escala/core/logging.h"
#include "serving/http_parse.h"

namespace escala::serving::internal {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kText = "text/plain";
constexpr std::string_view kPrometheus = "text/plain; version=0.0.4";
constexpr std::string_view kJson = "application/json";
constexpr std::size_t kBodyChunk = 64 << 10;      // a body buffer grows from this, doubling
constexpr std::size_t kMaxSpareConnections = 64;  // closed connections kept for reuse
constexpr int kAcceptsPerWakeup = 64;

// "/metrics?x", "http://host:8002/metrics" -> "/metrics".
std::string_view PathOf(std::string_view target) {
  if (target.starts_with("http://")) {
    const std::size_t slash = target.find('/', 7);
    target = slash == std::string_view::npos ? "/" : target.substr(slash);
  }
  return target.substr(0, target.find('?'));
}

bool IsBuiltin(std::string_view path) {
  return path == "/metrics" || path == "/v2/health/live" || path == "/v2/health/ready";
}

std::string_view Reason(int status) {
  static constexpr std::pair<int, std::string_view> kReasons[] = {
      {200, "OK"},
      {400, "Bad Request"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {409, "Conflict"},
      {411, "Length Required"},
      {413, "Content Too Large"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
      {505, "HTTP Version Not Supported"},
  };
  for (const auto& [code, text] : kReasons) {
    if (code == status) return text;
  }
  return "Unknown";
}

struct Response {
  int status = 200;
  std::string_view content_type = kText;
  std::string_view body;
  std::string_view extra_headers;  // each ending in CRLF
};

void AppendResponse(std::string* out, const Response& r, bool head_only, bool close) {
  fmt::format_to(std::back_inserter(*out),
                 "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n"
                 "{}\r\n",
                 r.status, Reason(r.status), r.content_type, r.body.size(),
                 close ? "close" : "keep-alive", r.extra_headers);
  if (!head_only) out->append(r.body);
}

// ---- Sockets -------------------------------------------------------------------------------

void SplitAddress(const std::string& address, std::string* host, int* port) {
  const std::size_t colon = address.rfind(':');
  ESCALA_CHECK(colon != std::string::npos, kInvalidArgument, "HTTP address '{}' must be host:port",
               address);
  *host = address.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[') *host = host->substr(1, host->size() - 2);
  const char* first = address.data() + colon + 1;
  const char* last = address.data() + address.size();
  const auto [end, ec] = std::from_chars(first, last, *port);
  ESCALA_CHECK(ec == std::errc() && end == last && first != last && *port >= 0 && *port <= 65535,
               kInvalidArgument, "HTTP address '{}': bad port", address);
}

// A listening socket that owns its port (SO_REUSEADDR, never SO_REUSEPORT); -1 on failure.
int OpenListener(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const char* node = host.empty() || host == "*" ? nullptr : host.c_str();
  if (::getaddrinfo(node, std::to_string(port).c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  for (addrinfo* ai = found; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    const int yes = 1, no = 0;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (ai->ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &no, sizeof(no));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, SOMAXCONN) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  return fd;
}

int LocalPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

// ---- Connections ---------------------------------------------------------------------------

enum class Phase {
  kRequest,   // reading a request head (or waiting for one)
  kBody,      // reading a request body
  kHandler,   // waiting for the api handler's reply (reading nothing, no deadline)
  kResponse,  // writing a response that did not fit in the socket buffer
  kLinger,    // response sent, write side shut: discarding input until the peer closes
};

struct Connection;
using ConnectionList = std::list<Connection>;

struct Connection {
  int fd = -1;
  Phase phase = Phase::kRequest;
  std::uint32_t events = 0;  // the epoll interest set
  Clock::time_point deadline;
  std::unique_ptr<char[]> in;
  std::size_t in_size = 0;
  std::string out;
  std::size_t out_sent = 0;
  bool close_after = false;
  HttpRequest req;                // the request being read, its body included
  std::size_t body_expected = 0;  // SIZE_MAX while a chunked body is still arriving
  bool chunked = false;           // the body is chunked
  ChunkedBody chunks;             // its decoder
  bool keep_alive = true;
  bool head_only = false;
  std::uint64_t serial = 0;        // of the request in kHandler
  ConnectionList* list = nullptr;  // the list that holds it
  ConnectionList::iterator self;
};

// Tags for the two descriptors that are not connections.
char listener_tag;
char wake_tag;

}  // namespace

// Replies posted by responders (any thread) for the endpoint's thread, which the eventfd wakes.
struct HttpReplyQueue {
  std::mutex mu;
  std::vector<std::pair<std::uint64_t, HttpReply>> replies;  // guarded by mu
  int wake_fd = -1;  // guarded by mu; -1 once the endpoint has stopped
  // The endpoint's thread: it delivers what it queues itself after the current batch of events,
  // without a wake-up. Set before that thread starts.
  std::thread::id loop;
};

void HttpResponder::operator()(HttpReply reply) const {
  std::lock_guard lock(queue_->mu);
  if (queue_->wake_fd < 0) return;
  queue_->replies.emplace_back(serial_, std::move(reply));
  if (queue_->replies.size() > 1) return;  // the thread is already woken
  if (std::this_thread::get_id() == queue_->loop) return;
  const std::uint64_t one = 1;
  (void)!::write(queue_->wake_fd, &one, sizeof(one));
}

// The event loop. Open connections sit in one of three lists, two of them in deadline order (a
// connection always enters at the tail with now + a fixed timeout): `active_` (waiting for or
// reading a request, or writing a response) and `idle_` (keep-alive, between requests); `waiting_`
// holds those whose request the api handler has, without a deadline, found by serial in
// `handling_`. Closed connections go to `closed_` until the current batch of events is done
// (events for them may follow), then to `spare_` for reuse, so that neither accepting nor a
// request allocates once warm.
class HttpEndpoint::Impl {
 public:
  Impl(Handlers handlers, HttpLimits limits) : handlers_(std::move(handlers)), limits_(limits) {}
  ~Impl();
  void Start(const std::string& address);
  void Stop();
  int port() const { return port_; }

 private:
  void Run();
  int WaitMillis() const;
  void Dispatch(const epoll_event& e);
  void Accept();
  void Add(int fd);
  bool EvictOne();
  void ShedOne();
  void OnReadable(Connection& c);
  void Discard(Connection& c);
  void ReadBody(Connection& c);
  void ReadChunkedBody(Connection& c);
  bool FeedChunks(Connection& c, std::size_t size);
  void ServeBuffered(Connection& c);
  bool BeginRequest(Connection& c, const RequestHead& h);
  bool BeginChunked(Connection& c, std::size_t head);
  void Complete(Connection& c);
  void Respond(Connection& c);
  Response Route(std::string_view method, std::string_view path, std::string* metrics);
  void Handle(Connection& c);
  void DrainWake();
  void DeliverReplies();
  void Deliver(Connection& c, const HttpReply& reply);
  void Fail(Connection& c, int status);
  bool Flush(Connection& c);
  void FinishResponse(Connection& c);
  void SetInterest(Connection& c, std::uint32_t events);
  void MoveTo(Connection& c, ConnectionList& list, std::chrono::milliseconds timeout);
  void Close(Connection& c);
  void Expire();

  Handlers handlers_;
  HttpLimits limits_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int reserve_fd_ = -1;  // closed to accept-and-drop a connection when out of descriptors
  int port_ = 0;
  int open_ = 0;
  std::uint64_t evicted_ = 0;  // connections closed at the cap
  std::uint64_t shed_ = 0;     // connections dropped for want of a descriptor
  std::atomic<bool> stop_{false};
  std::thread thread_;
  ConnectionList active_, idle_, waiting_, closed_, spare_;
  std::shared_ptr<HttpReplyQueue> replies_ = std::make_shared<HttpReplyQueue>();
  std::vector<std::pair<std::uint64_t, HttpReply>> delivering_;
  std::unordered_map<std::uint64_t, Connection*> handling_;  // serial -> connection in kHandler
  std::uint64_t next_serial_ = 0;
};

void HttpEndpoint::Impl::Start(const std::string& address) {
  std::string host;
  int port = 0;
  SplitAddress(address, &host, &port);
  listen_fd_ = OpenListener(host, port);
  ESCALA_CHECK(listen_fd_ >= 0, kUnavailable, "cannot bind the HTTP endpoint to {}: {}", address,
               ::escala::internal::ListenFailureReason(address));
  port_ = LocalPort(listen_fd_);
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ESCALA_CHECK(epoll_fd_ >= 0 && wake_fd_ >= 0, kUnavailable, "HTTP endpoint on {}: {}", address,
               std::strerror(errno));
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.ptr = &listener_tag;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &e);
  e.data.ptr = &wake_tag;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &e);
  replies_->wake_fd = wake_fd_;
  thread_ = std::thread([this] { Run(); });
  {
    std::lock_guard lock(replies_->mu);
    replies_->loop = thread_.get_id();
  }
}

HttpEndpoint::Impl::~Impl() {
  Stop();
  for (ConnectionList* list : {&active_, &idle_, &waiting_}) {
    for (Connection& c : *list) ::close(c.fd);
  }
  for (const int fd : {listen_fd_, epoll_fd_, wake_fd_, reserve_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

void HttpEndpoint::Impl::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  const std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
  thread_.join();
  {
    std::lock_guard lock(replies_->mu);
    replies_->wake_fd = -1;  // responders still out drop their replies
    replies_->replies.clear();
  }
  // The port is free once Stop returns; connections are closed by the destructor.
  ::close(listen_fd_);
  listen_fd_ = -1;
  for (ConnectionList* list : {&active_, &idle_, &waiting_}) {
    while (!list->empty()) Close(list->front());
  }
}

void HttpEndpoint::Impl::Run() {
  std::array<epoll_event, 128> events;
  while (!stop_.load()) {
    const int n =
        ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), WaitMillis());
    if (n < 0 && errno != EINTR) {
      ESCALA_LOG_ERROR("HTTP endpoint: epoll_wait: {}", std::strerror(errno));
      return;
    }
    try {
      for (int i = 0; i < n; ++i) Dispatch(events[static_cast<std::size_t>(i)]);
      DeliverReplies();
      Expire();
    } catch (const std::exception& e) {
      ESCALA_LOG_ERROR("HTTP endpoint: {}", e.what());
    }
    spare_.splice(spare_.end(), closed_);
    while (spare_.size() > kMaxSpareConnections) spare_.pop_back();
  }
}

int HttpEndpoint::Impl::WaitMillis() const {
  Clock::time_point next = Clock::time_point::max();
  if (!active_.empty()) next = active_.front().deadline;
  if (!idle_.empty()) next = std::min(next, idle_.front().deadline);
  if (next == Clock::time_point::max()) return -1;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()).count();
  return static_cast<int>(std::clamp<std::int64_t>(left, 0, 60'000));
}

void HttpEndpoint::Impl::Dispatch(const epoll_event& e) {
  // Stop() (the loop condition sees stop_) or replies (delivered after this batch of events).
  if (e.data.ptr == &wake_tag) return DrainWake();
  if (e.data.ptr == &listener_tag) return Accept();
  Connection& c = *static_cast<Connection*>(e.data.ptr);
  if (c.fd < 0) return;  // closed earlier in this batch
  if (e.events & EPOLLERR) return Close(c);
  if (c.phase == Phase::kHandler) {
    if (e.events & EPOLLHUP) Close(c);  // the peer is gone; its reply will be dropped
    return;
  }
  if (c.phase != Phase::kResponse) return OnReadable(c);
  if ((e.events & (EPOLLOUT | EPOLLHUP)) && Flush(c)) {
    FinishResponse(c);
    ServeBuffered(c);  // requests pipelined behind the one just answered
  }
}

void HttpEndpoint::Impl::Accept() {
  for (int i = 0; i < kAcceptsPerWakeup; ++i) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      if (open_ >= limits_.max_connections) EvictOne();
      Add(fd);
    } else if (errno == EMFILE || errno == ENFILE) {
      if (!EvictOne()) return ShedOne();
    } else if (errno != EINTR && errno != ECONNABORTED) {
      return;  // EAGAIN: no more pending
    }
  }
}

void HttpEndpoint::Impl::Add(int fd) {
  if (spare_.empty()) spare_.emplace_back();
  Connection& c = spare_.back();
  c.self = std::prev(spare_.end());
  c.list = &spare_;
  c.fd = fd;
  c.phase = Phase::kRequest;
  c.in_size = 0;
  c.out.clear();
  c.out_sent = 0;
  c.close_after = false;
  c.body_expected = 0;
  c.chunked = false;
  if (!c.in) c.in = std::make_unique<char[]>(limits_.max_header_bytes);
  const int yes = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
  ++open_;
  MoveTo(c, active_, limits_.request_timeout);
  epoll_event e{};
  e.events = c.events = EPOLLIN;
  e.data.ptr = &c;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &e) != 0) Close(c);
}

// At the connection cap: the oldest idle connection goes first, else the oldest other one.
bool HttpEndpoint::Impl::EvictOne() {
  ConnectionList& victims = idle_.empty() ? active_ : idle_;
  if (victims.empty()) return false;
  if (evicted_++ % 1000 == 0) {
    ESCALA_LOG_WARN("HTTP endpoint: {} connections open, closing the oldest {} one ({} so far)",
                    open_, &victims == &idle_ ? "idle" : "busy", evicted_);
  }
  Close(victims.front());
  return true;
}

// Out of descriptors with no connection of ours to close: accept the next one and drop it, so
// that the listener does not stay readable (and the loop spin) until a descriptor frees up.
void HttpEndpoint::Impl::ShedOne() {
  if (reserve_fd_ < 0) return;
  ::close(reserve_fd_);
  const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) ::close(fd);
  reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (shed_++ % 1000 == 0) {
    ESCALA_LOG_WARN("HTTP endpoint: out of file descriptors, dropped a new connection ({} so far)",
                    shed_);
  }
}

void HttpEndpoint::Impl::OnReadable(Connection& c) {
  if (c.phase == Phase::kLinger) return Discard(c);
  if (c.phase == Phase::kBody) return ReadBody(c);
  const std::size_t room = limits_.max_header_bytes - c.in_size;
  const ssize_t n = ::recv(c.fd, c.in.get() + c.in_size, room, 0);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return Close(c);
  if (n < 0) return;
  // The first byte after an idle period starts the request's deadline.
  if (c.list == &idle_) MoveTo(c, active_, limits_.request_timeout);
  c.in_size += static_cast<std::size_t>(n);
  ServeBuffered(c);
}

void HttpEndpoint::Impl::Discard(Connection& c) {
  char sink[4096];
  const ssize_t n = ::recv(c.fd, sink, sizeof(sink), 0);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) Close(c);
}

// Reads what has arrived of the body into c.req.body, which grows with what arrives (doubling
// from kBodyChunk), never to the declared length at once.
void HttpEndpoint::Impl::ReadBody(Connection& c) {
  if (c.chunked) return ReadChunkedBody(c);
  std::string& body = c.req.body;
  const std::size_t have = body.size();
  const std::size_t room = std::min(c.body_expected - have, std::max(have, kBodyChunk));
  body.resize(have + room);
  const ssize_t n = ::recv(c.fd, body.data() + have, room, 0);
  const int err = errno;
  body.resize(have + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
  if (n == 0 || (n < 0 && err != EAGAIN && err != EINTR)) return Close(c);
  if (n < 0 || body.size() < c.body_expected) return;
  Complete(c);
  ServeBuffered(c);
}

// Reads what has arrived of a chunked body into c.in and decodes it into c.req.body.
void HttpEndpoint::Impl::ReadChunkedBody(Connection& c) {
  const ssize_t n = ::recv(c.fd, c.in.get(), limits_.max_header_bytes, 0);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return Close(c);
  if (n < 0 || !FeedChunks(c, static_cast<std::size_t>(n))) return;
  Complete(c);
  ServeBuffered(c);
}

// Decodes c.in's first `size` bytes as the chunked body's next part; what follows its end stays
// in c.in (a pipelined request). True when the body is whole; a malformed body is answered 400,
// one over the limit 413.
bool HttpEndpoint::Impl::FeedChunks(Connection& c, std::size_t size) {
  std::size_t used = 0;
  const auto status =
      c.chunks.Feed(std::string_view(c.in.get(), size), &used, &c.req.body, limits_.max_body_bytes);
  std::memmove(c.in.get(), c.in.get() + used, size - used);
  c.in_size = size - used;
  switch (status) {
    case ChunkedBody::Status::kMore:
      return false;
    case ChunkedBody::Status::kBad:
      Fail(c, 400);
      return false;
    case ChunkedBody::Status::kTooLarge:
      Fail(c, 413);
      return false;
    case ChunkedBody::Status::kDone:
      break;
  }
  c.chunked = false;
  c.body_expected = c.req.body.size();
  return true;
}

// Answers the requests in the buffer, one after the other (pipelining), until one is
// incomplete, a response waits for the socket or the api handler, or the connection is to close.
void HttpEndpoint::Impl::ServeBuffered(Connection& c) {
  while (c.fd >= 0 && c.phase == Phase::kRequest) {
    RequestHead h;
    switch (ParseRequestHead(std::string_view(c.in.get(), c.in_size), &h)) {
      case ParseResult::kIncomplete:
        if (c.in_size == limits_.max_header_bytes) Fail(c, 431);
        return;
      case ParseResult::kBad:
        return Fail(c, 400);
      case ParseResult::kBadVersion:
        return Fail(c, 505);
      case ParseResult::kOk:
        break;
    }
    if (!BeginRequest(c, h)) return;
    if (c.req.body.size() < c.body_expected) {
      // A client that waits for the go-ahead (curl, for large bodies) gets it at once; it fits
      // in any socket buffer, so a failed send only costs the client its wait.
      if (h.expect_continue && c.req.body.empty()) {
        constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        (void)!::send(c.fd, kContinue.data(), kContinue.size(), MSG_NOSIGNAL);
      }
      c.phase = Phase::kBody;
      return;
    }
    Complete(c);
  }
}

// Takes the head, and what of the body is buffered, out of c.in; false when the request is
// refused: a POST or PUT with neither a length nor a chunked body (411), a transfer coding other
// than chunked alone (501; 400 when chunked is missing, not last or repeated, beside a length, or
// in HTTP/1.0, as RFC 9112 asks),
// a body over the limit (413), or a malformed chunked body (400).
bool HttpEndpoint::Impl::BeginRequest(Connection& c, const RequestHead& h) {
  c.chunked = false;
  const bool needs_length = h.method == "POST" || h.method == "PUT";
  if (h.has_transfer_encoding &&
      (!h.chunked || h.chunked_codings > 1 || h.has_length || h.http10)) {
    Fail(c, 400);
    return false;
  }
  if (h.codings > 1) {
    Fail(c, 501);
    return false;
  }
  if (needs_length && !h.has_length && !h.chunked) {
    Fail(c, 411);
    return false;
  }
  if (h.content_length > limits_.max_body_bytes) {
    Fail(c, 413);
    return false;
  }
  c.req.method.assign(h.method);
  c.req.path.assign(PathOf(h.target));
  c.req.inference_header_length.assign(h.inference_header_length);
  c.keep_alive = h.keep_alive;
  c.head_only = h.method == "HEAD";
  c.body_expected = h.content_length;
  if (h.chunked) return BeginChunked(c, h.size);
  const std::size_t rest = c.in_size - h.size;
  const std::size_t take = std::min(rest, c.body_expected);
  c.req.body.assign(c.in.get() + h.size, take);
  std::memmove(c.in.get(), c.in.get() + h.size + take, rest - take);
  c.in_size = rest - take;
  return true;
}

// A chunked body: what of it is buffered after the head is decoded at once.
bool HttpEndpoint::Impl::BeginChunked(Connection& c, std::size_t head) {
  c.chunked = true;
  c.chunks = ChunkedBody();
  c.req.body.clear();
  c.body_expected = std::numeric_limits<std::size_t>::max();
  const std::size_t rest = c.in_size - head;
  std::memmove(c.in.get(), c.in.get() + head, rest);
  if (FeedChunks(c, rest)) return true;
  return c.fd >= 0 && c.phase == Phase::kRequest && !c.close_after;
}

// A whole request: metrics and health here, the rest to the api handler.
void HttpEndpoint::Impl::Complete(Connection& c) {
  c.phase = Phase::kRequest;
  if (handlers_.api && !IsBuiltin(c.req.path)) return Handle(c);
  Respond(c);
  if (c.req.body.capacity() > kBodyChunk) std::string().swap(c.req.body);
  if (Flush(c)) FinishResponse(c);
}

void HttpEndpoint::Impl::Respond(Connection& c) {
  std::string metrics;
  Response r;
  try {
    r = Route(c.req.method, c.req.path, &metrics);
  } catch (const std::exception& e) {
    ESCALA_LOG_ERROR("HTTP endpoint: {} {}: {}", c.req.method, c.req.path, e.what());
    r = Response{500, kText, "internal error\n", {}};
  }
  c.close_after = !c.keep_alive || stop_.load();
  c.out.clear();
  c.out_sent = 0;
  AppendResponse(&c.out, r, c.head_only, c.close_after);
}

Response HttpEndpoint::Impl::Route(std::string_view method, std::string_view path,
                                   std::string* metrics) {
  const bool live = path == "/v2/health/live", ready = path == "/v2/health/ready";
  if (!live && !ready && path != "/metrics") return {404, kText, "not found\n", {}};
  if (method != "GET" && method != "HEAD") {
    return {405, kText, "method not allowed\n", "Allow: GET, HEAD\r\n"};
  }
  if (live) return {200, kText, "live\n", {}};
  if (ready) {
    return handlers_.ready() ? Response{200, kText, "ready\n", {}}
                             : Response{503, kText, "not ready\n", {}};
  }
  *metrics = handlers_.metrics();
  return {200, kPrometheus, *metrics, {}};
}

// Hands the request to the api handler; the connection waits, reading nothing, for its reply.
void HttpEndpoint::Impl::Handle(Connection& c) {
  c.phase = Phase::kHandler;
  c.serial = ++next_serial_;
  handling_[c.serial] = &c;
  MoveTo(c, waiting_, std::chrono::milliseconds(0));
  SetInterest(c, 0);  // EPOLLHUP and EPOLLERR still come
  if (c.fd < 0) return;
  const HttpResponder respond(replies_, c.serial);
  try {
    handlers_.api(std::move(c.req), respond);
  } catch (const std::exception& e) {
    ESCALA_LOG_ERROR("HTTP endpoint: request handler: {}", e.what());
    respond(HttpReply{500, std::string(kJson), R"({"error":"internal error"})", {}});
  }
}

void HttpEndpoint::Impl::DrainWake() {
  std::uint64_t count = 0;
  (void)!::read(wake_fd_, &count, sizeof(count));
}

// Until the queue is empty: delivering a reply serves the requests pipelined behind it, whose
// handler may answer at once (queued without a wake-up, being on this thread).
void HttpEndpoint::Impl::DeliverReplies() {
  while (true) {
    {
      std::lock_guard lock(replies_->mu);
      if (replies_->replies.empty()) return;
      delivering_.swap(replies_->replies);
    }
    for (const auto& [serial, reply] : delivering_) {
      const auto it = handling_.find(serial);
      if (it != handling_.end()) Deliver(*it->second, reply);
    }
    delivering_.clear();
  }
}

// Sends the reply, then serves what the client pipelined behind the request.
void HttpEndpoint::Impl::Deliver(Connection& c, const HttpReply& reply) {
  handling_.erase(c.serial);
  c.phase = Phase::kRequest;
  c.close_after = !c.keep_alive || stop_.load();
  c.out.clear();
  c.out_sent = 0;
  AppendResponse(&c.out,
                 Response{reply.status, reply.content_type, reply.body, reply.extra_headers},
                 c.head_only, c.close_after);
  MoveTo(c, active_, limits_.request_timeout);
  if (!Flush(c)) return;
  FinishResponse(c);
  ServeBuffered(c);
}

// A request that cannot be served: the error, then the connection closes.
void HttpEndpoint::Impl::Fail(Connection& c, int status) {
  c.in_size = 0;
  c.close_after = true;
  c.out.clear();
  c.out_sent = 0;
  std::string json;
  Response r{status, kText, status == 431 ? "request head too large\n" : "bad request\n", {}};
  if (status == 501) {
    r = Response{
        status, kJson, R"({"error":"Transfer-Encoding: only chunked is supported, alone"})", {}};
  }
  if (status == 411) {
    r = Response{status,
                 kJson,
                 "{\"error\":\"Content-Length: required for a request body (or "
                 "Transfer-Encoding: chunked)\"}",
                 {}};
  } else if (status == 413) {
    json = fmt::format(R"({{"error":"{}: the body exceeds the limit of {} bytes"}})",
                       c.chunked ? "Transfer-Encoding: chunked" : "Content-Length",
                       limits_.max_body_bytes);
    r = Response{status, kJson, json, {}};
  }
  AppendResponse(&c.out, r, false, true);
  if (Flush(c)) FinishResponse(c);
}

// Writes what it can of c.out; true when all of it is sent. On a full socket buffer the
// connection waits for EPOLLOUT (and reads nothing meanwhile).
bool HttpEndpoint::Impl::Flush(Connection& c) {
  while (c.out_sent < c.out.size()) {
    const ssize_t n =
        ::send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_sent += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EAGAIN) {
      c.phase = Phase::kResponse;
      SetInterest(c, EPOLLOUT);
      return false;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      Close(c);
      return false;
    }
  }
  return true;
}

// A response is sent: linger and close, or wait for the next request (already buffered, or an
// idle keep-alive connection).
void HttpEndpoint::Impl::FinishResponse(Connection& c) {
  if (c.close_after) {
    // Shut the write side, and read until the peer closes: closing with unread input would
    // reset the connection and could destroy the response before the client reads it.
    ::shutdown(c.fd, SHUT_WR);
    c.phase = Phase::kLinger;
    SetInterest(c, EPOLLIN);
    return;
  }
  c.phase = Phase::kRequest;
  SetInterest(c, EPOLLIN);
  if (c.in_size > 0) {
    MoveTo(c, active_, limits_.request_timeout);
  } else {
    MoveTo(c, idle_, limits_.idle_timeout);
  }
}

void HttpEndpoint::Impl::SetInterest(Connection& c, std::uint32_t events) {
  if (c.events == events) return;
  epoll_event e{};
  e.events = c.events = events;
  e.data.ptr = &c;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &e) != 0) Close(c);
}

// To the tail of `list`, which keeps every list in deadline order.
void HttpEndpoint::Impl::MoveTo(Connection& c, ConnectionList& list,
                                std::chrono::milliseconds timeout) {
  c.deadline = Clock::now() + timeout;
  list.splice(list.end(), *c.list, c.self);
  c.list = &list;
}

void HttpEndpoint::Impl::Close(Connection& c) {
  if (c.fd < 0) return;
  if (c.phase == Phase::kHandler) handling_.erase(c.serial);
  ::close(c.fd);  // also leaves the epoll set
  c.fd = -1;
  --open_;
  closed_.splice(closed_.end(), *c.list, c.self);
  c.list = &closed_;
}

void HttpEndpoint::Impl::Expire() {
  const auto now = Clock::now();
  for (ConnectionList* list : {&active_, &idle_}) {
    while (!list->empty() && list->front().deadline <= now) Close(list->front());
  }
}

HttpEndpoint::HttpEndpoint(const std::string& address, Handlers handlers, HttpLimits limits)
    : impl_(std::make_unique<Impl>(std::move(handlers), limits)) {
  impl_->Start(address);
}

HttpEndpoint::~HttpEndpoint() = default;

int HttpEndpoint::port() const {
  return impl_->port();
}

void HttpEndpoint::Stop() {
  impl_->Stop();
}

}  // namespace escala::serving::internal
