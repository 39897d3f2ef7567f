// The NCCL communicator's bootstrap, watchdog and abort logic over a fake driver: ranks are
// threads over an in-memory key-value store, and the "GPU" completes operations when the test
// says so. Runs without a GPU (CUDA builds only: the logic lives in cuda/).
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>

#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/core/thread_communicator.h"
#include "escala/gpu/nccl.h"
#include "nccl/nccl_communicator.h"
#include "nccl/nccl_driver.h"

namespace escala::gpu::internal {
namespace {

using namespace std::chrono_literals;

// What a fake driver did, and what it should do; shared with the test.
struct FakeGpu {
  std::string identity;
  std::atomic<bool> complete_ops{true};
  std::atomic<bool> init_never_completes{false};
  std::atomic<bool> fail_unique_id{false};
  std::atomic<int> init_polls{0};
  std::atomic<int> aborts{0};
  std::atomic<int> destroys{0};
  std::atomic<int> ops{0};
  std::mutex mu;
  std::string async_error;  // guarded by mu; non-empty: Poll reports it
  std::string unique_id;    // guarded by mu: what StartInit received
  int world = 0, rank = -1;
};

class FakeDriver final : public NcclDriver {
 public:
  explicit FakeDriver(std::shared_ptr<FakeGpu> gpu) : gpu_(std::move(gpu)) {}

  std::string DeviceIdentity() override { return gpu_->identity; }
  std::string NewUniqueId() override {
    if (gpu_->fail_unique_id) Throw(ErrorCode::kUnavailable, "cannot load NCCL (fake)");
    return "unique-id-" + gpu_->identity;
  }
  void StartInit(const std::string& id, int world, int rank) override {
    std::lock_guard lock(gpu_->mu);
    gpu_->unique_id = id;
    gpu_->world = world;
    gpu_->rank = rank;
  }
  State Poll(std::string* error) override {
    if (gpu_->aborts > 0) {
      *error = "aborted";
      return State::kFailed;
    }
    {
      std::lock_guard lock(gpu_->mu);
      if (!gpu_->async_error.empty()) {
        *error = gpu_->async_error;
        return State::kFailed;
      }
    }
    if (gpu_->init_never_completes || gpu_->init_polls++ < 2) return State::kInProgress;
    return State::kReady;
  }
  void Abort() override { ++gpu_->aborts; }
  void Destroy() override { ++gpu_->destroys; }

  class FakeOp final : public Op {
   public:
    explicit FakeOp(std::shared_ptr<FakeGpu> gpu) : gpu_(std::move(gpu)) {}
    bool Done() override { return gpu_->complete_ops.load(); }

   private:
    std::shared_ptr<FakeGpu> gpu_;
  };
  std::unique_ptr<Op> AllReduce(void*, std::size_t, DType, ReduceOp, void*) override {
    ++gpu_->ops;
    return std::make_unique<FakeOp>(gpu_);
  }
  std::unique_ptr<Op> Broadcast(void*, std::size_t, int, void*) override {
    ++gpu_->ops;
    return std::make_unique<FakeOp>(gpu_);
  }
  std::unique_ptr<Op> AllGather(const void*, std::size_t, void*, void*) override {
    ++gpu_->ops;
    return std::make_unique<FakeOp>(gpu_);
  }

 private:
  std::shared_ptr<FakeGpu> gpu_;
};

// The coordinator's key-value store and failure relay, in memory.
struct FakeJob {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::string> kv;
  std::map<int, std::function<void(const Status&)>> handlers;
  int next_handler = 0;

  NcclBootstrap Bootstrap() {
    NcclBootstrap b;
    b.set = [this](const std::string& k, const std::string& v) {
      std::lock_guard lock(mu);
      kv[k] = v;
      cv.notify_all();
    };
    b.get = [this](const std::string& k, std::chrono::milliseconds t) {
      std::unique_lock lock(mu);
      if (!cv.wait_for(lock, t, [&] { return kv.count(k) > 0; })) {
        Throw(ErrorCode::kNotFound, "key {} was not set", k);
      }
      return kv[k];
    };
    b.add_failure_handler = [this](std::function<void(const Status&)> h) {
      std::lock_guard lock(mu);
      handlers[next_handler] = std::move(h);
      return next_handler++;
    };
    b.remove_failure_handler = [this](int id) {
      std::lock_guard lock(mu);
      handlers.erase(id);
    };
    return b;
  }
  void RelayFailure(const Status& s) {
    std::map<int, std::function<void(const Status&)>> hs;
    {
      std::lock_guard lock(mu);
      hs = handlers;
    }
    for (auto& [id, h] : hs) h(s);
  }
};

NcclOptions FastOptions() {
  NcclOptions o;
  o.init_timeout = 2s;
  o.poll_interval = 1ms;
  return o;
}

std::unique_ptr<NcclCommunicator> MakeOne(std::shared_ptr<FakeGpu> gpu, FakeJob* job,
                                          NcclOptions o = FastOptions()) {
  return NcclCommunicator::Create(MakeSelfCommunicator(), std::make_unique<FakeDriver>(gpu),
                                  job != nullptr ? job->Bootstrap() : NcclBootstrap{}, o);
}

TEST(NcclBootstrap, RankZeroPublishesTheUniqueIdThroughTheStore) {
  FakeJob job;
  std::vector<std::shared_ptr<FakeGpu>> gpus;
  for (int r = 0; r < 3; ++r) {
    gpus.push_back(std::make_shared<FakeGpu>());
    gpus.back()->identity = "node" + std::to_string(r / 2) + "/GPU-" + std::to_string(r);
  }
  RunOnThreadRanks(3, [&](Communicator& host_rank) {
    // Each thread's communicator is owned by RunOnThreadRanks; give the NCCL one a forwarding
    // view of it.
    struct Borrowed final : Communicator {
      explicit Borrowed(Communicator& c) : c_(c) {}
      int rank() const override { return c_.rank(); }
      int size() const override { return c_.size(); }
      std::string_view backend() const override { return c_.backend(); }
      std::shared_ptr<Work> AllReduceAsync(void* d, std::size_t n, DType t, ReduceOp op,
                                           const CollectiveOptions& o) override {
        return c_.AllReduceAsync(d, n, t, op, o);
      }
      std::shared_ptr<Work> BroadcastAsync(void* d, std::size_t b, int r,
                                           const CollectiveOptions& o) override {
        return c_.BroadcastAsync(d, b, r, o);
      }
      std::shared_ptr<Work> AllGatherAsync(const void* i, std::size_t b, void* out,
                                           const CollectiveOptions& o) override {
        return c_.AllGatherAsync(i, b, out, o);
      }
      std::shared_ptr<Work> AllGatherVAsync(std::span<const std::byte> i,
                                            std::vector<std::vector<std::byte>>* out,
                                            const CollectiveOptions& o) override {
        return c_.AllGatherVAsync(i, out, o);
      }
      std::shared_ptr<Work> BarrierAsync(const CollectiveOptions& o) override {
        return c_.BarrierAsync(o);
      }
      void Abort(const Status& s) override { c_.Abort(s); }
      Communicator& c_;
    };
    const int r = host_rank.rank();
    auto gpu = gpus[static_cast<std::size_t>(r)];
    auto comm =
        NcclCommunicator::Create(std::make_unique<Borrowed>(host_rank),
                                 std::make_unique<FakeDriver>(gpu), job.Bootstrap(), FastOptions());
    EXPECT_EQ(comm->backend(), "nccl");
    EXPECT_EQ(comm->rank(), r);
    EXPECT_EQ(comm->size(), 3);
    // Host memory goes to the host communicator: a real sum over the thread ranks.
    std::int64_t v = r + 1;
    EXPECT_EQ(comm->AllReduceScalar<std::int64_t>(v, ReduceOp::kSum), 6);
    // Device memory goes to NCCL (the fake completes it).
    float x = 1.0f;
    CollectiveOptions dev;
    dev.location = MemoryLocation::kDevice;
    comm->AllReduceAsync(&x, 1, DType::kFloat32, ReduceOp::kSum, dev)->Wait();
    EXPECT_EQ(gpu->ops.load(), 1);
    comm->Barrier();
  });
  // Every rank initialised with rank 0's id, read from the store under one key.
  std::size_t keys = 0;
  for (const auto& [k, v] : job.kv) keys += k.find("/unique-id") != std::string::npos ? 1 : 0;
  EXPECT_EQ(keys, 1u);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(gpus[static_cast<std::size_t>(r)]->unique_id, "unique-id-node0/GPU-0") << r;
    EXPECT_EQ(gpus[static_cast<std::size_t>(r)]->rank, r);
    EXPECT_EQ(gpus[static_cast<std::size_t>(r)]->world, 3);
    // A healthy communicator is finalised, not aborted.
    EXPECT_EQ(gpus[static_cast<std::size_t>(r)]->destroys.load(), 1);
    EXPECT_EQ(gpus[static_cast<std::size_t>(r)]->aborts.load(), 0);
  }
  EXPECT_TRUE(job.handlers.empty());  // each removed its failure handler
}

// Builds a thread group where each rank bootstraps with its own fake GPU; returns each rank's
// error (OK when it succeeded).
std::vector<Status> BootstrapGroup(const std::vector<std::shared_ptr<FakeGpu>>& gpus, FakeJob* job,
                                   NcclOptions o = FastOptions()) {
  const int world = static_cast<int>(gpus.size());
  auto hosts = MakeThreadGroup(world, 5s);
  std::vector<Status> out(gpus.size());
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      const auto ru = static_cast<std::size_t>(r);
      try {
        auto comm =
            NcclCommunicator::Create(std::move(hosts[ru]), std::make_unique<FakeDriver>(gpus[ru]),
                                     job != nullptr ? job->Bootstrap() : NcclBootstrap{}, o);
      } catch (...) {
        out[ru] = Status::FromCurrentException();
      }
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

TEST(NcclBootstrap, TwoRanksOnOneGpuAreRefusedOnEveryRank) {
  std::vector<std::shared_ptr<FakeGpu>> gpus;
  for (const char* id : {"node0/GPU-a", "node0/GPU-b", "node0/GPU-a"}) {
    gpus.push_back(std::make_shared<FakeGpu>());
    gpus.back()->identity = id;
  }
  FakeJob job;
  const auto errors = BootstrapGroup(gpus, &job);
  for (const Status& s : errors) {
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << s.message();
    EXPECT_NE(s.message().find("ranks 0 and 2 both use GPU node0/GPU-a"), std::string::npos)
        << s.message();
  }
  for (const auto& g : gpus) EXPECT_TRUE(g->unique_id.empty());  // nobody initialised NCCL
}

TEST(NcclBootstrap, WithoutAStoreTheIdIsBroadcastOverTheHostCommunicator) {
  std::vector<std::shared_ptr<FakeGpu>> gpus;
  for (int r = 0; r < 2; ++r) {
    gpus.push_back(std::make_shared<FakeGpu>());
    gpus.back()->identity = "h/GPU-" + std::to_string(r);
  }
  const auto errors = BootstrapGroup(gpus, nullptr);
  for (const Status& s : errors) EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(gpus[1]->unique_id, "unique-id-h/GPU-0");
}

TEST(NcclBootstrap, RankZeroFailingToCreateTheIdFailsTheOthersAtOnce) {
  std::vector<std::shared_ptr<FakeGpu>> gpus;
  for (int r = 0; r < 2; ++r) {
    gpus.push_back(std::make_shared<FakeGpu>());
    gpus.back()->identity = "h/GPU-" + std::to_string(r);
  }
  gpus[0]->fail_unique_id = true;
  FakeJob job;
  NcclOptions o = FastOptions();
  o.init_timeout = 60s;  // the others must not wait for it
  const auto start = std::chrono::steady_clock::now();
  const auto errors = BootstrapGroup(gpus, &job, o);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 20s);
  EXPECT_EQ(errors[0].code(), ErrorCode::kUnavailable);
  EXPECT_EQ(errors[1].code(), ErrorCode::kAborted) << errors[1].message();
  EXPECT_NE(errors[1].message().find("cannot load NCCL (fake)"), std::string::npos)
      << errors[1].message();
}

TEST(NcclBootstrap, InitialisationThatNeverCompletesTimesOutAndAborts) {
  auto gpu = std::make_shared<FakeGpu>();
  gpu->identity = "h/GPU-0";
  gpu->init_never_completes = true;
  NcclOptions o = FastOptions();
  o.init_timeout = 100ms;
  try {
    MakeOne(gpu, nullptr, o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDeadlineExceeded) << e.what();
    EXPECT_NE(std::string(e.what()).find("did not complete within 100 ms"), std::string::npos);
  }
  EXPECT_EQ(gpu->aborts.load(), 1);
}

TEST(NcclBootstrap, AnInitialisationErrorAborts) {
  auto gpu = std::make_shared<FakeGpu>();
  gpu->identity = "h/GPU-0";
  gpu->async_error = "unhandled system error: socket closed";
  try {
    MakeOne(gpu, nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable) << e.what();
    EXPECT_NE(std::string(e.what()).find("socket closed"), std::string::npos);
  }
  EXPECT_EQ(gpu->aborts.load(), 1);
}

CollectiveOptions Device(std::uint64_t tag, std::chrono::milliseconds timeout = {}) {
  CollectiveOptions o;
  o.location = MemoryLocation::kDevice;
  o.tag = tag;
  o.timeout = timeout;
  return o;
}

TEST(NcclWatchdog, AnOperationThatNeverCompletesTimesOutAbortsAndPoisons) {
  auto gpu = std::make_shared<FakeGpu>();
  gpu->identity = "h/GPU-0";
  auto comm = MakeOne(gpu, nullptr);
  gpu->complete_ops = false;  // a peer that never joins
  float x = 0;
  auto work = comm->AllReduceAsync(&x, 1, DType::kFloat32, ReduceOp::kSum, Device(9, 50ms));
  try {
    work->Wait();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDeadlineExceeded) << e.what();
    const std::string m = e.what();
    EXPECT_NE(m.find("rank 0/1: allreduce #0 (tag 9) timed out after 50 ms"), std::string::npos)
        << m;
    EXPECT_NE(m.find("aborted"), std::string::npos) << m;
  }
  EXPECT_EQ(gpu->aborts.load(), 1);
  EXPECT_EQ(comm->poison_status().code(), ErrorCode::kDeadlineExceeded);
  // Later operations fail at once, device and host alike (the host communicator was aborted).
  gpu->complete_ops = true;
  auto later = comm->AllReduceAsync(&x, 1, DType::kFloat32, ReduceOp::kSum, Device(10));
  EXPECT_TRUE(later->IsCompleted());
  EXPECT_EQ(later->status().code(), ErrorCode::kAborted);
  EXPECT_EQ(gpu->ops.load(), 1);  // never reached NCCL
}

TEST(NcclWatchdog, AnAsynchronousNcclErrorFailsThePendingOperation) {
  auto gpu = std::make_shared<FakeGpu>();
  gpu->identity = "h/GPU-0";
  auto comm = MakeOne(gpu, nullptr);
  gpu->complete_ops = false;
  float x = 0;
  auto first = comm->AllReduceAsync(&x, 1, DType::kFloat32, ReduceOp::kSum, Device(1, 60s));
  auto second = comm->BroadcastAsync(&x, 4, 0, Device(2, 60s));
  {
    std::lock_guard lock(gpu->mu);
    gpu->async_error = "remote process exited or there was a network error";
  }
  EXPECT_TRUE(first->WaitFor(10s));
  EXPECT_EQ(first->status().code(), ErrorCode::kAborted);
  EXPECT_NE(first->status().message().find("remote process exited"), std::string::npos);
  EXPECT_TRUE(second->WaitFor(10s));
  EXPECT_FALSE(second->status().ok());
  EXPECT_EQ(gpu->aborts.load(), 1);
}

TEST(NcclWatchdog, CompletedOperationsSucceedInOrder) {
  auto gpu = std::make_shared<FakeGpu>();
  gpu->identity = "h/GPU-0";
  auto comm = MakeOne(gpu, nullptr);
  gpu->complete_ops = false;
  float x = 0;
  std::vector<std::shared_ptr<Work>> works;
  for (int i = 0; i < 5; ++i) {
    works.push_back(comm->AllReduceAsync(&x, 1, DType::kFloat32, ReduceOp::kSum, Device(i, 60s)));
  }
  std::this_thread::sleep_for(20ms);
  for (auto& w : works) EXPECT_FALSE(w->IsCompleted());
  gpu->complete_ops = true;
  for (auto& w : works) EXPECT_NO_THROW(w->Wait());
  EXPECT_TRUE(comm->poison_status().ok());
}

TEST(NcclWatchdog, AFailureRelayedByTheJobAbortsNccl) {
  auto gpu = std::make_shared<FakeGpu>();
  gpu->identity = "h/GPU-0";
  FakeJob job;
  auto comm = MakeOne(gpu, &job);
  ASSERT_EQ(job.handlers.size(), 1u);
  gpu->complete_ops = false;
  float x = 0;
  auto work = comm->AllReduceAsync(&x, 1, DType::kFloat32, ReduceOp::kSum, Device(3, 60s));
  job.RelayFailure(Status(ErrorCode::kAborted, "rank 1 failed: killed"));
  EXPECT_TRUE(work->WaitFor(10s));
  EXPECT_EQ(work->status().code(), ErrorCode::kAborted);
  EXPECT_NE(work->status().message().find("rank 1 failed: killed"), std::string::npos);
  EXPECT_EQ(gpu->aborts.load(), 1);
  comm.reset();
  EXPECT_TRUE(job.handlers.empty());
  EXPECT_EQ(gpu->destroys.load(), 0);  // a failed communicator is aborted, not finalised
}

}  // namespace
}  // namespace escala::gpu::internal
