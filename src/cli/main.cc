// The `escala` command-line tool.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/config_file.h"
#include "escala/core/error.h"
#include "escala/core/logging.h"
#include "escala/core/parallel.h"

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
    if (threads > 0) {
      escala::SetNumThreads(threads);
      // Recorded for code that sizes thread pools later (a distributed worker's share of cores).
      setenv("ESCALA_NUM_THREADS", std::to_string(threads).c_str(), 1);
    }
  });

  escala::cli::RegisterInfo(app);
  escala::cli::RegisterConvert(app);
  escala::cli::RegisterDatagen(app);
  escala::cli::RegisterStats(app);
  escala::cli::RegisterTrain(app);
  escala::cli::RegisterEvaluate(app);
  escala::cli::RegisterServe(app);
  escala::cli::RegisterScore(app);
  escala::cli::RegisterQuery(app);
  escala::cli::RegisterDist(app);
  // After the subcommands: the file's keys are checked against their options.
  escala::cli::GuardConfigOption(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const escala::Error& e) {
    std::fprintf(stderr, "escala: error: %s\n", e.what());
    return e.code() == escala::ErrorCode::kInvalidArgument ? 2 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "escala: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
