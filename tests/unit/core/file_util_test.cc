#include "escala/core/file_util.h"

#include <filesystem>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "escala/core/error.h"
#include "test_util/temp_dir.h"

namespace escala {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

std::string ErrorOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

int CountEntries(const fs::path& dir) {
  int n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

TEST(AtomicFileWriter, ReplacesTheFileOnlyOnCommit) {
  TempDir dir;
  const std::string path = dir.File("out.bin");
  WriteFile(path, "old");
  {
    AtomicFileWriter w(path);
    w.Write("new contents");
    EXPECT_EQ(ReadFile(path), "old");  // not yet committed
  }
  EXPECT_EQ(ReadFile(path), "old");        // abandoned: the old file stays
  EXPECT_EQ(CountEntries(dir.path()), 1);  // and the temporary is gone
  AtomicFileWriter w(path);
  w.Write("new contents");
  w.Commit();
  EXPECT_EQ(ReadFile(path), "new contents");
  EXPECT_EQ(CountEntries(dir.path()), 1);
}

TEST(AtomicFileWriter, RemovesTemporariesOfDeadWriters) {
  TempDir dir;
  const std::string path = dir.File("model.bundle");
  // What a writer killed with SIGKILL leaves: pid 999999999 cannot exist (pid_max < 2^22).
  WriteFile(dir.File(".model.bundle.tmp-999999999-17"), "partial");
  // A live writer's temporary (this process) and another file's are left alone.
  const std::string live = dir.File(".model.bundle.tmp-" + std::to_string(::getpid()) + "-5");
  WriteFile(live, "in progress");
  WriteFile(dir.File(".other.tmp-999999999-1"), "not ours");
  WriteFileAtomic(path, "done");
  EXPECT_FALSE(fs::exists(dir.File(".model.bundle.tmp-999999999-17")));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(dir.File(".other.tmp-999999999-1")));
  EXPECT_EQ(ReadFile(path), "done");
}

TEST(AtomicFileWriter, WritesSpecialFilesInPlace) {
  // /dev/null stays a device: renaming over it (as root) used to replace the node with a file.
  WriteFileAtomic("/dev/null", "discarded");
  struct stat st {};
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));

  TempDir dir;
  const std::string fifo = dir.File("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string got;
  std::thread reader([&] { got = ReadFile(fifo); });
  WriteFileAtomic(fifo, "through the pipe");
  reader.join();
  EXPECT_EQ(got, "through the pipe");
  ASSERT_EQ(::stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_THAT(ErrorOf([&] { WriteFileAtomic(dir.path().string(), "x"); }),
              HasSubstr("is a directory"));
}

TEST(CheckOutputIsNotInput, RefusesAnOutputThatIsAnInput) {
  TempDir dir;
  const std::string in = dir.File("data.csv");
  WriteFile(in, "a\n1\n");
  const std::string same = (dir.path() / "." / "data.csv").string();
  EXPECT_THAT(ErrorOf([&] { CheckOutputIsNotInput(same, "--out", {in}); }),
              HasSubstr("--out " + same + " is also an input"));
  CheckOutputIsNotInput(dir.File("other.csv"), "--out", {in, dir.File("missing.csv")});
  EXPECT_EQ(ReadFile(in), "a\n1\n");
}

}  // namespace
}  // namespace escala
