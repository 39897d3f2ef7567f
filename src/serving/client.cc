#include "escala/serving/client.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include "core/rpc/grpc_edge.h"
#include "escala/core/error.h"
#include "inference/open_inference.grpc.pb.h"

namespace escala::serving {

Tensor Tensor::Fp32(std::string name, std::vector<std::int64_t> shape, std::vector<float> values) {
  Tensor t;
  t.name = std::move(name);
  t.datatype = "FP32";
  t.shape = std::move(shape);
  t.fp32 = std::move(values);
  return t;
}

Tensor Tensor::Bytes(std::string name, std::vector<std::string> values) {
  Tensor t;
  t.name = std::move(name);
  t.datatype = "BYTES";
  t.shape = {static_cast<std::int64_t>(values.size())};
  t.bytes = std::move(values);
  return t;
}

Tensor Tensor::Fp64(std::string name, std::vector<double> values) {
  Tensor t;
  t.name = std::move(name);
  t.datatype = "FP64";
  t.shape = {static_cast<std::int64_t>(values.size())};
  t.fp64 = std::move(values);
  return t;
}

const Tensor& InferResult::output(std::string_view name) const {
  for (const auto& t : outputs) {
    if (t.name == name) return t;
  }
  Throw(ErrorCode::kNotFound, "the response has no output '{}'", name);
}

struct Client::Impl {
  ClientOptions options;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub;

  void Prepare(grpc::ClientContext* ctx) const {
    ctx->set_deadline(std::chrono::system_clock::now() + options.timeout);
  }
  static void Check(const grpc::Status& s) { rpc::FromGrpcStatus(s).ThrowIfError(); }

  void BuildRequest(const std::string& model, const std::vector<Tensor>& inputs,
                    const std::vector<std::string>& outputs, const std::string& version,
                    inference::ModelInferRequest* req) const {
    req->set_model_name(model);
    req->set_model_version(version);
    for (const auto& t : inputs) {
      auto* in = req->add_inputs();
      in->set_name(t.name);
      in->set_datatype(t.datatype);
      for (auto d : t.shape) in->add_shape(d);
      if (options.typed_contents) {
        auto* c = in->mutable_contents();
        c->mutable_fp32_contents()->Assign(t.fp32.begin(), t.fp32.end());
        c->mutable_fp64_contents()->Assign(t.fp64.begin(), t.fp64.end());
        c->mutable_int64_contents()->Assign(t.int64.begin(), t.int64.end());
        c->mutable_int_contents()->Assign(t.int32.begin(), t.int32.end());
        for (const auto& s : t.bytes) c->add_bytes_contents(s);
        continue;
      }
      std::string* raw = req->add_raw_input_contents();
      if (t.datatype == "FP32") {
        raw->assign(reinterpret_cast<const char*>(t.fp32.data()), t.fp32.size() * 4);
      } else if (t.datatype == "FP64") {
        raw->assign(reinterpret_cast<const char*>(t.fp64.data()), t.fp64.size() * 8);
      } else if (t.datatype == "INT64") {
        raw->assign(reinterpret_cast<const char*>(t.int64.data()), t.int64.size() * 8);
      } else if (t.datatype == "INT32") {
        raw->assign(reinterpret_cast<const char*>(t.int32.data()), t.int32.size() * 4);
      } else if (t.datatype == "BYTES") {
        for (const auto& s : t.bytes) {
          const auto len = static_cast<std::uint32_t>(s.size());
          for (int b = 0; b < 4; ++b) raw->push_back(static_cast<char>((len >> (8 * b)) & 0xff));
          raw->append(s);
        }
      } else {
        Throw(ErrorCode::kInvalidArgument,
              "tensor '{}': datatype {} is not supported by the client", t.name, t.datatype);
      }
    }
    for (const auto& o : outputs) req->add_outputs()->set_name(o);
  }

  static InferResult ParseResponse(const inference::ModelInferResponse& resp) {
    InferResult r;
    r.model_name = resp.model_name();
    r.model_version = resp.model_version();
    r.id = resp.id();
    const bool raw = resp.raw_output_contents_size() > 0;
    for (int i = 0; i < resp.outputs_size(); ++i) {
      const auto& o = resp.outputs(i);
      Tensor t;
      t.name = o.name();
      t.datatype = o.datatype();
      t.shape.assign(o.shape().begin(), o.shape().end());
      if (raw) {
        ESCALA_CHECK(i < resp.raw_output_contents_size(), kDataLoss,
                     "response output '{}' has no raw contents", o.name());
        const std::string& b = resp.raw_output_contents(i);
        if (t.datatype == "FP32") {
          t.fp32.resize(b.size() / 4);
          std::memcpy(t.fp32.data(), b.data(), t.fp32.size() * 4);
        } else if (t.datatype == "FP64") {
          t.fp64.resize(b.size() / 8);
          std::memcpy(t.fp64.data(), b.data(), t.fp64.size() * 8);
        } else if (t.datatype == "INT64") {
          t.int64.resize(b.size() / 8);
          std::memcpy(t.int64.data(), b.data(), t.int64.size() * 8);
        } else if (t.datatype == "INT32") {
          t.int32.resize(b.size() / 4);
          std::memcpy(t.int32.data(), b.data(), t.int32.size() * 4);
        } else if (t.datatype == "BYTES") {
          std::size_t pos = 0;
          while (pos + 4 <= b.size()) {
            std::uint32_t len = 0;
            for (int k = 0; k < 4; ++k)
              len |= static_cast<std::uint32_t>(
                         static_cast<unsigned char>(b[pos + static_cast<std::size_t>(k)]))
                     << (8 * k);
            pos += 4;
            ESCALA_CHECK(pos + len <= b.size(), kDataLoss, "response output '{}' is truncated",
                         o.name());
            t.bytes.emplace_back(b.substr(pos, len));
            pos += len;
          }
        }
      } else {
        const auto& c = o.contents();
        t.fp32.assign(c.fp32_contents().begin(), c.fp32_contents().end());
        t.fp64.assign(c.fp64_contents().begin(), c.fp64_contents().end());
        t.int64.assign(c.int64_contents().begin(), c.int64_contents().end());
        t.int32.assign(c.int_contents().begin(), c.int_contents().end());
        t.bytes.assign(c.bytes_contents().begin(), c.bytes_contents().end());
      }
      r.outputs.push_back(std::move(t));
    }
    return r;
  }
};

Client::Client(std::string target, ClientOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(impl_->options.max_message_bytes));
  args.SetMaxSendMessageSize(static_cast<int>(impl_->options.max_message_bytes));
  if (impl_->options.max_attempts > 1) {
    // gRPC's built-in retry policy: transparent, with backoff, only for UNAVAILABLE (the request
    // was refused, so retrying cannot run it twice).
    args.SetServiceConfigJSON(fmt::format(
        R"({{"methodConfig": [{{"name": [{{"service": "inference.GRPCInferenceService"}}],
            "retryPolicy": {{"maxAttempts": {}, "initialBackoff": "0.02s", "maxBackoff": "0.5s",
            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}}}]}})",
        std::min(impl_->options.max_attempts, 5)));
  }
  const TlsOptions& tls = impl_->options.tls;
  if (tls.enabled && !tls.server_name.empty()) args.SetSslTargetNameOverride(tls.server_name);
  const auto creds = rpc::MakeChannelCredentials(tls);
  impl_->channel = grpc::CreateCustomChannel(target, creds, args);
  impl_->stub = inference::GRPCInferenceService::NewStub(impl_->channel);
}

Client::~Client() = default;

bool Client::ServerLive() {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  inference::ServerLiveRequest req;
  inference::ServerLiveResponse resp;
  Impl::Check(impl_->stub->ServerLive(&ctx, req, &resp));
  return resp.live();
}

bool Client::ServerReady() {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  inference::ServerReadyRequest req;
  inference::ServerReadyResponse resp;
  Impl::Check(impl_->stub->ServerReady(&ctx, req, &resp));
  return resp.ready();
}

bool Client::ModelReady(const std::string& model, const std::string& version) {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  inference::ModelReadyRequest req;
  req.set_name(model);
  req.set_version(version);
  inference::ModelReadyResponse resp;
  Impl::Check(impl_->stub->ModelReady(&ctx, req, &resp));
  return resp.ready();
}

ModelInfo Client::ModelMetadata(const std::string& model, const std::string& version) {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  inference::ModelMetadataRequest req;
  req.set_name(model);
  req.set_version(version);
  inference::ModelMetadataResponse resp;
  Impl::Check(impl_->stub->ModelMetadata(&ctx, req, &resp));
  ModelInfo info;
  info.name = resp.name();
  info.versions.assign(resp.versions().begin(), resp.versions().end());
  info.platform = resp.platform();
  for (const auto& t : resp.inputs())
    info.inputs.push_back({t.name(), t.datatype(), {t.shape().begin(), t.shape().end()}});
  for (const auto& t : resp.outputs())
    info.outputs.push_back({t.name(), t.datatype(), {t.shape().begin(), t.shape().end()}});
  return info;
}

InferResult Client::Infer(const std::string& model, const std::vector<Tensor>& inputs,
                          const std::vector<std::string>& outputs, const std::string& version) {
  inference::ModelInferRequest req;
  impl_->BuildRequest(model, inputs, outputs, version, &req);
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  inference::ModelInferResponse resp;
  Impl::Check(impl_->stub->ModelInfer(&ctx, req, &resp));
  return Impl::ParseResponse(resp);
}

InferResult Client::InferFeatures(const std::string& model, ConstMatrixViewF x,
                                  const std::vector<std::string>& outputs) {
  std::vector<float> values(static_cast<std::size_t>(x.rows() * x.cols()));
  for (std::int64_t i = 0; i < x.rows(); ++i) {
    std::memcpy(values.data() + i * x.cols(), x.row(i), static_cast<std::size_t>(x.cols()) * 4);
  }
  return Infer(model, {Tensor::Fp32("features", {x.rows(), x.cols()}, std::move(values))}, outputs);
}

std::future<InferResult> Client::InferAsync(const std::string& model, std::vector<Tensor> inputs,
                                            std::vector<std::string> outputs, std::string version) {
  struct Call {
    grpc::ClientContext ctx;
    inference::ModelInferRequest req;
    inference::ModelInferResponse resp;
    std::promise<InferResult> promise;
  };
  auto call = std::make_shared<Call>();
  impl_->BuildRequest(model, inputs, outputs, version, &call->req);
  impl_->Prepare(&call->ctx);
  auto future = call->promise.get_future();
  impl_->stub->async()->ModelInfer(&call->ctx, &call->req, &call->resp, [call](grpc::Status s) {
    try {
      Impl::Check(s);
      call->promise.set_value(Impl::ParseResponse(call->resp));
    } catch (...) {
      call->promise.set_exception(std::current_exception());
    }
  });
  return future;
}

void Client::LoadModel(const std::string& model) {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  inference::RepositoryModelLoadRequest req;
  req.set_model_name(model);
  inference::RepositoryModelLoadResponse resp;
  Impl::Check(impl_->stub->RepositoryModelLoad(&ctx, req, &resp));
}

void Client::UnloadModel(const std::string& model) {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  inference::RepositoryModelUnloadRequest req;
  req.set_model_name(model);
  inference::RepositoryModelUnloadResponse resp;
  Impl::Check(impl_->stub->RepositoryModelUnload(&ctx, req, &resp));
}

}  // namespace escala::serving
