#include "test_util/process.h"

#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "test_util/temp_dir.h"

namespace escala::testing {

ServeProcess StartServe(const std::vector<std::string>& extra_args, const std::string& log_file) {
  std::vector<std::string> argv = {CliPath(),     "serve", "--address",   "127.0.0.1",
                                   "--grpc-port", "0",     "--http-port", "0"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  ServeProcess s;
  SubprocessOptions options;
  options.output_file = log_file;
  options.pipe_stdout = true;
  s.process = std::make_unique<Subprocess>(argv, options);
  const auto line = s.process->ReadLine(std::chrono::seconds(30));
  if (!line || std::sscanf(line->c_str(), "escala serve: grpc port %d, http port %d", &s.grpc_port,
                           &s.http_port) != 2) {
    throw std::runtime_error("escala serve did not start: " + line.value_or("<no output>"));
  }
  return s;
}

}  // namespace escala::testing
