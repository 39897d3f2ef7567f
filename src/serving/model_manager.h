// The manager: the versions each model serves, and the one place they change. A repository scan
// of one model runs source -> policy -> loader -> swap:
//   1. the directory source lists the versions on disk (repository_source.h);
//   2. the version policy picks the wanted ones and the diff against what serves says which to
//      load and which to retire (version_policy.h);
//   3. the loader loads each new or changed version beside the serving ones (loader.h);
//   4. one critical section swaps the loaded versions in and the retired ones out.
// Versions that did not change are not reloaded. Readers (Get) hold a shared lock only to copy a
// shared_ptr, so requests in flight finish on the version they resolved and a swap fails none.
//
// Thread-safety: every method may be called from any thread; scans and loads run one at a time.
#ifndef ESCALA_SRC_SERVING_MODEL_MANAGER_H_
#define ESCALA_SRC_SERVING_MODEL_MANAGER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "escala/io/bundle.h"
#include "escala/serving/server.h"
#include "serving/loader.h"
#include "serving/metrics.h"
#include "serving/servable.h"
#include "serving/version_policy.h"

namespace escala::serving::internal {

class ModelManager {
 public:
  // `metrics` outlives the manager.
  ModelManager(const ServerOptions& options, MetricsRegistry* metrics);
  ~ModelManager();

  // The version to serve: `version` empty -> the newest loaded. Throws kNotFound naming what
  // exists.
  std::shared_ptr<const LoadedModel> Get(const std::string& name, const std::string& version) const;
  // The versions `name` serves, ascending ("1", "3").
  std::vector<std::string> Versions(const std::string& name) const;
  bool HasReadyModel() const;

  // Serves an in-memory bundle as `name` version `version`, replacing that version atomically.
  void AddInMemory(const std::string& name, std::shared_ptr<const io::ModelBundle> bundle,
                   std::int64_t version);
  // Scans every model of the repository (skipping explicitly unloaded ones). An unreadable
  // repository is logged and leaves everything as it was.
  void Poll();
  // Scans `name` now, reloading every wanted version; throws kNotFound when it then serves none.
  void LoadModel(const std::string& name);
  // Stops serving `name` until the next LoadModel. Throws kNotFound for an unknown model.
  void UnloadModel(const std::string& name);
  std::vector<PredictionServer::ModelState> Index() const;

 private:
  struct Failure {
    std::string fingerprint;  // of the file that failed to load
    std::string reason;
  };
  struct Entry {
    std::map<std::int64_t, std::shared_ptr<const LoadedModel>> versions;
    bool unloaded = false;  // explicitly unloaded: polling leaves it alone until LoadModel
    std::map<std::int64_t, Failure> failed;
  };
  // The outcome of loading the versions a scan wants.
  struct Loads {
    std::map<std::int64_t, std::shared_ptr<const LoadedModel>> loaded;
    std::map<std::int64_t, Failure> failed;  // every failure still current after this scan
  };

  // Source -> policy -> loader -> swap for one model (load_mu_ held).
  void ScanModel(const std::string& name, bool reload);
  // The served versions and failures of `name`, as the policy functions take them.
  void Snapshot(const std::string& name, ServedVersions* served,
                std::map<std::int64_t, Failure>* failed) const;
  Loads LoadVersions(const std::string& name, const std::map<std::int64_t, VersionOnDisk>& on_disk,
                     const std::vector<std::int64_t>& to_load,
                     std::map<std::int64_t, Failure> failed) const;
  // Swaps `loads` in and retires what the policy no longer wants, in one critical section.
  void Swap(const std::string& name, const std::vector<std::int64_t>& wanted, Loads loads);

  ServerOptions options_;
  MetricsRegistry* metrics_;
  ServableLoader loader_;
  mutable std::shared_mutex mu_;
  std::map<std::string, Entry> models_;  // guarded by mu_
  std::mutex load_mu_;                   // one scan or load at a time
};

}  // namespace escala::serving::internal

#endif  // ESCALA_SRC_SERVING_MODEL_MANAGER_H_
