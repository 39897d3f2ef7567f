// `escala export`: a model bundle (or an XGBoost model file) as one ONNX graph
// (escala/io/onnx_export.h, docs/serving.md).
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli/commands.h"
#include "escala/core/error.h"
#include "escala/io/model_file.h"
#include "escala/io/onnx_export.h"

namespace escala::cli {

namespace {

struct ExportFlags {
  std::string model;
  std::string onnx;
  int opset = 17;
};

void RunExport(const ExportFlags& f) {
  ESCALA_CHECK(f.opset >= io::kOnnxMinOpset && f.opset <= io::kOnnxMaxOpset, kInvalidArgument,
               "--opset {} is out of range (ONNX opsets {} to {} are supported)", f.opset,
               io::kOnnxMinOpset, io::kOnnxMaxOpset);
  const io::ModelBundle bundle = io::LoadModelFile(f.model);
  io::OnnxExportOptions options;
  options.opset = f.opset;
  io::ExportOnnxFile(bundle, f.onnx, options);
  fmt::print("wrote {} (ONNX opset {}, ai.onnx.ml 3): {} input(s), {} task\n", f.onnx, f.opset,
             bundle.input_schema().num_fields(), models::TaskName(bundle.model->task()));
}

}  // namespace

void RegisterExport(CLI::App& app) {
  auto f = std::make_shared<ExportFlags>();
  auto* cmd = app.add_subcommand(
      "export", "Export a model bundle (pipeline and model) as one ONNX graph (docs/serving.md)");
  cmd->add_option("--model", f->model, "Model bundle (or an XGBoost model .json / .ubj)")
      ->required();
  cmd->add_option("--onnx", f->onnx, "The ONNX file to write (atomically)")->required();
  cmd->add_option("--opset", f->opset, "Default-domain ONNX opset, 13 to 17")
      ->capture_default_str();
  cmd->callback([f] { RunExport(*f); });
}

}  // namespace escala::cli
