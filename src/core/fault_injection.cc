#include "escala/core/fault_injection.h"

#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace escala {

namespace {

// An integer from the environment, or `fallback` when unset or not a number.
int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr) return fallback;
  int out = fallback;
  const std::string_view s(v);
  std::from_chars(s.data(), s.data() + s.size(), out);
  return out;
}

int CurrentRank() {
  return EnvInt("ESCALA_RANK", EnvInt("RANK", 0));
}

}  // namespace

void FaultPoint(std::string_view point, std::string_view path) {
  const char* env = std::getenv("ESCALA_FAULT");
  if (env == nullptr || *env == '\0') return;
  std::string_view spec(env);
  int rank = -1;  // any
  if (const auto at = spec.rfind('@'); at != std::string_view::npos) {
    std::from_chars(spec.data() + at + 1, spec.data() + spec.size(), rank);
    spec = spec.substr(0, at);
  }
  std::string_view suffix;
  if (const auto colon = spec.find(':'); colon != std::string_view::npos) {
    suffix = spec.substr(colon + 1);
    spec = spec.substr(0, colon);
  }
  if (spec != point || (!suffix.empty() && !path.ends_with(suffix))) return;
  if ((rank >= 0 && rank != CurrentRank()) || EnvInt("ESCALA_RESTART_COUNT", 0) != 0) return;
  std::fprintf(stderr, "escala: fault injection (ESCALA_FAULT=%s): killed at %.*s %.*s\n", env,
               static_cast<int>(point.size()), point.data(), static_cast<int>(path.size()),
               path.data());
  std::fflush(stderr);
  std::raise(SIGKILL);
}

}  // namespace escala
