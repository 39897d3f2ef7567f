// A Communicator that forwards to another one and fails on command: the n-th collective throws
// (as a dead peer or a broken link would make it), for testing recovery paths in-process.
#ifndef ESCALA_TESTS_TEST_UTIL_FAULTY_COMMUNICATOR_H_
#define ESCALA_TESTS_TEST_UTIL_FAULTY_COMMUNICATOR_H_

#include <atomic>
#include <memory>

#include "escala/core/communicator.h"

namespace escala::testing {

class FaultyCommunicator final : public Communicator {
 public:
  // Collective number `fail_at` (0-based, counting every kind) and all later ones fail with
  // kAborted. fail_at < 0 never fails.
  FaultyCommunicator(Communicator& inner, std::int64_t fail_at)
      : inner_(inner), fail_at_(fail_at) {}

  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  std::string_view backend() const override { return "faulty"; }
  std::int64_t calls() const { return calls_.load(); }

  std::shared_ptr<Work> AllReduceAsync(void* data, std::size_t count, DType dtype, ReduceOp op,
                                       const CollectiveOptions& o) override {
    if (Fail()) return Failed();
    return inner_.AllReduceAsync(data, count, dtype, op, o);
  }
  std::shared_ptr<Work> BroadcastAsync(void* data, std::size_t bytes, int root,
                                       const CollectiveOptions& o) override {
    if (Fail()) return Failed();
    return inner_.BroadcastAsync(data, bytes, root, o);
  }
  std::shared_ptr<Work> AllGatherAsync(const void* in, std::size_t bytes, void* out,
                                       const CollectiveOptions& o) override {
    if (Fail()) return Failed();
    return inner_.AllGatherAsync(in, bytes, out, o);
  }
  std::shared_ptr<Work> AllGatherVAsync(std::span<const std::byte> in,
                                        std::vector<std::vector<std::byte>>* out,
                                        const CollectiveOptions& o) override {
    if (Fail()) return Failed();
    return inner_.AllGatherVAsync(in, out, o);
  }
  std::shared_ptr<Work> BarrierAsync(const CollectiveOptions& o) override {
    if (Fail()) return Failed();
    return inner_.BarrierAsync(o);
  }
  void Abort(const Status& reason) override { inner_.Abort(reason); }

 private:
  bool Fail() {
    const std::int64_t n = calls_.fetch_add(1);
    return fail_at_ >= 0 && n >= fail_at_;
  }
  static std::shared_ptr<Work> Failed() {
    return Work::Done(Status(ErrorCode::kAborted, "injected fault: peer lost"));
  }

  Communicator& inner_;
  std::int64_t fail_at_;
  std::atomic<std::int64_t> calls_{0};
};

}  // namespace escala::testing

#endif  // ESCALA_TESTS_TEST_UTIL_FAULTY_COMMUNICATOR_H_
