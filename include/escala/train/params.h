// The declared parameters of training from a table (TrainSpec, escala/train/estimator.h): the
// one place that states each parameter's name, type, default, range and help. `escala train`'s
// flags and config keys, Validate(TrainSpec)'s range checks and docs/parameters.md all come
// from this table (escala/core/params.h).
#ifndef ESCALA_TRAIN_PARAMS_H_
#define ESCALA_TRAIN_PARAMS_H_

#include "escala/core/params.h"
#include "escala/train/estimator.h"

namespace escala::train {

// Built on first use; immutable and safe to share.
const ParamTable<TrainSpec>& TrainParams();

}  // namespace escala::train

#endif  // ESCALA_TRAIN_PARAMS_H_
