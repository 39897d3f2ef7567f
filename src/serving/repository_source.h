// The directory source: what a model repository holds on disk, laid out as
// <repository>/<model>/<version>/model.bundle. It only lists; the version policy
// (version_policy.h) chooses, the loader (loader.h) loads and the manager (model_manager.h) swaps.
#ifndef ESCALA_SRC_SERVING_REPOSITORY_SOURCE_H_
#define ESCALA_SRC_SERVING_REPOSITORY_SOURCE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace escala::serving::internal {

// The model file a version directory holds, by preference: an escala bundle, or an XGBoost
// model (JSON or UBJSON).
inline constexpr const char* kModelFileNames[] = {"model.bundle", "model.json", "model.ubj",
                                                  "model.onnx"};

struct VersionOnDisk {
  std::string path;  // <repository>/<model>/<version>/model.bundle (or .json, .ubj, .onnx)
  // What tells a changed bundle file from the one loaded: inode, size, mtime and ctime.
  std::string fingerprint;
};

// The model directories of `repository`, sorted by name. Throws kIo naming the repository when it
// cannot be read.
std::vector<std::string> ListModels(const std::string& repository);

// The versions present in <repository>/<model>: directories named by a positive integer that
// hold a regular model file (kModelFileNames). Everything else is ignored: non-numeric names
// ("tmp", "1.5", "0"), plain files, and version directories whose bundle is not there yet
// (half-written: a trainer writes the bundle under a temporary name and renames it when complete).
// An absent or unreadable model directory holds no versions.
std::map<std::int64_t, VersionOnDisk> ListVersions(const std::string& repository,
                                                   const std::string& model);

}  // namespace escala::serving::internal

#endif  // ESCALA_SRC_SERVING_REPOSITORY_SOURCE_H_
