// Test helper: a child process for end-to-end and multi-process tests. It runs in its own process
// group with extra environment variables; its output goes to a file, or stdout to a pipe the test
// reads line by line; it is waited for with a bound, and the destructor kills the whole group
// (SIGKILL) if it is still running, so a failing test never leaves a server or worker behind.
#ifndef ESCALA_TESTS_TEST_UTIL_SUBPROCESS_H_
#define ESCALA_TESTS_TEST_UTIL_SUBPROCESS_H_

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace escala::testing {

struct SubprocessOptions {
  // Added to (or overriding) the current environment.
  std::map<std::string, std::string> env;
  // Where output goes: stdout and stderr, or only stderr when `pipe_stdout`. Empty: inherited.
  std::string output_file;
  // Puts stdout on a pipe for ReadLine().
  bool pipe_stdout = false;
};

class Subprocess {
 public:
  // Starts argv[0] (a path). Throws std::runtime_error if it cannot start.
  Subprocess(const std::vector<std::string>& argv, const SubprocessOptions& options);
  // Output (stdout and stderr) to `output_file`.
  Subprocess(const std::vector<std::string>& argv, const std::string& output_file)
      : Subprocess(argv, SubprocessOptions{{}, output_file, false}) {}
  Subprocess(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
             const std::string& output_file)
      : Subprocess(argv, SubprocessOptions{env, output_file, false}) {}
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  // Sends `sig` to the process (not its group).
  void Signal(int sig);
  // Waits up to `timeout`; returns the exit status (128 + signal for a signal) or nullopt.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool Running();
  // The next line of stdout (pipe_stdout only), or nullopt on end of file or timeout.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout);
  // Everything the process wrote to `output_file` so far.
  std::string Output() const;

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string buffer_;
  std::optional<int> status_;
  std::string output_file_;
};

// A TCP port that was free a moment ago on 127.0.0.1.
int FreePort();
// Whether nothing listens on `port` (any address) right now.
bool PortIsFree(int port);

}  // namespace escala::testing

#endif  // ESCALA_TESTS_TEST_UTIL_SUBPROCESS_H_
