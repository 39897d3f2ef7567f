// A child process for end-to-end tests: started with its stdout on a pipe, signalled, waited for
// with a bound; killed (SIGKILL) by the destructor if it is still running, so a failing test never
// leaves a server behind.
#ifndef ESCALA_TESTS_TEST_UTIL_PROCESS_H_
#define ESCALA_TESTS_TEST_UTIL_PROCESS_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace escala::testing {

class ChildProcess {
 public:
  // Runs argv[0] with the given arguments; stderr goes to `stderr_file` when non-empty.
  explicit ChildProcess(const std::vector<std::string>& argv, const std::string& stderr_file = "");
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // The next line of stdout, or nullopt on EOF or timeout.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout);
  void Signal(int sig);
  // The exit status (WEXITSTATUS, or 128 + signal), or nullopt if it did not exit in time.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
  bool exited_ = false;
};

// Starts `escala serve ... --grpc-port 0 --http-port 0` and parses the ports it prints.
struct ServeProcess {
  std::unique_ptr<ChildProcess> process;
  int grpc_port = 0;
  int http_port = 0;
};
ServeProcess StartServe(const std::vector<std::string>& extra_args,
                        const std::string& log_file = "");

}  // namespace escala::testing

#endif  // ESCALA_TESTS_TEST_UTIL_PROCESS_H_
