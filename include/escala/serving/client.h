// A client for Open Inference Protocol servers (escala's or any other): health, metadata and
// inference, synchronous or asynchronous. Used by the examples, the tests and the benchmarks.
//
// Thread-safety: a Client may be used from many threads at once; calls share one channel.
#ifndef ESCALA_SERVING_CLIENT_H_
#define ESCALA_SERVING_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "escala/core/matrix.h"
#include "escala/core/tls.h"

namespace escala::serving {

// A tensor to send or received. Exactly one of the value vectors is used, by datatype:
// FP32 -> fp32, FP64 -> fp64, INT64 -> int64, INT32 -> int32, BYTES -> bytes.
struct Tensor {
  std::string name;
  std::string datatype;
  std::vector<std::int64_t> shape;
  std::vector<float> fp32;
  std::vector<double> fp64;
  std::vector<std::int64_t> int64;
  std::vector<std::int32_t> int32;
  std::vector<std::string> bytes;

  static Tensor Fp32(std::string name, std::vector<std::int64_t> shape, std::vector<float> values);
  static Tensor Bytes(std::string name, std::vector<std::string> values);  // shape [n]
  static Tensor Fp64(std::string name, std::vector<double> values);        // shape [n]
};

struct InferResult {
  std::string model_name;
  std::string model_version;
  std::string id;
  std::vector<Tensor> outputs;
  // Throws kNotFound when the output is absent.
  const Tensor& output(std::string_view name) const;
};

struct TensorInfo {
  std::string name;
  std::string datatype;
  std::vector<std::int64_t> shape;
};

struct ModelInfo {
  std::string name;
  std::vector<std::string> versions;
  std::string platform;
  std::vector<TensorInfo> inputs;
  std::vector<TensorInfo> outputs;
};

struct ClientOptions {
  std::chrono::milliseconds timeout{10'000};  // per call
  // TLS (enabled, ca_file: the CA that signed the server's certificate; mutual, cert_file,
  // key_file: the client certificate for mutual TLS; server_name: the name expected in the
  // server's certificate when it is not the host dialled).
  TlsOptions tls;
  // Send tensors as typed contents instead of raw_input_contents.
  bool typed_contents = false;
  std::int64_t max_message_bytes = 256 << 20;
  // Attempts per call when the server answers UNAVAILABLE (e.g. a replica draining behind a load
  // balancer): the retry goes through the balancer again and lands on a healthy replica. 1
  // disables retries.
  int max_attempts = 3;
};

class Client {
 public:
  // target: "host:port".
  explicit Client(std::string target, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool ServerLive();
  bool ServerReady();
  bool ModelReady(const std::string& model, const std::string& version = "");
  ModelInfo ModelMetadata(const std::string& model, const std::string& version = "");

  // Errors come back as escala::Error with the code mapped from the gRPC status (e.g.
  // INVALID_ARGUMENT -> kInvalidArgument) and the server's message.
  InferResult Infer(const std::string& model, const std::vector<Tensor>& inputs,
                    const std::vector<std::string>& outputs = {}, const std::string& version = "");
  // Numeric features as one FP32 tensor "features" [rows, cols].
  InferResult InferFeatures(const std::string& model, ConstMatrixViewF features,
                            const std::vector<std::string>& outputs = {});
  std::future<InferResult> InferAsync(const std::string& model, std::vector<Tensor> inputs,
                                      std::vector<std::string> outputs = {},
                                      std::string version = "");

  // Repository control (Triton extension).
  void LoadModel(const std::string& model);
  void UnloadModel(const std::string& model);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace escala::serving

#endif  // ESCALA_SERVING_CLIENT_H_
