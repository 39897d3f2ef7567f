// The coordinator and the worker's job session: rendezvous and its errors, the key-value store,
// barriers, failure relay, rounds.
#include "escala/distributed/coordinator.h"

#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "distributed/transport.h"
#include "escala/distributed/connect.h"
#include "escala/distributed/job.h"
#include "test_util/subprocess.h"

namespace escala::distributed {
namespace {

using std::chrono::milliseconds;

CoordinatorOptions Options(int world) {
  CoordinatorOptions o;
  o.listen_address = "127.0.0.1:0";
  o.job_id = "job-x";
  o.job_token = "secret";
  o.world_size = world;
  o.heartbeat_interval = milliseconds(100);
  o.heartbeat_timeout = milliseconds(3000);
  return o;
}

JobOptions Client(const Coordinator& c) {
  JobOptions o;
  o.coordinator = c.address();
  o.job_id = "job-x";
  o.job_token = "secret";
  o.rendezvous_timeout = milliseconds(10000);
  o.rpc_timeout = milliseconds(5000);
  return o;
}

Registration Reg(int world, int rank = -1, int port = 0, int local_rank = 0) {
  Registration r;
  r.world_size = world;
  r.requested_rank = rank;
  r.port = port;
  r.local_rank = local_rank;
  return r;
}

// Joins in the background.
std::future<std::unique_ptr<JobSession>> JoinAsync(JobOptions o, Registration r) {
  return std::async(std::launch::async, [o, r] { return JobSession::Join(o, r); });
}

Status JoinStatus(const JobOptions& o, const Registration& r) {
  try {
    JobSession::Join(o, r);
    return Status::Ok();
  } catch (const Error& e) {
    return Status::FromError(e);
  }
}

// Collects the failure a session relays.
struct FailureProbe {
  std::mutex mu;
  std::condition_variable cv;
  Status status;
  bool seen = false;
  void Attach(JobSession& s) {
    s.AddFailureHandler([this](const Status& st) {
      std::lock_guard lock(mu);
      status = st;
      seen = true;
      cv.notify_all();
    });
  }
  bool Wait(milliseconds timeout) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return seen; });
  }
};

TEST(Coordinator, AssignsRequestedRanksAndOrdersTheRestDeterministically) {
  Coordinator c(Options(4));
  auto a = JoinAsync(Client(c), Reg(4, 3, 5003));
  auto b = JoinAsync(Client(c), Reg(4, -1, 5002, /*local_rank=*/1));
  auto d = JoinAsync(Client(c), Reg(4, -1, 5001, /*local_rank=*/0));
  auto e = JoinAsync(Client(c), Reg(4, 0, 5000));
  auto sa = a.get(), sb = b.get(), sd = d.get(), se = e.get();
  EXPECT_EQ(sa->rank(), 3);
  EXPECT_EQ(se->rank(), 0);
  EXPECT_EQ(sd->rank(), 1);  // same host: local rank 0 before local rank 1
  EXPECT_EQ(sb->rank(), 2);
  const Membership& m = sb->membership();
  EXPECT_EQ(m.world_size, 4);
  EXPECT_EQ(m.round, 1u);
  ASSERT_EQ(m.peers.size(), 4u);
  EXPECT_EQ(m.peers[0].address, "127.0.0.1:5000");
  EXPECT_EQ(m.peers[1].address, "127.0.0.1:5001");
  EXPECT_EQ(m.peers[3].address, "127.0.0.1:5003");
  EXPECT_EQ(m.observed_host, "127.0.0.1");
  EXPECT_EQ(c.stats().registered, 4);
  EXPECT_TRUE(c.stats().round_complete);
}

TEST(Coordinator, WrongTokenJobOrWorldSizeAreClearErrors) {
  Coordinator c(Options(2));
  JobOptions bad_token = Client(c);
  bad_token.job_token = "guess";
  Status s = JoinStatus(bad_token, Reg(2, 0));
  EXPECT_EQ(s.code(), ErrorCode::kPermissionDenied) << s.ToString();
  EXPECT_NE(s.message().find("wrong job token"), std::string::npos) << s.message();

  JobOptions bad_job = Client(c);
  bad_job.job_id = "other-job";
  s = JoinStatus(bad_job, Reg(2, 0));
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("other-job"), std::string::npos) << s.message();

  s = JoinStatus(Client(c), Reg(3, 0));
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("world size 3"), std::string::npos) << s.message();

  s = JoinStatus(Client(c), Reg(2, 2));
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("out of range"), std::string::npos) << s.message();
}

TEST(Coordinator, WorldSizeFromTheFirstWorkerMustBeSharedByTheRest) {
  Coordinator c(Options(0));
  auto first = JoinAsync(Client(c), Reg(2, 0));
  while (c.stats().registered < 1) std::this_thread::sleep_for(milliseconds(5));
  const Status s = JoinStatus(Client(c), Reg(3, 1));
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << s.ToString();
  auto second = JoinAsync(Client(c), Reg(2, 1));
  EXPECT_EQ(first.get()->world_size(), 2);
  EXPECT_EQ(second.get()->rank(), 1);
}

TEST(Coordinator, DuplicateRankIsAlreadyExists) {
  Coordinator c(Options(2));
  auto first = JoinAsync(Client(c), Reg(2, 0));
  while (c.stats().registered < 1) std::this_thread::sleep_for(milliseconds(5));
  const Status s = JoinStatus(Client(c), Reg(2, 0));
  EXPECT_EQ(s.code(), ErrorCode::kAlreadyExists) << s.ToString();
  EXPECT_NE(s.message().find("rank 0"), std::string::npos) << s.message();
  auto other = JoinAsync(Client(c), Reg(2, 1));
  auto s0 = first.get();
  auto s1 = other.get();
  EXPECT_EQ(s0->rank(), 0);
  EXPECT_EQ(s1->rank(), 1);
  // The round is running: a third worker asking for rank 1 is told it is taken.
  const Status late = JoinStatus(Client(c), Reg(2, 1));
  EXPECT_EQ(late.code(), ErrorCode::kAlreadyExists) << late.ToString();
}

TEST(Coordinator, RendezvousTimesOutWhenTheWorldStaysIncomplete) {
  Coordinator c(Options(3));
  JobOptions o = Client(c);
  o.rendezvous_timeout = milliseconds(500);
  const auto start = std::chrono::steady_clock::now();
  auto a = std::async(std::launch::async, [&] { return JoinStatus(o, Reg(3, 0)); });
  const Status b = JoinStatus(o, Reg(3, 1));
  const Status sa = a.get();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  for (const Status& s : {sa, b}) {
    EXPECT_TRUE(s.code() == ErrorCode::kDeadlineExceeded || s.code() == ErrorCode::kAborted)
        << s.ToString();
  }
  const Status& timed_out = sa.code() == ErrorCode::kDeadlineExceeded ? sa : b;
  EXPECT_NE(timed_out.message().find("not all 3 workers registered"), std::string::npos)
      << timed_out.message();
}

TEST(Coordinator, UnreachableCoordinatorTimesOutClearly) {
  JobOptions o;
  o.coordinator = "127.0.0.1:" + std::to_string(testing::FreePort());
  o.job_id = "job-x";
  o.rendezvous_timeout = milliseconds(400);
  const Status s = JoinStatus(o, Reg(2, 0));
  EXPECT_EQ(s.code(), ErrorCode::kDeadlineExceeded) << s.ToString();
  EXPECT_NE(s.message().find("could not be reached"), std::string::npos) << s.message();
}

TEST(Coordinator, WorkerLeavingDuringRendezvousAbortsTheOthersAtOnce) {
  Coordinator c(Options(3));
  const auto start = std::chrono::steady_clock::now();
  auto patient = std::async(std::launch::async, [&] { return JoinStatus(Client(c), Reg(3, 0)); });
  JobOptions impatient = Client(c);
  impatient.rendezvous_timeout = milliseconds(300);
  EXPECT_EQ(JoinStatus(impatient, Reg(3, 1)).code(), ErrorCode::kDeadlineExceeded);
  const Status s = patient.get();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(s.code(), ErrorCode::kAborted) << s.ToString();
  EXPECT_NE(s.message().find("left before all 3 workers registered"), std::string::npos)
      << s.message();
  EXPECT_TRUE(c.stats().round_failed);
}

TEST(Coordinator, KeyValueStoreAndBarrier) {
  Coordinator c(Options(2));
  auto a = JoinAsync(Client(c), Reg(2, 0));
  auto b = JoinAsync(Client(c), Reg(2, 1));
  auto s0 = a.get();
  auto s1 = b.get();
  const std::string id("nccl\0unique-id", 14);
  auto reader = std::async(std::launch::async, [&] { return s1->Get("nccl_id"); });
  std::this_thread::sleep_for(milliseconds(50));
  s0->Set("nccl_id", id);
  EXPECT_EQ(reader.get(), id);
  EXPECT_EQ(s0->Get("nccl_id"), id);
  try {
    s0->Get("missing", milliseconds(200));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound) << e.what();
  }
  auto other = std::async(std::launch::async, [&] { s1->Barrier("b1"); });
  s0->Barrier("b1");
  other.get();
  try {
    s0->Barrier("alone", milliseconds(200));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDeadlineExceeded) << e.what();
  }
}

TEST(Coordinator, MessagesAboveTheSizeLimitAreRefused) {
  Coordinator c(Options(1));
  auto s = JobSession::Join(Client(c), Reg(1, 0));
  s->Set("small", std::string(1 << 20, 'x'));
  try {
    s->Set("huge", std::string(5 << 20, 'x'));  // the limit is 4 MiB
    FAIL() << "expected kResourceExhausted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kResourceExhausted) << e.what();
  }
  EXPECT_EQ(s->Get("small").size(), std::size_t{1} << 20);
}

TEST(Connect, InconsistentOptionsAreInvalidArgument) {
  WorkerEnv env;
  env.rank = 0;
  env.world_size = 2;
  env.coordinator = "127.0.0.1:1";
  ConnectOptions o;
  o.ring.chunk_bytes = 8 << 20;
  o.ring.max_message_bytes = 4 << 20;  // a chunk must fit in a message
  try {
    Connect(env, o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
  }
  env.rank = 2;  // out of range
  EXPECT_THROW(Connect(env, ConnectOptions{}), Error);
  // A world of one needs no coordinator and no network.
  WorkerEnv single;
  auto comm = Connect(single);
  EXPECT_EQ(comm->size(), 1);
  EXPECT_EQ(comm->backend(), "self");
}

TEST(Coordinator, FailureReportIsRelayedToTheOtherWorkers) {
  Coordinator c(Options(3));
  auto a = JoinAsync(Client(c), Reg(3, 0));
  auto b = JoinAsync(Client(c), Reg(3, 1));
  auto d = JoinAsync(Client(c), Reg(3, 2));
  auto s0 = a.get(), s1 = b.get(), s2 = d.get();
  FailureProbe p0, p2;
  p0.Attach(*s0);
  p2.Attach(*s2);
  s1->ReportFailure(Status(ErrorCode::kDataLoss, "shard 7 is corrupt"));
  for (FailureProbe* p : {&p0, &p2}) {
    ASSERT_TRUE(p->Wait(milliseconds(5000)));
    EXPECT_EQ(p->status.code(), ErrorCode::kAborted) << p->status.ToString();
    EXPECT_NE(p->status.message().find("rank 1 failed: shard 7 is corrupt"), std::string::npos)
        << p->status.message();
  }
  EXPECT_TRUE(c.stats().round_failed);
}

TEST(Coordinator, LostCoordinatorIsReportedAsUnavailable) {
  auto c = std::make_unique<Coordinator>(Options(2));
  auto a = JoinAsync(Client(*c), Reg(2, 0));
  auto b = JoinAsync(Client(*c), Reg(2, 1));
  auto s0 = a.get(), s1 = b.get();
  FailureProbe p0;
  p0.Attach(*s0);
  c.reset();
  ASSERT_TRUE(p0.Wait(milliseconds(5000)));
  EXPECT_EQ(p0.status.code(), ErrorCode::kUnavailable) << p0.status.ToString();
  EXPECT_NE(p0.status.message().find("lost the coordinator"), std::string::npos);
}

TEST(Coordinator, GoodbyesFinishTheRoundAndFailuresOpenANewOne) {
  Coordinator c(Options(2));
  {
    auto a = JoinAsync(Client(c), Reg(2, 0));
    auto b = JoinAsync(Client(c), Reg(2, 1));
    auto s0 = a.get(), s1 = b.get();
    s0->Goodbye();
    s1->Goodbye();
    EXPECT_TRUE(c.WaitUntilFinished(milliseconds(5000)));
    EXPECT_TRUE(c.stats().round_finished);
  }
  {
    auto a = JoinAsync(Client(c), Reg(2, 0));
    auto b = JoinAsync(Client(c), Reg(2, 1));
    auto s0 = a.get(), s1 = b.get();
    EXPECT_EQ(s0->membership().round, 2u);
    s1->ReportFailure(Status(ErrorCode::kInternal, "boom"));
    EXPECT_TRUE(c.WaitUntilRoundEnds(milliseconds(5000)));
    EXPECT_TRUE(c.stats().round_failed);
  }
  // A restarted job re-forms as round 3 with the same coordinator.
  auto a = JoinAsync(Client(c), Reg(2, 0));
  auto b = JoinAsync(Client(c), Reg(2, 1));
  EXPECT_EQ(a.get()->membership().round, 3u);
  EXPECT_EQ(b.get()->membership().round, 3u);
  EXPECT_EQ(c.stats().failed_rounds, 1u);
}

TEST(Coordinator, DataPlanePeerRefusingConnectionsIsUnavailable) {
  Coordinator c(Options(2));
  // Rank 0 registers a data-plane port nobody listens on.
  const int dead_port = testing::FreePort();
  auto rank0 = JoinAsync(Client(c), Reg(2, 0, dead_port));
  WorkerEnv env;
  env.rank = 1;
  env.world_size = 2;
  env.coordinator = c.address();
  env.job_id = "job-x";
  env.job_token = "secret";
  ConnectOptions co;
  co.ring.connect_timeout = milliseconds(10000);
  try {
    Connect(env, co);
    FAIL() << "expected kUnavailable";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable) << e.what();
    EXPECT_NE(std::string(e.what()).find("rank 0 at 127.0.0.1:" + std::to_string(dead_port)),
              std::string::npos)
        << e.what();
  }
  // Rank 1 reported the failure: rank 0 hears of it.
  auto s0 = rank0.get();
  FailureProbe p;
  p.Attach(*s0);
  ASSERT_TRUE(p.Wait(milliseconds(5000)));
  EXPECT_EQ(p.status.code(), ErrorCode::kAborted) << p.status.ToString();
}

// Every listener owns its port: a second one on the same port (which SO_REUSEPORT, gRPC's default
// on Linux, would let bind and share the connections) fails with a clear error.
void ExpectAddressInUse(const std::function<void()>& start, const std::string& address) {
  try {
    start();
    FAIL() << "a second listener started on " << address;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable) << e.what();
    EXPECT_NE(std::string(e.what()).find(address + ": address in use"), std::string::npos)
        << e.what();
  }
}

TEST(Listeners, ASecondCoordinatorOnThePortFailsWithAddressInUse) {
  Coordinator first(Options(2));
  CoordinatorOptions o = Options(2);
  o.job_id = "another-job";
  o.listen_address = "127.0.0.1:" + std::to_string(first.port());
  ExpectAddressInUse([&] { Coordinator second(o); }, o.listen_address);
  // The first one still serves its own job.
  JobOptions c = Client(first);
  c.rendezvous_timeout = milliseconds(300);
  EXPECT_EQ(JoinStatus(c, Reg(2)).code(), ErrorCode::kDeadlineExceeded);
}

TEST(Listeners, ASecondDataPlaneOnThePortFailsWithAddressInUse) {
  internal::Transport first(internal::TransportOptions{});
  internal::TransportOptions o;
  o.bind_address = "127.0.0.1:" + std::to_string(first.port());
  ExpectAddressInUse([&] { internal::Transport second(o); }, o.bind_address);
}

}  // namespace
}  // namespace escala::distributed
