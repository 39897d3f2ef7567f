// Conversion between models and their protobuf message; used by the bundle writer (io) to
// embed the message directly rather than as opaque bytes.
#ifndef ESCALA_SRC_MODELS_MODEL_PROTO_H_
#define ESCALA_SRC_MODELS_MODEL_PROTO_H_

#include <memory>

#include "escala/model/v1/model.pb.h"
#include "escala/models/model.h"

namespace escala::models {

void ModelToProto(const Model& model, escala::model::v1::Model* out);
std::unique_ptr<Model> ModelFromProto(const escala::model::v1::Model& proto);

}  // namespace escala::models

#endif  // ESCALA_SRC_MODELS_MODEL_PROTO_H_
