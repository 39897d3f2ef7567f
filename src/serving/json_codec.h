// The Open Inference Protocol's REST bodies (JSON, KServe v2) <-> the protocol's own messages,
// so that a REST request runs through exactly the gRPC path (codec.h validates and decodes the
// message; server.cc runs it). Protobuf and JSON only: unit-tested directly.
//
// An inference request's tensors become typed contents (BYTES elements are JSON strings; null is
// a missing value: NaN in FP32/FP64 data, "" in BYTES data); `data` may be flat or nested
// (row-major), and its element count must match the shape. A response's outputs (raw or typed
// contents) become flat `data` arrays. Errors throw escala::Error(kInvalidArgument) naming the
// field: "inputs[1].data: 5 values for shape [2,3]".
#ifndef ESCALA_SRC_SERVING_JSON_CODEC_H_
#define ESCALA_SRC_SERVING_JSON_CODEC_H_

#include <string>
#include <string_view>

#include "inference/open_inference.pb.h"

namespace escala::serving::internal {

// Fills everything but model_name and model_version (the URL's) from a request body: its JSON,
// and for Triton's binary tensor data extension the bytes after it (`binary`: an input whose
// parameters hold binary_data_size takes that many bytes of it, in input order, instead of
// `data`; little-endian, BYTES elements as a 4-byte length and the bytes).
void ParseInferRequest(std::string_view json, std::string_view binary,
                       inference::ModelInferRequest* out);
inline void ParseInferRequest(std::string_view json, inference::ModelInferRequest* out) {
  ParseInferRequest(json, {}, out);
}

// Every output as JSON data.
std::string InferResponseToJson(const inference::ModelInferResponse& response);
// A response body: the JSON (its first json_size bytes), then the binary data of each output the
// request asks for in binary form (outputs[i].parameters.binary_data, or the request's
// parameters.binary_data_output), whose JSON then holds parameters.binary_data_size, not data.
struct ResponseBody {
  std::string bytes;
  std::size_t json_size = 0;
};
ResponseBody InferResponseToBody(const inference::ModelInferResponse& response,
                                 const inference::ModelInferRequest& request);

std::string ServerMetadataToJson(const inference::ServerMetadataResponse& response);
std::string ModelMetadataToJson(const inference::ModelMetadataResponse& response);
std::string ModelStatisticsToJson(const inference::ModelStatisticsResponse& response);
std::string RepositoryIndexToJson(const inference::RepositoryIndexResponse& response);

// The "ready" member of a repository index request; an empty body is {}.
bool ParseRepositoryIndexReady(std::string_view body);
// Checks that a non-empty body is a JSON object (a load or unload request's parameters).
void CheckJsonObject(std::string_view body);

// {"error": message}
std::string ErrorJson(std::string_view message);

}  // namespace escala::serving::internal

#endif  // ESCALA_SRC_SERVING_JSON_CODEC_H_
