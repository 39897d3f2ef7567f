// The checks `--config FILE` runs before CLI11 reads the file, so that a file escala does not
// understand fails with a message naming it instead of training with defaults.
//
// Thread-safety: free functions.
#ifndef ESCALA_CLI_CONFIG_FILE_H_
#define ESCALA_CLI_CONFIG_FILE_H_

#include <string>

#include <CLI/CLI.hpp>

namespace escala::cli {

// Throws escala::Error naming `path` (and the line and key where there is one): kNotFound when
// it cannot be read; kInvalidArgument for a format escala does not read (.yaml, .yml, .json, or
// YAML lines), bytes that are not text, a malformed line or [section] header, a section that
// names no subcommand of `app`, a key that names no option of its section (keys are the long
// option names without dashes), or an option that cannot be set from a file.
void CheckConfigFile(const std::string& path, const CLI::App& app);

// Makes `app`'s --config option run CheckConfigFile and makes CLI11 refuse keys it cannot place.
// Call after every subcommand is registered.
void GuardConfigOption(CLI::App& app);

}  // namespace escala::cli

#endif  // ESCALA_CLI_CONFIG_FILE_H_
