// LIBSVM text ("label idx:value ...") -> sparse rows.
#include <cstdint>

#include "escala/data/libsvm.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace escala;
  const auto text = fuzz::AsText(data, size);
  data::LibsvmOptions o;
  o.zero_based = size > 0 && (data[0] & 1) != 0;
  o.on_error = size > 0 && (data[0] & 2) != 0 ? data::OnError::kSkip : data::OnError::kFail;
  fuzz::ExpectOnlyEscalaErrors([&] { data::ParseLibsvm(text, o); });
  return 0;
}
