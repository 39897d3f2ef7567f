// IDX files (the MNIST format): header, dimensions, element type, then conversion to a matrix.
#include <cstdint>

#include "escala/data/idx.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace escala;
  const std::string path = fuzz::WriteTemp(data, size, ".idx");
  fuzz::ExpectOnlyEscalaErrors([&] {
    const data::IdxArray a = data::ReadIdx(path);
    a.ToMatrix(1.0f / 255);
  });
  return 0;
}
