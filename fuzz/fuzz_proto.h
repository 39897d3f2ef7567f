// For the targets that parse protobuf: its "invalid UTF-8" log lines are expected for fuzzed
// input (the parse fails, and escala reports that) and would flood the output.
#ifndef ESCALA_FUZZ_FUZZ_PROTO_H_
#define ESCALA_FUZZ_FUZZ_PROTO_H_

#include <string>

#include <google/protobuf/stubs/logging.h>

namespace escala::fuzz {

inline void SilenceProtobufLog() {
  static const bool done = [] {
    google::protobuf::SetLogHandler(
        [](google::protobuf::LogLevel, const char*, int, const std::string&) {});
    return true;
  }();
  (void)done;
}

}  // namespace escala::fuzz

#endif  // ESCALA_FUZZ_FUZZ_PROTO_H_
