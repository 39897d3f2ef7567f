// Running out of disk space while escala writes: a tmpfs of a few hundred KiB mounted over a test
// directory (root only: the tests skip where mounting is not permitted), filled to the last
// byte, then `escala train --out`, `escala train --checkpoint-dir` and `escala score --out` asked
// to replace files there. Each must fail with a clear IO error naming the file, leave the previous
// file byte for byte, and leave no temporary file behind; once space is back, a resume from the
// surviving checkpoint works.
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/mount.h>

#include "escala/io/bundle.h"
#include "test_util/process.h"
#include "test_util/temp_dir.h"

namespace escala {
namespace {

namespace fs = std::filesystem;
using testing::CliPath;
using testing::ReadFile;
using testing::RunCommand;
using testing::TempDir;
using testing::WriteFile;

int Escala(const std::string& args, std::string* out) {
  return RunCommand("timeout 120 " + CliPath() + " " + args, out);
}

// A tmpfs of `size` mounted at `dir` for the object's life.
class SmallTmpfs {
 public:
  SmallTmpfs(const std::string& dir, const std::string& size) : dir_(dir) {
    fs::create_directories(dir_);
    mounted_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
    if (!mounted_) why_ = std::strerror(errno);
  }
  ~SmallTmpfs() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& why() const { return why_; }
  std::string File(const std::string& name) const { return dir_ + "/" + name; }

  // Takes every free byte: a filler file written until the file system refuses.
  void Fill() {
    std::ofstream f(File("filler"), std::ios::binary);
    const std::string block(4096, 'x');
    while (f.write(block.data(), static_cast<std::streamsize>(block.size()))) f.flush();
  }
  void Free() { fs::remove(File("filler")); }

  std::set<std::string> Entries() const {
    std::set<std::string> names;
    for (const auto& e : fs::recursive_directory_iterator(dir_)) {
      names.insert(fs::relative(e.path(), dir_).string());
    }
    return names;
  }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string why_;
};

std::string TwoFeatureCsv(int rows) {
  std::string csv = "a,b,y\n";
  for (int i = 0; i < rows; ++i) {
    const double a = (i % 13) - 6.0, b = (i % 7) - 3.0;
    csv += fmt::format("{},{},{}\n", a, b, a - b > 0 ? 1 : 0);
  }
  return csv;
}

TEST(OutOfSpace, WritesFailClearlyAndLeaveThePreviousFilesIntact) {
  TempDir dir;
  SmallTmpfs small(dir.File("small"), "512k");
  if (!small.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here: " << small.why();
  WriteFile(dir.File("x.csv"), TwoFeatureCsv(400));
  const std::string train = "train --data " + dir.File("x.csv") + " --label y ";
  std::string out;
  // The previous files: a bundle, a checkpoint, predictions.
  const std::string checkpointed =
      train + "--model mlp --hidden 8 --epochs 3 --checkpoint-dir " + small.File("ckpt");
  ASSERT_EQ(Escala(checkpointed + " --out " + small.File("m.bundle"), &out), 0) << out;
  ASSERT_EQ(Escala("score --model " + small.File("m.bundle") + " --data " + dir.File("x.csv") +
                       " --out " + small.File("p.csv"),
                   &out),
            0)
      << out;
  const std::string bundle = ReadFile(small.File("m.bundle"));
  const std::string preds = ReadFile(small.File("p.csv"));
  const std::string checkpoint = ReadFile(small.File("ckpt/checkpoint.ckpt"));
  const auto before = small.Entries();

  small.Fill();
  EXPECT_NE(
      Escala(train + "--model mlp --hidden 16 --epochs 2 --seed 7 --out " + small.File("m.bundle"),
             &out),
      0)
      << out;
  EXPECT_NE(out.find("No space left on device"), std::string::npos) << out;
  EXPECT_NE(out.find("m.bundle"), std::string::npos) << out;
  EXPECT_NE(Escala("score --model " + small.File("m.bundle") + " --data " + dir.File("x.csv") +
                       " --out " + small.File("p.csv"),
                   &out),
            0)
      << out;
  EXPECT_NE(out.find("No space left on device"), std::string::npos) << out;
  // Training that checkpoints (afresh) stops at the first checkpoint it cannot write.
  EXPECT_NE(Escala(checkpointed, &out), 0) << out;
  EXPECT_NE(out.find("No space left on device"), std::string::npos) << out;

  EXPECT_EQ(ReadFile(small.File("m.bundle")), bundle);
  EXPECT_EQ(ReadFile(small.File("p.csv")), preds);
  EXPECT_EQ(ReadFile(small.File("ckpt/checkpoint.ckpt")), checkpoint);
  auto after = small.Entries();
  after.erase("filler");
  EXPECT_EQ(after, before) << "a temporary file was left behind";
  EXPECT_NO_THROW(io::ModelBundle::Load(small.File("m.bundle")));

  // With space back, the surviving checkpoint resumes (and gives the first run's model).
  small.Free();
  EXPECT_EQ(Escala(checkpointed + " --resume --out " + small.File("m2.bundle"), &out), 0) << out;
  EXPECT_NE(out.find("resum"), std::string::npos) << out;
}

}  // namespace
}  // namespace escala
