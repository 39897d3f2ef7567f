// Model files that escala scores and serves: its own bundles, and models trained elsewhere read
// into a bundle (XGBoost's JSON and UBJSON model files, escala/models/xgboost.h; ONNX models,
// escala/models/onnx.h).
//
// An imported model's bundle has an identity pipeline over the model's own features, in order,
// as float32 inputs (a categorical feature takes its category code) that may be missing (NaN goes
// the way each split learned), so `escala score`, the Predictor and the server use it as they use
// a bundle. Its class names are "0", "1", ... (XGBoost's labels), and its training_config records
// where it came from ("source": "xgboost", "xgboost_objective", "xgboost_version").
#ifndef ESCALA_IO_MODEL_FILE_H_
#define ESCALA_IO_MODEL_FILE_H_

#include <string>
#include <string_view>

#include "escala/io/bundle.h"
#include "escala/models/onnx.h"
#include "escala/models/xgboost.h"

namespace escala::io {

enum class ModelFormat { kBundle, kXgboost, kOnnx };

// Told from the file's content: a bundle's magic, a JSON/UBJSON object, an ONNX ModelProto.
ModelFormat DetectModelFormat(std::string_view bytes);

// Loads a bundle or an imported model (by content, whatever the file's name). Errors name the
// path; a file of no known kind is reported as not being an escala bundle (as not being an ONNX
// model when it is named *.onnx).
ModelBundle LoadModelFile(const std::string& path);

// The bundle serving an imported XGBoost model (see above). `name` becomes the bundle's name.
ModelBundle BundleFromXgboost(models::XgboostModel model, std::string name);

// The bundle serving an ONNX graph (escala/models/onnx.h): its features are the graph's numeric
// inputs' columns (OnnxModel::feature_names), its classes the labels the graph declares, and its
// training_config records "source": "onnx", the producer, the opset and the graph's prediction
// and label outputs. kInvalidArgument when the graph cannot be read as a model.
ModelBundle BundleFromOnnx(std::shared_ptr<const models::OnnxGraph> graph, std::string name);

}  // namespace escala::io

#endif  // ESCALA_IO_MODEL_FILE_H_
