#include "escala/core/communicator.h"

#include <algorithm>
#include <cstring>

namespace escala {

std::string_view DTypeName(DType t) {
  switch (t) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
    case DType::kInt64:
      return "int64";
    case DType::kInt32:
      return "int32";
    case DType::kUInt8:
      return "uint8";
  }
  return "unknown";
}

std::string_view ReduceOpName(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAvg:
      return "avg";
    case ReduceOp::kMax:
      return "max";
    case ReduceOp::kMin:
      return "min";
  }
  return "unknown";
}

// ---- Work ------------------------------------------------------------------------------------

void Work::Wait() {
  std::function<void()> run;
  {
    std::lock_guard lock(mu_);
    if (!done_) run = inline_runner_;
  }
  if (run) run();
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return done_; });
  status_.ThrowIfError();
}

void Work::SetInlineRunner(std::function<void()> run) {
  std::lock_guard lock(mu_);
  if (!done_) inline_runner_ = std::move(run);
}

bool Work::WaitFor(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return done_; });
}

bool Work::IsCompleted() const {
  std::lock_guard lock(mu_);
  return done_;
}

Status Work::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

void Work::Complete(Status status) {
  std::function<void()> runner;  // released outside the lock
  {
    std::lock_guard lock(mu_);
    ESCALA_ASSERT(!done_);
    status_ = std::move(status);
    done_ = true;
    runner.swap(inline_runner_);
  }
  cv_.notify_all();
}

std::shared_ptr<Work> Work::Done(Status status) {
  auto w = std::make_shared<Work>();
  w->Complete(std::move(status));
  return w;
}

// ---- helpers -----------------------------------------------------------------------------------

void Communicator::BroadcastString(std::string& value, int root, const CollectiveOptions& options) {
  std::int64_t n = rank() == root ? static_cast<std::int64_t>(value.size()) : 0;
  Broadcast(std::span<std::int64_t>(&n, 1), root, options);
  if (rank() != root) value.resize(static_cast<std::size_t>(n));
  if (n > 0) BroadcastAsync(value.data(), value.size(), root, options)->Wait();
}

namespace {

template <typename T>
void ReduceTyped(T* __restrict acc, const T* __restrict in, std::size_t n, ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      for (std::size_t i = 0; i < n; ++i) acc[i] += in[i];
      break;
    case ReduceOp::kMax:
      for (std::size_t i = 0; i < n; ++i) acc[i] = acc[i] < in[i] ? in[i] : acc[i];
      break;
    case ReduceOp::kMin:
      for (std::size_t i = 0; i < n; ++i) acc[i] = in[i] < acc[i] ? in[i] : acc[i];
      break;
  }
}

template <typename T>
void DivideTyped(T* data, std::size_t n, int world) {
  const T w = static_cast<T>(world);
  for (std::size_t i = 0; i < n; ++i) data[i] /= w;
}

}  // namespace

void ReduceInto(void* acc, const void* in, std::size_t count, DType dtype, ReduceOp op) {
  switch (dtype) {
    case DType::kFloat32:
      ReduceTyped(static_cast<float*>(acc), static_cast<const float*>(in), count, op);
      return;
    case DType::kFloat64:
      ReduceTyped(static_cast<double*>(acc), static_cast<const double*>(in), count, op);
      return;
    case DType::kInt64:
      ReduceTyped(static_cast<std::int64_t*>(acc), static_cast<const std::int64_t*>(in), count, op);
      return;
    case DType::kInt32:
      ReduceTyped(static_cast<std::int32_t*>(acc), static_cast<const std::int32_t*>(in), count, op);
      return;
    case DType::kUInt8:
      ReduceTyped(static_cast<std::uint8_t*>(acc), static_cast<const std::uint8_t*>(in), count, op);
      return;
  }
}

void DivideBy(void* data, std::size_t count, DType dtype, int world) {
  if (world == 1) return;
  switch (dtype) {
    case DType::kFloat32:
      DivideTyped(static_cast<float*>(data), count, world);
      return;
    case DType::kFloat64:
      DivideTyped(static_cast<double*>(data), count, world);
      return;
    case DType::kInt64:
      DivideTyped(static_cast<std::int64_t*>(data), count, world);
      return;
    case DType::kInt32:
      DivideTyped(static_cast<std::int32_t*>(data), count, world);
      return;
    case DType::kUInt8:
      DivideTyped(static_cast<std::uint8_t*>(data), count, world);
      return;
  }
}

// ---- size-1 communicator
// -------------------------------------------------------------------------

namespace {

class SelfCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string_view backend() const override { return "self"; }

  std::shared_ptr<Work> AllReduceAsync(void*, std::size_t, DType, ReduceOp,
                                       const CollectiveOptions& options) override {
    return Finish(options);
  }
  std::shared_ptr<Work> BroadcastAsync(void*, std::size_t, int root,
                                       const CollectiveOptions& options) override {
    if (root != 0) {
      return Work::Done(
          Status(ErrorCode::kInvalidArgument,
                 fmt::format("broadcast root {} out of range for world size 1", root)));
    }
    return Finish(options);
  }
  std::shared_ptr<Work> AllGatherAsync(const void* in, std::size_t bytes, void* out,
                                       const CollectiveOptions& options) override {
    if (bytes > 0 && in != out) std::memmove(out, in, bytes);
    return Finish(options);
  }
  std::shared_ptr<Work> AllGatherVAsync(std::span<const std::byte> in,
                                        std::vector<std::vector<std::byte>>* out,
                                        const CollectiveOptions& options) override {
    out->assign(1, std::vector<std::byte>(in.begin(), in.end()));
    return Finish(options);
  }
  std::shared_ptr<Work> BarrierAsync(const CollectiveOptions& options) override {
    return Finish(options);
  }
  void Abort(const Status& reason) override {
    std::lock_guard lock(mu_);
    if (poison_.ok()) poison_ = reason.ok() ? Status(ErrorCode::kAborted, "aborted") : reason;
  }

 private:
  std::shared_ptr<Work> Finish(const CollectiveOptions&) {
    std::lock_guard lock(mu_);
    if (!poison_.ok()) {
      return Work::Done(
          Status(ErrorCode::kAborted, fmt::format("communicator aborted: {}", poison_.ToString())));
    }
    // One shared completed handle: a single-process training step allocates nothing here.
    static const std::shared_ptr<Work> kDone = Work::Done();
    return kDone;
  }

  std::mutex mu_;
  Status poison_;  // guarded by mu_
};

}  // namespace

std::unique_ptr<Communicator> MakeSelfCommunicator() {
  return std::make_unique<SelfCommunicator>();
}

}  // namespace escala
