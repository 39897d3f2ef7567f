// Starts `escala serve` as a child process for end-to-end serving tests.
#ifndef ESCALA_TESTS_TEST_UTIL_PROCESS_H_
#define ESCALA_TESTS_TEST_UTIL_PROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "test_util/subprocess.h"

namespace escala::testing {

// A running `escala serve ... --grpc-port 0 --http-port 0` and the ports it printed.
struct ServeProcess {
  std::unique_ptr<Subprocess> process;
  int grpc_port = 0;
  int http_port = 0;
};
// Throws std::runtime_error when the server does not print its ports within 30 s; its stderr goes
// to `log_file` when non-empty.
ServeProcess StartServe(const std::vector<std::string>& extra_args,
                        const std::string& log_file = "");

}  // namespace escala::testing

#endif  // ESCALA_TESTS_TEST_UTIL_PROCESS_H_
