#include "serving/model_manager.h"

#include <utility>

#include "escala/core/error.h"
#include "escala/core/logging.h"
#include "serving/repository_source.h"

namespace escala::serving::internal {
namespace {

using Versions = std::map<std::int64_t, std::shared_ptr<const LoadedModel>>;

ServedVersions ServedOf(const Versions& versions) {
  ServedVersions out;
  for (const auto& [v, m] : versions) out[v] = ServedVersion{m->fingerprint, m->source != "memory"};
  return out;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

ModelManager::ModelManager(const ServerOptions& options, MetricsRegistry* metrics)
    : options_(options), metrics_(metrics), loader_(options.batching, metrics) {}

ModelManager::~ModelManager() = default;

std::shared_ptr<const LoadedModel> ModelManager::Get(const std::string& name,
                                                     const std::string& version) const {
  std::shared_lock lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end() || it->second.versions.empty()) {
    std::vector<std::string> names;
    for (const auto& [n, e] : models_) {
      if (!e.versions.empty()) names.push_back(n);
    }
    Throw(ErrorCode::kNotFound, "model '{}' is not loaded (loaded: {})", name,
          names.empty() ? "none" : Join(names));
  }
  const auto& versions = it->second.versions;
  if (version.empty()) return versions.rbegin()->second;
  std::int64_t v = 0;
  if (ParseVersionNumber(version, &v)) {
    auto vit = versions.find(v);
    if (vit != versions.end()) return vit->second;
  }
  std::vector<std::string> have;
  for (const auto& [n, m] : versions) have.push_back(m->version_text);
  Throw(ErrorCode::kNotFound, "model '{}' has no version '{}' (loaded: {})", name, version,
        Join(have));
}

std::vector<std::string> ModelManager::Versions(const std::string& name) const {
  std::shared_lock lock(mu_);
  std::vector<std::string> out;
  auto it = models_.find(name);
  if (it == models_.end()) return out;
  for (const auto& [v, m] : it->second.versions) out.push_back(m->version_text);
  return out;
}

bool ModelManager::HasReadyModel() const {
  std::shared_lock lock(mu_);
  for (const auto& [n, e] : models_) {
    if (!e.versions.empty()) return true;
  }
  return false;
}

void ModelManager::AddInMemory(const std::string& name,
                               std::shared_ptr<const io::ModelBundle> bundle,
                               std::int64_t version) {
  ESCALA_CHECK(version > 0, kInvalidArgument, "model version must be > 0, got {}", version);
  auto m = loader_.FromBundle(name, version, std::move(bundle));
  std::shared_ptr<const LoadedModel> old;
  {
    std::unique_lock lock(mu_);
    auto& slot = models_[name].versions[version];
    old = std::move(slot);
    slot = std::move(m);
  }
  ESCALA_LOG_INFO("serving model '{}' version {} (in memory)", name, version);
}

// ---- One scan: source -> policy -> loader -> swap ---------------------------------------------

void ModelManager::ScanModel(const std::string& name, bool reload) {
  const auto on_disk = ListVersions(options_.model_repository, name);
  std::vector<std::int64_t> available;
  for (const auto& [v, file] : on_disk) available.push_back(v);
  const std::vector<std::int64_t> wanted = SelectVersions(available, options_.version_policy);
  Fingerprints wanted_files;
  for (auto v : wanted) wanted_files[v] = on_disk.at(v).fingerprint;

  ServedVersions served;
  std::map<std::int64_t, Failure> failed;
  Snapshot(name, &served, &failed);
  Fingerprints failed_files;
  for (const auto& [v, f] : failed) failed_files[v] = f.fingerprint;
  const auto to_load = VersionsToLoad(wanted_files, served, failed_files, reload);
  // A failure is reported while its version is wanted; one the policy dropped is forgotten.
  std::erase_if(failed, [&](const auto& f) { return !wanted_files.count(f.first); });
  Swap(name, wanted, LoadVersions(name, on_disk, to_load, std::move(failed)));
}

void ModelManager::Snapshot(const std::string& name, ServedVersions* served,
                            std::map<std::int64_t, Failure>* failed) const {
  std::shared_lock lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return;
  *served = ServedOf(it->second.versions);
  *failed = it->second.failed;
}

ModelManager::Loads ModelManager::LoadVersions(const std::string& name,
                                               const std::map<std::int64_t, VersionOnDisk>& on_disk,
                                               const std::vector<std::int64_t>& to_load,
                                               std::map<std::int64_t, Failure> failed) const {
  Loads out;
  out.failed = std::move(failed);
  for (auto v : to_load) {
    const VersionOnDisk& file = on_disk.at(v);
    try {
      out.loaded[v] = loader_.Load(name, v, file);
      out.failed.erase(v);
      ESCALA_LOG_INFO("loaded model '{}' version {} from {}", name, v, file.path);
    } catch (const std::exception& e) {
      out.failed[v] = Failure{file.fingerprint, e.what()};
      metrics_->CountLoadFailure(name);
      ESCALA_LOG_ERROR("{} (the versions already loaded keep serving)", e.what());
    }
  }
  return out;
}

void ModelManager::Swap(const std::string& name, const std::vector<std::int64_t>& wanted,
                        Loads loads) {
  std::vector<std::shared_ptr<const LoadedModel>> retired;
  {
    std::unique_lock lock(mu_);
    Entry& e = models_[name];
    if (e.unloaded) return;  // unloaded while this scan ran: `loads` are discarded
    for (auto& [v, m] : loads.loaded) {
      auto& slot = e.versions[v];
      if (slot) retired.push_back(std::move(slot));
      slot = std::move(m);
    }
    for (auto v : VersionsToRetire(wanted, ServedOf(e.versions))) {
      ESCALA_LOG_INFO("unloading model '{}' version {}", name, v);
      retired.push_back(std::move(e.versions[v]));
      e.versions.erase(v);
    }
    e.failed = std::move(loads.failed);
  }
  // `retired` versions are destroyed here, outside the lock, or later by the last request still
  // using them.
}

// ---- Repository control -------------------------------------------------------------------------

void ModelManager::Poll() {
  if (options_.model_repository.empty()) return;
  std::lock_guard load(load_mu_);
  std::vector<std::string> names;
  try {
    names = ListModels(options_.model_repository);
  } catch (const Error& e) {
    ESCALA_LOG_WARN("{}", e.message());
    return;
  }
  for (const auto& n : names) {
    {
      std::shared_lock lock(mu_);
      auto it = models_.find(n);
      if (it != models_.end() && it->second.unloaded) continue;
    }
    ScanModel(n, false);
  }
}

void ModelManager::LoadModel(const std::string& name) {
  ESCALA_CHECK(!options_.model_repository.empty(), kFailedPrecondition,
               "the server has no model repository");
  ESCALA_CHECK(name.find('/') == std::string::npos && name != ".." && name != "." && !name.empty(),
               kInvalidArgument, "invalid model name '{}'", name);
  std::lock_guard load(load_mu_);
  {
    std::unique_lock lock(mu_);
    models_[name].unloaded = false;
  }
  ScanModel(name, /*reload=*/true);
  std::shared_lock lock(mu_);
  const Entry& e = models_[name];
  if (e.versions.empty()) {
    std::string why =
        "no version directory with a model.bundle, model.json, model.ubj or model.onnx";
    if (!e.failed.empty()) why = e.failed.rbegin()->second.reason;
    Throw(ErrorCode::kNotFound, "model '{}' could not be loaded from {}: {}", name,
          options_.model_repository, why);
  }
}

void ModelManager::UnloadModel(const std::string& name) {
  std::vector<std::shared_ptr<const LoadedModel>> retired;
  {
    std::unique_lock lock(mu_);
    auto it = models_.find(name);
    ESCALA_CHECK(it != models_.end(), kNotFound, "model '{}' is not loaded", name);
    for (auto& [v, m] : it->second.versions) retired.push_back(std::move(m));
    it->second.versions.clear();
    it->second.unloaded = true;
  }
  ESCALA_LOG_INFO("unloaded model '{}'", name);
}

std::vector<PredictionServer::ModelState> ModelManager::Index() const {
  std::shared_lock lock(mu_);
  std::vector<PredictionServer::ModelState> out;
  for (const auto& [name, e] : models_) {
    for (const auto& [v, m] : e.versions) out.push_back({name, m->version_text, "READY", ""});
    for (const auto& [v, f] : e.failed) {
      if (!e.versions.count(v)) out.push_back({name, std::to_string(v), "UNAVAILABLE", f.reason});
    }
    if (e.versions.empty() && e.unloaded) out.push_back({name, "", "UNAVAILABLE", "unloaded"});
  }
  return out;
}

}  // namespace escala::serving::internal
