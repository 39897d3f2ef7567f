// Test helpers: a temporary directory removed at scope exit, file helpers, and paths to the
// source tree and the built `escala` binary.
#ifndef ESCALA_TESTS_TEST_UTIL_TEMP_DIR_H_
#define ESCALA_TESTS_TEST_UTIL_TEMP_DIR_H_

#include <filesystem>
#include <string>
#include <string_view>

namespace escala::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // path() / name.
  std::string File(std::string_view name) const;

 private:
  std::filesystem::path path_;
};

void WriteFile(const std::string& path, std::string_view contents);
std::string ReadFile(const std::string& path);

// The repository root and the built CLI.
std::string SourcePath(std::string_view relative);
std::string CliPath();

// Runs a shell command, returning its exit status; stdout+stderr go to *output if given.
int RunCommand(const std::string& command, std::string* output = nullptr);

// Reference data made by a Python script (`/usr/bin/python3 SCRIPT DIR`), once per build tree and
// script version (each test binary runs in its own process): in a directory named by the script's
// hash, written under a temporary name and renamed into place, so concurrent tests never see half
// of it. Returns the directory; on failure "" with the script's exit status in *rc (77: a Python
// package it needs is absent) and its output in *output.
std::string ScriptOutputDir(std::string_view script, std::string_view prefix, int* rc,
                            std::string* output);

}  // namespace escala::testing

#endif  // ESCALA_TESTS_TEST_UTIL_TEMP_DIR_H_
