// Building models from a description (CLI flags, config files) and (de)serialising them.
#ifndef ESCALA_MODELS_FACTORY_H_
#define ESCALA_MODELS_FACTORY_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "escala/models/model.h"

namespace escala::models {

struct ModelSpec {
  // "linear" (regression), "logistic" (binary), "softmax" (multiclass) or "mlp" (any task).
  // ("gbdt" is registered too, but trained by train::TrainGbdt: MakeModel refuses it.)
  std::string kind = "logistic";
  // Required for "mlp"; implied by the kind otherwise.
  Task task = Task::kBinary;
  std::int64_t num_features = 0;
  int num_classes = 0;  // multiclass: >= 2
  std::vector<std::int64_t> hidden = {256, 256};
  Activation activation = Activation::kReLU;
  float dropout = 0.0f;
};

// The registered model kinds: "linear", "logistic", "softmax", "mlp", "gbdt".
std::vector<std::string> ModelKinds();

// Task implied by a kind ("linear" -> regression, ...; "mlp" -> mlp_task); throws
// kInvalidArgument naming the registered kinds for an unknown one.
Task TaskForKind(std::string_view kind, Task mlp_task);

// The largest model MakeModel() builds: 2^31 parameters (8 GiB of float32 weights).
inline constexpr double kMaxParameters = 2147483648.0;

// Builds an uninitialised model (parameters zero); call Initialize(seed) before training.
// Throws kInvalidArgument for an mlp without hidden layers, kResourceExhausted past
// kMaxParameters (before allocating).
std::unique_ptr<GradientModel> MakeModel(const ModelSpec& spec);

// Stable binary form of any registered kind (the escala.model.v1.Model protobuf message):
// structure and parameters.
std::string SerializeModel(const Model& model);
// Throws kDataLoss for bytes that do not parse, kInvalidArgument for an unknown kind or an
// inconsistent model (e.g. a parameter count that does not match the structure).
std::unique_ptr<Model> ParseModel(std::string_view bytes);
// ParseModel for a model that goes on training (a checkpoint, a warm start): kInvalidArgument
// for a kind that is not a GradientModel.
std::unique_ptr<GradientModel> ParseGradientModel(std::string_view bytes);

}  // namespace escala::models

#endif  // ESCALA_MODELS_FACTORY_H_
