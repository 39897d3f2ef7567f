// The aspired-versions policy: which versions of a model to serve, and what the manager must do to
// get there. Pure functions of their arguments (no files, no clocks, no locks), so that every
// policy and every transition is unit-tested on plain values (tests/unit/serving/
// version_policy_test.cc). The directory source (repository_source.h) says what is available,
// the loader (loader.h) loads one version, the manager (model_manager.h) applies the result.
#ifndef ESCALA_SRC_SERVING_VERSION_POLICY_H_
#define ESCALA_SRC_SERVING_VERSION_POLICY_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "escala/serving/server.h"

namespace escala::serving::internal {

// Parses a positive version number made of decimal digits only ("1", "42"; not "0", "-1", "1.5",
// "+3", " 3" or "3abc"). False for anything else.
bool ParseVersionNumber(std::string_view s, std::int64_t* v);

// The versions `policy` serves among `available` (any order; duplicates count once), ascending:
//   latest:N  the N highest available (all of them when fewer than N are available);
//   all       every available version;
//   specific  the listed versions that are available (a listed version that is absent is not
//             served, and is served as soon as it appears).
std::vector<std::int64_t> SelectVersions(const std::vector<std::int64_t>& available,
                                         const VersionPolicy& policy);

// What the manager knows of one version it serves.
struct ServedVersion {
  std::string fingerprint;      // of the file it was loaded from ("" for in-memory bundles)
  bool from_repository = true;  // false: added in memory (AddModel), never retired by a scan
};
using ServedVersions = std::map<std::int64_t, ServedVersion>;

// version -> fingerprint: the wanted versions as the source sees them now, or the fingerprint of
// the file a version last failed to load from.
using Fingerprints = std::map<std::int64_t, std::string>;

// The wanted versions to (re)load: those not served, and those served from a file that changed
// since. A version whose last load failed is skipped until its file changes. With `reload`
// (an explicit RepositoryModelLoad) every wanted version is loaded again.
std::vector<std::int64_t> VersionsToLoad(const Fingerprints& wanted, const ServedVersions& served,
                                         const Fingerprints& failed, bool reload);

// The versions to stop serving once the loads are done (`served` is the set after them): the
// repository versions the policy no longer wants (or that left the disk), but only when at least
// one version is wanted and every wanted version is served. While a wanted version is not (its
// load failed), nothing is retired: a failing load leaves the versions that serve as they were;
// and a model directory emptied of versions keeps serving what it served.
std::vector<std::int64_t> VersionsToRetire(const std::vector<std::int64_t>& wanted,
                                           const ServedVersions& served);

}  // namespace escala::serving::internal

#endif  // ESCALA_SRC_SERVING_VERSION_POLICY_H_
