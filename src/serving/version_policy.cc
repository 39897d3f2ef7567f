#include "serving/version_policy.h"

#include <algorithm>
#include <climits>

#include "escala/core/error.h"

namespace escala::serving::internal {

bool ParseVersionNumber(std::string_view s, std::int64_t* v) {
  if (s.empty() || s.size() > 18) return false;
  std::int64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  if (n <= 0) return false;
  *v = n;
  return true;
}

std::vector<std::int64_t> SelectVersions(const std::vector<std::int64_t>& available,
                                         const VersionPolicy& policy) {
  std::vector<std::int64_t> v = available;
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  switch (policy.kind) {
    case VersionPolicy::Kind::kAll:
      return v;
    case VersionPolicy::Kind::kLatest: {
      const auto n = static_cast<std::size_t>(std::max(policy.latest, 0));
      if (v.size() > n) v.erase(v.begin(), v.end() - static_cast<std::ptrdiff_t>(n));
      return v;
    }
    case VersionPolicy::Kind::kSpecific: {
      const auto& listed = policy.versions;
      std::erase_if(v, [&](std::int64_t x) {
        return std::find(listed.begin(), listed.end(), x) == listed.end();
      });
      return v;
    }
  }
  return v;
}

std::vector<std::int64_t> VersionsToLoad(const Fingerprints& wanted, const ServedVersions& served,
                                         const Fingerprints& failed, bool reload) {
  std::vector<std::int64_t> out;
  for (const auto& [v, fp] : wanted) {
    if (!reload) {
      const auto s = served.find(v);
      if (s != served.end() && s->second.fingerprint == fp) continue;  // unchanged
      const auto f = failed.find(v);
      if (f != failed.end() && f->second == fp) continue;  // failed; wait for a change
    }
    out.push_back(v);
  }
  return out;
}

std::vector<std::int64_t> VersionsToRetire(const std::vector<std::int64_t>& wanted,
                                           const ServedVersions& served) {
  if (wanted.empty()) return {};
  for (auto v : wanted) {
    if (!served.count(v)) return {};
  }
  std::vector<std::int64_t> out;
  for (const auto& [v, s] : served) {
    if (s.from_repository && std::find(wanted.begin(), wanted.end(), v) == wanted.end()) {
      out.push_back(v);
    }
  }
  return out;
}

}  // namespace escala::serving::internal

namespace escala::serving {
namespace {

int ParseLatestCount(std::string_view text, std::string_view n) {
  std::int64_t v = 0;
  ESCALA_CHECK(internal::ParseVersionNumber(n, &v) && v <= INT_MAX, kInvalidArgument,
               "version policy '{}': latest:N needs a whole number N >= 1, got '{}'", text, n);
  return static_cast<int>(v);
}

std::vector<std::int64_t> ParseVersionList(std::string_view text, std::string_view list) {
  std::vector<std::int64_t> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = list.find(',', start);
    const std::string_view item = list.substr(start, comma - start);
    std::int64_t v = 0;
    ESCALA_CHECK(internal::ParseVersionNumber(item, &v), kInvalidArgument,
                 "version policy '{}': '{}' is not a version number (a positive integer)", text,
                 item);
    out.push_back(v);
    if (comma == std::string_view::npos) return out;
    start = comma + 1;
  }
}

}  // namespace

VersionPolicy VersionPolicy::Parse(std::string_view text) {
  VersionPolicy p;
  if (text == "latest") return p;
  if (text == "all") {
    p.kind = Kind::kAll;
    return p;
  }
  if (text.starts_with("latest:")) {
    p.latest = ParseLatestCount(text, text.substr(7));
    return p;
  }
  if (text.starts_with("specific:")) {
    p.kind = Kind::kSpecific;
    p.versions = ParseVersionList(text, text.substr(9));
    return p;
  }
  Throw(ErrorCode::kInvalidArgument,
        "version policy '{}': expected latest, latest:N, all or specific:V1,V2", text);
}

}  // namespace escala::serving
