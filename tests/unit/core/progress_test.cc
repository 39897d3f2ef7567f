#include "escala/core/progress.h"

#include <gtest/gtest.h>

namespace escala {
namespace {

TEST(Progress, RendersCountsRateAndStatus) {
  ProgressOptions opts;
  opts.mode = ProgressOptions::Mode::kSilent;
  opts.unit = "rows";
  ProgressReporter p("parse", 1000, opts);
  p.Add(250);
  p.SetStatus("loss 0.5");
  const std::string line = p.Render();
  EXPECT_NE(line.find("parse"), std::string::npos) << line;
  EXPECT_NE(line.find("25.0%"), std::string::npos) << line;
  EXPECT_NE(line.find("250/1000 rows"), std::string::npos) << line;
  EXPECT_NE(line.find("loss 0.5"), std::string::npos) << line;
  EXPECT_EQ(p.done(), 250u);
  p.Finish();
}

TEST(Progress, UnknownTotalShowsCountOnly) {
  ProgressOptions opts;
  opts.mode = ProgressOptions::Mode::kSilent;
  ProgressReporter p("scan", 0, opts);
  p.Update(12345);
  EXPECT_NE(p.Render().find("12.3 k items"), std::string::npos) << p.Render();
}

TEST(Progress, Formatting) {
  EXPECT_EQ(FormatDuration(1.25), "1.2 s");
  EXPECT_EQ(FormatDuration(125), "2 min 05 s");
  EXPECT_EQ(FormatDuration(7500), "2 h 05 min");
  EXPECT_EQ(FormatCount(950), "950");
  EXPECT_EQ(FormatCount(4.56e6), "4.56 M");
}

}  // namespace
}  // namespace escala
