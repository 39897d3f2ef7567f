// A stand-in for libFuzzer's main() so that every fuzz target is a plain executable in any build
// (GCC with ASan+UBSan in CI): it replays the corpus, then mutates it for a bounded time.
//
//   fuzz_<target> [CORPUS_DIR|FILE]... [--seconds N] [--runs N] [--seed N] [--max-len N]
//                 [--timeout N] [--crash-dir DIR]
//
// libFuzzer's spellings -max_total_time=N, -runs=N and -seed=N are accepted too. On a finding
// (sanitizer report, signal, an exception the target let through, an input running longer than
// --timeout seconds) the input is written to DIR/crash-<seed>-<run> and the seed is printed;
// rerunning with that file as the only argument replays it.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <signal.h>
#include <string>
#include <unistd.h>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
// Present in ASan/UBSan builds: lets the driver save the input before the sanitizer exits.
extern "C" void __sanitizer_set_death_callback(void (*callback)()) __attribute__((weak));

// GCC's UBSan has its own runtime, whose death does not reach the callback above: make it abort
// (after printing its report) so that the SIGABRT handler saves the input. UBSAN_OPTIONS that
// set abort_on_error still win.
extern "C" const char* __ubsan_default_options() {
  return "abort_on_error=1:print_stacktrace=1:halt_on_error=1";
}
extern "C" const char* __asan_default_options() {
  return "abort_on_error=1";
}

namespace {

using Bytes = std::vector<std::uint8_t>;

struct Options {
  std::vector<std::string> inputs;
  double seconds = 10;
  std::int64_t runs = -1;  // -1: until --seconds
  std::uint64_t seed = 0;  // 0: from the clock
  std::size_t max_len = 4096;
  unsigned timeout = 20;
  std::string crash_dir = ".";
};

// What the death callback and signal handlers write: set before every run.
const Bytes* g_current = nullptr;
char g_crash_path[4096] = "";
volatile sig_atomic_t g_saving = 0;

void SaveCurrentInput() {
  if (g_current == nullptr || g_saving) return;
  g_saving = 1;
  // Only async-signal-safe calls: this runs from signal handlers and sanitizer deaths.
  const int fd = ::open(g_crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    const auto n = ::write(fd, g_current->data(), g_current->size());
    (void)n;
    ::close(fd);
  }
  const char msg[] = "\nfuzz driver: the failing input was written to ";
  (void)!::write(2, msg, sizeof msg - 1);
  (void)!::write(2, g_crash_path, std::strlen(g_crash_path));
  (void)!::write(2, "\n", 1);
}

void OnSignal(int sig) {
  if (sig == SIGALRM) {
    const char msg[] = "\nfuzz driver: timeout: one input ran longer than --timeout\n";
    (void)!::write(2, msg, sizeof msg - 1);
  }
  SaveCurrentInput();
  ::signal(sig, SIG_DFL);
  ::raise(sig == SIGALRM ? SIGABRT : sig);
}

void InstallHandlers() {
  if (__sanitizer_set_death_callback != nullptr) __sanitizer_set_death_callback(SaveCurrentInput);
  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGALRM}) ::signal(sig, OnSignal);
}

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr,
               "fuzz driver: %s\nusage: fuzz_<target> [CORPUS_DIR|FILE]... [--seconds N] "
               "[--runs N] [--seed N] [--max-len N] [--timeout N] [--crash-dir DIR]\n",
               why);
  std::exit(2);
}

// "--name V" or libFuzzer's "-name=V".
bool Value(int argc, char** argv, int& i, const char* dashed, const char* lf, std::string* out) {
  const std::string a = argv[i];
  if (a == dashed) {
    if (i + 1 >= argc) Usage("missing value");
    *out = argv[++i];
    return true;
  }
  const std::string prefix = std::string("-") + lf + "=";
  if (a.rfind(prefix, 0) == 0) {
    *out = a.substr(prefix.size());
    return true;
  }
  return false;
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string v;
    if (Value(argc, argv, i, "--seconds", "max_total_time", &v)) {
      o.seconds = std::stod(v);
    } else if (Value(argc, argv, i, "--runs", "runs", &v)) {
      o.runs = std::stoll(v);
    } else if (Value(argc, argv, i, "--seed", "seed", &v)) {
      o.seed = std::stoull(v);
    } else if (Value(argc, argv, i, "--max-len", "max_len", &v)) {
      o.max_len = std::stoul(v);
    } else if (Value(argc, argv, i, "--timeout", "timeout", &v)) {
      o.timeout = static_cast<unsigned>(std::stoul(v));
    } else if (Value(argc, argv, i, "--crash-dir", "artifact_prefix", &v)) {
      o.crash_dir = v;
    } else if (argv[i][0] == '-') {
      Usage((std::string("unknown option ") + argv[i]).c_str());
    } else {
      o.inputs.emplace_back(argv[i]);
    }
  }
  return o;
}

Bytes ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Every regular file named on the command line or inside a named directory, in name order.
std::vector<Bytes> LoadCorpus(const std::vector<std::string>& inputs) {
  std::vector<std::filesystem::path> files;
  for (const auto& in : inputs) {
    if (std::filesystem::is_directory(in)) {
      for (const auto& e : std::filesystem::directory_iterator(in)) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
    } else if (std::filesystem::is_regular_file(in)) {
      files.emplace_back(in);
    } else {
      Usage(("no such file or directory: " + in).c_str());
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<Bytes> corpus;
  for (const auto& f : files) corpus.push_back(ReadFile(f));
  return corpus;
}

// Runs one input; anything the target lets escape is a finding.
void RunOne(const Bytes& input, unsigned timeout) {
  g_current = &input;
  ::alarm(timeout);
  try {
    LLVMFuzzerTestOneInput(input.data(), input.size());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz driver: uncaught exception: %s\n", e.what());
    SaveCurrentInput();
    std::_Exit(1);
  } catch (...) {
    std::fprintf(stderr, "fuzz driver: uncaught non-standard exception\n");
    SaveCurrentInput();
    std::_Exit(1);
  }
  ::alarm(0);
}

// Byte-level mutations: what finds length, offset and delimiter bugs in parsers.
class Mutator {
 public:
  Mutator(std::uint64_t seed, std::size_t max_len) : rng_(seed), max_len_(max_len) {}

  Bytes Mutate(const std::vector<Bytes>& corpus) {
    Bytes b = corpus.empty() ? Bytes{} : corpus[Pick(corpus.size())];
    const std::size_t steps = 1 + Pick(4);
    for (std::size_t s = 0; s < steps; ++s) Step(b, corpus);
    if (b.size() > max_len_) b.resize(max_len_);
    return b;
  }

 private:
  std::size_t Pick(std::size_t n) { return n == 0 ? 0 : rng_() % n; }

  // Bytes that matter to escala's formats: delimiters, quotes, digits, signs, NUL, 0xff.
  std::uint8_t Interesting() {
    static constexpr char kBytes[] = ",;:\t\n\r\" '[]{}=#.-+0123456789eEnN\\";
    switch (Pick(4)) {
      case 0:
        return static_cast<std::uint8_t>(kBytes[Pick(sizeof kBytes - 1)]);
      case 1:
        return static_cast<std::uint8_t>(Pick(256));
      case 2:
        return 0;
      default:
        return 0xff;
    }
  }

  void Step(Bytes& b, const std::vector<Bytes>& corpus) {
    const std::size_t at = Pick(b.size() + 1);
    switch (Pick(8)) {
      case 0:  // flip a bit
        if (!b.empty()) b[Pick(b.size())] ^= static_cast<std::uint8_t>(1u << Pick(8));
        break;
      case 1:  // overwrite a byte
        if (!b.empty()) b[Pick(b.size())] = Interesting();
        break;
      case 2:  // insert bytes
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), 1 + Pick(4), Interesting());
        break;
      case 3:  // delete a range
        if (at < b.size()) {
          b.erase(b.begin() + static_cast<std::ptrdiff_t>(at),
                  b.begin() + static_cast<std::ptrdiff_t>(std::min(b.size(), at + 1 + Pick(16))));
        }
        break;
      case 4:  // truncate
        b.resize(Pick(b.size() + 1));
        break;
      case 5:  // duplicate a range (repeats records, lengths, headers)
        if (at < b.size()) {
          Bytes chunk(
              b.begin() + static_cast<std::ptrdiff_t>(at),
              b.begin() + static_cast<std::ptrdiff_t>(std::min(b.size(), at + 1 + Pick(64))));
          b.insert(b.begin() + static_cast<std::ptrdiff_t>(Pick(b.size() + 1)), chunk.begin(),
                   chunk.end());
        }
        break;
      case 6:  // overwrite with an extreme integer in little-endian (sizes, counts, offsets)
        if (b.size() >= 4) {
          static constexpr std::uint32_t kInts[] = {
              0, 1, 0x7fffffffu, 0x80000000u, 0xffffffffu, 0xfffffffeu, 0x10000u};
          const std::uint32_t v = kInts[Pick(std::size(kInts))];
          std::memcpy(b.data() + Pick(b.size() - 3), &v, 4);
        }
        break;
      default:  // splice: this input's head, another corpus file's tail
        if (!corpus.empty()) {
          const Bytes& other = corpus[Pick(corpus.size())];
          b.resize(at);
          const std::size_t from = Pick(other.size() + 1);
          b.insert(b.end(), other.begin() + static_cast<std::ptrdiff_t>(from), other.end());
        }
        break;
    }
  }

  std::mt19937_64 rng_;
  std::size_t max_len_;
};

}  // namespace

int main(int argc, char** argv) {
  Options o = ParseArgs(argc, argv);
  if (o.seed == 0) {
    o.seed =
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  InstallHandlers();
  const std::vector<Bytes> corpus = LoadCorpus(o.inputs);
  std::fprintf(stderr, "fuzz driver: seed %llu, %zu corpus inputs\n",
               static_cast<unsigned long long>(o.seed), corpus.size());

  std::snprintf(g_crash_path, sizeof g_crash_path, "%s/crash-%llu-replay", o.crash_dir.c_str(),
                static_cast<unsigned long long>(o.seed));
  for (const Bytes& input : corpus) RunOne(input, o.timeout);

  Mutator mutator(o.seed, o.max_len);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(o.seconds);
  std::int64_t run = 0;
  while (o.runs < 0 ? std::chrono::steady_clock::now() < deadline : run < o.runs) {
    const Bytes input = mutator.Mutate(corpus);
    std::snprintf(g_crash_path, sizeof g_crash_path, "%s/crash-%llu-%lld", o.crash_dir.c_str(),
                  static_cast<unsigned long long>(o.seed), static_cast<long long>(run));
    RunOne(input, o.timeout);
    ++run;
  }
  g_current = nullptr;
  std::fprintf(stderr, "fuzz driver: %lld mutated inputs, no finding\n",
               static_cast<long long>(run));
  return 0;
}
