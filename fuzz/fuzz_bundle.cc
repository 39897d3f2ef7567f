// Model bundles: magic, version, the escala.io.v1.Bundle protobuf, the pipeline and model in it.
#include <cstdint>

#include "escala/io/bundle.h"
#include "fuzz_proto.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  escala::fuzz::SilenceProtobufLog();
  using namespace escala;
  fuzz::ExpectOnlyEscalaErrors(
      [&] { io::ModelBundle::ParseFromString(fuzz::AsText(data, size), "fuzz.bundle"); });
  return 0;
}
