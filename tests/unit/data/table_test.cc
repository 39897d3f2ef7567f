#include "escala/data/table.h"

#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/core/parallel.h"
#include "escala/data/csv.h"
#include "escala/data/dense.h"

namespace escala::data {
namespace {

using ::testing::HasSubstr;

Table MakeTable(std::int64_t n) {
  Column a("a", DataType::kFloat32, n);
  Column b("b", DataType::kFloat64, n);
  Column c("c", DataType::kInt64, n);
  Column s("s", DataType::kCategorical, n);
  s.mutable_dictionary() = {"red", "blue"};
  for (std::int64_t i = 0; i < n; ++i) {
    a.mutable_f32()[static_cast<std::size_t>(i)] = static_cast<float>(i) * 0.5f;
    b.mutable_f64()[static_cast<std::size_t>(i)] = -static_cast<double>(i);
    c.mutable_i64()[static_cast<std::size_t>(i)] = i * 10;
    s.mutable_codes()[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i % 2);
  }
  return Table({std::move(a), std::move(b), std::move(c), std::move(s)});
}

TEST(Schema, LookupErrorsListTheColumns) {
  const Table t = MakeTable(3);
  EXPECT_EQ(t.ColumnIndex("c"), 2);
  try {
    t.column("nope");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_EQ(e.message(), "no column named 'nope' (columns: a, b, c, s)");
  }
}

TEST(Schema, CompareDiffSerialiseParse) {
  const Schema a({{"x", DataType::kFloat32}, {"odd name,%\n", DataType::kCategorical}});
  const Schema b({{"x", DataType::kInt64}, {"odd name,%\n", DataType::kCategorical}});
  EXPECT_EQ(a, a);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.Diff(a), "");
  EXPECT_EQ(b.Diff(a), "column 1: expected 'x' float32, found 'x' int64");
  EXPECT_EQ(Schema({{"x", DataType::kFloat32}}).Diff(a), "expected 2 columns, found 1");
  const std::string text = a.Serialize();
  EXPECT_EQ(Schema::Parse(text), a);
  EXPECT_THROW(Schema::Parse("garbage"), Error);
  EXPECT_THROW(Schema::Parse("escala-schema 1\nfloat128 x\n"), Error);
  EXPECT_THROW(Schema::Parse("escala-schema 1\nfloat32 x"), Error);
  EXPECT_EQ(ParseDataType("double"), DataType::kFloat64);
  EXPECT_THAT([] { ParseDataType("complex"); }, ::testing::Throws<Error>());
}

TEST(Table, ShapesAndDuplicatesAreChecked) {
  std::vector<Column> cols;
  cols.emplace_back("a", DataType::kFloat32, 3);
  cols.emplace_back("b", DataType::kFloat32, 4);
  EXPECT_THROW(Table(std::move(cols)), Error);
  std::vector<Column> dup;
  dup.emplace_back("a", DataType::kFloat32, 3);
  dup.emplace_back("a", DataType::kFloat64, 3);
  EXPECT_THROW(Table(std::move(dup)), Error);
  Table t = MakeTable(2);
  EXPECT_THROW(t.AddColumn(Column("z", DataType::kFloat32, 3)), Error);
  t.AddColumn(Column("z", DataType::kFloat32, 2));
  EXPECT_EQ(t.num_columns(), 5);
  EXPECT_THROW(t.column("a").f64(), Error);  // wrong type view
}

TEST(Table, MissingValuesAndViews) {
  Table t = MakeTable(4);
  Column& a = t.mutable_column(0);
  a.SetMissing(2);
  EXPECT_TRUE(a.is_missing(2));
  EXPECT_FALSE(a.is_missing(1));
  EXPECT_EQ(a.missing_count(), 1);
  EXPECT_TRUE(std::isnan(a.f32()[2]));
  const MatrixView<const float> v = t.column("a").AsMatrixView();
  EXPECT_EQ(v.rows(), 4);
  EXPECT_EQ(v.data(), t.column("a").f32().data());  // no copy
  EXPECT_EQ(t.column("s").category(1), "blue");
  EXPECT_TRUE(std::isnan(t.column(0).GetDouble(2)));
  EXPECT_EQ(t.column(2).GetDouble(3), 30.0);
}

TEST(Table, SliceAndTakeKeepEverything) {
  Table t = MakeTable(10);
  t.mutable_column(1).SetMissing(4);
  std::vector<std::uint64_t> ids(10);
  for (std::size_t i = 0; i < 10; ++i) ids[i] = 100 + i;
  t.set_row_ids(ids);
  const Table s = t.Slice(3, 4);
  ASSERT_EQ(s.num_rows(), 4);
  EXPECT_EQ(s.column("c").i64()[0], 30);
  EXPECT_TRUE(s.column("b").is_missing(1));
  EXPECT_EQ(s.row_ids()[0], 103u);
  const std::vector<std::int64_t> rows = {9, 0};
  const Table k = t.Take(rows);
  EXPECT_EQ(k.column("s").category(0), "blue");
  EXPECT_EQ(k.column("a").f32()[0], 4.5f);
  EXPECT_THROW(t.Slice(8, 5), Error);
}

TEST(Table, ConcatTablesJoinsRowsAndDictionaries) {
  Table t = MakeTable(10);
  t.mutable_column(1).SetMissing(4);
  std::vector<std::uint64_t> ids(10);
  for (std::size_t i = 0; i < 10; ++i) ids[i] = 100 + i;
  t.set_row_ids(ids);
  Table first = t.Slice(0, 6), second = t.Slice(6, 4);
  // A later chunk's dictionary in another order, with a category the first never saw.
  Column& s = second.mutable_column(3);
  s.mutable_dictionary() = {"blue", "red", "green"};
  for (std::size_t i = 0; i < 4; ++i) s.mutable_codes()[i] = i == 3 ? 2 : (i % 2 == 0 ? 1 : 0);
  const std::vector<Table> parts = {std::move(first), std::move(second)};
  const Table all = ConcatTables(parts);
  ASSERT_EQ(all.num_rows(), 10);
  EXPECT_EQ(all.schema(), t.schema());
  EXPECT_EQ(all.column("a").f32()[9], 4.5f);
  EXPECT_EQ(all.column("c").i64()[7], 70);
  EXPECT_TRUE(all.column("b").is_missing(4));
  EXPECT_FALSE(all.column("b").is_missing(5));
  EXPECT_EQ(all.column("s").category(1), "blue");
  EXPECT_EQ(all.column("s").category(6), "red");
  EXPECT_EQ(all.column("s").category(7), "blue");
  EXPECT_EQ(all.column("s").category(9), "green");
  EXPECT_EQ(all.row_ids()[9], 109u);
  const std::vector<Table> mismatched = {MakeTable(2), Table({Column("a", DataType::kFloat64, 1)})};
  EXPECT_THROW(ConcatTables(mismatched), Error);
}

// Columns grown in one block share it, keep their values when they grow past it, and copies of
// them neither share nor keep the block alive.
TEST(Column, GrowsIntoASharedBlockThatCopiesDoNotHold) {
  constexpr std::int64_t kRows = 300000;  // 1.2 MB a float column: the three need a 3.6 MB block
  auto block = std::make_shared<internal::ColumnBlock>(3 * kRows * sizeof(float) + 256);
  std::weak_ptr<internal::ColumnBlock> seen = block;
  std::vector<Column> cols;
  for (int c = 0; c < 3; ++c) {
    cols.emplace_back("c" + std::to_string(c), DataType::kFloat32, 0);
    cols.back().Grow(kRows, block);
    auto v = cols.back().mutable_f32();
    for (std::int64_t i = 0; i < kRows; ++i) v[static_cast<std::size_t>(i)] = float(c * kRows + i);
  }
  for (const Column& col : cols) EXPECT_TRUE(block->Owns(col.f32().data()));
  // The block is full: growing a column moves it out, values kept.
  cols[1].Grow(2 * kRows, block);
  EXPECT_FALSE(block->Owns(cols[1].f32().data()));
  EXPECT_EQ(cols[1].f32()[kRows - 1], float(2 * kRows - 1));
  EXPECT_EQ(cols[1].size(), 2 * kRows);
  Column copy = cols[2];
  EXPECT_FALSE(block->Owns(copy.f32().data()));
  block.reset();
  cols.clear();
  EXPECT_TRUE(seen.expired());  // freed with its last column, though the copy lives on
  EXPECT_EQ(copy.f32()[7], float(2 * kRows + 7));
}

TEST(Table, CopyColumnsToMatrixInParallel) {
  for (const int threads : {1, 2}) {
    SetNumThreads(threads);
    Table t = MakeTable(100000);
    t.mutable_column(2).SetMissing(7);
    MatrixF m;
    const std::vector<std::string> cols = {"c", "a", "b"};
    CopyColumnsToMatrix(t, cols, &m);
    ASSERT_EQ(m.rows(), 100000);
    ASSERT_EQ(m.cols(), 3);
    for (std::int64_t i = 0; i < m.rows(); i += 999) {
      if (i != 7) {
        EXPECT_EQ(m(i, 0), static_cast<float>(i * 10));
      }
      EXPECT_EQ(m(i, 1), static_cast<float>(i) * 0.5f);
      EXPECT_EQ(m(i, 2), -static_cast<float>(i));
    }
    EXPECT_TRUE(std::isnan(m(7, 0)));
    const std::vector<std::string> bad = {"s"};
    EXPECT_THAT([&] { CopyColumnsToMatrix(t, bad, &m); },
                ::testing::ThrowsMessage<Error>(HasSubstr("column 's' is categorical")));
  }
  SetNumThreads(0);
}

TEST(Table, ToDenseSelectsFeaturesAndLabel) {
  const Table t = ParseCsv("id,x,y,label\n1,2,3,0\n2,5,6,1\n");
  DenseSpec spec;
  spec.label = "label";
  spec.exclude = {"id"};
  const DenseData d = ToDense(t, spec);
  EXPECT_EQ(d.feature_names, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(d.features(1, 1), 6.0f);
  EXPECT_EQ(d.labels, (std::vector<float>{0, 1}));
  EXPECT_EQ(NumericColumnNames(t, spec.exclude), (std::vector<std::string>{"x", "y", "label"}));
  DenseSpec dup;
  dup.features = {"x", "x"};
  EXPECT_THROW(ToDense(t, dup), Error);
  DenseSpec both;
  both.features = {"x"};
  both.label = "x";
  EXPECT_THROW(ToDense(t, both), Error);
}

}  // namespace
}  // namespace escala::data
