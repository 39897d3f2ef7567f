// Shared by the fuzz targets: escala::Error is the expected way for a parser to refuse input;
// anything else escaping a target (another exception, a crash, a sanitizer report) is a finding.
#ifndef ESCALA_FUZZ_FUZZ_UTIL_H_
#define ESCALA_FUZZ_FUZZ_UTIL_H_

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <unistd.h>

#include "escala/core/error.h"
#include "escala/core/logging.h"

namespace escala::fuzz {

inline std::string_view AsText(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Runs `body`, swallowing escala::Error only. Warnings about skipped rows would flood the
// output input after input, so logging is off.
template <typename Body>
void ExpectOnlyEscalaErrors(Body&& body) {
  static const bool quiet = [] {
    escala::SetLogLevel(escala::LogLevel::kOff);
    return true;
  }();
  (void)quiet;
  try {
    body();
  } catch (const escala::Error&) {
  }
}

// For the readers that take a path: writes the bytes to a file in a per-process directory
// (fuzzers may run in parallel) and returns its path. The file is reused input after input.
inline std::string WriteTemp(const std::uint8_t* data, std::size_t size, std::string_view suffix) {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("escala-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  const std::string path = (dir / ("input" + std::string(suffix))).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

}  // namespace escala::fuzz

#endif  // ESCALA_FUZZ_FUZZ_UTIL_H_
