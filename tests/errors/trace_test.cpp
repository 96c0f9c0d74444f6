// docs/errors.md, "Traces": each row's test, named after it. The binary trace's readers
// (parse_trace, read_trace), its writers (encode_trace, write_trace) and the RMM log reader
// (parse_rmm_log, read_rmm_log): for each bad input, the exception, its what() in full and, for
// a trace_error, its offset() and record().
#include <pmr/trace/trace_file.hpp>

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

namespace fs = std::filesystem;
using pmrkit::trace;
using pmrkit::trace_action;
using pmrkit::trace_error;
using pmrkit::trace_record;
constexpr std::uint64_t no_record = trace_error::no_record;

// Three records: id 1 (64 bytes at 16) allocated and freed, id 2 (4096 at 4096) left live.
trace sample() {
  trace t;
  t.header.pid = 77;
  t.records = {
      {trace_action::allocate, 5, 1, 64, 16, 10},
      {trace_action::allocate, 6, 2, 4096, 4096, 20},
      {trace_action::deallocate, 5, 1, 64, 16, 30},
  };
  return t;
}

std::vector<std::byte> sample_bytes() {
  return pmrkit::encode_trace(sample());
}

// `body` throws trace_error with exactly this what(), offset() and record().
template <class Body>
void expect_trace_error(Body&& body, std::string_view what, std::uint64_t offset,
                        std::uint64_t record) {
  try {
    body();
    ADD_FAILURE() << "no trace_error; expected " << what;
  } catch (const trace_error& e) {
    EXPECT_EQ(std::string_view(e.what()), what);
    EXPECT_EQ(e.offset(), offset) << e.what();
    EXPECT_EQ(e.record(), record) << e.what();
  }
}

// parse_trace of `bytes` (the source "t.trace") throws exactly this trace_error.
void expect_parse_error(const std::vector<std::byte>& bytes, std::string_view what,
                        std::uint64_t offset, std::uint64_t record) {
  expect_trace_error([&] { (void)pmrkit::parse_trace(bytes, "t.trace"); }, what, offset, record);
}

// parse_trace of encode_trace(t) (the source "t.trace") throws exactly this trace_error.
void expect_encoded_error(const trace& t, std::string_view what, std::uint64_t offset,
                          std::uint64_t record) {
  expect_parse_error(pmrkit::encode_trace(t), what, offset, record);
}

// parse_rmm_log of `text` (the source "log.csv") throws exactly this trace_error.
void expect_rmm_error(std::string_view text, std::string_view what, std::uint64_t offset,
                      std::uint64_t record) {
  expect_trace_error([&] { (void)pmrkit::parse_rmm_log(text, "log.csv"); }, what, offset, record);
}

// `body` throws std::system_error (not a trace_error) with `code` in the generic category and
// exactly this what().
template <class Body>
void expect_system_error(Body&& body, int code, const std::string& what) {
  try {
    body();
    ADD_FAILURE() << "no std::system_error; expected " << what;
  } catch (const trace_error& e) {
    ADD_FAILURE() << "a trace_error: " << e.what();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::error_code(code, std::generic_category())) << e.what();
    EXPECT_EQ(std::string(e.what()), what);
  }
}

// `body` throws std::invalid_argument with exactly this what().
template <class Body>
void expect_invalid_argument_exactly(Body&& body, std::string_view what) {
  try {
    body();
    ADD_FAILURE() << "no std::invalid_argument; expected " << what;
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string_view(e.what()), what);
  }
}

// A folder of its own under the temporary directory, removed at the end.
class scratch_folder {
 public:
  scratch_folder()
      : path_(fs::temp_directory_path() /
              ("pmrkit-errors-trace-" + std::to_string(::getpid()) + "-" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~scratch_folder() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  scratch_folder(const scratch_folder&) = delete;
  scratch_folder& operator=(const scratch_folder&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string contents_of(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// ---- Reading a trace: the header -------------------------------------------------------------

TEST(TraceRead, TruncatedHeader) {
  expect_parse_error({}, "t.trace: byte 0: truncated header: expected 32 bytes, found 0", 0,
                     no_record);
  const std::vector<std::byte> bytes = sample_bytes();
  expect_parse_error({bytes.begin(), bytes.begin() + 31},
                     "t.trace: byte 31: truncated header: expected 32 bytes, found 31", 31,
                     no_record);
  // Eight bytes: the magic alone.
  expect_parse_error({bytes.begin(), bytes.begin() + 8},
                     "t.trace: byte 8: truncated header: expected 32 bytes, found 8", 8, no_record);
}

TEST(TraceRead, WrongMagic) {
  std::vector<std::byte> bytes = sample_bytes();
  bytes[7] = std::byte{'e'};
  expect_parse_error(bytes,
                     "t.trace: byte 0: not a pmrkit trace: expected the magic \"PMRKTRCE\", found "
                     "bytes 504d524b54524365",
                     0, no_record);
}

TEST(TraceRead, UnknownVersion) {
  std::vector<std::byte> bytes = sample_bytes();
  bytes[8] = std::byte{0};
  expect_parse_error(bytes, "t.trace: byte 8: unknown format version 0 (this reader knows 1)", 8,
                     no_record);
  bytes[8] = std::byte{2};
  bytes[9] = std::byte{1};  // 258
  expect_parse_error(bytes, "t.trace: byte 8: unknown format version 258 (this reader knows 1)", 8,
                     no_record);
}

TEST(TraceRead, UnknownRecordSize) {
  std::vector<std::byte> bytes = sample_bytes();
  bytes[10] = std::byte{64};
  expect_parse_error(bytes, "t.trace: byte 10: record size 64, expected 32", 10, no_record);
}

TEST(TraceRead, UnknownOrigin) {
  std::vector<std::byte> bytes = sample_bytes();
  bytes[12] = std::byte{3};
  expect_parse_error(bytes, "t.trace: byte 12: unknown origin 3, expected 0, 1 or 2", 12,
                     no_record);
}

TEST(TraceRead, ReservedHeaderFieldNotZero) {
  for (const std::size_t i : {28u, 31u}) {
    SCOPED_TRACE(i);
    std::vector<std::byte> bytes = sample_bytes();
    bytes[i] = std::byte{1};
    expect_parse_error(bytes, "t.trace: byte 28: reserved header field is not zero", 28, no_record);
  }
}

// ---- Reading a trace: the records ------------------------------------------------------------

// The partial record's index is in the message and in record().
TEST(TraceRead, TruncatedRecord) {
  const std::vector<std::byte> bytes = sample_bytes();  // 32 + 3 × 32
  expect_parse_error({bytes.begin(), bytes.end() - 1},
                     "t.trace: byte 96: truncated record 2: expected 32 bytes, found 31", 96, 2);
  expect_parse_error({bytes.begin(), bytes.begin() + 32 + 5},
                     "t.trace: byte 32: truncated record 0: expected 32 bytes, found 5", 32, 0);
}

TEST(TraceRead, UnknownAction) {
  for (const int action : {0, 4, 255}) {
    SCOPED_TRACE(action);
    std::vector<std::byte> bytes = sample_bytes();
    bytes[32 + 32] = static_cast<std::byte>(action);  // record 1
    expect_parse_error(bytes,
                       "t.trace: byte 64: record 1: unknown action " + std::to_string(action) +
                           ", expected 1 (allocate), 2 (deallocate) or 3 (failed allocation)",
                       64, 1);
  }
}

TEST(TraceRead, AlignmentAboveTwoToSixtyThree) {
  std::vector<std::byte> bytes = sample_bytes();
  bytes[32 + 64 + 1] = std::byte{64};  // record 2's log2(alignment)
  expect_parse_error(bytes, "t.trace: byte 97: record 2: alignment 2^64, expected at most 2^63", 97,
                     2);
  bytes[32 + 64 + 1] = std::byte{255};
  expect_parse_error(bytes, "t.trace: byte 97: record 2: alignment 2^255, expected at most 2^63",
                     97, 2);
  // 2^63 itself reads.
  trace t;
  t.records = {{trace_action::allocate, 0, 1, 8, std::uint64_t{1} << 63, 0}};
  EXPECT_EQ(pmrkit::parse_trace(pmrkit::encode_trace(t)).records[0].alignment,
            std::uint64_t{1} << 63);
}

TEST(TraceRead, ReservedRecordFieldNotZero) {
  for (const std::size_t i : {2u, 3u}) {
    SCOPED_TRACE(i);
    std::vector<std::byte> bytes = sample_bytes();
    bytes[32 + i] = std::byte{1};  // record 0
    expect_parse_error(bytes, "t.trace: byte 34: record 0: reserved field is not zero", 34, 0);
  }
}

// ---- Reading a trace: records that contradict the ones before them ----------------------------

TEST(TraceRead, IdAllocatedWhileLive) {
  trace t = sample();
  t.records[1].id = 1;
  expect_encoded_error(
      t, "t.trace: record 1 (byte 64): id 1 allocated again while live (allocated by record 0)", 64,
      1);
  // Once freed, the id may be allocated again.
  t = sample();
  t.records.push_back({trace_action::allocate, 5, 1, 8, 8, 40});
  EXPECT_EQ(pmrkit::parse_trace(pmrkit::encode_trace(t)).records.size(), 4u);
}

TEST(TraceRead, FreeOfIdNotLive) {
  const std::string not_live = ", which is not live (never allocated, or freed already)";
  trace t = sample();
  t.records[2].id = 9;  // never allocated
  expect_encoded_error(t, "t.trace: record 2 (byte 96): deallocate of id 9" + not_live, 96, 2);

  t = sample();
  t.records.push_back({trace_action::deallocate, 5, 1, 64, 16, 40});  // freed by record 2
  expect_encoded_error(t, "t.trace: record 3 (byte 128): deallocate of id 1" + not_live, 128, 3);

  t = sample();  // a failed allocation's id is never live
  t.records.push_back({trace_action::failed_allocation, 5, 3, 1024, 8, 40});
  t.records.push_back({trace_action::deallocate, 5, 3, 1024, 8, 50});
  expect_encoded_error(t, "t.trace: record 4 (byte 160): deallocate of id 3" + not_live, 160, 4);
}

// 0 bytes on a free means "not said" (free() says no size) and is accepted.
TEST(TraceRead, FreeSizeDiffers) {
  trace t = sample();
  t.records[2].bytes = 48;
  expect_encoded_error(t,
                       "t.trace: record 2 (byte 96): deallocate of id 1 with 48 bytes; it was "
                       "allocated with 64 (record 0)",
                       96, 2);
  t.records[2].bytes = 0;
  const trace read = pmrkit::parse_trace(pmrkit::encode_trace(t));
  EXPECT_EQ(read.records[2].partner, 0u);
  EXPECT_EQ(read.records[0].partner, 2u);
}

// Alignment 1 on a free means "not said" and is accepted, whatever the allocation's alignment.
TEST(TraceRead, FreeAlignmentDiffers) {
  trace t = sample();
  t.records[2].alignment = 8;
  expect_encoded_error(t,
                       "t.trace: record 2 (byte 96): deallocate of id 1 with alignment 8; it was "
                       "allocated with 16 (record 0)",
                       96, 2);
  t.records[2].alignment = 32;
  expect_encoded_error(t,
                       "t.trace: record 2 (byte 96): deallocate of id 1 with alignment 32; it was "
                       "allocated with 16 (record 0)",
                       96, 2);
  t.records[2].alignment = 1;
  t.records[2].bytes = 0;  // neither said, as free()
  EXPECT_EQ(pmrkit::parse_trace(pmrkit::encode_trace(t)).records[2].partner, 0u);
}

// ---- Reading from a file --------------------------------------------------------------------

TEST(TraceRead, MissingFile) {
  const scratch_folder folder;
  const fs::path trace_path = folder.path() / "missing.trace";
  expect_system_error([&] { (void)pmrkit::read_trace(trace_path); }, ENOENT,
                      "pmrkit: cannot open " + trace_path.string() + ": No such file or directory");
  const fs::path log_path = folder.path() / "missing.csv";
  expect_system_error([&] { (void)pmrkit::read_rmm_log(log_path); }, ENOENT,
                      "pmrkit: cannot open " + log_path.string() + ": No such file or directory");
  // A folder: opened, then the read fails, naming the path.
  expect_system_error([&] { (void)pmrkit::read_trace(folder.path()); }, EISDIR,
                      "pmrkit: cannot read " + folder.path().string() + ": Is a directory");
  expect_system_error([&] { (void)pmrkit::read_rmm_log(folder.path()); }, EISDIR,
                      "pmrkit: cannot read " + folder.path().string() + ": Is a directory");
  // A malformed file that is there: the source in the message is its path.
  const fs::path empty = folder.path() / "empty.trace";
  std::ofstream(empty).close();
  expect_trace_error([&] { (void)pmrkit::read_trace(empty); },
                     empty.string() + ": byte 0: truncated header: expected 32 bytes, found 0", 0,
                     no_record);
}

// ---- Writing a trace ------------------------------------------------------------------------

TEST(TraceWrite, AlignmentNotPowerOfTwo) {
  trace t = sample();
  t.records[1].alignment = 48;
  expect_invalid_argument_exactly([&] { (void)pmrkit::encode_trace(t); },
                                  "pmrkit::encode_trace: record 1: alignment 48 is not a power "
                                  "of two");
  t.records[1].alignment = 0;
  expect_invalid_argument_exactly([&] { (void)pmrkit::encode_trace(t); },
                                  "pmrkit::encode_trace: record 1: alignment 0 is not a power "
                                  "of two");
  // write_trace encodes before it opens the file: an existing file keeps its bytes, a missing
  // one is not created.
  const scratch_folder folder;
  const fs::path existing = folder.path() / "existing.trace";
  std::ofstream(existing) << "kept";
  expect_invalid_argument_exactly([&] { pmrkit::write_trace(existing, t); },
                                  "pmrkit::encode_trace: record 1: alignment 0 is not a power "
                                  "of two");
  EXPECT_EQ(contents_of(existing), "kept");
  const fs::path fresh = folder.path() / "fresh.trace";
  expect_invalid_argument_exactly([&] { pmrkit::write_trace(fresh, t); },
                                  "pmrkit::encode_trace: record 1: alignment 0 is not a power "
                                  "of two");
  EXPECT_FALSE(fs::exists(fresh));
}

// Only the alignment is checked: the rest is written as given, and the reader refuses it.
TEST(TraceWrite, UncheckedFieldsWrittenAsGiven) {
  trace t = sample();
  t.header.version = 2;
  expect_encoded_error(t, "t.trace: byte 8: unknown format version 2 (this reader knows 1)", 8,
                       no_record);
  t = sample();
  t.header.origin = static_cast<pmrkit::trace_origin>(7);
  expect_encoded_error(t, "t.trace: byte 12: unknown origin 7, expected 0, 1 or 2", 12, no_record);
  t = sample();
  t.records[0].action = static_cast<trace_action>(9);
  expect_encoded_error(t,
                       "t.trace: byte 32: record 0: unknown action 9, expected 1 (allocate), 2 "
                       "(deallocate) or 3 (failed allocation)",
                       32, 0);
  t = sample();
  t.records[2].id = 2;  // frees id 2 with id 1's size
  expect_encoded_error(t,
                       "t.trace: record 2 (byte 96): deallocate of id 2 with 64 bytes; it was "
                       "allocated with 4096 (record 1)",
                       96, 2);
}

TEST(TraceWrite, UnwritablePath) {
  const scratch_folder folder;
  const fs::path in_missing_folder = folder.path() / "no-such-folder" / "out.trace";
  expect_system_error(
      [&] { pmrkit::write_trace(in_missing_folder, sample()); }, ENOENT,
      "pmrkit: cannot write " + in_missing_folder.string() + ": No such file or directory");
  EXPECT_FALSE(fs::exists(in_missing_folder.parent_path()));
  expect_system_error([&] { pmrkit::write_trace(folder.path(), sample()); }, EISDIR,
                      "pmrkit: cannot write " + folder.path().string() + ": Is a directory");
  EXPECT_TRUE(fs::is_directory(folder.path()));
  // A full disk shows when the file is closed, even for a trace smaller than any buffer.
  if (fs::exists("/dev/full")) {
    expect_system_error([&] { pmrkit::write_trace("/dev/full", sample()); }, ENOSPC,
                        "pmrkit: cannot write /dev/full: No space left on device");
  }
}

// ---- RMM logs -------------------------------------------------------------------------------

// The line's checks run in this order (fields, action, pointer, size, time); the first that fails
// is reported. record() is the index the line's record would have had.
TEST(RmmLog, TooFewFields) {
  expect_rmm_error("1,10:00:00.0,allocate,0x10\n",
                   "log.csv: line 1 (byte 0): expected Thread,Time,Action,Pointer,Size[,Stream], "
                   "found 4 fields",
                   0, 0);
  expect_rmm_error("1,10:00:00.0,allocate,0x10,8,0\n\ngarbage\n",
                   "log.csv: line 3 (byte 32): expected Thread,Time,Action,Pointer,Size[,Stream], "
                   "found 1 fields",
                   32, 1);
}

TEST(RmmLog, UnknownAction) {
  expect_rmm_error(
      "Thread,Time,Action,Pointer,Size,Stream\n1,10:00:00.0,Allocate,0x10,8,0\n",
      "log.csv: line 2 (byte 39): unknown action \"Allocate\", expected allocate, free "
      "or allocate failure",
      39, 0);
}

TEST(RmmLog, BadPointer) {
  for (const std::string pointer : {"0xZZ", "", "0x", "0x10000000000000000"}) {
    SCOPED_TRACE(pointer);
    expect_rmm_error(
        "1,10:00:00.0,allocate," + pointer + ",8,0\n",
        "log.csv: line 1 (byte 0): pointer \"" + pointer + "\" is not a hexadecimal address", 0, 0);
  }
}

TEST(RmmLog, BadSize) {
  for (const std::string size : {"eight", "-8", "8.5", "", "18446744073709551616"}) {
    SCOPED_TRACE(size);
    expect_rmm_error("1,10:00:00.0,allocate,0x10," + size + ",0\n",
                     "log.csv: line 1 (byte 0): size \"" + size + "\" is not a number of bytes", 0,
                     0);
  }
}

TEST(RmmLog, BadTime) {
  for (const std::string time : {"noon", "", "10:00:00.0x", "1:2:3:4:5"}) {
    SCOPED_TRACE(time);
    expect_rmm_error(
        "1," + time + ",allocate,0x10,8,0\n",
        "log.csv: line 1 (byte 0): time \"" + time + "\" is neither HH:MM:SS.ffffff nor seconds", 0,
        0);
  }
}

TEST(RmmLog, FreeOfAddressNotLive) {
  const std::string not_live = ", which is not live (never allocated, or freed already)";
  expect_rmm_error("1,10:00:00.0,allocate,0x10,8,0\n1,10:00:00.1,free,0x20,8,0\n",
                   "log.csv: line 2 (byte 31): free of address 0x20" + not_live, 31, 1);
  expect_rmm_error(
      "1,10:00:00.0,allocate,0x10,8,0\n1,10:00:00.1,free,0x10,8,0\n1,10:00:00.2,free,0x10,8,0\n",
      "log.csv: line 3 (byte 58): free of address 0x10" + not_live, 58, 2);
  // A failed allocation's (nil) is never live.
  expect_rmm_error("1,10:00:00.0,allocate failure,(nil),8,0\n1,10:00:00.1,free,(nil),8,0\n",
                   "log.csv: line 2 (byte 40): free of address (nil)" + not_live, 40, 1);
}

// Addresses are compared as numbers: 0x10 and 10 are one address; the message quotes the line.
TEST(RmmLog, AddressAllocatedTwice) {
  expect_rmm_error("1,10:00:00.0,allocate,0x10,8,0\n2,10:00:00.1,allocate,10,16,0\n",
                   "log.csv: line 2 (byte 31): address 10 allocated again while live (allocated on "
                   "line 1)",
                   31, 1);
}

// The message names the address and the allocation's line, as the log does. 0 bytes on a free
// is accepted, as in a trace.
TEST(RmmLog, FreeSizeDiffers) {
  expect_rmm_error(
      "Thread,Time,Action,Pointer,Size,Stream\n1,10:00:00.0,allocate,0x10,8,0\n"
      "1,10:00:00.1,free,0x10,16,0\n",
      "log.csv: line 3 (byte 70): free of address 0x10 with 16 bytes; it was allocated with 8 "
      "(line 2)",
      70, 1);
  const trace t =
      pmrkit::parse_rmm_log("1,10:00:00.0,allocate,0x10,8,0\n1,10:00:00.1,free,0x10,0,0\n");
  ASSERT_EQ(t.records.size(), 2u);
  EXPECT_EQ(t.records[1].partner, 0u);
}

TEST(RmmLog, AlignmentNotPowerOfTwo) {
  for (const std::size_t alignment : {0u, 48u}) {
    SCOPED_TRACE(alignment);
    expect_invalid_argument_exactly(
        [&] { (void)pmrkit::parse_rmm_log("", "log.csv", alignment); },
        "pmrkit::parse_rmm_log: alignment " + std::to_string(alignment) + " is not a power of two");
  }
  // read_rmm_log reads the file first (a missing one is the system_error), then checks.
  const scratch_folder folder;
  const fs::path log = folder.path() / "log.csv";
  std::ofstream(log) << "1,10:00:00.0,allocate,0x10,8,0\n";
  expect_invalid_argument_exactly([&] { (void)pmrkit::read_rmm_log(log, 3); },
                                  "pmrkit::parse_rmm_log: alignment 3 is not a power of two");
  EXPECT_EQ(pmrkit::read_rmm_log(log, 64).records.at(0).alignment, 64u);
}

}  // namespace
