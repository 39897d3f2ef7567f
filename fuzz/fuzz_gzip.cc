// gzip input: the readers inflate a file whose first bytes are gzip's magic as they read it.
// The corpus holds gzipped CSV and LIBSVM files; each input is read as both.
#include <cstdint>

#include "escala/data/csv.h"
#include "escala/data/libsvm.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace escala;
  const std::string path = fuzz::WriteTemp(data, size, ".gz");
  fuzz::ExpectOnlyEscalaErrors([&] { data::ReadCsv(path); });
  fuzz::ExpectOnlyEscalaErrors([&] { data::ReadLibsvm(path); });
  return 0;
}
