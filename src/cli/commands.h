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

// `escala launch` (start the local workers of a distributed job) and `escala coordinator` (a
// job's coordinator on its own).
void RegisterDist(CLI::App& app);

}  // namespace escala::cli

#endif  // ESCALA_CLI_COMMANDS_H_
