#include "test_util/temp_dir.h"

#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <stdio.h>
#include <stdlib.h>

#include <sys/wait.h>

namespace escala::testing {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "escala-test-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::File(std::string_view name) const {
  return (path_ / name).string();
}

void WriteFile(const std::string& path, std::string_view contents) {
  std::ofstream out(path, std::ios::binary);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string SourcePath(std::string_view relative) {
  return std::string(ESCALA_SOURCE_DIR) + "/" + std::string(relative);
}

std::string CliPath() {
  return ESCALA_CLI_PATH;
}

int RunCommand(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  if (output != nullptr) *output = std::move(out);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return -1;
}

std::string ScriptOutputDir(std::string_view script, std::string_view prefix, int* rc,
                            std::string* output) {
  const std::string path = SourcePath(script);
  const auto key = std::hash<std::string>{}(ReadFile(path));
  char name[64];
  snprintf(name, sizeof(name), "-%zx", key);
  const std::filesystem::path dir =
      std::filesystem::path(ESCALA_BINARY_DIR) / "test-data" / (std::string(prefix) + name);
  *rc = 0;
  if (std::filesystem::exists(dir / "done")) return dir.string();
  TempDir tmp;
  const std::string out = tmp.path().string();
  *rc = RunCommand("/usr/bin/python3 " + path + " " + out + " && touch " + out + "/done", output);
  if (*rc != 0) return {};
  std::filesystem::create_directories(dir.parent_path());
  std::error_code ec;
  std::filesystem::rename(tmp.path(), dir, ec);  // a concurrent test may have won: fine
  if (ec) std::filesystem::copy(tmp.path(), dir, std::filesystem::copy_options::recursive, ec);
  return dir.string();
}

}  // namespace escala::testing
