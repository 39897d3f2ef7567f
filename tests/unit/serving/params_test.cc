#include "escala/serving/params.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace escala::serving {
namespace {

using ::testing::HasSubstr;

std::string BuilderError(const ServeSpec& s) {
  try {
    BuilderFor(s);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    return e.what();
  }
  return "";
}

TEST(ServeParams, DefaultsAreTheSpecsAndFlagsAreTheirNames) {
  std::map<std::string, std::string> defaults;
  for (const auto& info : ServeParams().Infos()) defaults[info.name] = info.default_text;
  EXPECT_EQ(defaults.at("grpc_port"), "8001");
  EXPECT_EQ(defaults.at("version_policy"), "latest");
  EXPECT_EQ(defaults.at("max_queue_delay_us"), "500");
  EXPECT_EQ(defaults.at("drain_grace_secs"), "30");
  EXPECT_EQ(BuilderError(ServeSpec{}), "");
}

TEST(ServeParams, OutOfRangeFieldsAreRefusedByName) {
  ServeSpec s;
  s.grpc_port = 70000;
  EXPECT_THAT(BuilderError(s), HasSubstr("grpc_port must be in [0, 65535], got 70000"));
  s = ServeSpec{};
  s.max_batch = -4;
  EXPECT_THAT(BuilderError(s), HasSubstr("max_batch must be in [0, 1048576], got -4"));
  s = ServeSpec{};
  s.poll_secs = -1;
  EXPECT_THAT(BuilderError(s), HasSubstr("poll_secs must be >= 0, got -1"));
  s = ServeSpec{};
  s.version_policy = "latest:0";
  EXPECT_THAT(BuilderError(s), HasSubstr("version policy 'latest:0'"));
}

TEST(ServeParams, AVersionPolicyIsParsedWhenItIsGiven) {
  ServeSpec s;
  try {
    ServeParams().Set(s, "version_policy", "newest", "--version-policy");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("--version-policy: "));
  }
  ServeParams().Set(s, "version_policy", "specific:1,3", "--version-policy");
  EXPECT_EQ(s.version_policy, "specific:1,3");
}

}  // namespace
}  // namespace escala::serving
