// Logging for escala and for programs built on it, through spdlog.
//
// The level comes from, in order of precedence: SetLogLevel() (the CLI's --log-level flag calls
// it), the ESCALA_LOG_LEVEL environment variable (trace, debug, info, warn, error, off), and the
// default "info". Records go to stderr so that stdout stays free for a command's results.
// In a distributed job each process sets a tag (e.g. "rank 2/4") that prefixes every record.
//
// Thread-safety: all functions may be called from any thread.
#ifndef ESCALA_CORE_LOGGING_H_
#define ESCALA_CORE_LOGGING_H_

#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace escala {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kOff };

// Parses "trace" ... "off" (case-insensitive; "warning" is accepted). Throws kInvalidArgument.
LogLevel ParseLogLevel(std::string_view text);

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();

// Applies ESCALA_LOG_LEVEL if set. Called once by the logger's first use; call again after
// changing the environment.
void InitLoggingFromEnv();

// Sets the prefix shown on every record, e.g. "rank 1/4"; empty removes it.
void SetLogTag(std::string_view tag);

// The process-wide logger used by the ESCALA_LOG_* macros.
spdlog::logger& Logger();

}  // namespace escala

#define ESCALA_LOG_TRACE(...) ::escala::Logger().trace(__VA_ARGS__)
#define ESCALA_LOG_DEBUG(...) ::escala::Logger().debug(__VA_ARGS__)
#define ESCALA_LOG_INFO(...) ::escala::Logger().info(__VA_ARGS__)
#define ESCALA_LOG_WARN(...) ::escala::Logger().warn(__VA_ARGS__)
#define ESCALA_LOG_ERROR(...) ::escala::Logger().error(__VA_ARGS__)

#endif  // ESCALA_CORE_LOGGING_H_
