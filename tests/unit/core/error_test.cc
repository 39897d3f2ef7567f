#include "escala/core/error.h"

#include <cerrno>

#include <gtest/gtest.h>

#include "escala/core/logging.h"

namespace escala {
namespace {

TEST(Error, WhatCarriesCodeNameAndMessage) {
  Error e(ErrorCode::kNotFound, "column 'age' not in data.csv");
  EXPECT_STREQ(e.what(), "NotFound: column 'age' not in data.csv");
  EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  EXPECT_EQ(e.message(), "column 'age' not in data.csv");
}

TEST(Error, WithContextKeepsTheRootCode) {
  Error e = Error(ErrorCode::kDataLoss, "checksum mismatch").WithContext("loading m.bundle");
  EXPECT_EQ(e.code(), ErrorCode::kDataLoss);
  EXPECT_EQ(e.message(), "loading m.bundle: checksum mismatch");
}

TEST(Error, CheckMacroFormatsAndThrows) {
  try {
    ESCALA_CHECK(1 + 1 == 3, kInvalidArgument, "{}:{}:{}: bad value '{}'", "f.csv", 3, 7, "x");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(e.message(), "f.csv:3:7: bad value 'x'");
  }
}

TEST(Error, ThrowErrnoIsIoWithStrerror) {
  try {
    ThrowErrno(ENOENT, "open {}", "/nope");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
    EXPECT_NE(e.message().find("No such file"), std::string::npos) << e.message();
  }
}

TEST(Status, RoundTripsThroughExceptions) {
  Status s;
  try {
    throw Error(ErrorCode::kUnavailable, "shutting down");
  } catch (...) {
    s = Status::FromCurrentException();
  }
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(s.ToString(), "Unavailable: shutting down");
  EXPECT_THROW(s.ThrowIfError(), Error);
  EXPECT_NO_THROW(Status::Ok().ThrowIfError());
}

TEST(Status, ForeignExceptionsBecomeInternal) {
  Status s;
  try {
    throw std::runtime_error("boom");
  } catch (...) {
    s = Status::FromCurrentException();
  }
  EXPECT_EQ(s.code(), ErrorCode::kInternal);
}

TEST(Logging, ParsesLevelsAndRejectsJunk) {
  EXPECT_EQ(ParseLogLevel("DEBUG"), LogLevel::kDebug);
  EXPECT_EQ(ParseLogLevel("warning"), LogLevel::kWarn);
  EXPECT_THROW(ParseLogLevel("loud"), Error);
  const LogLevel before = GetLogLevel();
  SetLogLevel(LogLevel::kError);
  EXPECT_EQ(GetLogLevel(), LogLevel::kError);
  SetLogLevel(before);
}

TEST(Logging, EnvironmentSetsLevel) {
  const LogLevel before = GetLogLevel();
  setenv("ESCALA_LOG_LEVEL", "trace", 1);
  InitLoggingFromEnv();
  EXPECT_EQ(GetLogLevel(), LogLevel::kTrace);
  unsetenv("ESCALA_LOG_LEVEL");
  SetLogLevel(before);
}

}  // namespace
}  // namespace escala
