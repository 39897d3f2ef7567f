// Helpers for the data module's tests: reference computations through Debian's python3 + numpy
// (tests skip when they are absent) and paths of real data files shipped by Debian packages.
#ifndef ESCALA_TESTS_UNIT_DATA_DATA_TEST_UTIL_H_
#define ESCALA_TESTS_UNIT_DATA_DATA_TEST_UTIL_H_

#include <filesystem>
#include <string>

#include "test_util/temp_dir.h"

namespace escala::testing {

// Debian's python3 with numpy, or "" when unavailable.
inline const std::string& Python() {
  static const std::string python = [] {
    const std::string p = "/usr/bin/python3";
    if (!std::filesystem::exists(p)) return std::string();
    std::string out;
    return RunCommand(p + " -c 'import numpy'", &out) == 0 ? p : std::string();
  }();
  return python;
}

// Runs a python script (written to a temp file) and returns its stdout; fails the test on error.
inline std::string RunPython(const TempDir& dir, const std::string& script) {
  const std::string path = dir.File("script.py");
  WriteFile(path, script);
  std::string out;
  const int rc = RunCommand(Python() + " " + path, &out);
  if (rc != 0) throw std::runtime_error("python failed: " + out);
  return out;
}

inline std::string SklearnData(const std::string& name) {
  return "/usr/lib/python3/dist-packages/sklearn/datasets/data/" + name;
}

}  // namespace escala::testing

#endif  // ESCALA_TESTS_UNIT_DATA_DATA_TEST_UTIL_H_
