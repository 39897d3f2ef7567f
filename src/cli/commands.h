// Registration of the `escala` subcommands. Each module that contributes a subcommand has one
// Register* function here; main.cc calls them explicitly (no static registration).
#ifndef ESCALA_CLI_COMMANDS_H_
#define ESCALA_CLI_COMMANDS_H_

#include <string>

#include <CLI/CLI.hpp>

namespace escala::cli {

// "escala 0.1.0 (CUDA: no, ...)".
std::string VersionString();

// `escala info`: build configuration, threads, GPU devices.
void RegisterInfo(CLI::App& app);
void RegisterParams(CLI::App& app);

// `escala convert`: parse data files once into NPY (src/cli/cmd_data.cc).
void RegisterConvert(CLI::App& app);
// `escala datagen`: write a synthetic dataset (src/cli/cmd_data.cc).
void RegisterDatagen(CLI::App& app);

// `escala stats`: per-column statistics, correlations, outliers, duplicates (cmd_stats.cc).
void RegisterStats(CLI::App& app);
// `escala train` and `escala evaluate` (cmd_train.cc).
void RegisterTrain(CLI::App& app);
void RegisterEvaluate(CLI::App& app);
// `escala serve` and `escala score` (cmd_serve.cc).
void RegisterServe(CLI::App& app);
void RegisterScore(CLI::App& app);
// `escala export`: a bundle as one ONNX graph (cmd_export.cc).
void RegisterExport(CLI::App& app);
// `escala query`: send rows to a running server (cmd_serve.cc).
void RegisterQuery(CLI::App& app);
// `escala launch` (start the local workers of a distributed job) and `escala coordinator` (a
// job's coordinator on its own).
void RegisterDist(CLI::App& app);

}  // namespace escala::cli

#endif  // ESCALA_CLI_COMMANDS_H_
