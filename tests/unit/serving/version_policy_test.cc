// The version policy as pure functions: which versions each policy serves, what a scan loads and
// what it retires, and the parsing of the policy text.
#include "serving/version_policy.h"

#include <gtest/gtest.h>

#include "escala/core/error.h"

namespace escala::serving::internal {
namespace {

using V = std::vector<std::int64_t>;

VersionPolicy P(std::string_view text) {
  return VersionPolicy::Parse(text);
}

TEST(VersionPolicy, LatestServesTheNewestVersion) {
  EXPECT_EQ(SelectVersions({3, 1, 2}, P("latest")), V({3}));
  EXPECT_EQ(SelectVersions({}, P("latest")), V());
  EXPECT_EQ(SelectVersions({7}, VersionPolicy{}), V({7}));  // the default policy
}

TEST(VersionPolicy, LatestNServesTheNHighest) {
  EXPECT_EQ(SelectVersions({1, 5, 3, 4}, P("latest:2")), V({4, 5}));
  EXPECT_EQ(SelectVersions({10, 9, 100}, P("latest:1")), V({100}));  // numeric, not by name
}

TEST(VersionPolicy, LatestNLargerThanAvailableServesAll) {
  EXPECT_EQ(SelectVersions({2, 1}, P("latest:5")), V({1, 2}));
  EXPECT_EQ(SelectVersions({}, P("latest:5")), V());
}

TEST(VersionPolicy, AllServesEveryVersionOnceAscending) {
  EXPECT_EQ(SelectVersions({3, 1, 2, 3}, P("all")), V({1, 2, 3}));
  EXPECT_EQ(SelectVersions({}, P("all")), V());
}

TEST(VersionPolicy, SpecificServesTheListedVersionsThatArePresent) {
  EXPECT_EQ(SelectVersions({1, 2, 3, 4}, P("specific:3,1")), V({1, 3}));
  // A listed version that is missing is not served (and nothing else is in its place).
  EXPECT_EQ(SelectVersions({1, 2}, P("specific:1,9")), V({1}));
  EXPECT_EQ(SelectVersions({1, 2}, P("specific:9")), V());
  EXPECT_EQ(SelectVersions({2}, P("specific:2,2")), V({2}));
}

TEST(VersionPolicy, ParseAcceptsTheFourForms) {
  EXPECT_EQ(P("latest").kind, VersionPolicy::Kind::kLatest);
  EXPECT_EQ(P("latest").latest, 1);
  EXPECT_EQ(P("latest:3").kind, VersionPolicy::Kind::kLatest);
  EXPECT_EQ(P("latest:3").latest, 3);
  EXPECT_EQ(P("all").kind, VersionPolicy::Kind::kAll);
  EXPECT_EQ(P("specific:4,2").kind, VersionPolicy::Kind::kSpecific);
  EXPECT_EQ(P("specific:4,2").versions, V({4, 2}));
}

TEST(VersionPolicy, ParseRefusesMalformedPoliciesNamingThem) {
  for (const char* bad : {"", "newest", "latest:", "latest:0", "latest:-1", "latest:2x",
                          "latest: 2", "latest:99999999999", "specific:", "specific:1,,2",
                          "specific:0", "specific:a", "specific:1.5", "specific:1,", "ALL"}) {
    try {
      P(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << bad;
      EXPECT_NE(e.message().find(std::string("'") + bad + "'"), std::string::npos) << e.what();
    }
  }
}

TEST(VersionPolicy, VersionNumbersArePositiveDecimalIntegers) {
  std::int64_t v = 0;
  EXPECT_TRUE(ParseVersionNumber("42", &v));
  EXPECT_EQ(v, 42);
  for (const char* bad :
       {"", "0", "-1", "+1", " 1", "1.5", "1e3", "abc", "3abc", "1234567890123456789"}) {
    EXPECT_FALSE(ParseVersionNumber(bad, &v)) << bad;
  }
}

TEST(VersionPolicy, OnlyNewOrChangedVersionsAreLoaded) {
  const ServedVersions served = {{1, {"a", true}}, {2, {"b", true}}};
  EXPECT_EQ(VersionsToLoad({{1, "a"}, {2, "b"}}, served, {}, false), V());
  EXPECT_EQ(VersionsToLoad({{1, "a"}, {2, "B"}, {3, "c"}}, served, {}, false), V({2, 3}));
  // An explicit load reloads everything wanted.
  EXPECT_EQ(VersionsToLoad({{1, "a"}, {2, "b"}}, served, {}, true), V({1, 2}));
}

TEST(VersionPolicy, AFailedVersionIsRetriedOnlyWhenItsFileChanges) {
  EXPECT_EQ(VersionsToLoad({{3, "x"}}, {}, {{3, "x"}}, false), V());
  EXPECT_EQ(VersionsToLoad({{3, "y"}}, {}, {{3, "x"}}, false), V({3}));
  EXPECT_EQ(VersionsToLoad({{3, "x"}}, {}, {{3, "x"}}, true), V({3}));
}

TEST(VersionPolicy, UnwantedVersionsRetireOnlyOnceEveryWantedVersionServes) {
  const ServedVersions all = {{2, {"", true}}, {3, {"", true}}, {4, {"", true}}};
  EXPECT_EQ(VersionsToRetire({3, 4}, all), V({2}));
  // Version 4 failed to load: 2 and 3 keep serving.
  const ServedVersions without4 = {{2, {"", true}}, {3, {"", true}}};
  EXPECT_EQ(VersionsToRetire({3, 4}, without4), V());
  // No version wanted (the directory was emptied): what serves keeps serving.
  EXPECT_EQ(VersionsToRetire({}, without4), V());
}

TEST(VersionPolicy, InMemoryVersionsAreNeverRetiredByAScan) {
  const ServedVersions served = {{1, {"", false}}, {2, {"f", true}}, {5, {"g", true}}};
  EXPECT_EQ(VersionsToRetire({5}, served), V({2}));
}

}  // namespace
}  // namespace escala::serving::internal
