#include "escala/models/factory.h"

#include <algorithm>

#include "escala/core/error.h"
#include "escala/models/linear.h"
#include "escala/models/mlp.h"
#include "models/model_proto.h"

namespace escala::models {

namespace pb = escala::model::v1;

Task TaskForKind(std::string_view kind, Task mlp_task) {
  if (kind == "linear") return Task::kRegression;
  if (kind == "logistic") return Task::kBinary;
  if (kind == "softmax") return Task::kMulticlass;
  if (kind == "mlp") return mlp_task;
  Throw(ErrorCode::kInvalidArgument,
        "unknown model kind '{}' (expected linear, logistic, softmax or mlp)", kind);
}

namespace {

// Parameters of the model a spec describes (in double, so absurd widths cannot overflow).
double ParameterCount(const ModelSpec& spec, Task task) {
  const double outputs = task == Task::kMulticlass ? std::max(spec.num_classes, 1) : 1;
  double count = 0, in = static_cast<double>(spec.num_features);
  if (spec.kind == "mlp") {
    for (const auto h : spec.hidden) {
      count += (in + 1) * static_cast<double>(h);
      in = static_cast<double>(h);
    }
  }
  return count + (in + 1) * outputs;
}

}  // namespace

std::unique_ptr<Model> MakeModel(const ModelSpec& spec) {
  const Task task = TaskForKind(spec.kind, spec.task);
  ESCALA_CHECK(spec.kind != "mlp" || !spec.hidden.empty(), kInvalidArgument,
               "an mlp needs at least one hidden layer (--hidden); without one use --model "
               "linear, logistic or softmax");
  ESCALA_CHECK(spec.num_features >= 1, kInvalidArgument,
               "a model needs at least one feature, got {}", spec.num_features);
  for (const auto h : spec.hidden) {
    ESCALA_CHECK(h >= 1, kInvalidArgument, "hidden layer widths must be >= 1, got {}", h);
  }
  const double params = ParameterCount(spec, task);
  ESCALA_CHECK(params <= kMaxParameters, kResourceExhausted,
               "the model would have {:.3g} parameters ({:.1f} GiB of weights, and as much again "
               "for gradients and optimizer state); the limit is {:.3g}: check --hidden and the "
               "number of features ({})",
               params, params * 4 / (1 << 30), kMaxParameters, spec.num_features);
  if (spec.kind == "mlp") {
    MlpSpec m;
    m.task = task;
    m.num_features = spec.num_features;
    m.num_classes = spec.num_classes;
    m.hidden = spec.hidden;
    m.activation = spec.activation;
    m.dropout = spec.dropout;
    return std::make_unique<Mlp>(m);
  }
  return std::make_unique<LinearModel>(task, spec.num_features, spec.num_classes);
}

namespace {

pb::Task TaskToProto(Task t) {
  switch (t) {
    case Task::kRegression:
      return pb::TASK_REGRESSION;
    case Task::kBinary:
      return pb::TASK_BINARY;
    case Task::kMulticlass:
      return pb::TASK_MULTICLASS;
  }
  return pb::TASK_UNSPECIFIED;
}

Task TaskFromProto(pb::Task t) {
  switch (t) {
    case pb::TASK_REGRESSION:
      return Task::kRegression;
    case pb::TASK_BINARY:
      return Task::kBinary;
    case pb::TASK_MULTICLASS:
      return Task::kMulticlass;
    default:
      Throw(ErrorCode::kInvalidArgument, "model has no valid task ({})", static_cast<int>(t));
  }
}

pb::Activation ActivationToProto(Activation a) {
  switch (a) {
    case Activation::kIdentity:
      return pb::ACTIVATION_IDENTITY;
    case Activation::kReLU:
      return pb::ACTIVATION_RELU;
    case Activation::kTanh:
      return pb::ACTIVATION_TANH;
    case Activation::kSigmoid:
      return pb::ACTIVATION_SIGMOID;
    case Activation::kGELU:
      return pb::ACTIVATION_GELU;
  }
  return pb::ACTIVATION_UNSPECIFIED;
}

Activation ActivationFromProto(pb::Activation a) {
  switch (a) {
    case pb::ACTIVATION_IDENTITY:
      return Activation::kIdentity;
    case pb::ACTIVATION_RELU:
      return Activation::kReLU;
    case pb::ACTIVATION_TANH:
      return Activation::kTanh;
    case pb::ACTIVATION_SIGMOID:
      return Activation::kSigmoid;
    case pb::ACTIVATION_GELU:
      return Activation::kGELU;
    default:
      Throw(ErrorCode::kInvalidArgument, "model has no valid activation ({})", static_cast<int>(a));
  }
}

}  // namespace

void ModelToProto(const Model& model, pb::Model* out) {
  out->Clear();
  out->set_kind(std::string(model.kind()));
  out->set_task(TaskToProto(model.task()));
  out->set_num_features(model.num_features());
  out->set_num_outputs(model.num_outputs());
  if (const auto* mlp = dynamic_cast<const Mlp*>(&model)) {
    for (auto h : mlp->spec().hidden) out->add_hidden(h);
    out->set_activation(ActivationToProto(mlp->spec().activation));
    out->set_dropout(mlp->spec().dropout);
  }
  const auto p = model.parameters();
  out->mutable_parameters()->Assign(p.begin(), p.end());
  if (model.target_shift() != 0.0 || model.target_scale() != 1.0) {
    out->set_target_shift(model.target_shift());
    out->set_target_scale(model.target_scale());
  }
}

std::unique_ptr<Model> ModelFromProto(const pb::Model& proto) {
  ModelSpec spec;
  spec.kind = proto.kind();
  spec.task = TaskFromProto(proto.task());
  spec.num_features = proto.num_features();
  if (spec.task == Task::kMulticlass) spec.num_classes = static_cast<int>(proto.num_outputs());
  if (spec.kind == "mlp") {
    spec.hidden.assign(proto.hidden().begin(), proto.hidden().end());
    spec.activation = ActivationFromProto(proto.activation());
    spec.dropout = proto.dropout();
  }
  auto model = MakeModel(spec);
  ESCALA_CHECK(model->task() == spec.task, kInvalidArgument, "model kind '{}' cannot have task {}",
               spec.kind, TaskName(spec.task));
  ESCALA_CHECK(model->num_outputs() == proto.num_outputs(), kInvalidArgument,
               "model declares {} outputs but its structure has {}", proto.num_outputs(),
               model->num_outputs());
  ESCALA_CHECK(static_cast<std::size_t>(proto.parameters_size()) == model->parameters().size(),
               kInvalidArgument, "model has {} parameters but its structure needs {}",
               proto.parameters_size(), model->parameters().size());
  std::copy(proto.parameters().begin(), proto.parameters().end(), model->parameters().begin());
  if (proto.target_scale() != 0.0 || proto.target_shift() != 0.0) {
    model->SetTargetScaling(proto.target_shift(),
                            proto.target_scale() == 0.0 ? 1.0 : proto.target_scale());
  }
  return model;
}

std::string SerializeModel(const Model& model) {
  pb::Model proto;
  ModelToProto(model, &proto);
  return proto.SerializeAsString();
}

std::unique_ptr<Model> ParseModel(std::string_view bytes) {
  pb::Model proto;
  ESCALA_CHECK(proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())), kDataLoss,
               "model bytes do not parse ({} bytes)", bytes.size());
  return ModelFromProto(proto);
}

}  // namespace escala::models
