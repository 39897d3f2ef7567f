#include "escala/core/logging.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>

#include <spdlog/sinks/stdout_color_sinks.h>

#include "escala/core/error.h"

namespace escala {
namespace {

spdlog::level::level_enum ToSpd(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
    case LogLevel::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

std::string Pattern(std::string_view tag) {
  if (tag.empty()) return "[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v";
  return fmt::format("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] [{}] %v", tag);
}

std::shared_ptr<spdlog::logger> MakeLogger() {
  auto logger = std::make_shared<spdlog::logger>(
      "escala", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  logger->set_pattern(Pattern(""));
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::warn);
  return logger;
}

void ApplyEnv(spdlog::logger& logger);

spdlog::logger& LoggerInstance() {
  // Intentionally leaked: logging must keep working during static destruction. The environment
  // is applied once, on first use, so that an explicit SetLogLevel() afterwards takes precedence.
  static std::shared_ptr<spdlog::logger>* holder = [] {
    auto* l = new std::shared_ptr<spdlog::logger>(MakeLogger());
    ApplyEnv(**l);
    return l;
  }();
  return **holder;
}

void ApplyEnv(spdlog::logger& logger) {
  const char* env = std::getenv("ESCALA_LOG_LEVEL");
  if (env == nullptr || *env == '\0') return;
  try {
    logger.set_level(ToSpd(ParseLogLevel(env)));
  } catch (const Error& e) {
    logger.warn("ignoring ESCALA_LOG_LEVEL: {}", e.message());
  }
}

}  // namespace

LogLevel ParseLogLevel(std::string_view text) {
  std::string s(text);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "trace") return LogLevel::kTrace;
  if (s == "debug") return LogLevel::kDebug;
  if (s == "info") return LogLevel::kInfo;
  if (s == "warn" || s == "warning") return LogLevel::kWarn;
  if (s == "error") return LogLevel::kError;
  if (s == "off") return LogLevel::kOff;
  Throw(ErrorCode::kInvalidArgument,
        "unknown log level '{}' (expected trace, debug, info, warn, error or off)", text);
}

void SetLogLevel(LogLevel level) {
  LoggerInstance().set_level(ToSpd(level));
}

LogLevel GetLogLevel() {
  switch (LoggerInstance().level()) {
    case spdlog::level::trace:
      return LogLevel::kTrace;
    case spdlog::level::debug:
      return LogLevel::kDebug;
    case spdlog::level::info:
      return LogLevel::kInfo;
    case spdlog::level::warn:
      return LogLevel::kWarn;
    case spdlog::level::err:
    case spdlog::level::critical:
      return LogLevel::kError;
    default:
      return LogLevel::kOff;
  }
}

void InitLoggingFromEnv() {
  ApplyEnv(LoggerInstance());
}

void SetLogTag(std::string_view tag) {
  LoggerInstance().set_pattern(Pattern(tag));
}

spdlog::logger& Logger() {
  return LoggerInstance();
}

}  // namespace escala
