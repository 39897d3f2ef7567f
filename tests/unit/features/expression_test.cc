#include "escala/features/expression.h"

#include <cmath>

#include <gtest/gtest.h>

#include "escala/core/error.h"

namespace escala::features {
namespace {

float Eval(const std::string& text, std::vector<float> values) {
  return Expression::Parse(text, false).EvaluateRow(values);
}

TEST(Expression, ArithmeticPrecedenceAndFunctions) {
  EXPECT_FLOAT_EQ(Eval("1 + 2 * 3", {}), 7);
  EXPECT_FLOAT_EQ(Eval("(1 + 2) * 3", {}), 9);
  EXPECT_FLOAT_EQ(Eval("-2 ^ 2", {}), -4);
  EXPECT_FLOAT_EQ(Eval("2 ^ 3 ^ 2", {}), 512);
  EXPECT_FLOAT_EQ(Eval("10 % 4 + 1.5e1", {}), 17);
  EXPECT_FLOAT_EQ(Eval("max(1, 5, 3) - min(4, 2)", {}), 3);
  EXPECT_FLOAT_EQ(Eval("clip(12, 0, 10) + abs(-1) + sqrt(16) + floor(1.7) + ceil(1.2)", {}), 18);
  EXPECT_NEAR(Eval("log(exp(2)) + log1p(0) + pow(2, 0.5)", {}), 2 + std::sqrt(2.0f), 1e-6);
  EXPECT_FLOAT_EQ(Eval("if(1 > 2, 10, 20)", {}), 20);
  EXPECT_FLOAT_EQ(Eval("1 < 2 and not 0 or false", {}), 1);
  EXPECT_FLOAT_EQ(Eval("!(3 != 3) && 2 >= 2", {}), 1);
}

TEST(Expression, ColumnsTargetAndInputs) {
  const auto e = Expression::Parse("ratio = income / (debt + 1)");
  EXPECT_EQ(e.target(), "ratio");
  EXPECT_EQ(e.inputs(), (std::vector<std::string>{"income", "debt"}));
  EXPECT_FLOAT_EQ(e.EvaluateRow(std::vector<float>{100, 3}), 25);
  const auto q = Expression::Parse("`body mass` = `mass (g)` / 1000");
  EXPECT_EQ(q.target(), "body mass");
  EXPECT_EQ(q.inputs()[0], "mass (g)");
  const auto big = Expression::Parse("big = log(x) > 3");
  EXPECT_FLOAT_EQ(big.EvaluateRow(std::vector<float>{100}), 1);
  EXPECT_FLOAT_EQ(big.EvaluateRow(std::vector<float>{10}), 0);
}

TEST(Expression, MissingValuesPropagate) {
  const float nan = std::nanf("");
  EXPECT_TRUE(std::isnan(Eval("x + 1", {nan})));
  EXPECT_TRUE(std::isnan(Eval("x > 1", {nan})));
  EXPECT_TRUE(std::isnan(Eval("if(x, 1, 2)", {nan})));
  EXPECT_FLOAT_EQ(Eval("isnan(x)", {nan}), 1);
  EXPECT_FLOAT_EQ(Eval("if(isnan(x), 0, x)", {nan}), 0);
}

TEST(Expression, BlockEvaluationMatchesRows) {
  const auto e = Expression::Parse("z = a * b - if(a > b, a, b) / 2");
  std::vector<float> a(1000), b(1000), out(1000);
  for (int i = 0; i < 1000; ++i) {
    a[static_cast<std::size_t>(i)] = static_cast<float>(i % 17) - 8;
    b[static_cast<std::size_t>(i)] = static_cast<float>(i % 5);
  }
  const float* cols[] = {a.data(), b.data()};
  ExpressionScratch scratch;
  e.Evaluate(cols, 1000, out.data(), scratch);
  for (std::size_t i = 0; i < 1000; ++i) {
    const float x = a[i], y = b[i];
    EXPECT_FLOAT_EQ(out[i], x * y - (x > y ? x : y) / 2);
  }
}

TEST(Expression, ErrorsNameThePosition) {
  auto message = [](const std::string& text) {
    try {
      Expression::Parse(text);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("r = a / (b + 1").find("position 15: expected ')'"), std::string::npos)
      << message("r = a / (b + 1");
  EXPECT_NE(message("r = a $ b").find("position 7: unexpected '$'"), std::string::npos)
      << message("r = a $ b");
  EXPECT_NE(message("r = frob(a)").find("unknown function 'frob'"), std::string::npos);
  EXPECT_NE(message("r = clip(a, 1)").find("clip() takes 3 arguments"), std::string::npos)
      << message("r = clip(a, 1)");
  EXPECT_NE(message("a + b").find("expected 'name = expression'"), std::string::npos);
  EXPECT_NE(message("r = ").find("unexpected end"), std::string::npos);
  EXPECT_NE(message(" = a").find("missing the name"), std::string::npos);
}

}  // namespace
}  // namespace escala::features
