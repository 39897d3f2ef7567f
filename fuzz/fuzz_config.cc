// `--config FILE`: CheckConfigFile's line, section and key checks against a small command tree
// shaped like escala's (global options, subcommands, a nested one, a non-configurable option);
// a file it accepts is then read by CLI11 as `escala --config FILE train` would.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/config_file.h"
#include "fuzz_util.h"

namespace {

struct Settings {
  int threads = 0;
  int epochs = 1;
  double lr = 0.1;
  std::string model = "logistic";
  std::vector<int> hidden;
  bool verbose = false;
  int port = 0;
  std::string format;
  std::string data;
};

std::unique_ptr<CLI::App> MakeApp(Settings& s) {
  auto app = std::make_unique<CLI::App>("fuzz");
  app->set_config("--config");
  app->require_subcommand(1);
  app->fallthrough();
  app->add_option("--threads", s.threads)->check(CLI::NonNegativeNumber);
  CLI::App* train = app->add_subcommand("train");
  train->add_option("--epochs", s.epochs)->check(CLI::Range(1, 1000));
  train->add_option("--lr", s.lr);
  train->add_option("-m,--model", s.model);
  train->add_option("--hidden", s.hidden);
  train->add_flag("--verbose", s.verbose);
  train->add_option("data", s.data);
  train->add_option("--seed-file", s.format)->configurable(false);
  CLI::App* serve = app->add_subcommand("serve");
  serve->add_option("--port", s.port);
  CLI::App* data = app->add_subcommand("data");
  data->add_subcommand("convert")->add_option("--format", s.format);
  escala::cli::GuardConfigOption(*app);
  return app;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace escala;
  const std::string path = fuzz::WriteTemp(data, size, ".toml");
  Settings s;
  const auto app = MakeApp(s);
  bool accepted = false;
  fuzz::ExpectOnlyEscalaErrors([&] {
    cli::CheckConfigFile(path, *app);
    accepted = true;
  });
  if (!accepted) return 0;
  const char* argv[] = {"escala", "--config", path.c_str(), "train"};
  try {
    app->parse(4, argv);
  } catch (const CLI::ParseError&) {
    // CLI11's own refusal (a value of the wrong type, out of range): escala prints it and exits.
  }
  return 0;
}
