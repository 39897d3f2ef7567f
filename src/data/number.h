// Private number parsing for the text readers: a fast path for the shape machine-written files
// use, with fast_float (correctly rounded, locale-free) for everything else.
#ifndef ESCALA_SRC_DATA_NUMBER_H_
#define ESCALA_SRC_DATA_NUMBER_H_

#include <cstdint>
#include <cstring>
#include <system_error>

#include <fast_float/fast_float.h>

namespace escala::data::internal {

// The common shape of a number in machine-written CSV ("-0.345584", "1.23457e-05"): digits, an
// optional fraction and exponent, whose value Clinger's fast path rounds exactly in float
// arithmetic (mantissa <= 2^24, |exponent| <= 10). Returns the end of the number, or nullptr to
// let fast_float handle the general case; either way the result is the correctly rounded float.
//
// Digit runs are converted eight bytes at a time (SWAR) when at least 16 bytes follow p.
[[gnu::always_inline]] inline int DigitRun(const char* p, std::uint64_t* value) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  const std::uint64_t t = v ^ 0x3030303030303030ULL;  // '0'..'9' -> 0..9
  // High bit set in each byte that is not a digit (t >= 10). A carry out of a flagged byte can
  // only corrupt later bytes, and only the first flagged byte matters.
  const std::uint64_t flags = ((t + 0x7676767676767676ULL) | t) & 0x8080808080808080ULL;
  const int n = flags == 0 ? 8 : (__builtin_ctzll(flags) >> 3);
  if (n == 0) {
    *value = 0;
    return 0;
  }
  // Keep the n leading digits, moved to the most significant end (zeros in front).
  std::uint64_t x = t << (8 * (8 - n));
  x = x * 10 + (x >> 8);  // pairs of digits
  x = (((x & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32))) +
       (((x >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32)))) >>
      32;
  *value = x;
  return n;
}

[[gnu::always_inline]] inline const char* ParseFloatSimple(const char* p, const char* end,
                                                           float* out) {
  static constexpr float kPow10[] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f,
                                     1e6f, 1e7f, 1e8f, 1e9f, 1e10f};
  static constexpr std::uint64_t kPow10i[] = {1,      10,      100,      1000,     10000,
                                              100000, 1000000, 10000000, 100000000};
  if (end - p < 32) return nullptr;
  const char* q = p;
  const bool neg = *q == '-';
  q += neg ? 1 : 0;
  std::uint64_t m;
  int n_int;
  if (static_cast<unsigned>(q[0] - '0') < 10 && q[1] == '.') {
    // The most common shape, one integer digit and up to 7 fraction digits without an exponent
    // ("0.345584", "-1.30316"): one digit run and a single correctly rounded division.
    std::uint64_t f;
    const int n = DigitRun(q + 2, &f);
    const std::uint64_t mm = static_cast<unsigned>(q[0] - '0') * kPow10i[n] + f;
    const char* e = q + 2 + n;
    if (n < 8 && (*e | 0x20) != 'e' && mm <= (std::uint64_t{1} << 24)) [[likely]] {
      const float v = static_cast<float>(mm) / kPow10[n];
      *out = neg ? -v : v;
      return e;
    }
    m = static_cast<unsigned>(q[0] - '0');
    n_int = 1;
  } else {
    n_int = DigitRun(q, &m);
    if (n_int == 8) return nullptr;
  }
  q += n_int;
  int exp10 = 0;
  int n_frac = 0;
  if (*q == '.') {
    ++q;
    std::uint64_t f;
    n_frac = DigitRun(q, &f);
    if (n_frac == 8) {
      // Up to 16 fraction digits ("0.00814218": leading zeros count).
      std::uint64_t f2;
      const int n2 = DigitRun(q + 8, &f2);
      if (n2 == 8) return nullptr;
      m = (m * 100000000ULL + f) * kPow10i[n2] + f2;
      n_frac += n2;
    } else {
      m = m * kPow10i[n_frac] + f;
    }
    exp10 = -n_frac;
    q += n_frac;
  }
  if (n_int + n_frac == 0) return nullptr;
  if ((*q | 0x20) == 'e') {
    ++q;
    bool eneg = false;
    if (*q == '-' || *q == '+') {
      eneg = *q == '-';
      ++q;
    }
    const unsigned d0 = static_cast<unsigned>(*q - '0');
    if (d0 > 9) return nullptr;
    int e = static_cast<int>(d0);
    ++q;
    const unsigned d1 = static_cast<unsigned>(*q - '0');
    if (d1 <= 9) {
      e = e * 10 + static_cast<int>(d1);
      ++q;
      if (static_cast<unsigned>(*q - '0') <= 9) return nullptr;
    }
    exp10 += eneg ? -e : e;
  }
  if (m > (std::uint64_t{1} << 24) || exp10 < -10 || exp10 > 10) return nullptr;
  float v = static_cast<float>(m);
  v = exp10 < 0 ? v / kPow10[-exp10] : v * kPow10[exp10];
  *out = neg ? -v : v;
  return q;
}

// A number at p that ends at the returned position, or nullptr.
[[gnu::always_inline]] inline const char* ParseFloatPrefix(const char* p, const char* end,
                                                           float* out) {
  const char* q = ParseFloatSimple(p, end, out);
  if (q != nullptr) [[likely]]
    return q;
  const auto r = fast_float::from_chars(p, end, *out);
  return r.ec == std::errc() ? r.ptr : nullptr;
}

inline void Trim(const char** b, const char** e) {
  while (*b < *e && (**b == ' ' || **b == '\t')) ++*b;
  while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\t')) --*e;
}

// The whole of [b, e) (spaces around allowed, '+' sign allowed) as a number.
template <typename T>
inline bool ParseReal(const char* b, const char* e, T* out) {
  Trim(&b, &e);
  if (b == e) return false;
  if (*b == '+') {
    ++b;
    if (b == e || *b == '-' || *b == '+') return false;
  }
  const auto r = fast_float::from_chars(b, e, *out);
  return r.ec == std::errc() && r.ptr == e;
}

// The whole of [b, e) as a decimal int64 (no overflow).
inline bool ParseInt64(const char* b, const char* e, std::int64_t* out) {
  Trim(&b, &e);
  if (b == e) return false;
  bool neg = false;
  if (*b == '-' || *b == '+') {
    neg = *b == '-';
    ++b;
  }
  if (b == e) return false;
  std::uint64_t v = 0;
  const std::uint64_t limit = neg ? (std::uint64_t{1} << 63) : (std::uint64_t{1} << 63) - 1;
  for (; b < e; ++b) {
    const unsigned d = static_cast<unsigned char>(*b) - '0';
    if (d > 9) return false;
    if (v > (limit - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = neg ? static_cast<std::int64_t>(0 - v) : static_cast<std::int64_t>(v);
  return true;
}

}  // namespace escala::data::internal

#endif  // ESCALA_SRC_DATA_NUMBER_H_
