// The gRPC service (Open Inference Protocol) and the PredictionServer around it.
#include "escala/serving/server.h"

#include <atomic>
#include <condition_variable>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "core/rpc/grpc_edge.h"
#include "core/rpc/listen_check.h"
#include "escala/config.h"
#include "escala/core/error.h"
#include "escala/core/logging.h"
#include "inference/open_inference.grpc.pb.h"
#include "serving/arena_allocator.h"
#include "serving/backend.h"
#include "serving/codec.h"
#include "serving/http_endpoint.h"
#include "serving/metrics.h"
#include "serving/model_manager.h"
#include "serving/reflection.h"
#include "serving/rest_api.h"

namespace escala::serving {

using internal::LoadedModel;

namespace {

using Clock = std::chrono::steady_clock;

std::uint64_t MicrosSince(Clock::time_point t) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count());
}

}  // namespace

class InferenceService;

// The protocol's operations, once for both transports (serving/backend.h).
struct PredictionServer::Impl final : internal::InferenceBackend {
  explicit Impl(ServerOptions o) : options(std::move(o)), manager(options, &metrics) {}

  ServerOptions options;
  internal::MetricsRegistry metrics;
  internal::ModelManager manager;
  // Before the service and the server: it outlives every call.
  internal::ArenaMessageAllocator<inference::ModelInferRequest, inference::ModelInferResponse>
      infer_allocator;
  std::unique_ptr<InferenceService> service;
  std::unique_ptr<grpc::CallbackGenericService> reflection;
  std::unique_ptr<grpc::Server> grpc_server;
  std::unique_ptr<internal::RestApi> rest;  // before http: the endpoint holds handlers into it
  std::unique_ptr<internal::HttpEndpoint> http;
  int grpc_port = 0;

  std::atomic<bool> draining{false};
  std::atomic<std::int64_t> inflight{0};
  std::mutex mu;
  std::condition_variable cv;
  bool stopped = false;   // guarded by mu
  bool stopping = false;  // guarded by mu
  std::thread poller;

  bool Ready() const override { return !draining.load() && manager.HasReadyModel(); }
  void UpdateHealth() {
    const bool ready = Ready();
    metrics.SetReady(ready);
    if (grpc_server != nullptr && grpc_server->GetHealthCheckService() != nullptr) {
      grpc_server->GetHealthCheckService()->SetServingStatus(ready);
    }
  }

  void ServerMetadata(inference::ServerMetadataResponse* out) const override;
  void ModelMetadata(const std::string& name, const std::string& version,
                     inference::ModelMetadataResponse* out) const override;
  bool ModelReady(const std::string& name, const std::string& version) const override;
  void Infer(const inference::ModelInferRequest* req, inference::ModelInferResponse* resp,
             std::function<void(const Status&)> finish) override;
  void ModelStatistics(const std::string& name, const std::string& version,
                       inference::ModelStatisticsResponse* out) const override;
  void RepositoryIndex(bool ready_only, inference::RepositoryIndexResponse* out) const override;
  void LoadModel(const std::string& name) override;
  void UnloadModel(const std::string& name) override;
};

void PredictionServer::Impl::ServerMetadata(inference::ServerMetadataResponse* out) const {
  out->set_name(options.server_name);
  out->set_version(ESCALA_VERSION_STRING);
  out->add_extensions("model_repository");
  out->add_extensions("statistics");
  out->add_extensions("model_stream_infer");
}

void PredictionServer::Impl::ModelMetadata(const std::string& name, const std::string& version,
                                           inference::ModelMetadataResponse* out) const {
  auto m = manager.Get(name, version);
  internal::FillMetadata(m->signature, m->name, manager.Versions(m->name), out);
}

bool PredictionServer::Impl::ModelReady(const std::string& name, const std::string& version) const {
  return manager.Get(name, version) != nullptr && !draining.load();
}

void PredictionServer::Impl::ModelStatistics(const std::string& name, const std::string& version,
                                             inference::ModelStatisticsResponse* out) const {
  bool found = false;
  metrics.ForEach([&](const std::string& model, const std::string& model_version,
                      const internal::ModelMetrics& m) {
    if (!name.empty() && name != model) return;
    if (!version.empty() && version != model_version) return;
    found = true;
    auto* st = out->add_model_stats();
    st->set_name(model);
    st->set_version(model_version);
    st->set_last_inference(m.last_inference_ms.load());
    st->set_inference_count(m.inferences.load());
    st->set_execution_count(m.executions.load());
    auto* is = st->mutable_inference_stats();
    is->mutable_success()->set_count(m.success.load());
    is->mutable_success()->set_ns(m.request_us.load() * 1000);
    is->mutable_fail()->set_count(m.failure.load());
    is->mutable_queue()->set_count(m.executions.load());
    is->mutable_queue()->set_ns(m.queue_us.load() * 1000);
    is->mutable_compute_infer()->set_count(m.executions.load());
    is->mutable_compute_infer()->set_ns(m.compute_us.load() * 1000);
  });
  ESCALA_CHECK(found || name.empty(), kNotFound, "no statistics for model '{}'", name);
}

void PredictionServer::Impl::RepositoryIndex(bool ready_only,
                                             inference::RepositoryIndexResponse* out) const {
  for (const auto& m : manager.Index()) {
    if (ready_only && m.state != "READY") continue;
    auto* e = out->add_models();
    e->set_name(m.name);
    e->set_version(m.version);
    e->set_state(m.state);
    e->set_reason(m.reason);
  }
}

void PredictionServer::Impl::LoadModel(const std::string& name) {
  manager.LoadModel(name);
  UpdateHealth();
}

void PredictionServer::Impl::UnloadModel(const std::string& name) {
  manager.UnloadModel(name);
  UpdateHealth();
}

void PredictionServer::Impl::Infer(const inference::ModelInferRequest* req,
                                   inference::ModelInferResponse* resp,
                                   std::function<void(const Status&)> finish) {
  const auto start = Clock::now();
  if (draining.load()) {
    finish(Status(ErrorCode::kUnavailable, "the server is shutting down"));
    return;
  }
  inflight.fetch_add(1);
  auto done = [this, start, finish = std::move(finish)](const Status& st, internal::ModelMetrics* m,
                                                        std::int64_t rows) {
    if (m != nullptr) {
      if (st.ok()) {
        m->success.fetch_add(1, std::memory_order_relaxed);
        m->inferences.fetch_add(static_cast<std::uint64_t>(rows), std::memory_order_relaxed);
      } else {
        m->failure.fetch_add(1, std::memory_order_relaxed);
      }
      m->ObserveLatency(MicrosSince(start));
      m->last_inference_ms.store(
          static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count()),
          std::memory_order_relaxed);
    }
    finish(st);
    if (inflight.fetch_sub(1) == 1) {
      std::lock_guard lock(mu);
      cv.notify_all();
    }
  };
  internal::ModelMetrics* mm = nullptr;
  try {
    std::shared_ptr<const LoadedModel> model = manager.Get(req->model_name(), req->model_version());
    mm = model->metrics;
    resp->set_model_name(model->name);
    resp->set_model_version(model->version_text);
    resp->set_id(req->id());
    auto scratch = model->Acquire();
    const features::RawBatch batch =
        internal::DecodeRequest(*req, model->signature, scratch->decode);
    const internal::OutputSelection sel = internal::SelectOutputs(*req, model->signature);
    const std::int64_t rows = batch.rows;
    if (model->batcher != nullptr && rows > 0 && !sel.contributions) {
      // The pipeline runs here, on this request's thread; the model runs batched.
      MatrixF feats(rows, model->bundle->pipeline.num_outputs());
      model->bundle->pipeline.TransformInto(batch, feats.view(), scratch->predict.transform);
      model->Release(std::move(scratch));
      auto* batcher = model->batcher.get();
      batcher->Submit(std::move(feats),
                      [model, sel, resp, done, rows](ConstMatrixViewF p, const Status& st) {
                        Status result = st;
                        if (result.ok()) {
                          try {
                            internal::EncodeOutputs(model->signature, sel, p, resp);
                          } catch (...) {
                            result = Status::FromCurrentException();
                          }
                        }
                        done(result, model->metrics, rows);
                      });
      return;
    }
    const auto compute_start = Clock::now();
    scratch->out.Resize(rows, model->predictor->num_outputs());
    if (rows > 0) model->predictor->Predict(batch, scratch->out.view(), scratch->predict);
    MatrixF contributions(0, model->signature.contribution_width);
    if (sel.contributions && rows > 0) {
      model->predictor->Contributions(batch, &contributions, scratch->predict);
    }
    internal::EncodeOutputs(model->signature, sel, std::as_const(scratch->out).view(), resp,
                            &contributions);
    mm->executions.fetch_add(1, std::memory_order_relaxed);
    mm->compute_us.fetch_add(MicrosSince(compute_start), std::memory_order_relaxed);
    model->Release(std::move(scratch));
    done(Status::Ok(), mm, rows);
  } catch (...) {
    done(Status::FromCurrentException(), mm, 0);
  }
}

// ---- the service --------------------------------------------------------------------------------

class InferenceService final : public inference::GRPCInferenceService::CallbackService {
 public:
  explicit InferenceService(PredictionServer::Impl* server) : s_(server) {}

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* ctx,
                                       const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* resp) override {
    resp->set_live(true);
    return Done(ctx, Status::Ok());
  }

  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* ctx,
                                        const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* resp) override {
    resp->set_ready(s_->Ready());
    return Done(ctx, Status::Ok());
  }

  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* ctx,
                                       const inference::ModelReadyRequest* req,
                                       inference::ModelReadyResponse* resp) override {
    bool ready = false;
    try {
      ready = s_->ModelReady(req->name(), req->version());
    } catch (const Error&) {
      ready = false;
    }
    resp->set_ready(ready);
    return Done(ctx, Status::Ok());
  }

  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* ctx,
                                           const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* resp) override {
    s_->ServerMetadata(resp);
    return Done(ctx, Status::Ok());
  }

  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* ctx,
                                          const inference::ModelMetadataRequest* req,
                                          inference::ModelMetadataResponse* resp) override {
    return Run(ctx, [&] { s_->ModelMetadata(req->name(), req->version(), resp); });
  }

  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx,
                                       const inference::ModelInferRequest* req,
                                       inference::ModelInferResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    s_->Infer(req, resp, [reactor](const Status& st) { reactor->Finish(rpc::ToGrpcStatus(st)); });
    return reactor;
  }

  grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
  ModelStreamInfer(grpc::CallbackServerContext*) override {
    return new StreamReactor(s_);
  }

  grpc::ServerUnaryReactor* ModelStatistics(grpc::CallbackServerContext* ctx,
                                            const inference::ModelStatisticsRequest* req,
                                            inference::ModelStatisticsResponse* resp) override {
    return Run(ctx, [&] { s_->ModelStatistics(req->name(), req->version(), resp); });
  }

  grpc::ServerUnaryReactor* RepositoryIndex(grpc::CallbackServerContext* ctx,
                                            const inference::RepositoryIndexRequest* req,
                                            inference::RepositoryIndexResponse* resp) override {
    return Run(ctx, [&] { s_->RepositoryIndex(req->ready(), resp); });
  }

  grpc::ServerUnaryReactor* RepositoryModelLoad(grpc::CallbackServerContext* ctx,
                                                const inference::RepositoryModelLoadRequest* req,
                                                inference::RepositoryModelLoadResponse*) override {
    return Run(ctx, [&] { s_->LoadModel(req->model_name()); });
  }

  grpc::ServerUnaryReactor* RepositoryModelUnload(
      grpc::CallbackServerContext* ctx, const inference::RepositoryModelUnloadRequest* req,
      inference::RepositoryModelUnloadResponse*) override {
    return Run(ctx, [&] { s_->UnloadModel(req->model_name()); });
  }

 private:
  class StreamReactor final : public grpc::ServerBidiReactor<inference::ModelInferRequest,
                                                             inference::ModelStreamInferResponse> {
   public:
    explicit StreamReactor(PredictionServer::Impl* s) : s_(s) { StartRead(&req_); }
    void OnReadDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status::OK);
        return;
      }
      resp_.Clear();
      s_->Infer(&req_, resp_.mutable_infer_response(), [this](const Status& st) {
        if (!st.ok()) {
          resp_.clear_infer_response();
          resp_.mutable_infer_response()->set_id(req_.id());
          resp_.set_error_message(rpc::ToGrpcStatus(st).error_message());
        }
        StartWrite(&resp_);
      });
    }
    void OnWriteDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status(grpc::StatusCode::CANCELLED, "stream write failed"));
        return;
      }
      req_.Clear();
      StartRead(&req_);
    }
    void OnDone() override { delete this; }

   private:
    PredictionServer::Impl* s_;
    inference::ModelInferRequest req_;
    inference::ModelStreamInferResponse resp_;
  };

  grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx, const Status& st) {
    auto* r = ctx->DefaultReactor();
    r->Finish(rpc::ToGrpcStatus(st));
    return r;
  }
  template <typename Fn>
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* ctx, Fn&& fn) {
    Status st;
    try {
      fn();
    } catch (...) {
      st = Status::FromCurrentException();
    }
    return Done(ctx, st);
  }

  PredictionServer::Impl* s_;
};

// ---- PredictionServer
// ------------------------------------------------------------------------------

PredictionServer::PredictionServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PredictionServer::~PredictionServer() {
  Shutdown(std::chrono::milliseconds(0));
}

int PredictionServer::grpc_port() const {
  return impl_->grpc_port;
}
int PredictionServer::http_port() const {
  return impl_->http ? impl_->http->port() : 0;
}
bool PredictionServer::ready() const {
  return impl_->Ready();
}

void PredictionServer::AddModel(const std::string& name,
                                std::shared_ptr<const io::ModelBundle> bundle,
                                std::int64_t version) {
  impl_->manager.AddInMemory(name, std::move(bundle), version);
  impl_->UpdateHealth();
}
void PredictionServer::LoadModel(const std::string& name) {
  impl_->LoadModel(name);
}
void PredictionServer::UnloadModel(const std::string& name) {
  impl_->UnloadModel(name);
}
void PredictionServer::PollRepository() {
  impl_->manager.Poll();
  impl_->UpdateHealth();
}
std::vector<PredictionServer::ModelState> PredictionServer::Index() const {
  return impl_->manager.Index();
}
std::string PredictionServer::MetricsText() const {
  return impl_->metrics.Render();
}

void PredictionServer::Shutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
  }
  // 1. Stop reporting ready; new inference requests are refused with UNAVAILABLE.
  impl_->draining.store(true);
  impl_->UpdateHealth();
  ESCALA_LOG_INFO("shutting down: draining {} request(s) in flight (grace {} ms)",
                  impl_->inflight.load(), grace.count());
  // 2. Let the requests in flight finish, up to the grace period.
  {
    std::unique_lock lock(impl_->mu);
    impl_->cv.wait_for(lock, grace, [&] { return impl_->inflight.load() == 0; });
  }
  // 3. Stop. Whatever is still running is cancelled.
  if (impl_->grpc_server)
    impl_->grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopped = true;
  }
  impl_->cv.notify_all();
  if (impl_->poller.joinable()) impl_->poller.join();
  if (impl_->http) impl_->http->Stop();
  if (impl_->rest) impl_->rest->Stop();
  if (impl_->grpc_server) impl_->grpc_server->Wait();
}

void PredictionServer::Wait() {
  std::unique_lock lock(impl_->mu);
  impl_->cv.wait(lock, [&] { return impl_->stopped; });
}

// ---- Builder
// ------------------------------------------------------------------------------------------

using Builder = PredictionServer::Builder;
Builder& Builder::SetGrpcAddress(std::string a) {
  options_.grpc_address = std::move(a);
  return *this;
}
Builder& Builder::SetHttpAddress(std::string a) {
  options_.http_address = std::move(a);
  return *this;
}
Builder& Builder::SetModelRepository(std::string d) {
  options_.model_repository = std::move(d);
  return *this;
}
Builder& Builder::SetPollInterval(std::chrono::milliseconds i) {
  options_.poll_interval = i;
  return *this;
}
Builder& Builder::SetVersionPolicy(VersionPolicy p) {
  options_.version_policy = std::move(p);
  return *this;
}
Builder& Builder::EnableBatching(std::int64_t rows, std::chrono::microseconds delay) {
  ESCALA_CHECK(rows >= 1, kInvalidArgument, "max batch rows must be >= 1, got {}", rows);
  options_.batching.enabled = true;
  options_.batching.max_batch_rows = rows;
  options_.batching.max_queue_delay = delay;
  return *this;
}
Builder& Builder::SetMaxMessageBytes(std::int64_t b) {
  options_.max_message_bytes = b;
  return *this;
}
Builder& Builder::SetTls(TlsOptions t) {
  options_.tls = std::move(t);
  return *this;
}
Builder& Builder::SetServerName(std::string n) {
  options_.server_name = std::move(n);
  return *this;
}
Builder& Builder::SetRestOptions(RestOptions r) {
  ESCALA_CHECK(r.max_body_bytes > 0 && r.threads >= 1 && r.max_inflight >= 1, kInvalidArgument,
               "REST options: max body bytes, threads and max in flight must be positive, got {}, "
               "{}, {}",
               r.max_body_bytes, r.threads, r.max_inflight);
  options_.rest = r;
  return *this;
}
Builder& Builder::AddModel(std::string name, std::shared_ptr<const io::ModelBundle> bundle,
                           std::int64_t version) {
  for (const auto& m : models_) {
    ESCALA_CHECK(m.name != name || m.version != version, kInvalidArgument,
                 "model '{}' version {} is added twice: one name, one bundle", name, version);
  }
  models_.push_back({std::move(name), std::move(bundle), version});
  return *this;
}

namespace {

// The HTTP endpoint: metrics, health, and the REST API over the same backend as gRPC.
void StartHttp(PredictionServer::Impl& impl) {
  auto* raw = &impl;
  impl.rest = std::make_unique<internal::RestApi>(raw, impl.options.rest);
  internal::HttpLimits limits;
  limits.max_body_bytes = static_cast<std::size_t>(impl.options.rest.max_body_bytes);
  impl.http = std::make_unique<internal::HttpEndpoint>(
      impl.options.http_address,
      internal::HttpEndpoint::Handlers{
          [raw] { return raw->metrics.Render(); }, [raw] { return raw->Ready(); },
          [rest = impl.rest.get()](internal::HttpRequest req, internal::HttpResponder respond) {
            rest->Handle(std::move(req), std::move(respond));
          }},
      limits);
}

// The gRPC endpoint: the inference, health and reflection services.
void StartGrpc(PredictionServer::Impl& impl) {
  const ServerOptions& options = impl.options;
  grpc::EnableDefaultHealthCheckService(true);
  const auto creds = rpc::MakeServerCredentials(options.tls);
  impl.service = std::make_unique<InferenceService>(&impl);
  impl.service->SetMessageAllocatorFor_ModelInfer(&impl.infer_allocator);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.grpc_address, creds, &impl.grpc_port);
  // Own the port (gRPC turns SO_REUSEPORT on by default): a second server fails to start.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  builder.RegisterService(impl.service.get());
  // Every service is a callback service: a synchronous one would add polling threads that
  // compete with the callback threads for I/O events (see serving/reflection.h).
  impl.reflection = internal::MakeReflectionService(
      {"inference.GRPCInferenceService", "grpc.health.v1.Health",
       "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"});
  builder.RegisterCallbackGenericService(impl.reflection.get());
  impl.grpc_server = builder.BuildAndStart();
  ESCALA_CHECK(impl.grpc_server != nullptr && impl.grpc_port > 0, kUnavailable,
               "cannot listen on {}: {}", options.grpc_address,
               ::escala::internal::ListenFailureReason(options.grpc_address));
}

}  // namespace

std::unique_ptr<PredictionServer> Builder::Build() {
  ESCALA_CHECK(options_.max_message_bytes > 0 && options_.max_message_bytes <= (1LL << 31) - 1,
               kInvalidArgument, "max message bytes must be in (0, 2 GiB), got {}",
               options_.max_message_bytes);
  ESCALA_CHECK(!options_.grpc_address.empty() || !options_.http_address.empty(), kInvalidArgument,
               "a server needs a gRPC or an HTTP address; both are empty");
  auto impl = std::make_unique<PredictionServer::Impl>(options_);
  for (const auto& m : models_) impl->manager.AddInMemory(m.name, m.bundle, m.version);
  impl->manager.Poll();
  if (!options_.grpc_address.empty()) StartGrpc(*impl);
  if (!options_.http_address.empty()) StartHttp(*impl);
  if (options_.poll_interval.count() > 0 && !options_.model_repository.empty()) {
    auto* raw = impl.get();
    impl->poller = std::thread([raw] {
      std::unique_lock lock(raw->mu);
      while (!raw->cv.wait_for(lock, raw->options.poll_interval, [&] { return raw->stopping; })) {
        lock.unlock();
        try {
          raw->manager.Poll();
          raw->UpdateHealth();
        } catch (const std::exception& e) {
          ESCALA_LOG_ERROR("repository poll failed: {}", e.what());
        }
        lock.lock();
      }
    });
  }
  impl->UpdateHealth();
  std::vector<std::string> ports;
  if (impl->grpc_server) ports.push_back(fmt::format("gRPC port {}", impl->grpc_port));
  if (impl->http) ports.push_back(fmt::format("HTTP port {}", impl->http->port()));
  ESCALA_LOG_INFO("serving on {}", fmt::join(ports, ", "));
  return std::unique_ptr<PredictionServer>(new PredictionServer(std::move(impl)));
}

}  // namespace escala::serving
