#include "escala/distributed/worker_env.h"

#include <cctype>
#include <cstdlib>
#include <random>

#include <fmt/format.h>

#include "escala/core/error.h"

namespace escala::distributed {
namespace {

constexpr std::size_t kMaxHosts = 1'000'000;

std::optional<int> ParseInt(const WorkerEnv::Lookup& lookup, std::string_view name) {
  auto v = lookup(name);
  if (!v) return std::nullopt;
  std::string_view s = *v;
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n'))
    s.remove_suffix(1);
  int value = 0;
  bool neg = false;
  std::size_t i = 0;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    i = 1;
  }
  ESCALA_CHECK(i < s.size(), kInvalidArgument, "{}='{}' is not an integer", name, *v);
  for (; i < s.size(); ++i) {
    ESCALA_CHECK(s[i] >= '0' && s[i] <= '9', kInvalidArgument, "{}='{}' is not an integer", name,
                 *v);
    ESCALA_CHECK(value < 100'000'000, kInvalidArgument, "{}='{}' is too large", name, *v);
    value = value * 10 + (s[i] - '0');
  }
  return neg ? -value : value;
}

// Slurm's SLURM_NTASKS_PER_NODE / SLURM_TASKS_PER_NODE: "4", "2(x3),1" -> the first count.
std::optional<int> FirstTaskCount(const std::optional<std::string>& v) {
  if (!v || v->empty()) return std::nullopt;
  int n = 0;
  for (char c : *v) {
    if (c < '0' || c > '9') break;
    n = n * 10 + (c - '0');
  }
  return n > 0 ? std::optional<int>(n) : std::nullopt;
}

// Expands one host pattern with bracket groups ("rack[1-2]-n[01-02]") into `out`.
void ExpandPattern(std::string_view pattern, std::string prefix, std::vector<std::string>& out,
                   std::string_view whole) {
  const auto open = pattern.find('[');
  if (open == std::string_view::npos) {
    ESCALA_CHECK(pattern.find(']') == std::string_view::npos, kInvalidArgument,
                 "host list '{}': unbalanced ']'", whole);
    out.push_back(prefix + std::string(pattern));
    ESCALA_CHECK(out.size() <= kMaxHosts, kInvalidArgument,
                 "host list '{}' expands to more than {} hosts", whole, kMaxHosts);
    return;
  }
  const auto close = pattern.find(']', open);
  ESCALA_CHECK(close != std::string_view::npos, kInvalidArgument, "host list '{}': missing ']'",
               whole);
  const std::string head = prefix + std::string(pattern.substr(0, open));
  ESCALA_CHECK(head.find(']') == std::string::npos, kInvalidArgument,
               "host list '{}': unbalanced ']'", whole);
  const std::string_view body = pattern.substr(open + 1, close - open - 1);
  const std::string_view rest = pattern.substr(close + 1);
  ESCALA_CHECK(!body.empty(), kInvalidArgument, "host list '{}': empty brackets", whole);
  std::size_t start = 0;
  while (start <= body.size()) {
    auto comma = body.find(',', start);
    if (comma == std::string_view::npos) comma = body.size();
    const std::string_view item = body.substr(start, comma - start);
    ESCALA_CHECK(!item.empty(), kInvalidArgument, "host list '{}': empty range", whole);
    const auto dash = item.find('-');
    const std::string_view lo = item.substr(0, dash);
    const std::string_view hi = dash == std::string_view::npos ? lo : item.substr(dash + 1);
    auto number = [&](std::string_view t) {
      ESCALA_CHECK(!t.empty() && t.size() <= 9 &&
                       t.find_first_not_of("0123456789") == std::string_view::npos,
                   kInvalidArgument, "host list '{}': '{}' is not a number", whole, t);
      return std::stol(std::string(t));
    };
    const long a = number(lo);
    const long b = number(hi);
    ESCALA_CHECK(a <= b, kInvalidArgument, "host list '{}': reversed range {}", whole, item);
    ESCALA_CHECK(b - a < static_cast<long>(kMaxHosts), kInvalidArgument,
                 "host list '{}' expands to more than {} hosts", whole, kMaxHosts);
    const int width = static_cast<int>(lo.size());
    for (long i = a; i <= b; ++i) {
      ExpandPattern(rest, head + fmt::format("{:0{}}", i, width), out, whole);
    }
    start = comma + 1;
  }
}

// "1", "true", "yes", "on" in any case (torchrun writes Python's "True").
bool ParseBool(const std::optional<std::string>& v) {
  if (!v) return false;
  std::string s = *v;
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s == "1" || s == "true" || s == "yes" || s == "on";
}

// The job id a launcher gave: the rank's own family first (an mpirun inside a Slurm allocation
// is its own job), then any other. Empty when none did.
std::string LauncherJobId(const WorkerEnv::Lookup& get, std::string_view family) {
  std::string slurm;
  if (auto id = get("SLURM_JOB_ID")) {
    slurm = *id;
    if (auto step = get("SLURM_STEP_ID")) slurm += "." + *step;
  }
  const std::string torchrun = get("TORCHELASTIC_RUN_ID").value_or("");
  const std::string openmpi =
      get("OMPI_MCA_ess_base_jobid")
          .value_or(get("OMPI_MCA_orte_ess_jobid").value_or(get("PMIX_NAMESPACE").value_or("")));
  if (family == "slurm" && !slurm.empty()) return slurm;
  if (family == "openmpi" && !openmpi.empty()) return openmpi;
  if (!torchrun.empty()) return torchrun;
  return !slurm.empty() ? slurm : openmpi;
}

std::string RandomJobId() {
  std::random_device rd;
  return fmt::format("escala-{:08x}", rd());
}

}  // namespace

std::vector<std::string> ExpandHostList(std::string_view list) {
  std::vector<std::string> out;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= list.size(); ++i) {
    if (i < list.size() && list[i] == '[') ++depth;
    if (i < list.size() && list[i] == ']') {
      --depth;
      ESCALA_CHECK(depth >= 0, kInvalidArgument, "host list '{}': unbalanced ']'", list);
    }
    if (i == list.size() || (list[i] == ',' && depth == 0)) {
      std::string_view item = list.substr(start, i - start);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      if (!item.empty()) ExpandPattern(item, "", out, list);
      start = i + 1;
    }
  }
  ESCALA_CHECK(depth == 0, kInvalidArgument, "host list '{}': missing ']'", list);
  return out;
}

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

HostPort ParseHostPort(std::string_view address, std::string_view what) {
  HostPort hp;
  std::string_view port;
  if (address.starts_with('[')) {
    const auto close = address.find(']');
    ESCALA_CHECK(
        close != std::string_view::npos && close + 1 < address.size() && address[close + 1] == ':',
        kInvalidArgument, "{} '{}' is not [host]:port", what, address);
    hp.host = std::string(address.substr(1, close - 1));
    port = address.substr(close + 2);
  } else {
    const auto colon = address.rfind(':');
    ESCALA_CHECK(colon != std::string_view::npos && colon > 0, kInvalidArgument,
                 "{} '{}' is not host:port", what, address);
    hp.host = std::string(address.substr(0, colon));
    ESCALA_CHECK(hp.host.find(':') == std::string::npos, kInvalidArgument,
                 "{} '{}': write IPv6 addresses as [addr]:port", what, address);
    port = address.substr(colon + 1);
  }
  ESCALA_CHECK(!hp.host.empty(), kInvalidArgument, "{} '{}' has no host", what, address);
  ESCALA_CHECK(!port.empty() && port.size() <= 5 &&
                   port.find_first_not_of("0123456789") == std::string_view::npos,
               kInvalidArgument, "{} '{}' has no valid port", what, address);
  hp.port = std::stoi(std::string(port));
  ESCALA_CHECK(hp.port >= 0 && hp.port <= 65535, kInvalidArgument, "{} '{}': port out of range",
               what, address);
  return hp;
}

WorkerEnv WorkerEnv::FromEnvironment() {
  return FromLookup([](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  });
}

WorkerEnv WorkerEnv::FromLookup(const Lookup& lookup) {
  WorkerEnv env;
  auto get = [&](std::string_view name) -> std::optional<std::string> {
    auto v = lookup(name);
    if (v && v->empty()) return std::nullopt;
    return v;
  };
  auto has = [&](std::string_view name) { return get(name).has_value(); };
  auto geti = [&](std::string_view name) -> std::optional<int> {
    if (!has(name)) return std::nullopt;
    return ParseInt(get, name);
  };

  // 1. Which family says where this process stands.
  struct Family {
    const char* source;
    const char* rank;
    const char* world;
    const char* local_rank;
    const char* local_world;
    const char* node_rank;
  };
  static constexpr Family kFamilies[] = {
      {"escala", "ESCALA_RANK", "ESCALA_WORLD_SIZE", "ESCALA_LOCAL_RANK", "ESCALA_LOCAL_WORLD_SIZE",
       "ESCALA_NODE_RANK"},
      {"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK"},
      {"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", nullptr, "SLURM_NODEID"},
      {"openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
       "OMPI_COMM_WORLD_LOCAL_SIZE", nullptr},
  };
  for (const Family& f : kFamilies) {
    if (!has(f.rank) || !has(f.world)) continue;
    env.source = f.source;
    env.rank = *geti(f.rank);
    env.world_size = *geti(f.world);
    env.local_rank = geti(f.local_rank).value_or(0);
    if (f.local_world != nullptr) {
      env.local_world_size = geti(f.local_world).value_or(env.world_size);
    } else {
      env.local_world_size =
          FirstTaskCount(get("SLURM_NTASKS_PER_NODE"))
              .value_or(FirstTaskCount(get("SLURM_TASKS_PER_NODE")).value_or(env.world_size));
    }
    env.node_rank = f.node_rank != nullptr ? geti(f.node_rank).value_or(0) : 0;
    ESCALA_CHECK(env.world_size >= 1, kInvalidArgument, "{}={} must be >= 1", f.world,
                 env.world_size);
    ESCALA_CHECK(env.rank >= 0 && env.rank < env.world_size, kInvalidArgument,
                 "{}={} is out of range for {}={}", f.rank, env.rank, f.world, env.world_size);
    ESCALA_CHECK(env.local_rank >= 0, kInvalidArgument, "{}={} must be >= 0", f.local_rank,
                 env.local_rank);
    break;
  }

  // 2. Slurm's node list (used for the coordinator's default host).
  if (auto nodes = get("SLURM_JOB_NODELIST"); nodes && env.source == "slurm") {
    env.nodes = ExpandHostList(*nodes);
  } else if (auto nl = get("SLURM_NODELIST"); nl && env.source == "slurm") {
    env.nodes = ExpandHostList(*nl);
  }

  // 3. The coordinator.
  if (auto c = get("ESCALA_COORDINATOR")) {
    env.coordinator = ParseHostPort(*c, "ESCALA_COORDINATOR").ToString();
  } else if (auto addr = get("MASTER_ADDR")) {
    const int port = geti("MASTER_PORT").value_or(29500);
    ESCALA_CHECK(port > 0 && port <= 65535, kInvalidArgument, "MASTER_PORT={} is out of range",
                 port);
    env.coordinator = HostPort{*addr, port}.ToString();
    if (ParseBool(get("TORCHELASTIC_USE_AGENT_STORE"))) {
      // torchrun's agent owns MASTER_PORT: its store tells the workers where the coordinator is.
      env.coordinator_store = env.coordinator;
      env.coordinator = HostPort{*addr, 0}.ToString();
      env.coordinator_key = fmt::format("/worker/attempt_{}/escala/coordinator",
                                        geti("TORCHELASTIC_RESTART_COUNT").value_or(0));
    }
  } else if (!env.nodes.empty()) {
    const int port = geti("ESCALA_COORDINATOR_PORT").value_or(geti("MASTER_PORT").value_or(29500));
    ESCALA_CHECK(port > 0 && port <= 65535, kInvalidArgument, "coordinator port {} out of range",
                 port);
    env.coordinator = HostPort{env.nodes.front(), port}.ToString();
  }
  ESCALA_CHECK(env.world_size == 1 || !env.coordinator.empty(), kInvalidArgument,
               "rank {} of {} ({}) has no coordinator address: set ESCALA_COORDINATOR=host:port "
               "(or MASTER_ADDR and MASTER_PORT)",
               env.rank, env.world_size, env.source);

  // 4. Job identity.
  env.job_id = get("ESCALA_JOB_ID").value_or(LauncherJobId(get, env.source));
  if (env.job_id.empty()) env.job_id = env.world_size == 1 ? RandomJobId() : "escala";
  env.job_token = get("ESCALA_JOB_TOKEN").value_or("");
  env.run_coordinator = env.rank == 0 && env.world_size > 1;
  if (auto rc = lookup("ESCALA_RUN_COORDINATOR"))
    env.run_coordinator = env.rank == 0 && ParseBool(rc);
  ESCALA_CHECK(env.coordinator_store.empty() || env.rank != 0 || env.run_coordinator,
               kInvalidArgument,
               "ESCALA_RUN_COORDINATOR=0 under torchrun's static rendezvous "
               "(TORCHELASTIC_USE_AGENT_STORE=True) leaves the job without a coordinator: set "
               "ESCALA_COORDINATOR=host:port of the coordinator");
  return env;
}

std::string WorkerEnv::Describe() const {
  std::string s = fmt::format("rank {}/{} (local {}/{}, node {}) via {}", rank, world_size,
                              local_rank, local_world_size, node_rank, source);
  if (!coordinator_store.empty()) {
    s += fmt::format(", coordinator from torchrun's store {}", coordinator_store);
  } else if (!coordinator.empty()) {
    s += fmt::format(", coordinator {}", coordinator);
  }
  s += fmt::format(", job {}", job_id);
  return s;
}

}  // namespace escala::distributed
