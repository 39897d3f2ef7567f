// End-to-end: `escala datagen` and `escala convert` as a user runs them.
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "escala/data/csv.h"
#include "escala/data/npy.h"
#include "test_util/temp_dir.h"

namespace escala {
namespace {

using testing::CliPath;
using ::testing::HasSubstr;
using testing::RunCommand;
using testing::TempDir;
using testing::WriteFile;

TEST(DataCli, DatagenThenConvertRoundTrips) {
  TempDir dir;
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() +
                           " datagen --task classification --rows 5000 --features 8 "
                           "--informative 4 --classes 3 --noise 0.1 --seed 42 --out " +
                           dir.File("train.csv"),
                       &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("rows 5000  features 8"));
  ASSERT_EQ(RunCommand(CliPath() + " convert --data " + dir.File("train.csv") + " --out " +
                           dir.File("train.npy") + " --label label",
                       &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("rows 5000  columns 8"));
  EXPECT_THAT(out, HasSubstr("MB/s"));
  const MatrixF x = data::ReadNpyMatrix(dir.File("train.npy"));
  const std::vector<float> y = data::ReadNpyVector(dir.File("train.labels.npy"));
  data::DenseSpec spec;
  spec.label = "label";
  const data::DenseData d = data::ReadCsvDense(dir.File("train.csv"), spec);
  ASSERT_EQ(x.rows(), 5000);
  EXPECT_EQ(std::memcmp(x.data(), d.features.data(), d.features.bytes()), 0);
  EXPECT_EQ(y, d.labels);
  // The NPY form of the same seed holds the same data.
  ASSERT_EQ(RunCommand(CliPath() +
                           " datagen --task classification --rows 5000 --features 8 "
                           "--informative 4 --classes 3 --noise 0.1 --seed 42 --out " +
                           dir.File("direct.npy"),
                       &out),
            0)
      << out;
  const MatrixF direct = data::ReadNpyMatrix(dir.File("direct.npy"));
  EXPECT_EQ(std::memcmp(direct.data(), x.data(), x.bytes()), 0);
  // A test set is a later range of the same seed.
  ASSERT_EQ(RunCommand(CliPath() +
                           " datagen --rows 100 --start-row 4900 --features 8 "
                           "--informative 4 --classes 3 --noise 0.1 --seed 42 --out " +
                           dir.File("test.csv"),
                       &out),
            0)
      << out;
  const data::DenseData t = data::ReadCsvDense(dir.File("test.csv"), spec);
  EXPECT_EQ(std::memcmp(t.features.data(), x.row(4900), t.features.bytes()), 0);
}

TEST(DataCli, ConvertsDirectoriesOfPartsAndLibsvm) {
  TempDir dir;
  std::filesystem::create_directory(dir.File("parts"));
  WriteFile(dir.File("parts/part-00000.csv"), "a,b,y\n1,2,0\n3,4,1\n");
  WriteFile(dir.File("parts/part-00001.csv"), "a,b,y\n5,6,1\n");
  WriteFile(dir.File("parts/_SUCCESS"), "");
  std::string out;
  ASSERT_EQ(RunCommand(CliPath() + " convert --data " + dir.File("parts") + " --out " +
                           dir.File("p.npy") + " --label y",
                       &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("rows 3  columns 2"));
  EXPECT_EQ(data::ReadNpyMatrix(dir.File("p.npy"))(2, 1), 6.0f);
  WriteFile(dir.File("d.svm"), "1 1:0.5 3:2\n-1 2:1\n");
  ASSERT_EQ(
      RunCommand(CliPath() + " convert --data " + dir.File("d.svm") + " --out " + dir.File("s.npy"),
                 &out),
      0)
      << out;
  const MatrixF s = data::ReadNpyMatrix(dir.File("s.npy"));
  EXPECT_EQ(s.cols(), 3);
  EXPECT_EQ(s(0, 2), 2.0f);
  EXPECT_EQ(data::ReadNpyVector(dir.File("s.labels.npy")), (std::vector<float>{1, -1}));
}

TEST(DataCli, BadInputFailsWithLocationOrSkipsWithACount) {
  TempDir dir;
  WriteFile(dir.File("bad.csv"), "a,b\n1,2\n3,x4\n5,6\n");
  std::string out;
  EXPECT_EQ(RunCommand(CliPath() + " convert --data " + dir.File("bad.csv") + " --out " +
                           dir.File("o.npy"),
                       &out),
            2);
  EXPECT_THAT(out, HasSubstr("escala: error: InvalidArgument: column 'b' is categorical"));
  EXPECT_FALSE(std::filesystem::exists(dir.File("o.npy")));
  // Beyond the inference sample the same text is a parse error with its location.
  std::string big = "a,b\n";
  for (int i = 0; i < 20000; ++i) big += "1,2\n";
  big += "3,x4\n5,6\n";
  WriteFile(dir.File("late.csv"), big);
  EXPECT_EQ(RunCommand(CliPath() + " convert --data " + dir.File("late.csv") + " --out " +
                           dir.File("o.npy"),
                       &out),
            2);
  EXPECT_THAT(out, HasSubstr("late.csv:20002:3: field 2 'b': cannot parse 'x4' as a number"));
  EXPECT_FALSE(std::filesystem::exists(dir.File("o.npy")));
  EXPECT_EQ(RunCommand(CliPath() + " convert --data " + dir.File("late.csv") + " --out " +
                           dir.File("o.npy") + " --on-error skip",
                       &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("rows 20001"));
  EXPECT_THAT(out, HasSubstr("skipped 1 malformed rows"));
  EXPECT_NE(RunCommand(CliPath() + " datagen --rows 10 --features 3 --informative 5 --out " +
                           dir.File("g.csv"),
                       &out),
            0);
  EXPECT_THAT(out, HasSubstr("--informative must be in [1, features=3]"));
  EXPECT_NE(RunCommand(CliPath() + " convert --data " + dir.File("nope.csv") + " --out " +
                           dir.File("o.npy"),
                       &out),
            0);
  EXPECT_THAT(out, HasSubstr("NotFound"));
}

}  // namespace
}  // namespace escala
