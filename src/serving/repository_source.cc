#include "serving/repository_source.h"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>
#include <sys/stat.h>

#include "escala/core/error.h"
#include "serving/version_policy.h"

namespace escala::serving::internal {
namespace {

namespace fs = std::filesystem;

// A new file (rename) has a new inode, and a rewrite in place changes ctime, which unlike mtime
// cannot be set back by the writer.
std::string Fingerprint(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  return fmt::format("{}:{}:{}.{}:{}.{}", st.st_ino, st.st_size, st.st_mtim.tv_sec,
                     st.st_mtim.tv_nsec, st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
}

}  // namespace

std::vector<std::string> ListModels(const std::string& repository) {
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(repository, ec)) {
    std::error_code type_ec;
    if (e.is_directory(type_ec)) names.push_back(e.path().filename().string());
  }
  if (ec) {
    Throw(ErrorCode::kIo, "cannot read model repository {}: {}", repository, ec.message());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::map<std::int64_t, VersionOnDisk> ListVersions(const std::string& repository,
                                                   const std::string& model) {
  std::map<std::int64_t, VersionOnDisk> out;
  std::error_code ec;
  const fs::path dir = fs::path(repository) / model;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::error_code type_ec;
    std::int64_t v = 0;
    if (!e.is_directory(type_ec) || !ParseVersionNumber(e.path().filename().string(), &v)) {
      continue;
    }
    for (const char* name : kModelFileNames) {
      const fs::path file = e.path() / name;
      if (!fs::is_regular_file(file, type_ec)) continue;  // not written yet
      out[v] = VersionOnDisk{file.string(), Fingerprint(file.string())};
      break;
    }
  }
  return out;
}

}  // namespace escala::serving::internal
