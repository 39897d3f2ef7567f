#include "escala/core/params.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace escala {
namespace {

using ::testing::HasSubstr;

struct Opts {
  int batch_size = 256;
  float lr = 0.1f;
  std::optional<double> l2;
  std::uint64_t seed = 42;
  std::string schedule = "constant";
  std::optional<std::string> optimizer;
  bool resume = false;
  std::vector<std::int64_t> hidden = {8, 4};
};

const ParamTable<Opts>& Table() {
  static const ParamTable<Opts> table({
      param::Number<Opts>(
          "batch_size", "run", "Batch size", [](auto& o) -> auto& { return o.batch_size; },
          param::AtLeast(1)),
      param::Number<Opts>(
          "lr", "run", "Learning rate", [](auto& o) -> auto& { return o.lr; }, param::Above(0)),
      param::Number<Opts>(
          "l2", "run", "Penalty", [](auto& o) -> auto& { return o.l2; }, param::AtLeast(0), "1/n"),
      param::Number<Opts>(
          "seed", "run", "Seed", [](auto& o) -> auto& { return o.seed; }),
      param::Text<Opts>(
          "schedule", "run", "Schedule", [](auto& o) -> auto& { return o.schedule; },
          [] {
            return std::vector<std::string>{"constant", "cosine"};
          }),
      param::Text<Opts>(
          "optimizer", "run", "Optimizer", [](auto& o) -> auto& { return o.optimizer; },
          [] {
            return std::vector<std::string>{"sgd", "adam"};
          },
          "adam"),
      param::Flag<Opts>(
          "resume", "state", "Resume", [](auto& o) -> auto& { return o.resume; }),
      param::IntList<Opts>(
          "hidden", "state", "Widths", [](auto& o) -> auto& { return o.hidden; }),
  });
  return table;
}

std::string SetError(std::string_view name, std::string_view text) {
  Opts o;
  try {
    Table().Set(o, name, text, "--" + FlagName(name));
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    return e.what();
  }
  return "";
}

std::string CheckError(const Opts& o) {
  try {
    Table().Check(o);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    return e.what();
  }
  return "";
}

TEST(Params, DefaultsComeFromTheStructsInitialisers) {
  std::map<std::string, std::string> defaults;
  for (const auto& info : Table().Infos()) defaults[info.name] = info.default_text;
  EXPECT_EQ(defaults["batch_size"], "256");
  EXPECT_EQ(defaults["lr"], "0.1");  // a float shown as the float it is, not 0.10000000149
  EXPECT_EQ(defaults["l2"], "1/n");  // unset optional: the documented text
  EXPECT_EQ(defaults["seed"], "42");
  EXPECT_EQ(defaults["schedule"], "constant");
  EXPECT_EQ(defaults["resume"], "false");
  EXPECT_EQ(defaults["hidden"], "8,4");
  EXPECT_EQ(Table().Values(Opts{}).at("optimizer"), "");
}

TEST(Params, SetReadsEachTypeAndStores) {
  Opts o;
  const auto& t = Table();
  t.Set(o, "batch_size", "64", "--batch-size");
  t.Set(o, "lr", "1e-3", "--lr");
  t.Set(o, "l2", "0.5", "--l2");
  t.Set(o, "seed", "18446744073", "--seed");
  t.Set(o, "schedule", "cosine", "--schedule");
  t.Set(o, "optimizer", "sgd", "--optimizer");
  t.Set(o, "resume", "yes", "--resume");
  t.Set(o, "hidden", "32,16,8", "--hidden");
  EXPECT_EQ(o.batch_size, 64);
  EXPECT_FLOAT_EQ(o.lr, 1e-3f);
  EXPECT_EQ(o.l2, 0.5);
  EXPECT_EQ(o.seed, 18446744073u);
  EXPECT_EQ(o.schedule, "cosine");
  EXPECT_EQ(o.optimizer, "sgd");
  EXPECT_TRUE(o.resume);
  EXPECT_EQ(o.hidden, (std::vector<std::int64_t>{32, 16, 8}));
  EXPECT_NO_THROW(t.Check(o));
}

TEST(Params, MalformedTextIsRefusedNamingWhereItCameFrom) {
  EXPECT_THAT(SetError("lr", "fast"), HasSubstr("--lr: 'fast' is not a number"));
  EXPECT_THAT(SetError("lr", "inf"), HasSubstr("--lr: 'inf' is not a finite number"));
  EXPECT_THAT(SetError("lr", ""), HasSubstr("--lr: '' is not a number"));
  EXPECT_THAT(SetError("batch_size", "1.5"), HasSubstr("--batch-size: '1.5' is not an integer"));
  EXPECT_THAT(SetError("batch_size", "99999999999"), HasSubstr("is outside ["));
  EXPECT_THAT(SetError("seed", "-1"), HasSubstr("--seed: '-1' is outside [0, "));
  EXPECT_THAT(SetError("resume", "maybe"), HasSubstr("--resume: 'maybe' is not true or false"));
  EXPECT_THAT(SetError("hidden", "8,,8"), HasSubstr("item 2 ('') is not a positive integer"));
  EXPECT_THAT(SetError("nosuch", "1"), HasSubstr("unknown parameter 'nosuch'"));
}

TEST(Params, CheckNamesTheParameterItsRangeAndTheValue) {
  Opts o;
  o.lr = 0;
  EXPECT_THAT(CheckError(o), HasSubstr("lr must be > 0, got 0"));
  o = Opts{};
  o.batch_size = -3;
  EXPECT_THAT(CheckError(o), HasSubstr("batch_size must be >= 1, got -3"));
  o = Opts{};
  o.l2 = std::numeric_limits<double>::infinity();  // finite values only, whatever the range
  EXPECT_THAT(CheckError(o), HasSubstr("l2 must be >= 0, got inf"));
  o = Opts{};
  o.lr = std::nanf("");
  EXPECT_THAT(CheckError(o), HasSubstr("lr must be > 0, got nan"));
  o = Opts{};
  o.schedule = "cosin";
  EXPECT_THAT(CheckError(o), HasSubstr("schedule must be one of constant, cosine, got 'cosin'"));
  o = Opts{};
  o.optimizer = "adamw";
  EXPECT_THAT(CheckError(o), HasSubstr("optimizer must be one of sgd, adam, got 'adamw'"));
  EXPECT_EQ(CheckError(Opts{}), "");
}

TEST(Params, RangesSayWhatTheyAccept) {
  EXPECT_EQ(param::Closed(1, 10).text, "in [1, 10]");
  EXPECT_TRUE(param::Closed(1, 10).contains(10));
  EXPECT_EQ(param::HalfOpen(0, 1).text, "in [0, 1)");
  EXPECT_FALSE(param::HalfOpen(0, 1).contains(1));
  EXPECT_EQ(param::Above(0.5).text, "> 0.5");
  EXPECT_FALSE(param::Above(0.5).contains(0.5));
  EXPECT_EQ(FlagName("checkpoint_every_steps"), "checkpoint-every-steps");
}

TEST(Params, MarkdownHasOneTablePerGroupInDeclarationOrder) {
  const std::string md = ParamsMarkdown("demo", Table().Infos());
  EXPECT_THAT(md, HasSubstr("## demo\n\n### run\n\n| parameter"));
  EXPECT_THAT(md, HasSubstr("| `lr` (`--lr`) | number | 0.1 | > 0 | Learning rate |"));
  EXPECT_THAT(md, HasSubstr("| `resume` (`--resume`) | bool | false | — | Resume |"));
  EXPECT_LT(md.find("### run"), md.find("### state"));
  EXPECT_LT(md.find("`batch_size`"), md.find("`lr`"));
}

}  // namespace
}  // namespace escala
