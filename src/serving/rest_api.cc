#include "serving/rest_api.h"

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "escala/core/logging.h"
#include "serving/json_codec.h"

namespace escala::serving::internal {

int HttpStatusOf(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kFailedPrecondition:
    case ErrorCode::kOutOfRange:
      return 400;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kAborted:
      return 409;
    case ErrorCode::kResourceExhausted:
      return 429;
    case ErrorCode::kUnimplemented:
      return 501;
    case ErrorCode::kUnavailable:
    case ErrorCode::kCancelled:  // by the server: shutting down
      return 503;
    case ErrorCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

namespace {

constexpr std::string_view kJson = "application/json";

HttpReply Ok(std::string body) {
  return HttpReply{200, std::string(kJson), std::move(body), {}};
}

HttpReply ErrorReply(int status, std::string_view message, std::string extra_headers = {}) {
  return HttpReply{status, std::string(kJson), ErrorJson(message), std::move(extra_headers)};
}

// Internal failures are logged and answered without their details, as over gRPC.
HttpReply ErrorReply(const Status& st) {
  const int status = HttpStatusOf(st.code());
  if (status != 500) return ErrorReply(status, st.message());
  ESCALA_LOG_ERROR("REST: internal failure answered 500: {}", st.ToString());
  return ErrorReply(500, "internal error (see the server's log)");
}

// Runs `fn` (which returns the reply) and turns what it throws into an error reply.
template <typename Fn>
HttpReply Guarded(Fn&& fn) {
  try {
    return fn();
  } catch (...) {
    return ErrorReply(Status::FromCurrentException());
  }
}

// ---- Routes --------------------------------------------------------------------------------

enum class Op {
  kNone,
  kServerMetadata,
  kModelMetadata,
  kModelReady,
  kInfer,
  kStatistics,
  kRepositoryIndex,
  kLoad,
  kUnload,
};

struct Route {
  Op op = Op::kNone;
  std::string model, version;
};

int HexValue(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

// %XX escapes decoded; a malformed one stays as it is.
std::string PercentDecoded(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const int hi = s[i] == '%' && i + 2 < s.size() ? HexValue(s[i + 1]) : -1;
    const int lo = hi >= 0 ? HexValue(s[i + 2]) : -1;
    if (lo < 0) {
      out += s[i];
      continue;
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// "/v2/models/m/" -> {"v2", "models", "m"} (one trailing slash ignored).
std::vector<std::string> Segments(std::string_view path) {
  if (path.ends_with('/')) path.remove_suffix(1);
  std::vector<std::string> out;
  if (!path.starts_with('/')) return out;
  path.remove_prefix(1);
  while (true) {
    const std::size_t slash = path.find('/');
    out.push_back(PercentDecoded(path.substr(0, slash)));
    if (slash == std::string_view::npos) return out;
    path.remove_prefix(slash + 1);
  }
}

// v2 models [stats | name [versions v] [ready | infer | stats]]
Route ModelRoute(const std::vector<std::string>& s) {
  if (s.size() == 3 && s[2] == "stats") return {Op::kStatistics, "", ""};
  if (s.size() < 3 || s[2].empty()) return {};
  Route r{Op::kNone, s[2], ""};
  std::size_t next = 3;
  if (s.size() >= 5 && s[3] == "versions" && !s[4].empty()) {
    r.version = s[4];
    next = 5;
  }
  if (s.size() == next) {
    r.op = Op::kModelMetadata;
  } else if (s.size() == next + 1) {
    const std::string& tail = s[next];
    r.op = tail == "ready"   ? Op::kModelReady
           : tail == "infer" ? Op::kInfer
           : tail == "stats" ? Op::kStatistics
                             : Op::kNone;
  }
  return r;
}

// v2 repository [index | models name (load | unload)]
Route RepositoryRoute(const std::vector<std::string>& s) {
  if (s.size() == 3 && s[2] == "index") return {Op::kRepositoryIndex, "", ""};
  if (s.size() != 5 || s[2] != "models" || s[3].empty()) return {};
  if (s[4] == "load") return {Op::kLoad, s[3], ""};
  if (s[4] == "unload") return {Op::kUnload, s[3], ""};
  return {};
}

Route RouteOf(std::string_view path) {
  const std::vector<std::string> s = Segments(path);
  if (s.empty() || s[0] != "v2") return {};
  if (s.size() == 1) return {Op::kServerMetadata, "", ""};
  if (s[1] == "models") return ModelRoute(s);
  if (s[1] == "repository") return RepositoryRoute(s);
  return {};
}

bool IsPost(Op op) {
  return op == Op::kInfer || op == Op::kRepositoryIndex || op == Op::kLoad || op == Op::kUnload;
}

// Work that may take long (inference, loading a model) runs on the workers.
bool RunsOnWorker(Op op) {
  return op == Op::kInfer || op == Op::kLoad || op == Op::kUnload;
}

// ---- Workers -------------------------------------------------------------------------------

class WorkerPool {
 public:
  explicit WorkerPool(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~WorkerPool() { Stop(); }
  void Post(std::function<void()> task) {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(task));
    cv_.notify_one();
  }
  // Runs what is queued, then joins.
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  void Loop() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      std::function<void()> task = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool stop_ = false;                        // guarded by mu_
  std::vector<std::thread> threads_;
};

// One REST inference: the messages live until the backend finishes.
struct InferCall {
  inference::ModelInferRequest request;
  inference::ModelInferResponse response;
};

// The length of the body's JSON part: Inference-Header-Content-Length, else the whole body.
std::size_t JsonSize(const HttpRequest& req) {
  const std::string& text = req.inference_header_length;
  if (text.empty()) return req.body.size();
  std::size_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || n > req.body.size()) {
    Throw(ErrorCode::kInvalidArgument,
          "Inference-Header-Content-Length: '{}' is not a length within the body's {} bytes", text,
          req.body.size());
  }
  return n;
}

HttpReply InferReply(const InferCall& call) {
  ResponseBody body = InferResponseToBody(call.response, call.request);
  if (body.json_size == body.bytes.size()) return Ok(std::move(body.bytes));
  return HttpReply{200, "application/octet-stream", std::move(body.bytes),
                   fmt::format("Inference-Header-Content-Length: {}\r\n", body.json_size)};
}

}  // namespace

class RestApi::Impl {
 public:
  Impl(InferenceBackend* backend, RestOptions options)
      : backend_(backend), options_(options), pool_(std::max(1, options.threads)) {}
  void Handle(HttpRequest req, HttpResponder respond);
  void Stop() { pool_.Stop(); }

 private:
  using Done = std::function<void(HttpReply)>;
  HttpReply Lookup(const Route& r, const HttpRequest& req) const;
  void Submit(const Route& r, HttpRequest req, HttpResponder respond);
  void Work(const Route& r, const HttpRequest& req, const Done& done);
  void Infer(const Route& r, const HttpRequest& req, const Done& done);

  InferenceBackend* backend_;
  RestOptions options_;
  // Shared with the callbacks, which may outlive the API (a batcher finishing late).
  std::shared_ptr<std::atomic<int>> inflight_ = std::make_shared<std::atomic<int>>(0);
  WorkerPool pool_;
};

void RestApi::Impl::Handle(HttpRequest req, HttpResponder respond) {
  const Route r = RouteOf(req.path);
  if (r.op == Op::kNone) {
    return respond(ErrorReply(404, fmt::format("no such endpoint: {} {}", req.method, req.path)));
  }
  const bool get = req.method == "GET" || req.method == "HEAD";
  if (IsPost(r.op) ? req.method != "POST" : !get) {
    const std::string_view allow = IsPost(r.op) ? "POST" : "GET, HEAD";
    return respond(ErrorReply(
        405, fmt::format("{} {}: method not allowed (use {})", req.method, req.path, allow),
        fmt::format("Allow: {}\r\n", allow)));
  }
  if (!RunsOnWorker(r.op)) return respond(Guarded([&] { return Lookup(r, req); }));
  Submit(r, std::move(req), std::move(respond));
}

// The quick operations, answered on the endpoint's thread.
HttpReply RestApi::Impl::Lookup(const Route& r, const HttpRequest& req) const {
  switch (r.op) {
    case Op::kServerMetadata: {
      inference::ServerMetadataResponse m;
      backend_->ServerMetadata(&m);
      return Ok(ServerMetadataToJson(m));
    }
    case Op::kModelMetadata: {
      inference::ModelMetadataResponse m;
      backend_->ModelMetadata(r.model, r.version, &m);
      return Ok(ModelMetadataToJson(m));
    }
    case Op::kModelReady:
      if (backend_->ModelReady(r.model, r.version)) return Ok("");
      return ErrorReply(503, fmt::format("model '{}' is not ready", r.model));
    case Op::kStatistics: {
      inference::ModelStatisticsResponse m;
      backend_->ModelStatistics(r.model, r.version, &m);
      return Ok(ModelStatisticsToJson(m));
    }
    default: {
      inference::RepositoryIndexResponse m;
      backend_->RepositoryIndex(ParseRepositoryIndexReady(req.body), &m);
      return Ok(RepositoryIndexToJson(m));
    }
  }
}

void RestApi::Impl::Submit(const Route& r, HttpRequest req, HttpResponder respond) {
  if (inflight_->fetch_add(1) >= options_.max_inflight) {
    inflight_->fetch_sub(1);
    return respond(ErrorReply(
        503,
        fmt::format("{} REST requests are in flight, the limit (http_max_inflight); retry later",
                    options_.max_inflight),
        "Retry-After: 1\r\n"));
  }
  Done done = [inflight = inflight_, respond = std::move(respond)](HttpReply reply) {
    respond(std::move(reply));
    inflight->fetch_sub(1);
  };
  pool_.Post([this, r, req = std::move(req), done = std::move(done)] { Work(r, req, done); });
}

// On a worker: inference, or a load or unload.
void RestApi::Impl::Work(const Route& r, const HttpRequest& req, const Done& done) {
  if (r.op == Op::kInfer) return Infer(r, req, done);
  done(Guarded([&] {
    CheckJsonObject(req.body);
    if (r.op == Op::kLoad) {
      backend_->LoadModel(r.model);
    } else {
      backend_->UnloadModel(r.model);
    }
    return Ok("");
  }));
}

void RestApi::Impl::Infer(const Route& r, const HttpRequest& req, const Done& done) {
  auto call = std::make_shared<InferCall>();
  try {
    const std::string_view body = req.body;
    const std::size_t json_size = JsonSize(req);
    ParseInferRequest(body.substr(0, json_size), body.substr(json_size), &call->request);
  } catch (...) {
    return done(ErrorReply(Status::FromCurrentException()));
  }
  call->request.set_model_name(r.model);
  call->request.set_model_version(r.version);
  backend_->Infer(&call->request, &call->response, [call, done](const Status& st) {
    if (!st.ok()) return done(ErrorReply(st));
    done(Guarded([&] { return InferReply(*call); }));
  });
}

RestApi::RestApi(InferenceBackend* backend, RestOptions options)
    : impl_(std::make_unique<Impl>(backend, options)) {}

RestApi::~RestApi() {
  Stop();
}

void RestApi::Handle(HttpRequest request, HttpResponder respond) {
  impl_->Handle(std::move(request), std::move(respond));
}

void RestApi::Stop() {
  impl_->Stop();
}

}  // namespace escala::serving::internal
