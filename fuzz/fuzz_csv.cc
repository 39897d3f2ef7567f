// CSV text -> Table (type inference, quoting, missing values) and the dense float32 fast path.
#include <cstdint>

#include "escala/data/csv.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace escala;
  const auto text = fuzz::AsText(data, size);
  // The first byte picks options, so that headerless, skipping and commented inputs are reached.
  data::CsvOptions o;
  if (size > 0) {
    o.header = (data[0] & 1) == 0;
    o.skip_lines = (data[0] >> 1) & 1;
    o.comment = (data[0] & 4) != 0 ? '#' : '\0';
    o.delimiter = (data[0] & 8) != 0 ? ';' : ',';
    o.on_error = (data[0] & 16) != 0 ? data::OnError::kSkip : data::OnError::kFail;
    o.quoted_newlines = (data[0] & 32) == 0;
  }
  fuzz::ExpectOnlyEscalaErrors([&] { data::ParseCsv(text, o); });
  fuzz::ExpectOnlyEscalaErrors([&] { data::ParseCsvDense(text, {}, o); });
  return 0;
}
