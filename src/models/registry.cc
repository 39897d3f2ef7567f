#include "models/registry.h"

#include <algorithm>
#include <array>
#include <string>

#include "escala/core/error.h"

namespace escala::models {

namespace pb = escala::model::v1;

namespace {

constexpr std::array<const ModelFamily*, 6> kFamilies = {&kLinearFamily,  &kLogisticFamily,
                                                         &kSoftmaxFamily, &kMlpFamily,
                                                         &kGbdtFamily,    &kRandomForestFamily};

std::string KindList() {
  std::string out;
  for (std::size_t i = 0; i < kFamilies.size(); ++i) {
    if (i > 0) out += i + 1 == kFamilies.size() ? " or " : ", ";
    out += kFamilies[i]->kind;
  }
  return out;
}

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

// The fields every model has, and the checks that a family's structure agrees with them.
void SaveCommon(const Model& model, pb::Model* out) {
  out->set_kind(std::string(model.kind()));
  out->set_task(TaskToProto(model.task()));
  out->set_num_features(model.num_features());
  out->set_num_outputs(model.num_outputs());
  if (model.target_shift() != 0.0 || model.target_scale() != 1.0) {
    out->set_target_shift(model.target_shift());
    out->set_target_scale(model.target_scale());
  }
}

void CheckLoaded(const pb::Model& proto, Task task, const Model& model) {
  ESCALA_CHECK(model.task() == task, kInvalidArgument, "model kind '{}' cannot have task {}",
               proto.kind(), TaskName(task));
  ESCALA_CHECK(model.num_features() == proto.num_features(), kInvalidArgument,
               "model declares {} features but its structure has {}", proto.num_features(),
               model.num_features());
  ESCALA_CHECK(model.num_outputs() == proto.num_outputs(), kInvalidArgument,
               "model declares {} outputs but its structure has {}", proto.num_outputs(),
               model.num_outputs());
}

}  // namespace

const ModelFamily& FindModelFamily(std::string_view kind) {
  for (const auto* f : kFamilies) {
    if (f->kind == kind) return *f;
  }
  Throw(ErrorCode::kInvalidArgument, "unknown model kind '{}' (expected {})", kind, KindList());
}

void SaveParameters(const GradientModel& model, pb::Model* out) {
  const auto p = model.parameters();
  out->mutable_parameters()->Assign(p.begin(), p.end());
}

void LoadParameters(const pb::Model& proto, GradientModel& model) {
  ESCALA_CHECK(static_cast<std::size_t>(proto.parameters_size()) == model.parameters().size(),
               kInvalidArgument, "model has {} parameters but its structure needs {}",
               proto.parameters_size(), model.parameters().size());
  std::copy(proto.parameters().begin(), proto.parameters().end(), model.parameters().begin());
}

std::vector<std::string> ModelKinds() {
  std::vector<std::string> out;
  for (const auto* f : kFamilies) out.emplace_back(f->kind);
  return out;
}

Task TaskForKind(std::string_view kind, Task mlp_task) {
  return FindModelFamily(kind).task(mlp_task);
}

std::unique_ptr<GradientModel> MakeModel(const ModelSpec& spec) {
  const ModelFamily& family = FindModelFamily(spec.kind);
  const Task task = family.task(spec.task);
  ESCALA_CHECK(family.make != nullptr, kInvalidArgument,
               "a {} model is not built for gradient training (train it with train::TrainGbdt or "
               "escala train)",
               spec.kind);
  ESCALA_CHECK(spec.num_features >= 1, kInvalidArgument,
               "a model needs at least one feature, got {}", spec.num_features);
  const double params = family.parameter_count(spec, task);
  ESCALA_CHECK(params <= kMaxParameters, kResourceExhausted,
               "the model would have {:.3g} parameters ({:.1f} GiB of weights, and as much again "
               "for gradients and optimizer state); the limit is {:.3g}: check --hidden and the "
               "number of features ({})",
               params, params * 4 / (1 << 30), kMaxParameters, spec.num_features);
  return family.make(spec, task);
}

std::string SerializeModel(const Model& model) {
  pb::Model proto;
  SaveCommon(model, &proto);
  FindModelFamily(model.kind()).save(model, &proto);
  return proto.SerializeAsString();
}

std::unique_ptr<Model> ParseModel(std::string_view bytes) {
  pb::Model proto;
  ESCALA_CHECK(proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())), kDataLoss,
               "model bytes do not parse ({} bytes)", bytes.size());
  const Task task = TaskFromProto(proto.task());
  auto model = FindModelFamily(proto.kind()).load(proto, task);
  CheckLoaded(proto, task, *model);
  if (proto.target_scale() != 0.0 || proto.target_shift() != 0.0) {
    model->SetTargetScaling(proto.target_shift(),
                            proto.target_scale() == 0.0 ? 1.0 : proto.target_scale());
  }
  return model;
}

std::unique_ptr<GradientModel> ParseGradientModel(std::string_view bytes) {
  auto model = ParseModel(bytes);
  auto* g = dynamic_cast<GradientModel*>(model.get());
  ESCALA_CHECK(g != nullptr, kInvalidArgument,
               "a {} model is not trained by gradients and cannot continue training here",
               model->kind());
  model.release();
  return std::unique_ptr<GradientModel>(g);
}

}  // namespace escala::models
