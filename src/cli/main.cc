// The `escala` command-line tool.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <new>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/config_file.h"
#include "escala/core/error.h"
#include "escala/core/logging.h"
#include "escala/core/parallel.h"

namespace {

// Messages quote file contents (column names, values): control characters are shown escaped
// so that a hostile file cannot drive the terminal.
void PrintError(const char* kind, std::string_view message) {
  std::string safe;
  for (const unsigned char c : message) {
    if (c < 0x20 && c != '\n' && c != '\t') {
      safe += fmt::format("\\x{:02x}", c);
    } else if (c == 0x7f) {
      safe += "\\x7f";
    } else {
      safe.push_back(static_cast<char>(c));
    }
  }
  std::fprintf(stderr, "escala: %s: %s\n", kind, safe.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "escala: machine learning at scale.\n"
      "Explore and clean data, fit feature pipelines, train across workers, serve and retrain."};
  app.set_version_flag("--version", escala::cli::VersionString());
  // One config file for every subcommand: a [train] section holds `escala train`'s options
  // (keys are the long option names), [serve] `escala serve`'s, and so on. A flag given on the
  // command line wins over the file. Unknown keys and sections, malformed lines and files in
  // other formats (YAML, JSON) are errors naming the file and line (cli/config_file.h).
  app.set_config("--config", "",
                 "Read options from a TOML/INI file: a [train], [serve], ... section per "
                 "subcommand, keys are the long option names");
  app.require_subcommand(1);
  // Global flags (--threads, --log-level) may also follow the subcommand.
  app.fallthrough();

  std::string log_level;
  int threads = 0;
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error or off (default: $ESCALA_LOG_LEVEL or info)");
  app.add_option("--threads", threads,
                 "Worker threads for parallel loops (default: $ESCALA_NUM_THREADS or all cores)")
      ->check(CLI::NonNegativeNumber);
  app.parse_complete_callback([&] {
    if (!log_level.empty()) escala::SetLogLevel(escala::ParseLogLevel(log_level));
    if (threads > 0) escala::SetNumThreads(threads);
  });

  escala::cli::RegisterInfo(app);
  escala::cli::RegisterParams(app);
  escala::cli::RegisterConvert(app);
  escala::cli::RegisterDatagen(app);
  escala::cli::RegisterStats(app);
  escala::cli::RegisterTrain(app);
  escala::cli::RegisterEvaluate(app);
  escala::cli::RegisterServe(app);
  escala::cli::RegisterScore(app);
  escala::cli::RegisterExport(app);
  escala::cli::RegisterQuery(app);
  escala::cli::RegisterDist(app);
  // After the subcommands: the file's keys are checked against their options.
  escala::cli::GuardConfigOption(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a command's own status (escala launch: the failed worker's)
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; a bad flag or value is an invalid argument: status 2.
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  } catch (const escala::Error& e) {
    PrintError("error", e.what());
    return e.code() == escala::ErrorCode::kInvalidArgument ? 2 : 1;
  } catch (const std::filesystem::filesystem_error& e) {
    // A path the user gave that cannot be created or read (e.g. --checkpoint-dir under /proc).
    PrintError("error", fmt::format("IO: {}: {}", e.path1().string(), e.code().message()));
    return 1;
  } catch (const std::bad_alloc&) {
    PrintError("error", "ResourceExhausted: out of memory");
    return 1;
  } catch (const std::exception& e) {
    PrintError("internal error", e.what());
    return 1;
  }
  return 0;
}
