// Test helper: a child process with extra environment variables, its stdout+stderr captured to a
// file, waited for with a bound, and killed (its whole process group) if still running when the
// object goes away. For multi-process tests (gloo's MultiProcTest::signalProcess idea).
#ifndef ESCALA_TESTS_TEST_UTIL_SUBPROCESS_H_
#define ESCALA_TESTS_TEST_UTIL_SUBPROCESS_H_

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace escala::testing {

class Subprocess {
 public:
  // Starts argv[0] (a path) with the current environment plus `env`; output goes to
  // `output_file`. Throws std::runtime_error if it cannot start.
  Subprocess(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
             const std::string& output_file);
  ~Subprocess();  // SIGKILL to the process group if running, then reaps
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  // Sends `sig` to the process (not its group).
  void Signal(int sig);
  // Waits up to `timeout`; returns the exit status (128 + signal for a signal) or nullopt.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool Running();
  // Everything the process wrote so far.
  std::string Output() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string output_file_;
};

// A TCP port that was free a moment ago on 127.0.0.1.
int FreePort();

}  // namespace escala::testing

#endif  // ESCALA_TESTS_TEST_UTIL_SUBPROCESS_H_
