// Declared parameters: one table per options struct states each parameter once — its name,
// type, default, valid range and one line of help — and everything users meet comes from that
// table: the command-line flags and config-file keys (src/cli), the range checks and their
// messages (ParamTable::Check), and the parameter tables in docs/ (`escala params --markdown`).
// Defaults are read from the struct's own initialisers, so they are written once.
//
//   struct Opts { int batch_size = 256; float lr = 0.1f; };
//   const ParamTable<Opts> table({
//       param::Number<Opts>("batch_size", "optimizer", "Global batch size",
//                           [](auto& o) -> auto& { return o.batch_size; }, param::AtLeast(1)),
//       param::Number<Opts>("lr", "optimizer", "Learning rate",
//                           [](auto& o) -> auto& { return o.lr; }, param::Above(0))});
//   Opts o;
//   table.Set(o, "lr", "0.05", "--lr");  // parses; "--lr: 'x' is not a number" otherwise
//   table.Check(o);                      // "lr must be > 0, got -1"
//
// A ParamTable is immutable once built and safe to share between threads; Set writes only the
// Target it is given.
#ifndef ESCALA_CORE_PARAMS_H_
#define ESCALA_CORE_PARAMS_H_

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "escala/core/error.h"

namespace escala {

enum class ParamType { kBool, kInt, kNumber, kString, kIntList };
std::string_view ParamTypeName(ParamType type);

// What users see of a parameter.
struct ParamInfo {
  std::string name;  // snake_case; the flag and config key are FlagName(name)
  ParamType type = ParamType::kString;
  std::string default_text;  // as documented; empty when there is none
  std::string range;         // "> 0", "in [0, 1)", "one of: a, b"; empty: any value of the type
  std::string help;          // one line
  std::string group;         // a heading in the docs ("model", "optimizer", ...)
};

// "batch_size" -> "batch-size": the command-line flag (with "--") and the config-file key.
std::string FlagName(std::string_view name);

template <class Target>
struct Param {
  ParamInfo info;
  // Parses text as a user wrote it and stores it; throws kInvalidArgument with the reason only
  // ("'x' is not a number"); ParamTable::Set adds where the text came from.
  std::function<void(Target&, std::string_view)> set;
  // The value as text ("" when unset), for records such as a bundle's training config.
  std::function<std::string(const Target&)> get;
  // Why the value is out of range ("must be > 0, got -1"), or nullopt.
  std::function<std::optional<std::string>(const Target&)> check;
};

template <class Target>
class ParamTable {
 public:
  explicit ParamTable(std::vector<Param<Target>> params) : params_(std::move(params)) {}

  const std::vector<Param<Target>>& params() const { return params_; }

  const Param<Target>* Find(std::string_view name) const {
    for (const auto& p : params_) {
      if (p.info.name == name) return &p;
    }
    return nullptr;
  }

  // Sets `name` from text; `where` names the source in errors ("--lr", "lr"). Throws
  // kInvalidArgument for an unknown name or text the parameter's type does not read.
  void Set(Target& target, std::string_view name, std::string_view text,
           std::string_view where) const {
    const Param<Target>* p = Find(name);
    ESCALA_CHECK(p != nullptr, kInvalidArgument, "unknown parameter '{}'", name);
    try {
      p->set(target, text);
    } catch (const Error& e) {
      Throw(ErrorCode::kInvalidArgument, "{}: {}", where, e.message());
    }
  }

  // Throws kInvalidArgument "<name> must be <range>, got <value>" for the first parameter out
  // of its range.
  void Check(const Target& target) const {
    for (const auto& p : params_) {
      if (!p.check) continue;
      if (auto why = p.check(target))
        Throw(ErrorCode::kInvalidArgument, "{} {}", p.info.name, *why);
    }
  }

  // Every parameter's value as text, by name.
  std::map<std::string, std::string> Values(const Target& target) const {
    std::map<std::string, std::string> out;
    for (const auto& p : params_) out[p.info.name] = p.get(target);
    return out;
  }

  std::vector<ParamInfo> Infos() const {
    std::vector<ParamInfo> out;
    for (const auto& p : params_) out.push_back(p.info);
    return out;
  }

 private:
  std::vector<Param<Target>> params_;
};

// The parameters as a Markdown table per group, in declaration order, under `heading`.
std::string ParamsMarkdown(std::string_view heading, const std::vector<ParamInfo>& params);

// Builders of the common kinds of parameter. `field` maps a Target, const or not, to the member
// it sets (`[](auto& o) -> auto& { return o.lr; }`); std::optional members are unset by default.
namespace param {

// A numeric range with its text ("> 0").
struct Range {
  std::string text;
  std::function<bool(double)> contains;
};
Range Any();
Range AtLeast(double lo);              // >= lo
Range Above(double lo);                // > lo
Range Closed(double lo, double hi);    // in [lo, hi]
Range HalfOpen(double lo, double hi);  // in [lo, hi)
Range Custom(std::string text, std::function<bool(double)> contains);

// Text readers; they throw kInvalidArgument with the reason.
double ReadNumber(std::string_view text);  // a finite number
std::int64_t ReadInt(std::string_view text, std::int64_t lo, std::int64_t hi);
bool ReadBool(std::string_view text);                          // true/false, 1/0, yes/no, on/off
std::vector<std::int64_t> ReadIntList(std::string_view text);  // "256,256"; "" is empty

template <class T>
struct Unwrap {
  using type = T;
};
template <class T>
struct Unwrap<std::optional<T>> {
  using type = T;
};

// The default's text from a default-constructed Target.
template <class Target>
std::string DefaultText(const std::function<std::string(const Target&)>& get) {
  return get(Target{});
}

template <class Target, class F>
Param<Target> Number(std::string name, std::string group, std::string help, F field,
                     Range range = Any(), std::string default_text = "") {
  using Member = std::remove_cvref_t<decltype(field(std::declval<Target&>()))>;
  using T = typename Unwrap<Member>::type;
  static_assert(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>);
  Param<Target> p;
  p.info = {std::move(name),
            std::is_integral_v<T> ? ParamType::kInt : ParamType::kNumber,
            "",
            range.text,
            std::move(help),
            std::move(group)};
  p.set = [field](Target& t, std::string_view text) {
    if constexpr (std::is_integral_v<T>) {
      // Unsigned fields take what an int64 holds; seeds are the only ones, and 2^63 is plenty.
      constexpr std::int64_t lo =
          std::is_signed_v<T> ? static_cast<std::int64_t>(std::numeric_limits<T>::lowest()) : 0;
      constexpr std::int64_t hi = sizeof(T) >= 8
                                      ? std::numeric_limits<std::int64_t>::max()
                                      : static_cast<std::int64_t>(std::numeric_limits<T>::max());
      field(t) = static_cast<T>(ReadInt(text, lo, hi));
    } else {
      field(t) = static_cast<T>(ReadNumber(text));
    }
  };
  p.get = [field](const Target& t) -> std::string {
    const Member& m = field(t);
    if constexpr (std::is_same_v<Member, T>) {
      return fmt::format("{}", m);
    } else {
      return m ? fmt::format("{}", *m) : std::string();
    }
  };
  p.check = [field, range](const Target& t) -> std::optional<std::string> {
    const Member& m = field(t);
    T v{};
    if constexpr (std::is_same_v<Member, T>) {
      v = m;
    } else {
      if (!m) return std::nullopt;
      v = *m;
    }
    const auto d = static_cast<double>(v);
    if (std::isfinite(d) && range.contains(d)) return std::nullopt;
    return fmt::format("must be {}, got {}", range.text, v);
  };
  p.info.default_text = default_text.empty() ? DefaultText<Target>(p.get) : default_text;
  return p;
}

// A string member; with `choices`, one of them (the list may be computed, e.g. registered kinds).
template <class Target, class F>
Param<Target> Text(std::string name, std::string group, std::string help, F field,
                   std::function<std::vector<std::string>()> choices = nullptr,
                   std::string default_text = "") {
  using Member = std::remove_cvref_t<decltype(field(std::declval<Target&>()))>;
  Param<Target> p;
  p.info = {std::move(name), ParamType::kString, "", "", std::move(help), std::move(group)};
  if (choices) p.info.range = "one of: " + fmt::format("{}", fmt::join(choices(), ", "));
  p.set = [field](Target& t, std::string_view text) { field(t) = std::string(text); };
  p.get = [field](const Target& t) -> std::string {
    const Member& m = field(t);
    if constexpr (std::is_same_v<Member, std::string>) {
      return m;
    } else {
      return m.value_or("");
    }
  };
  if (choices) {
    p.check = [field, choices](const Target& t) -> std::optional<std::string> {
      const Member& m = field(t);
      std::string v;
      if constexpr (std::is_same_v<Member, std::string>) {
        v = m;
      } else {
        if (!m) return std::nullopt;
        v = *m;
      }
      const auto all = choices();
      for (const auto& c : all) {
        if (c == v) return std::nullopt;
      }
      return fmt::format("must be one of {}, got '{}'", fmt::join(all, ", "), v);
    };
  }
  p.info.default_text = default_text.empty() ? DefaultText<Target>(p.get) : default_text;
  return p;
}

template <class Target, class F>
Param<Target> Flag(std::string name, std::string group, std::string help, F field) {
  Param<Target> p;
  p.info = {std::move(name), ParamType::kBool, "", "", std::move(help), std::move(group)};
  p.set = [field](Target& t, std::string_view text) { field(t) = ReadBool(text); };
  p.get = [field](const Target& t) -> std::string { return field(t) ? "true" : "false"; };
  p.info.default_text = DefaultText<Target>(p.get);
  return p;
}

// A list of positive integers ("256,256").
template <class Target, class F>
Param<Target> IntList(std::string name, std::string group, std::string help, F field) {
  Param<Target> p;
  p.info = {std::move(name), ParamType::kIntList, "", "", std::move(help), std::move(group)};
  p.set = [field](Target& t, std::string_view text) { field(t) = ReadIntList(text); };
  p.get = [field](const Target& t) -> std::string {
    return fmt::format("{}", fmt::join(field(t), ","));
  };
  p.info.default_text = DefaultText<Target>(p.get);
  return p;
}

}  // namespace param
}  // namespace escala

#endif  // ESCALA_CORE_PARAMS_H_
