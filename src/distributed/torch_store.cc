#include "distributed/torch_store.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <thread>
#include <unistd.h>

#include <sys/socket.h>

#include "escala/core/error.h"
#include "escala/distributed/worker_env.h"

namespace escala::distributed::internal {
namespace {

using Clock = std::chrono::steady_clock;

enum Query : std::uint8_t { kSet = 0, kGet = 2, kWait = 5 };
constexpr std::uint8_t kStopWaiting = 0;
constexpr std::size_t kMaxValueBytes = 64 << 20;

int MillisLeft(TorchStoreClient::Deadline deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

void AppendU64(std::string& out, std::uint64_t v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(v));
}

// "/" + key, as PyTorch's TCPStore sends it, with its length in front.
void AppendKey(std::string& out, std::string_view key) {
  AppendU64(out, key.size() + 1);
  out.push_back('/');
  out.append(key);
}

// A non-blocking connect bounded by `deadline`; returns the socket or -1 with errno set.
int ConnectOnce(const addrinfo& ai, TorchStoreClient::Deadline deadline) {
  const int fd = ::socket(ai.ai_family, ai.ai_socktype | SOCK_CLOEXEC, ai.ai_protocol);
  if (fd < 0) return -1;
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  int err = 0;
  if (::connect(fd, ai.ai_addr, ai.ai_addrlen) != 0) {
    err = errno;
    if (err == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      socklen_t len = sizeof(err);
      err = ::poll(&p, 1, MillisLeft(deadline)) == 1 ? 0 : ETIMEDOUT;
      if (err == 0) ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    }
  }
  if (err != 0) {
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

}  // namespace

TorchStoreClient::TorchStoreClient(std::string address, Deadline deadline)
    : address_(std::move(address)) {
  const HostPort hp = ParseHostPort(address_, "torchrun's store address");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(hp.host.c_str(), std::to_string(hp.port).c_str(), &hints, &found);
  ESCALA_CHECK(rc == 0, kUnavailable, "torchrun's store at {}: cannot resolve '{}': {}", address_,
               hp.host, ::gai_strerror(rc));
  int err = 0;
  for (int attempt = 0; fd_ < 0; ++attempt) {
    fd_ = ConnectOnce(*found, deadline);
    err = errno;
    if (fd_ >= 0 || err != ECONNREFUSED || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(20 * (attempt + 1), 200)));
  }
  ::freeaddrinfo(found);
  ESCALA_CHECK(fd_ >= 0, kUnavailable, "torchrun's store at {}: cannot connect: {}", address_,
               std::strerror(err));
}

TorchStoreClient::~TorchStoreClient() {
  if (fd_ >= 0) ::close(fd_);
}

void TorchStoreClient::Set(std::string_view key, std::string_view value) {
  std::string q(1, static_cast<char>(kSet));
  AppendKey(q, key);
  AppendU64(q, value.size());
  q.append(value);
  Send(q, Clock::now() + std::chrono::seconds(30));
}

std::string TorchStoreClient::Get(std::string_view key, Deadline deadline) {
  std::string wait(1, static_cast<char>(kWait));
  AppendU64(wait, 1);
  AppendKey(wait, key);
  Send(wait, deadline);
  const std::string what = "waiting for key '" + std::string(key) + "'";
  const std::string answer = Receive(1, deadline, what);
  ESCALA_CHECK(static_cast<std::uint8_t>(answer[0]) == kStopWaiting, kUnavailable,
               "torchrun's store at {}: unexpected answer {} while {}", address_,
               static_cast<int>(static_cast<std::uint8_t>(answer[0])), what);
  std::string get(1, static_cast<char>(kGet));
  AppendKey(get, key);
  Send(get, deadline + std::chrono::seconds(30));
  std::uint64_t size = 0;
  const std::string head = Receive(sizeof(size), deadline + std::chrono::seconds(30), what);
  std::memcpy(&size, head.data(), sizeof(size));
  ESCALA_CHECK(size <= kMaxValueBytes, kUnavailable,
               "torchrun's store at {}: value of key '{}' claims {} bytes", address_, key, size);
  return Receive(size, deadline + std::chrono::seconds(30), what);
}

void TorchStoreClient::Send(std::string_view bytes, Deadline deadline) {
  while (!bytes.empty()) {
    pollfd p{fd_, POLLOUT, 0};
    ESCALA_CHECK(::poll(&p, 1, MillisLeft(deadline)) == 1, kDeadlineExceeded,
                 "torchrun's store at {}: sending timed out", address_);
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    ESCALA_CHECK(n > 0, kUnavailable, "torchrun's store at {}: send failed: {}", address_,
                 std::strerror(errno));
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::string TorchStoreClient::Receive(std::size_t n, Deadline deadline, std::string_view what) {
  std::string out(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    pollfd p{fd_, POLLIN, 0};
    ESCALA_CHECK(::poll(&p, 1, MillisLeft(deadline)) == 1, kDeadlineExceeded,
                 "torchrun's store at {}: timed out {}", address_, what);
    const ssize_t r = ::recv(fd_, out.data() + got, n - got, 0);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    ESCALA_CHECK(r > 0, kUnavailable, "torchrun's store at {}: connection closed while {}",
                 address_, what);
    got += static_cast<std::size_t>(r);
  }
  return out;
}

}  // namespace escala::distributed::internal
