#include "escala/data/dataset.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <zlib.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/data/npy.h"
#include "escala/data/split.h"
#include "escala/data/stream.h"
#include "unit/data/data_test_util.h"

namespace escala::data {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::WriteFile;

void WriteGz(const std::string& path, const std::string& data) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, data.data(), static_cast<unsigned>(data.size()));
  gzclose(f);
}

// CSV rows "id,x,name" with ids [first, first + n); some names are quoted and span lines.
std::string CsvRows(int first, int n, bool header, bool quoted_newlines) {
  std::string s = header ? "id,x,name\n" : "";
  for (int i = first; i < first + n; ++i) {
    s += fmt::format("{},{}.5,", i, i % 17);
    s += quoted_newlines && i % 5 == 0 ? fmt::format("\"a,\n{}\"\n", i)
                                       : fmt::format("n{}\n", i % 3);
  }
  return s;
}

// A dataset layout for the coverage property: how to build it and how many rows it holds.
struct Layout {
  std::string name;
  Format format;
  int rows;
  std::function<std::string(const TempDir&)> build;  // returns the spec to open
};

std::vector<Layout> Layouts() {
  std::vector<Layout> v;
  v.push_back({"one csv", Format::kCsv, 3000, [](const TempDir& d) {
                 WriteFile(d.File("one.csv"), CsvRows(0, 3000, true, false));
                 return d.File("one.csv");
               }});
  v.push_back({"quoted newlines", Format::kCsv, 2000, [](const TempDir& d) {
                 WriteFile(d.File("q.csv"), CsvRows(0, 2000, true, true));
                 return d.File("q.csv");
               }});
  v.push_back({"unequal files", Format::kCsv, 2600, [](const TempDir& d) {
                 const int sizes[] = {1000, 50, 700, 1, 849};
                 int first = 0;
                 for (int k = 0; k < 5; ++k) {
                   WriteFile(d.File(fmt::format("u{}.csv", k)),
                             CsvRows(first, sizes[k], true, k == 2));
                   first += sizes[k];
                 }
                 return d.File("u*.csv");
               }});
  v.push_back({"spark parts", Format::kCsv, 1600, [](const TempDir& d) {
                 std::filesystem::create_directory(d.File("out"));
                 for (int k = 0; k < 16; ++k) {
                   WriteFile(d.File(fmt::format("out/part-{:05d}.csv", k)),
                             CsvRows(k * 100, 100, true, false));
                   WriteFile(d.File(fmt::format("out/.part-{:05d}.csv.crc", k)), "crc");
                 }
                 WriteFile(d.File("out/_SUCCESS"), "");
                 return d.File("out");
               }});
  v.push_back({"gzip parts", Format::kCsv, 900, [](const TempDir& d) {
                 for (int k = 0; k < 3; ++k) {
                   WriteGz(d.File(fmt::format("g{}.csv.gz", k)), CsvRows(k * 300, 300, true, true));
                 }
                 return d.File("g*.csv.gz");
               }});
  v.push_back({"libsvm", Format::kLibsvm, 1500, [](const TempDir& d) {
                 std::string s;
                 for (int i = 0; i < 1500; ++i) s += fmt::format("{} 1:{} {}:1\n", i, i, 2 + i % 7);
                 WriteFile(d.File("a.svm"), s);
                 return d.File("a.svm");
               }});
  v.push_back({"npy", Format::kNpy, 1000, [](const TempDir& d) {
                 for (int k = 0; k < 2; ++k) {
                   MatrixF m(500, 2);
                   for (int i = 0; i < 500; ++i) {
                     m(i, 0) = static_cast<float>(k * 500 + i);
                     m(i, 1) = 1;
                   }
                   WriteNpy(d.File(fmt::format("n{}.npy", k)), m.view());
                 }
                 return d.File("n0.npy") + "," + d.File("n1.npy");
               }});
  return v;
}

// (row id, id value) pairs of one shard.
std::vector<std::pair<std::uint64_t, int>> ReadShard(const Dataset& ds, Shard shard) {
  std::vector<std::pair<std::uint64_t, int>> out;
  if (ds.format() == Format::kLibsvm) {
    const SparseData s = ds.ReadSparse(shard);
    for (std::int64_t i = 0; i < s.x.rows; ++i) {
      out.emplace_back(s.row_ids[static_cast<std::size_t>(i)],
                       static_cast<int>(s.labels[static_cast<std::size_t>(i)]));
    }
    return out;
  }
  const Table t = ds.ReadTable(shard);
  const Column& id = t.column(ds.format() == Format::kNpy ? "f0" : "id");
  for (std::int64_t i = 0; i < t.num_rows(); ++i) {
    out.emplace_back(t.row_ids()[static_cast<std::size_t>(i)], static_cast<int>(id.GetDouble(i)));
  }
  return out;
}

// Every row is in exactly one shard, for every world size and layout.
TEST(Sharding, EveryRowInExactlyOneShard) {
  for (const auto& layout : Layouts()) {
    TempDir dir;
    DatasetOptions o;
    o.libsvm.num_features = 10;
    const Dataset ds = Dataset::Open(layout.build(dir), o);
    ASSERT_EQ(ds.format(), layout.format) << layout.name;
    const auto all = ReadShard(ds, {0, 1});
    ASSERT_EQ(static_cast<int>(all.size()), layout.rows) << layout.name;
    std::set<int> ids;
    for (const auto& [rid, id] : all) ids.insert(id);
    ASSERT_EQ(static_cast<int>(ids.size()), layout.rows) << layout.name;
    for (int world = 1; world <= 8; ++world) {
      std::map<std::uint64_t, int> seen;
      for (int rank = 0; rank < world; ++rank) {
        for (const auto& [rid, id] : ReadShard(ds, {rank, world})) {
          ASSERT_TRUE(seen.emplace(rid, id).second)
              << layout.name << ": row " << id << " twice with world " << world;
        }
      }
      ASSERT_EQ(seen.size(), all.size()) << layout.name << " world " << world;
      for (const auto& [rid, id] : all) {
        ASSERT_EQ(seen.at(rid), id) << layout.name << " world " << world;
      }
    }
  }
}

TEST(Sharding, PlansWholeFilesOrRanges) {
  TempDir dir;
  for (int k = 0; k < 8; ++k)
    WriteFile(dir.File(fmt::format("p{}.csv", k)), CsvRows(k * 10, 10, true, false));
  const Dataset parts = Dataset::Open(dir.File("p*.csv"));
  for (int r = 0; r < 4; ++r) {
    const auto plan = parts.Plan({r, 4});
    ASSERT_EQ(plan.size(), 2u);
    EXPECT_TRUE(plan[0].whole && plan[1].whole);
  }
  WriteFile(dir.File("big.csv"), CsvRows(0, 1000, true, false));
  const Dataset one = Dataset::Open(dir.File("big.csv"));
  const auto plan = one.Plan({1, 3});
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_FALSE(plan[0].whole);
  EXPECT_LT(plan[0].begin, plan[0].end);
  EXPECT_THROW(one.Plan({3, 3}), Error);
}

TEST(Dataset, OpensPathsGlobsAndDirectories) {
  TempDir dir;
  std::filesystem::create_directory(dir.File("d"));
  WriteFile(dir.File("d/b.csv"), CsvRows(10, 5, true, false));
  WriteFile(dir.File("d/a.csv"), CsvRows(0, 10, true, false));
  WriteFile(dir.File("d/_SUCCESS"), "");
  WriteFile(dir.File("d/notes.md"), "ignored");
  WriteFile(dir.File("d/empty.csv"), "");
  const Dataset ds = Dataset::Open(dir.File("d"));
  ASSERT_EQ(ds.files().size(), 2u);  // sorted, empty file ignored
  EXPECT_THAT(ds.files()[0].path, HasSubstr("a.csv"));
  ReadReport report;
  const Table t = ds.ReadTable({}, &report);
  EXPECT_EQ(t.num_rows(), 15);
  EXPECT_EQ(t.column("id").f64()[14], 14.0);
  EXPECT_EQ(report.empty_files, 1);
  EXPECT_EQ(ds.schema().ToString(), "id:float64, x:float64, name:categorical");
  const std::vector<std::string> specs = {dir.File("d/b.csv"), dir.File("d/a.csv")};
  EXPECT_EQ(Dataset::Open(specs).files().size(), 2u);
}

TEST(Dataset, ErrorsNameTheProblem) {
  TempDir dir;
  WriteFile(dir.File("a.csv"), "x,y\n1,2\n");
  WriteFile(dir.File("b.csv"), "x,z\n1,2\n");
  WriteFile(dir.File("c.svm"), "1 1:1\n");
  WriteFile(dir.File("data.bin"), "????");
  WriteFile(dir.File("e.csv"), "");
  auto msg = [](auto fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_THAT(msg([&] { Dataset::Open(dir.File("*.csv")); }),
              HasSubstr("b.csv: its header differs from"));
  EXPECT_THAT(msg([&] { Dataset::Open(dir.File("a.csv") + "," + dir.File("c.svm")); }),
              HasSubstr("dataset mixes formats"));
  EXPECT_THAT(msg([&] { Dataset::Open(dir.File("data.bin")); }),
              HasSubstr("cannot tell the format"));
  EXPECT_THAT(msg([&] { Dataset::Open(dir.File("nothing*.csv")); }),
              HasSubstr("NotFound: no files match"));
  EXPECT_THAT(msg([&] { Dataset::Open(dir.File("missing.csv")); }), HasSubstr("NotFound"));
  EXPECT_THAT(msg([&] { Dataset::Open(dir.File("e.csv")); }), HasSubstr("e.csv: empty file"));
  DatasetOptions forced;
  forced.format = Format::kCsv;
  WriteFile(dir.File("data.bin"), "a\n1\n");
  EXPECT_EQ(Dataset::Open(dir.File("data.bin"), forced).ReadTable().num_rows(), 1);
  const Dataset svm = Dataset::Open(dir.File("c.svm"));
  EXPECT_EQ(svm.ReadTable().schema().ToString(), "f0:float32, label:float32");
  WriteFile(dir.File("huge.svm"), "1 2147483647:1\n");
  EXPECT_THAT(msg([&] { Dataset::Open(dir.File("huge.svm")).ReadTable(); }),
              HasSubstr("huge.svm: LIBSVM data of 1 rows x 2147483647 features would take"));
  EXPECT_THAT(msg([&] { svm.ReadSparse({0, 2}); }), HasSubstr("needs num_features"));
}

TEST(Dataset, DenseReadsOfCsvNpyAndLibsvm) {
  TempDir dir;
  WriteFile(dir.File("a.csv"), "f,g,label\n1,2,0\n3,4,1\n");
  DenseSpec spec;
  spec.label = "label";
  const DenseData c = Dataset::Open(dir.File("a.csv")).ReadDense(spec);
  EXPECT_EQ(c.features(1, 1), 4.0f);
  EXPECT_EQ(c.labels[1], 1.0f);
  EXPECT_EQ(c.row_ids.size(), 2u);
  MatrixF m(3, 2, 7.0f);
  WriteNpy(dir.File("x.npy"), m.view());
  const std::vector<float> y = {0, 1, 0};
  WriteNpy(dir.File("x.labels.npy"), std::span<const float>(y));
  const Dataset npy = Dataset::Open(dir.File("x.npy"));
  EXPECT_EQ(npy.schema().ToString(), "f0:float32, f1:float32");
  const DenseData n = npy.ReadDense(spec);
  EXPECT_EQ(n.rows(), 3);
  EXPECT_EQ(n.labels, y);
  DenseSpec one;
  one.features = {"f1"};
  EXPECT_EQ(npy.ReadDense(one).cols(), 1);
  // What `escala convert --label y` writes trains as a table with a column named by --label.
  DatasetOptions named;
  named.label_column = "y";
  const Table nt = Dataset::Open(dir.File("x.npy"), named).ReadTable();
  EXPECT_EQ(nt.schema().ToString(), "f0:float32, f1:float32, y:float32");
  EXPECT_EQ(nt.column("y").GetDouble(1), 1.0);
  named.label_column = "f1";  // a feature of that name: no extra column
  EXPECT_EQ(Dataset::Open(dir.File("x.npy"), named).ReadTable().num_columns(), 2);
  WriteFile(dir.File("s.svm"), "1 2:5\n0 1:1\n");
  const DenseData s = Dataset::Open(dir.File("s.svm")).ReadDense({});
  EXPECT_EQ(s.features(0, 1), 5.0f);
  EXPECT_EQ(s.labels, (std::vector<float>{1, 0}));
}

// Streaming gives the same rows as reading the shard whole, in small bounded chunks.
TEST(Stream, MatchesWholeReadsInBoundedChunks) {
  for (const auto& layout : Layouts()) {
    if (layout.format == Format::kLibsvm) continue;
    TempDir dir;
    const Dataset ds = Dataset::Open(layout.build(dir));
    for (const Shard shard : {Shard{0, 1}, Shard{1, 3}}) {
      const Table whole = ds.ReadTable(shard);
      DatasetStream stream(ds, shard, StreamOptions{.block_bytes = 2048});
      std::vector<std::uint64_t> ids;
      Table chunk;
      int chunks = 0;
      while (stream.Next(&chunk)) {
        ++chunks;
        // A chunk holds at most about two blocks of input; a row has at least 6 bytes.
        EXPECT_LE(chunk.num_rows(), 2 * 2048 / 6) << layout.name;
        ids.insert(ids.end(), chunk.row_ids().begin(), chunk.row_ids().end());
        if (chunk.num_rows() > 0 && layout.format == Format::kCsv) {
          // Category codes stay stable across chunks.
          const Column& name = chunk.column("name");
          for (std::int64_t i = 0; i < name.size(); ++i) {
            const auto c = name.category(i);
            EXPECT_TRUE(c.starts_with("n") || c.starts_with("a,")) << c;
          }
        }
      }
      EXPECT_EQ(std::vector<std::uint64_t>(whole.row_ids().begin(), whole.row_ids().end()), ids)
          << layout.name;
      if (whole.num_rows() > 400) {
        EXPECT_GT(chunks, 2) << layout.name;
      }
      // A second pass after Rewind sees the same rows.
      stream.Rewind();
      std::int64_t again = 0;
      DenseData dense;
      DenseSpec spec;
      if (layout.format == Format::kCsv) spec.exclude = {"name"};
      while (stream.NextDense(spec, &dense)) again += dense.rows();
      EXPECT_EQ(again, whole.num_rows()) << layout.name;
    }
  }
}

TEST(Split, ValidationSetIsIndependentOfWorldSize) {
  TempDir dir;
  WriteFile(dir.File("d.csv"), CsvRows(0, 5000, true, true));
  const Dataset ds = Dataset::Open(dir.File("d.csv"));
  std::set<int> reference;
  for (int world = 1; world <= 5; ++world) {
    std::set<int> valid;
    for (int rank = 0; rank < world; ++rank) {
      const Table t = ds.ReadTable({rank, world});
      const SplitIndices s = SplitTrainValidation(t.row_ids(), 0.2, 99);
      EXPECT_EQ(s.train.size() + s.valid.size(), static_cast<std::size_t>(t.num_rows()));
      for (const auto i : s.valid)
        valid.insert(static_cast<int>(t.column("id").f64()[static_cast<std::size_t>(i)]));
    }
    if (world == 1) {
      reference = valid;
      EXPECT_NEAR(static_cast<double>(valid.size()) / 5000, 0.2, 0.03);
    } else {
      EXPECT_EQ(valid, reference) << "world " << world;
    }
  }
  // A different seed gives a different split; sampling is independent of the split.
  std::vector<std::uint64_t> ids(10000);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = MakeRowId(0, i * 17);
  const auto a = SplitTrainValidation(ids, 0.3, 1);
  const auto b = SplitTrainValidation(ids, 0.3, 2);
  EXPECT_NE(a.valid, b.valid);
  int both = 0;
  for (const auto i : a.valid) both += InSample(ids[static_cast<std::size_t>(i)], 0.5, 1) ? 1 : 0;
  EXPECT_NEAR(both / static_cast<double>(a.valid.size()), 0.5, 0.05);
  EXPECT_THROW(SplitTrainValidation(ids, 1.5, 0), Error);
}

}  // namespace
}  // namespace escala::data
