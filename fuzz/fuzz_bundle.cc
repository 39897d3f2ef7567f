// Model bundles: the framing (magic, version, length, CRC-32), then the escala.io.v1.Bundle
// protobuf and the pipeline and model in it. A mutated frame almost never passes the CRC, so an
// input that does not start with the magic bytes is taken as the protobuf payload and framed
// here: mutations then reach the pipeline and model parsers.
#include <cstdint>
#include <string>
#include <string_view>

#include "escala/core/file_util.h"
#include "escala/io/bundle.h"
#include "fuzz_proto.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace escala;
  fuzz::SilenceProtobufLog();
  constexpr std::string_view kMagic = "ESCALAMB";  // io/bundle.cc's
  const auto bytes = fuzz::AsText(data, size);
  const std::string framed = bytes.substr(0, kMagic.size()) == kMagic
                                 ? std::string(bytes)
                                 : FramePayload(kMagic, io::kBundleFormatVersion, bytes);
  fuzz::ExpectOnlyEscalaErrors([&] { io::ModelBundle::ParseFromString(framed, "fuzz.bundle"); });
  return 0;
}
