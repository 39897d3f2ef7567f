// NPY files: the header parser on the bytes, then the whole reader on them as a file.
#include <cstddef>
#include <cstdint>
#include <span>

#include "escala/data/npy.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace escala;
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  fuzz::ExpectOnlyEscalaErrors([&] { data::ParseNpyHeader(bytes, "fuzz.npy"); });
  const std::string path = fuzz::WriteTemp(data, size, ".npy");
  fuzz::ExpectOnlyEscalaErrors([&] { data::ReadNpyMatrix(path); });
  return 0;
}
