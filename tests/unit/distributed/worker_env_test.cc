#include "escala/distributed/worker_env.h"

#include <map>

#include <gtest/gtest.h>

#include "escala/core/error.h"

namespace escala::distributed {
namespace {

WorkerEnv From(const std::map<std::string, std::string>& vars) {
  return WorkerEnv::FromLookup([&](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  });
}

void ExpectInvalid(const std::map<std::string, std::string>& vars, const std::string& needle) {
  try {
    From(vars);
    FAIL() << "expected InvalidArgument mentioning " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(WorkerEnv, NothingSetIsASingleProcess) {
  const WorkerEnv env = From({});
  EXPECT_EQ(env.rank, 0);
  EXPECT_EQ(env.world_size, 1);
  EXPECT_EQ(env.source, "default");
  EXPECT_TRUE(env.coordinator.empty());
  EXPECT_FALSE(env.run_coordinator);
}

TEST(WorkerEnv, EscalaVariablesComeFirst) {
  const WorkerEnv env = From({{"ESCALA_RANK", "2"},
                              {"ESCALA_WORLD_SIZE", "4"},
                              {"ESCALA_LOCAL_RANK", "0"},
                              {"ESCALA_LOCAL_WORLD_SIZE", "2"},
                              {"ESCALA_NODE_RANK", "1"},
                              {"ESCALA_COORDINATOR", "10.0.0.1:4000"},
                              {"ESCALA_JOB_ID", "j1"},
                              {"ESCALA_JOB_TOKEN", "s3cret"},
                              // torchrun's variables are present too and must lose:
                              {"RANK", "0"},
                              {"WORLD_SIZE", "8"},
                              {"MASTER_ADDR", "elsewhere"},
                              {"MASTER_PORT", "1"}});
  EXPECT_EQ(env.source, "escala");
  EXPECT_EQ(env.rank, 2);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.local_rank, 0);
  EXPECT_EQ(env.local_world_size, 2);
  EXPECT_EQ(env.node_rank, 1);
  EXPECT_EQ(env.coordinator, "10.0.0.1:4000");
  EXPECT_EQ(env.job_id, "j1");
  EXPECT_EQ(env.job_token, "s3cret");
  EXPECT_FALSE(env.run_coordinator);  // not rank 0
}

TEST(WorkerEnv, Torchrun) {
  const WorkerEnv env = From({{"RANK", "0"},
                              {"WORLD_SIZE", "2"},
                              {"LOCAL_RANK", "0"},
                              {"LOCAL_WORLD_SIZE", "2"},
                              {"MASTER_ADDR", "127.0.0.1"},
                              {"MASTER_PORT", "29501"},
                              {"TORCHELASTIC_RUN_ID", "abc"}});
  EXPECT_EQ(env.source, "torchrun");
  EXPECT_EQ(env.coordinator, "127.0.0.1:29501");
  EXPECT_EQ(env.job_id, "abc");
  EXPECT_TRUE(env.run_coordinator);  // rank 0 hosts it by default
  EXPECT_FALSE(From({{"RANK", "0"},
                     {"WORLD_SIZE", "2"},
                     {"MASTER_ADDR", "h"},
                     {"ESCALA_RUN_COORDINATOR", "0"}})
                   .run_coordinator);
  EXPECT_EQ(From({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}}).coordinator,
            "h:29500");
}

// torchrun's default (static) rendezvous: its agent's TCPStore listens on MASTER_PORT, so the
// coordinator takes a free port of MASTER_ADDR and its address goes through that store.
TEST(WorkerEnv, TorchrunStaticRendezvousFindsTheCoordinatorThroughTheAgentsStore) {
  std::map<std::string, std::string> vars = {{"RANK", "0"},
                                             {"WORLD_SIZE", "2"},
                                             {"MASTER_ADDR", "127.0.0.1"},
                                             {"MASTER_PORT", "29500"},
                                             {"TORCHELASTIC_RUN_ID", "none"},
                                             {"TORCHELASTIC_RESTART_COUNT", "2"},
                                             {"TORCHELASTIC_USE_AGENT_STORE", "True"}};
  WorkerEnv env = From(vars);
  EXPECT_EQ(env.coordinator_store, "127.0.0.1:29500");
  EXPECT_EQ(env.coordinator, "127.0.0.1:0");
  EXPECT_EQ(env.coordinator_key, "/worker/attempt_2/escala/coordinator");
  EXPECT_TRUE(env.run_coordinator);
  EXPECT_NE(env.Describe().find("torchrun's store 127.0.0.1:29500"), std::string::npos);
  // c10d rendezvous and --standalone: MASTER_PORT is a free port for rank 0 to listen on.
  vars["TORCHELASTIC_USE_AGENT_STORE"] = "False";
  env = From(vars);
  EXPECT_TRUE(env.coordinator_store.empty());
  EXPECT_EQ(env.coordinator, "127.0.0.1:29500");
  // An explicit coordinator needs no store.
  vars["TORCHELASTIC_USE_AGENT_STORE"] = "True";
  vars["ESCALA_COORDINATOR"] = "10.0.0.1:4000";
  env = From(vars);
  EXPECT_TRUE(env.coordinator_store.empty());
  EXPECT_EQ(env.coordinator, "10.0.0.1:4000");
  // Rank 0 must host it: nobody else publishes the address.
  vars.erase("ESCALA_COORDINATOR");
  vars["ESCALA_RUN_COORDINATOR"] = "0";
  ExpectInvalid(vars, "ESCALA_RUN_COORDINATOR=0");
}

// Two jobs must not share a job id by default: it comes from the launcher that started the rank.
TEST(WorkerEnv, JobIdComesFromTheLauncher) {
  EXPECT_EQ(From({{"RANK", "1"},
                  {"WORLD_SIZE", "2"},
                  {"MASTER_ADDR", "h"},
                  {"TORCHELASTIC_RUN_ID", "tr-7"}})
                .job_id,
            "tr-7");
  EXPECT_EQ(From({{"SLURM_PROCID", "1"},
                  {"SLURM_NTASKS", "2"},
                  {"SLURM_JOB_NODELIST", "a"},
                  {"SLURM_JOB_ID", "4242"},
                  {"SLURM_STEP_ID", "3"}})
                .job_id,
            "4242.3");
  const std::map<std::string, std::string> mpi = {{"OMPI_COMM_WORLD_RANK", "1"},
                                                  {"OMPI_COMM_WORLD_SIZE", "2"},
                                                  {"MASTER_ADDR", "h"},
                                                  {"OMPI_MCA_ess_base_jobid", "3405905921"}};
  EXPECT_EQ(From(mpi).job_id, "3405905921");
  // mpirun inside a Slurm allocation: the allocation's id is shared by every mpirun in it.
  auto in_slurm = mpi;
  in_slurm["SLURM_JOB_ID"] = "4242";
  EXPECT_EQ(From(in_slurm).job_id, "3405905921");
  EXPECT_EQ(From({{"OMPI_COMM_WORLD_RANK", "0"},
                  {"OMPI_COMM_WORLD_SIZE", "2"},
                  {"MASTER_ADDR", "h"},
                  {"PMIX_NAMESPACE", "prterun-node0-4711@1"}})
                .job_id,
            "prterun-node0-4711@1");
  in_slurm["ESCALA_JOB_ID"] = "mine";
  EXPECT_EQ(From(in_slurm).job_id, "mine");
  // Nothing names the job: a single process gets a random id; processes started by hand cannot
  // agree on one and share "escala" (set ESCALA_JOB_ID).
  const std::string a = From({}).job_id, b = From({}).job_id;
  EXPECT_TRUE(a.starts_with("escala-")) << a;
  EXPECT_NE(a, b);
  EXPECT_EQ(From({{"ESCALA_RANK", "1"}, {"ESCALA_WORLD_SIZE", "2"}, {"ESCALA_COORDINATOR", "h:1"}})
                .job_id,
            "escala");
}

TEST(WorkerEnv, SlurmWithCompressedNodeList) {
  const WorkerEnv env = From({{"SLURM_PROCID", "5"},
                              {"SLURM_NTASKS", "8"},
                              {"SLURM_LOCALID", "1"},
                              {"SLURM_NODEID", "2"},
                              {"SLURM_NTASKS_PER_NODE", "2(x4)"},
                              {"SLURM_JOB_NODELIST", "node[01-03,07]"},
                              {"SLURM_JOB_ID", "4242"}});
  EXPECT_EQ(env.source, "slurm");
  EXPECT_EQ(env.rank, 5);
  EXPECT_EQ(env.world_size, 8);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.local_world_size, 2);
  EXPECT_EQ(env.node_rank, 2);
  EXPECT_EQ(env.nodes, (std::vector<std::string>{"node01", "node02", "node03", "node07"}));
  EXPECT_EQ(env.coordinator, "node01:29500");
  EXPECT_EQ(env.job_id, "4242");
  EXPECT_EQ(From({{"SLURM_PROCID", "0"},
                  {"SLURM_NTASKS", "2"},
                  {"SLURM_JOB_NODELIST", "a,b"},
                  {"ESCALA_COORDINATOR_PORT", "7000"}})
                .coordinator,
            "a:7000");
}

TEST(WorkerEnv, OpenMpiNeedsACoordinatorAddress) {
  const WorkerEnv env = From({{"OMPI_COMM_WORLD_RANK", "1"},
                              {"OMPI_COMM_WORLD_SIZE", "2"},
                              {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                              {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                              {"MASTER_ADDR", "hostA"}});
  EXPECT_EQ(env.source, "openmpi");
  EXPECT_EQ(env.rank, 1);
  EXPECT_EQ(env.local_world_size, 2);
  EXPECT_EQ(env.coordinator, "hostA:29500");
  ExpectInvalid({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}},
                "ESCALA_COORDINATOR");
}

TEST(WorkerEnv, MalformedValuesNameTheVariable) {
  ExpectInvalid({{"RANK", "abc"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}}, "RANK='abc'");
  ExpectInvalid({{"ESCALA_RANK", "4"}, {"ESCALA_WORLD_SIZE", "4"}, {"ESCALA_COORDINATOR", "h:1"}},
                "ESCALA_RANK=4");
  ExpectInvalid({{"ESCALA_RANK", "0"}, {"ESCALA_WORLD_SIZE", "0"}}, "ESCALA_WORLD_SIZE=0");
  ExpectInvalid(
      {{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}},
      "MASTER_PORT");
  ExpectInvalid(
      {{"ESCALA_RANK", "0"}, {"ESCALA_WORLD_SIZE", "2"}, {"ESCALA_COORDINATOR", "nohost"}},
      "ESCALA_COORDINATOR");
  ExpectInvalid({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_JOB_NODELIST", "n[1-"}},
                "host list");
}

TEST(HostList, Expansions) {
  EXPECT_EQ(ExpandHostList("a"), (std::vector<std::string>{"a"}));
  EXPECT_EQ(ExpandHostList("a,b"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ExpandHostList("gpu-[8-10]"), (std::vector<std::string>{"gpu-8", "gpu-9", "gpu-10"}));
  EXPECT_EQ(ExpandHostList("x[007-009],y"),
            (std::vector<std::string>{"x007", "x008", "x009", "y"}));
  EXPECT_EQ(ExpandHostList("rack[1-2]-n[1-2]"),
            (std::vector<std::string>{"rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"}));
  EXPECT_EQ(ExpandHostList("node[01-02,05],login[1]"),
            (std::vector<std::string>{"node01", "node02", "node05", "login1"}));
  for (const char* bad : {"n[1-", "n]1[", "n[3-1]", "n[]", "n[a-b]", "n[1,,2]", "n[0-9999999]"}) {
    EXPECT_THROW(ExpandHostList(bad), Error) << bad;
  }
}

TEST(HostPort, ParsesAndRejects) {
  EXPECT_EQ(ParseHostPort("h:1").host, "h");
  EXPECT_EQ(ParseHostPort("h:1").port, 1);
  EXPECT_EQ(ParseHostPort("[::1]:29500").host, "::1");
  EXPECT_EQ(ParseHostPort("[::1]:29500").ToString(), "[::1]:29500");
  for (const char* bad : {"h", "h:", ":80", "h:99999", "::1:80", "h:8x", "[::1]80"}) {
    EXPECT_THROW(ParseHostPort(bad), Error) << bad;
  }
}

}  // namespace
}  // namespace escala::distributed
