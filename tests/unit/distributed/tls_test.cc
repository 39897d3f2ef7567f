// TLS and mutual TLS for the coordinator and the data plane, with certificates generated at test
// time (openssl); the tests skip when openssl is not installed.
#include <gtest/gtest.h>

#include "escala/distributed/coordinator.h"
#include "escala/distributed/job.h"
#include "test_util/certs.h"
#include "test_util/temp_dir.h"
#include "unit/distributed/local_group.h"

namespace escala::distributed {
namespace {

using std::chrono::milliseconds;

class Tls : public ::testing::Test {
 protected:
  // One set of certificates for the whole suite (openssl takes a moment).
  static void SetUpTestSuite() {
    dir_ = new escala::testing::TempDir();
    have_certs_ = escala::testing::GenerateTestCerts(dir_->path().string(), &certs_, &error_);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!have_certs_) GTEST_SKIP() << "cannot generate certificates: " << error_;
  }

  TlsOptions Server(bool mutual) const {
    TlsOptions t;
    t.enabled = true;
    t.ca_file = certs_.ca;
    t.cert_file = certs_.cert;
    t.key_file = certs_.key;
    t.mutual = mutual;
    return t;
  }

  // Tries to join a coordinator that uses `server` TLS with the client settings `client`.
  Status JoinWith(const TlsOptions& server, const TlsOptions& client) {
    CoordinatorOptions co;
    co.listen_address = "127.0.0.1:0";
    co.job_id = "tls-job";
    co.world_size = 1;
    co.tls = server;
    Coordinator c(co);
    JobOptions jo;
    jo.coordinator = c.address();
    jo.job_id = "tls-job";
    jo.tls = client;
    jo.rendezvous_timeout = milliseconds(700);
    Registration r;
    r.world_size = 1;
    try {
      auto s = JobSession::Join(jo, r);
      return Status::Ok();
    } catch (const Error& e) {
      return Status::FromError(e);
    }
  }

  static inline escala::testing::TempDir* dir_ = nullptr;
  static inline escala::testing::TestCerts certs_;
  static inline bool have_certs_ = false;
  static inline std::string error_;
};

void AllReduceWorks(const TlsOptions& tls) {
  testing::LocalGroupOptions o;
  o.connect = testing::FastConnectOptions();
  o.connect.tls = tls;
  testing::RunOnGrpcRanks(
      3,
      [](Communicator& comm) {
        std::vector<double> v(50000, comm.rank() + 1.0);
        comm.AllReduce(std::span<double>(v), ReduceOp::kSum);
        for (double x : v) ASSERT_EQ(x, 6.0);
        std::string s = comm.rank() == 2 ? "over tls" : "";
        comm.BroadcastString(s, 2);
        ASSERT_EQ(s, "over tls");
      },
      o);
}

TEST_F(Tls, CoordinatorAndDataPlaneOverTls) {
  AllReduceWorks(Server(false));
}

TEST_F(Tls, CoordinatorAndDataPlaneOverMutualTls) {
  AllReduceWorks(Server(true));
}

TEST_F(Tls, ClientThatDoesNotTrustTheServerCannotJoin) {
  TlsOptions client = Server(false);
  client.ca_file = certs_.rogue_ca;
  EXPECT_FALSE(JoinWith(Server(false), client).ok());
}

TEST_F(Tls, PlaintextClientCannotJoinATlsCoordinator) {
  EXPECT_FALSE(JoinWith(Server(false), TlsOptions{}).ok());
}

TEST_F(Tls, MutualTlsRejectsClientsWithoutOrWithForeignCertificates) {
  TlsOptions no_cert = Server(false);  // trusts the server but presents nothing
  no_cert.cert_file.clear();
  no_cert.key_file.clear();
  EXPECT_FALSE(JoinWith(Server(true), no_cert).ok());
  TlsOptions foreign = Server(true);  // trusts the server, presents a certificate of another CA
  foreign.cert_file = certs_.rogue_cert;
  foreign.key_file = certs_.rogue_key;
  EXPECT_FALSE(JoinWith(Server(true), foreign).ok());
  EXPECT_TRUE(JoinWith(Server(true), Server(true)).ok());
}

TEST_F(Tls, IncompleteOrUnreadableConfigurationIsRejected) {
  TlsOptions t;
  t.enabled = true;
  t.ca_file = certs_.ca;
  EXPECT_THROW(t.Validate(/*as_server=*/true), Error);  // a server needs cert and key
  t.Validate(/*as_server=*/false);                      // a plain TLS client needs only the CA
  CoordinatorOptions co;
  co.listen_address = "127.0.0.1:0";
  co.tls = Server(false);
  co.tls.cert_file = dir_->File("missing.pem");
  try {
    Coordinator c(co);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound) << e.what();
    EXPECT_NE(std::string(e.what()).find("missing.pem"), std::string::npos);
  }
}

}  // namespace
}  // namespace escala::distributed
