// PyTorch's launcher for the launcher tests: `torchrun` (Debian's python3-torch installs it, as
// does pip), or `python3 -m torch.distributed.run` with the system Python.
#ifndef ESCALA_TESTS_TEST_UTIL_TORCHRUN_H_
#define ESCALA_TESTS_TEST_UTIL_TORCHRUN_H_

#include <string>

#include "test_util/temp_dir.h"

namespace escala::testing {

// The torchrun command line up to its rendezvous flags, its logs in `log_dir`; empty when torchrun
// is not installed. Worker output goes to the console (and the logs): Debian 12's torch 1.13 on
// Python 3.11 cannot parse its own default `--redirects 0 --tee 0` (IntFlag iteration skips the
// zero member), so the flags say 1 (stdout) explicitly; any torchrun accepts them.
inline std::string TorchrunCommand(const std::string& log_dir) {
  for (const char* c : {"torchrun", "/usr/bin/python3 -m torch.distributed.run"}) {
    if (RunCommand(std::string(c) + " --help > /dev/null") == 0) {
      return std::string(c) + " --redirects 1 --tee 1 --log_dir " + log_dir;
    }
  }
  return "";
}

}  // namespace escala::testing

#endif  // ESCALA_TESTS_TEST_UTIL_TORCHRUN_H_
