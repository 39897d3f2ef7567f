// Feature pipeline specs ("impute(median) | standardize | onehot(color)") and the protobuf form
// of a fitted pipeline (Pipeline::Parse), both from the same bytes.
#include <cstdint>

#include "escala/features/pipeline.h"
#include "fuzz_proto.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  escala::fuzz::SilenceProtobufLog();
  using namespace escala;
  const auto text = fuzz::AsText(data, size);
  fuzz::ExpectOnlyEscalaErrors([&] { features::Pipeline::FromSpec(text); });
  fuzz::ExpectOnlyEscalaErrors([&] { features::Pipeline::Parse(text); });
  return 0;
}
