// The model families, registered by kind name. Private to src/models: the public side is
// MakeModel/SerializeModel/ParseModel/ModelKinds in escala/models/factory.h.
//
// A family is one model class (LinearModel serves three kinds, one per task); its entry says how
// to build one from a ModelSpec and how to write and read the family's own fields of the
// escala.model.v1.Model message. The fields every model has (kind, task, features, outputs, target
// scaling) are written and checked by the registry, so a family handles only what is its own.
// Adding a family is one entry in the table of registry.cc.
#ifndef ESCALA_SRC_MODELS_REGISTRY_H_
#define ESCALA_SRC_MODELS_REGISTRY_H_

#include <memory>
#include <string_view>

#include "escala/model/v1/model.pb.h"
#include "escala/models/factory.h"
#include "escala/models/model.h"

namespace escala::models {

struct ModelFamily {
  std::string_view kind;
  // The task a spec of this kind trains for, given the task asked for (a linear kind implies its
  // own; an mlp takes the one asked for).
  Task (*task)(Task requested) = nullptr;
  // Parameters a spec would have, in double so that absurd widths cannot overflow; checked
  // against kMaxParameters before anything is allocated.
  double (*parameter_count)(const ModelSpec& spec, Task task) = nullptr;
  // An uninitialised model of a valid spec (task resolved; sizes checked by the registry); null
  // for a family that gradient trainers do not train.
  std::unique_ptr<GradientModel> (*make)(const ModelSpec& spec, Task task) = nullptr;
  // The family's own fields and parameters into `out`, from a model of this kind.
  void (*save)(const Model& model, escala::model::v1::Model* out) = nullptr;
  // A model of this kind from a message whose common fields were checked (task, features).
  std::unique_ptr<Model> (*load)(const escala::model::v1::Model& proto, Task task) = nullptr;
};

// The family of `kind`; kInvalidArgument listing the registered kinds otherwise.
const ModelFamily& FindModelFamily(std::string_view kind);

// The families' entries, defined next to their classes.
extern const ModelFamily kLinearFamily;
extern const ModelFamily kLogisticFamily;
extern const ModelFamily kSoftmaxFamily;
extern const ModelFamily kMlpFamily;
extern const ModelFamily kRandomForestFamily;  // trained by train::TrainForest
extern const ModelFamily kGbdtFamily;  // trained by train::TrainGbdt, not by gradients: no make

// Copies the message's parameters into a gradient model's, checking the count.
void LoadParameters(const escala::model::v1::Model& proto, GradientModel& model);
void SaveParameters(const GradientModel& model, escala::model::v1::Model* out);

}  // namespace escala::models

#endif  // ESCALA_SRC_MODELS_REGISTRY_H_
