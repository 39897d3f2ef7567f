#include "serving/models.h"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>
#include <sys/stat.h>

#include "escala/core/error.h"
#include "escala/core/file_util.h"
#include "escala/core/logging.h"

namespace escala::serving::internal {

namespace fs = std::filesystem;

namespace {

constexpr char kBundleFile[] = "model.bundle";

// What tells a changed bundle file from the one loaded: a new file (rename) has a new inode, and
// a rewrite in place changes ctime, which unlike mtime cannot be set back by the writer.
std::string Fingerprint(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  return fmt::format("{}:{}:{}.{}:{}.{}", st.st_ino, st.st_size, st.st_mtim.tv_sec,
                     st.st_mtim.tv_nsec, st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
}

bool ParseVersion(const std::string& s, std::int64_t* v) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  *v = std::stoll(s);
  return *v > 0;
}

}  // namespace

bool ParseVersionNumber(const std::string& s, std::int64_t* v) {
  return ParseVersion(s, v);
}

// ---- LoadedModel -----------------------------------------------------------------------------

LoadedModel::LoadedModel() = default;
LoadedModel::~LoadedModel() {
  batcher.reset();  // completes queued requests while the predictor still exists
}

std::unique_ptr<RequestScratch> LoadedModel::Acquire() const {
  {
    std::lock_guard lock(pool_mu_);
    if (!pool_.empty()) {
      auto s = std::move(pool_.back());
      pool_.pop_back();
      return s;
    }
  }
  return std::make_unique<RequestScratch>();
}

void LoadedModel::Release(std::unique_ptr<RequestScratch> s) const {
  std::lock_guard lock(pool_mu_);
  if (pool_.size() < 256) pool_.push_back(std::move(s));
}

// ---- Batcher -----------------------------------------------------------------------------------

Batcher::Batcher(std::shared_ptr<const io::Predictor> predictor, ModelMetrics* metrics,
                 BatchingOptions options)
    : shared_(std::make_shared<Shared>()) {
  shared_->predictor = std::move(predictor);
  shared_->metrics = metrics;
  shared_->options = options;
  thread_ = std::thread(&Batcher::Loop, shared_);
}

Batcher::~Batcher() {
  {
    std::lock_guard lock(shared_->mu);
    shared_->stop = true;
  }
  shared_->cv.notify_all();
  if (thread_.get_id() == std::this_thread::get_id()) {
    thread_.detach();  // the loop holds `shared_` and exits once the queue is empty
  } else {
    thread_.join();
  }
}

void Batcher::Submit(MatrixF features, Done done) {
  {
    std::lock_guard lock(shared_->mu);
    if (shared_->stop) {
      done(ConstMatrixViewF(), Status(ErrorCode::kUnavailable, "model version is being unloaded"));
      return;
    }
    shared_->queued_rows += features.rows();
    shared_->queue.push_back(
        Item{std::move(features), std::move(done), std::chrono::steady_clock::now()});
  }
  shared_->cv.notify_one();
}

void Batcher::Loop(std::shared_ptr<Shared> s) {
  io::PredictScratch scratch;
  MatrixF batch, out;
  std::vector<Item> items;
  for (;;) {
    items.clear();
    {
      std::unique_lock lock(s->mu);
      s->cv.wait(lock, [&] { return s->stop || !s->queue.empty(); });
      if (s->queue.empty()) return;
      // Wait for more rows until the first request has waited max_queue_delay.
      const auto deadline = s->queue.front().enqueued + s->options.max_queue_delay;
      s->cv.wait_until(lock, deadline,
                       [&] { return s->stop || s->queued_rows >= s->options.max_batch_rows; });
      std::int64_t rows = 0;
      while (!s->queue.empty() && (items.empty() || rows + s->queue.front().features.rows() <=
                                                        s->options.max_batch_rows)) {
        rows += s->queue.front().features.rows();
        s->queued_rows -= s->queue.front().features.rows();
        items.push_back(std::move(s->queue.front()));
        s->queue.pop_front();
      }
    }
    const auto start = std::chrono::steady_clock::now();
    std::int64_t rows = 0;
    const std::int64_t d = s->predictor->bundle().model->num_features();
    for (const auto& it : items) rows += it.features.rows();
    batch.Resize(rows, d);
    std::int64_t r = 0;
    for (const auto& it : items) {
      std::copy_n(it.features.data(), it.features.size(), batch.row(r));
      r += it.features.rows();
    }
    out.Resize(rows, s->predictor->num_outputs());
    Status status;
    try {
      s->predictor->PredictFeatures(std::as_const(batch).view(), out.view(), scratch);
    } catch (...) {
      status = Status::FromCurrentException();
    }
    const auto end = std::chrono::steady_clock::now();
    s->metrics->executions.fetch_add(1, std::memory_order_relaxed);
    s->metrics->compute_us.fetch_add(
        static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(end - start).count()),
        std::memory_order_relaxed);
    r = 0;
    for (auto& it : items) {
      s->metrics->queue_us.fetch_add(
          static_cast<std::uint64_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(start - it.enqueued).count()),
          std::memory_order_relaxed);
      it.done(std::as_const(out).view().Rows(r, it.features.rows()), status);
      r += it.features.rows();
    }
  }
}

// ---- ModelManager -------------------------------------------------------------------------------

ModelManager::ModelManager(const ServerOptions& options, MetricsRegistry* metrics)
    : options_(options), metrics_(metrics) {}

ModelManager::~ModelManager() = default;

std::shared_ptr<const LoadedModel> ModelManager::Build(
    const std::string& name, std::int64_t version, std::shared_ptr<const io::ModelBundle> bundle,
    const std::string& source, const std::string& fingerprint) {
  auto m = std::make_shared<LoadedModel>();
  m->name = name;
  m->version = version;
  m->version_text = std::to_string(version);
  m->source = source;
  m->fingerprint = fingerprint;
  m->bundle = std::move(bundle);
  m->predictor = std::make_shared<const io::Predictor>(m->bundle);
  m->signature = SignatureOf(*m->bundle);
  m->metrics = metrics_->For(name, m->version_text);
  // Warm up: one prediction on a zero feature row allocates the model's workspace and proves the
  // model runs before it takes traffic.
  {
    auto scratch = m->Acquire();
    MatrixF x(1, m->bundle->model->num_features(), 0.0f), y(1, m->predictor->num_outputs());
    m->predictor->PredictFeatures(std::as_const(x).view(), y.view(), scratch->predict);
    for (std::int64_t j = 0; j < y.cols(); ++j) {
      ESCALA_CHECK(std::isfinite(y(0, j)), kDataLoss, "{}: warm-up prediction is not finite",
                   source);
    }
    m->Release(std::move(scratch));
  }
  if (options_.batching.enabled) {
    m->batcher = std::make_unique<Batcher>(m->predictor, m->metrics, options_.batching);
  }
  return m;
}

std::shared_ptr<const LoadedModel> ModelManager::Get(const std::string& name,
                                                     const std::string& version) const {
  std::shared_lock lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end() || it->second.versions.empty()) {
    std::string names;
    for (const auto& [n, e] : models_) {
      if (!e.versions.empty()) names += (names.empty() ? "" : ", ") + n;
    }
    Throw(ErrorCode::kNotFound, "model '{}' is not loaded (loaded: {})", name,
          names.empty() ? "none" : names);
  }
  const auto& versions = it->second.versions;
  if (version.empty()) return versions.rbegin()->second;
  std::int64_t v;
  if (ParseVersion(version, &v)) {
    auto vit = versions.find(v);
    if (vit != versions.end()) return vit->second;
  }
  std::string have;
  for (const auto& [n, m] : versions) have += (have.empty() ? "" : ", ") + m->version_text;
  Throw(ErrorCode::kNotFound, "model '{}' has no version '{}' (loaded: {})", name, version, have);
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
  auto m = Build(name, version, std::move(bundle), "memory", "");
  std::shared_ptr<const LoadedModel> old;
  {
    std::unique_lock lock(mu_);
    auto& slot = models_[name].versions[version];
    old = std::move(slot);
    slot = std::move(m);
  }
  ESCALA_LOG_INFO("serving model '{}' version {} (in memory)", name, version);
}

void ModelManager::ScanModel(const std::string& name, bool reload) {
  const fs::path dir = fs::path(options_.model_repository) / name;
  std::map<std::int64_t, std::string> on_disk;  // version -> bundle path
  std::error_code ec;
  if (fs::is_directory(dir, ec)) {
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      std::int64_t v;
      if (!e.is_directory() || !ParseVersion(e.path().filename().string(), &v)) continue;
      const fs::path bundle = e.path() / kBundleFile;
      if (fs::is_regular_file(bundle, ec)) on_disk[v] = bundle.string();
    }
  }
  // Versions the policy wants, among those on disk.
  std::vector<std::int64_t> wanted;
  for (const auto& [v, p] : on_disk) wanted.push_back(v);
  switch (options_.version_policy.kind) {
    case VersionPolicy::Kind::kAll:
      break;
    case VersionPolicy::Kind::kLatest:
      if (wanted.size() > static_cast<std::size_t>(options_.version_policy.latest)) {
        wanted.erase(wanted.begin(), wanted.end() - options_.version_policy.latest);
      }
      break;
    case VersionPolicy::Kind::kSpecific: {
      std::vector<std::int64_t> keep;
      for (auto v : wanted) {
        const auto& s = options_.version_policy.versions;
        if (std::find(s.begin(), s.end(), v) != s.end()) keep.push_back(v);
      }
      wanted = keep;
      break;
    }
  }
  // Load what is new or changed, outside the serving lock.
  std::map<std::int64_t, std::shared_ptr<const LoadedModel>> loaded;
  std::map<std::int64_t, std::string> failures, reasons;
  {
    std::shared_lock lock(mu_);
    auto it = models_.find(name);
    if (it != models_.end()) {
      failures = it->second.failed;
      reasons = it->second.failure_reason;
    }
  }
  for (auto v : wanted) {
    const std::string& path = on_disk[v];
    const std::string fp = Fingerprint(path);
    {
      std::shared_lock lock(mu_);
      auto it = models_.find(name);
      if (it != models_.end()) {
        auto vit = it->second.versions.find(v);
        if (!reload && vit != it->second.versions.end() && vit->second->fingerprint == fp) {
          continue;
        }
      }
    }
    if (!reload && failures.count(v) && failures[v] == fp)
      continue;  // already failed; wait for a change
    try {
      auto bundle = std::make_shared<const io::ModelBundle>(io::ModelBundle::Load(path));
      loaded[v] = Build(name, v, std::move(bundle), path, fp);
      failures.erase(v);
      reasons.erase(v);
      ESCALA_LOG_INFO("loaded model '{}' version {} from {}", name, v, path);
    } catch (const std::exception& e) {
      failures[v] = fp;
      reasons[v] = e.what();
      metrics_->CountLoadFailure(name);
      ESCALA_LOG_ERROR(
          "model '{}' version {} failed to load; the versions already loaded keep serving: {}",
          name, v, e.what());
    }
  }
  // Swap: add new versions, drop those the policy no longer wants or that left the disk. A
  // version that failed to load is not dropped in favour of nothing: if none of the wanted
  // versions is loadable, the ones serving stay.
  std::vector<std::shared_ptr<const LoadedModel>> retired;
  {
    std::unique_lock lock(mu_);
    Entry& e = models_[name];
    for (auto& [v, m] : loaded) {
      auto& slot = e.versions[v];
      if (slot) retired.push_back(std::move(slot));
      slot = std::move(m);
    }
    bool any_wanted_loaded = false;
    for (auto v : wanted) any_wanted_loaded |= e.versions.count(v) > 0;
    if (any_wanted_loaded) {
      for (auto it = e.versions.begin(); it != e.versions.end();) {
        if (it->second->source != "memory" &&
            std::find(wanted.begin(), wanted.end(), it->first) == wanted.end()) {
          ESCALA_LOG_INFO("unloading model '{}' version {}", name, it->first);
          retired.push_back(std::move(it->second));
          it = e.versions.erase(it);
        } else {
          ++it;
        }
      }
    }
    e.failed = failures;
    e.failure_reason = reasons;
  }
  // `retired` versions are destroyed here, or later by the last request still using them.
}

void ModelManager::Poll() {
  if (options_.model_repository.empty()) return;
  std::lock_guard load(load_mu_);
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(options_.model_repository, ec)) {
    if (e.is_directory()) names.push_back(e.path().filename().string());
  }
  if (ec) {
    ESCALA_LOG_WARN("cannot read model repository {}: {}", options_.model_repository, ec.message());
    return;
  }
  std::sort(names.begin(), names.end());
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
  ESCALA_CHECK(name.find('/') == std::string::npos && name != ".." && !name.empty(),
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
    std::string why = "no version directory with a model.bundle";
    if (!e.failure_reason.empty()) why = e.failure_reason.rbegin()->second;
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
    for (const auto& [v, reason] : e.failure_reason) {
      if (!e.versions.count(v)) out.push_back({name, std::to_string(v), "UNAVAILABLE", reason});
    }
    if (e.versions.empty() && e.unloaded) out.push_back({name, "", "UNAVAILABLE", "unloaded"});
  }
  return out;
}

}  // namespace escala::serving::internal

namespace escala::serving {

VersionPolicy VersionPolicy::Parse(std::string_view text) {
  VersionPolicy p;
  if (text == "all") {
    p.kind = Kind::kAll;
    return p;
  }
  if (text == "latest") return p;
  if (text.substr(0, 7) == "latest:") {
    p.kind = Kind::kLatest;
    try {
      p.latest = std::stoi(std::string(text.substr(7)));
    } catch (...) {
      p.latest = 0;
    }
    ESCALA_CHECK(p.latest >= 1, kInvalidArgument, "version policy '{}': latest:N needs N >= 1",
                 text);
    return p;
  }
  if (text.substr(0, 9) == "specific:") {
    p.kind = Kind::kSpecific;
    std::string rest(text.substr(9));
    std::size_t start = 0;
    while (start <= rest.size()) {
      const std::size_t comma = rest.find(',', start);
      const std::string item =
          rest.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      std::int64_t v;
      ESCALA_CHECK(internal::ParseVersionNumber(item, &v), kInvalidArgument,
                   "version policy '{}': '{}' is not a version number", text, item);
      p.versions.push_back(v);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    return p;
  }
  Throw(ErrorCode::kInvalidArgument,
        "version policy '{}': expected latest, latest:N, all or specific:V1,V2", text);
}

}  // namespace escala::serving
