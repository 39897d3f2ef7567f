// Multi-host: two nodes in separate network namespaces joined by a veth pair, each running
// `escala launch --nnodes 2` with two workers, rendezvous and ring across the namespaces. Needs
// root and iproute2; skips cleanly otherwise. Only the namespaces' own 10.x addresses are used.
#include <chrono>
#include <string>
#include <unistd.h>

#include <gtest/gtest.h>

#include "integration/distributed/process_test_util.h"
#include "test_util/certs.h"

namespace escala::testing {
namespace {

using std::chrono::seconds;

class NetNs : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for ip netns";
    if (RunCommand("ip -V") != 0) GTEST_SKIP() << "iproute2 is not installed";
    const int id = static_cast<int>(getpid() % 200) + 20;
    tag_ = std::to_string(getpid());
    ns_a_ = "escd" + tag_ + "a";
    ns_b_ = "escd" + tag_ + "b";
    veth_a_ = "evd" + tag_ + "a";
    veth_b_ = "evd" + tag_ + "b";
    ip_a_ = "10.231." + std::to_string(id) + ".1";
    ip_b_ = "10.231." + std::to_string(id) + ".2";
    Cleanup();
    const std::string script =
        "set -e; ip netns add " + ns_a_ + "; ip netns add " + ns_b_ + "; ip link add " + veth_a_ +
        " type veth peer name " + veth_b_ + "; ip link set " + veth_a_ + " netns " + ns_a_ +
        "; ip link set " + veth_b_ + " netns " + ns_b_ + "; ip -n " + ns_a_ + " addr add " + ip_a_ +
        "/24 dev " + veth_a_ + "; ip -n " + ns_b_ + " addr add " + ip_b_ + "/24 dev " + veth_b_ +
        "; ip -n " + ns_a_ + " link set " + veth_a_ + " up; ip -n " + ns_b_ + " link set " +
        veth_b_ + " up; ip -n " + ns_a_ + " link set lo up; ip -n " + ns_b_ + " link set lo up";
    std::string out;
    if (RunCommand("sh -c '" + script + "'", &out) != 0) {
      Cleanup();
      GTEST_SKIP() << "cannot create network namespaces: " << out;
    }
    created_ = true;
  }

  void TearDown() override {
    if (created_) Cleanup();
  }

  void Cleanup() {
    RunCommand("ip netns del " + ns_a_ + " 2>/dev/null; ip netns del " + ns_b_ + " 2>/dev/null");
  }

  // Runs both nodes' launchers and waits for both.
  void RunJob(const std::vector<std::string>& extra, const std::vector<std::string>& worker) {
    TempDir dir;
    const std::string coordinator = ip_a_ + ":29611";
    auto launcher = [&](const std::string& ns, int node) {
      std::vector<std::string> argv = {"/usr/bin/env",
                                       "ip",
                                       "netns",
                                       "exec",
                                       ns,
                                       CliPath(),
                                       "launch",
                                       "--nnodes",
                                       "2",
                                       "--node-rank",
                                       std::to_string(node),
                                       "--nproc",
                                       "2",
                                       "--coordinator",
                                       coordinator,
                                       "--job-token",
                                       "netns-secret",
                                       "--grace-period",
                                       "2s",
                                       "--rendezvous-timeout",
                                       "30s"};
      argv.insert(argv.end(), extra.begin(), extra.end());
      argv.push_back("--");
      argv.insert(argv.end(), worker.begin(), worker.end());
      return std::make_unique<Subprocess>(argv, std::map<std::string, std::string>{},
                                          dir.File("node" + std::to_string(node)));
    };
    auto a = launcher(ns_a_, 0);
    auto b = launcher(ns_b_, 1);
    for (auto* p : {a.get(), b.get()}) {
      const auto st = p->Wait(seconds(90));
      ASSERT_TRUE(st.has_value()) << p->Output();
      EXPECT_EQ(*st, 0) << p->Output();
    }
    const std::string out = a->Output() + b->Output();
    for (int r = 0; r < 4; ++r) {
      EXPECT_NE(out.find("[rank " + std::to_string(r) + "] "), std::string::npos) << out;
    }
    output_ = out;
  }

  std::string tag_, ns_a_, ns_b_, veth_a_, veth_b_, ip_a_, ip_b_, output_;
  bool created_ = false;
};

TEST_F(NetNs, TwoNodesFormOneJobAcrossNamespaces) {
  RunJob({}, {WorkerPath(), "sweep"});
  for (int r = 0; r < 4; ++r) {
    EXPECT_NE(output_.find("sweep ok rank " + std::to_string(r) + "/4"), std::string::npos)
        << output_;
  }
}

TEST_F(NetNs, TwoNodesOverMutualTls) {
  TempDir dir;
  TestCerts certs;
  std::string error;
  if (!GenerateTestCerts(dir.path().string(), &certs, &error, {ip_a_, ip_b_})) {
    GTEST_SKIP() << error;
  }
  RunJob({"--tls-ca", certs.ca, "--tls-cert", certs.cert, "--tls-key", certs.key, "--tls-mutual"},
         {WorkerPath(), "loop", "30", "30000"});
  EXPECT_NE(output_.find("loop ok rank 3"), std::string::npos) << output_;
}

}  // namespace
}  // namespace escala::testing
