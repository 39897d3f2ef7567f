// A client of PyTorch's c10d TCPStore, the key-value store torchrun's agent serves on
// MASTER_ADDR:MASTER_PORT in its default (static) rendezvous. escala workers started by torchrun
// use it to find their coordinator: rank 0 hosts the coordinator on a free port and publishes its
// address under a key; the other ranks wait for that key. Private to src/distributed.
//
// Wire protocol (torch 1.13, TCPStore.cpp; later versions keep these queries): a query is one
// byte (SET 0, GET 2, WAIT 5), strings and byte vectors are a uint64 length followed by the bytes,
// all in the host's (little-endian) byte order. SET key value: no answer. WAIT n key...: one byte
// (STOP_WAITING 0) once every key is set. GET key: the value as a vector. Like PyTorch's client,
// this one puts "/" in front of every key.
//
// Thread-safety: one object per thread.
#ifndef ESCALA_SRC_DIST_TORCH_STORE_H_
#define ESCALA_SRC_DIST_TORCH_STORE_H_

#include <chrono>
#include <string>
#include <string_view>

namespace escala::distributed::internal {

class TorchStoreClient {
 public:
  using Deadline = std::chrono::steady_clock::time_point;
  // Connects to "host:port", retrying refused connections until `deadline`. Throws kUnavailable
  // (cannot resolve or connect) or kDeadlineExceeded, naming the address.
  TorchStoreClient(std::string address, Deadline deadline);
  ~TorchStoreClient();
  TorchStoreClient(const TorchStoreClient&) = delete;
  TorchStoreClient& operator=(const TorchStoreClient&) = delete;

  void Set(std::string_view key, std::string_view value);
  // Waits until `key` is set (kDeadlineExceeded naming the key after `deadline`) and returns its
  // value. kUnavailable when the store closes the connection.
  std::string Get(std::string_view key, Deadline deadline);

 private:
  void Send(std::string_view bytes, Deadline deadline);
  std::string Receive(std::size_t n, Deadline deadline, std::string_view what);

  std::string address_;
  int fd_ = -1;
};

}  // namespace escala::distributed::internal

#endif  // ESCALA_SRC_DIST_TORCH_STORE_H_
