#include <pmr/trace/trace_file.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace {

using pmrkit::trace;
using pmrkit::trace_action;
using pmrkit::trace_error;
using pmrkit::trace_record;

trace sample() {
  trace t;
  t.header.start_unix_nanoseconds = 1'700'000'000'000'000'000ULL;
  t.header.pid = 4242;
  t.records = {
      {trace_action::allocate, 7, 1, 64, 16, 10},
      {trace_action::allocate, 9, 2, 4096, 4096, 20},
      {trace_action::failed_allocation, 9, 3, 1ULL << 40, 8, 25},
      {trace_action::deallocate, 7, 1, 64, 16, 30},
      {trace_action::deallocate, 7, 2, 0, 1, 40},  // size and alignment not said, as free()
  };
  return t;
}

/// parse_trace's error for `bytes`, or "" when it parsed.
std::string error_of(const std::vector<std::byte>& bytes, std::uint64_t* offset = nullptr,
                     std::uint64_t* record = nullptr) {
  try {
    (void)pmrkit::parse_trace(bytes, "t.trace");
  } catch (const trace_error& e) {
    if (offset != nullptr) *offset = e.offset();
    if (record != nullptr) *record = e.record();
    return e.what();
  }
  return "";
}

TEST(TraceFile, RoundTripsEveryFieldAndLinksPartners) {
  const std::vector<std::byte> bytes = pmrkit::encode_trace(sample());
  ASSERT_EQ(bytes.size(), 32u + 5u * 32u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(bytes.data()), 8), "PMRKTRCE");
  const trace t = pmrkit::parse_trace(bytes);
  EXPECT_EQ(t.header.version, 1);
  EXPECT_EQ(t.header.pid, 4242u);
  EXPECT_EQ(t.header.start_unix_nanoseconds, 1'700'000'000'000'000'000ULL);
  ASSERT_EQ(t.records.size(), 5u);
  const trace expected = sample();
  for (std::size_t i = 0; i < 5; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(t.records[i].action, expected.records[i].action);
    EXPECT_EQ(t.records[i].id, expected.records[i].id);
    EXPECT_EQ(t.records[i].bytes, expected.records[i].bytes);
    EXPECT_EQ(t.records[i].alignment, expected.records[i].alignment);
    EXPECT_EQ(t.records[i].nanoseconds, expected.records[i].nanoseconds);
  }
  // Threads renumbered in order of appearance: 7 -> 0, 9 -> 1.
  EXPECT_EQ(t.records[0].thread, 0u);
  EXPECT_EQ(t.records[1].thread, 1u);
  EXPECT_EQ(t.records[3].thread, 0u);
  EXPECT_EQ(t.records[0].partner, 3u);
  EXPECT_EQ(t.records[3].partner, 0u);
  EXPECT_EQ(t.records[1].partner, 4u);
  EXPECT_EQ(t.records[2].partner, trace_record::no_partner);
}

TEST(TraceFile, WritesAndReadsAFile) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / "pmrkit-trace-file-test.trace";
  pmrkit::write_trace(path, sample());
  EXPECT_EQ(pmrkit::read_trace(path).records.size(), 5u);
  std::filesystem::remove(path);
  EXPECT_THROW((void)pmrkit::read_trace(path), std::system_error);
}

TEST(TraceFile, HeaderProblemsNameTheByteAndWhatWasExpected) {
  std::uint64_t offset = 0;
  EXPECT_EQ(error_of({}, &offset), "t.trace: byte 0: truncated header: expected 32 bytes, found 0");
  std::vector<std::byte> bytes = pmrkit::encode_trace(sample());

  std::vector<std::byte> short_header(bytes.begin(), bytes.begin() + 20);
  EXPECT_EQ(error_of(short_header, &offset),
            "t.trace: byte 20: truncated header: expected 32 bytes, found 20");
  EXPECT_EQ(offset, 20u);

  std::vector<std::byte> bad = bytes;
  bad[0] = std::byte{'X'};
  EXPECT_EQ(error_of(bad, &offset),
            "t.trace: byte 0: not a pmrkit trace: expected the magic \"PMRKTRCE\", found bytes "
            "584d524b54524345");

  bad = bytes;
  bad[8] = std::byte{2};
  EXPECT_EQ(error_of(bad, &offset),
            "t.trace: byte 8: unknown format version 2 (this reader knows 1)");
  EXPECT_EQ(offset, 8u);

  bad = bytes;
  bad[10] = std::byte{24};
  EXPECT_EQ(error_of(bad), "t.trace: byte 10: record size 24, expected 32");

  bad = bytes;
  bad[12] = std::byte{9};
  EXPECT_EQ(error_of(bad), "t.trace: byte 12: unknown origin 9, expected 0, 1 or 2");

  bad = bytes;
  bad[30] = std::byte{1};
  EXPECT_EQ(error_of(bad), "t.trace: byte 28: reserved header field is not zero");
}

TEST(TraceFile, RecordProblemsNameTheRecordAndItsByte) {
  const std::vector<std::byte> bytes = pmrkit::encode_trace(sample());
  std::uint64_t offset = 0;

  std::vector<std::byte> bad(bytes.begin(), bytes.end() - 5);
  EXPECT_EQ(error_of(bad, &offset),
            "t.trace: byte 160: truncated record 4: expected 32 bytes, found 27");
  EXPECT_EQ(offset, 160u);

  bad = bytes;
  bad[32 + 32] = std::byte{7};  // record 1's action
  EXPECT_EQ(error_of(bad, &offset),
            "t.trace: byte 64: record 1: unknown action 7, expected 1 (allocate), 2 (deallocate) "
            "or 3 (failed allocation)");

  bad = bytes;
  bad[32 + 1] = std::byte{64};
  EXPECT_EQ(error_of(bad), "t.trace: byte 33: record 0: alignment 2^64, expected at most 2^63");

  bad = bytes;
  bad[32 + 2] = std::byte{1};
  EXPECT_EQ(error_of(bad), "t.trace: byte 34: record 0: reserved field is not zero");
}

TEST(TraceFile, RecordsThatContradictTheOnesBeforeAreErrorsNamingTheRecord) {
  std::uint64_t offset = 0;
  std::uint64_t record = 0;
  trace t = sample();
  t.records[1].id = 1;  // id 1 allocated again while live
  EXPECT_EQ(error_of(pmrkit::encode_trace(t), &offset, &record),
            "t.trace: record 1 (byte 64): id 1 allocated again while live (allocated by record 0)");
  EXPECT_EQ(record, 1u);
  EXPECT_EQ(offset, 64u);

  t = sample();
  t.records[3].id = 99;
  EXPECT_EQ(error_of(pmrkit::encode_trace(t), &offset, &record),
            "t.trace: record 3 (byte 128): deallocate of id 99, which is not live (never "
            "allocated, or freed already)");
  EXPECT_EQ(record, 3u);

  t = sample();
  t.records[4].id = 1;  // freed already by record 3
  EXPECT_EQ(error_of(pmrkit::encode_trace(t)),
            "t.trace: record 4 (byte 160): deallocate of id 1, which is not live (never "
            "allocated, or freed already)");

  t = sample();
  t.records[3].bytes = 48;
  EXPECT_EQ(error_of(pmrkit::encode_trace(t)),
            "t.trace: record 3 (byte 128): deallocate of id 1 with 48 bytes; it was allocated "
            "with 64 (record 0)");

  t = sample();
  t.records[3].alignment = 8;
  EXPECT_EQ(error_of(pmrkit::encode_trace(t)),
            "t.trace: record 3 (byte 128): deallocate of id 1 with alignment 8; it was allocated "
            "with 16 (record 0)");
}

TEST(TraceFile, EncodeRefusesAnAlignmentThatIsNotAPowerOfTwo) {
  trace t = sample();
  t.records[2].alignment = 24;
  try {
    (void)pmrkit::encode_trace(t);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()),
              "pmrkit::encode_trace: record 2: alignment 24 is not a power of two");
  }
}

TEST(TraceFile, ReadsAnRmmLog) {
  const std::string log =
      "Thread,Time,Action,Pointer,Size,Stream\n"
      "140573312345856,10:00:00.000100,allocate,0x7f8a40000000,1024,0x0\n"
      "140573312345857,10:00:00.000250,allocate,7f8a40000400,2048,0x0\r\n"
      "140573312345856,10:00:00.001000,free,0x7f8a40000000,1024,0x0\n"
      "\n"
      "140573312345857,10:00:01.5,allocate failure,(nil),99999999,0x0\n"
      "140573312345856,10:00:02.000000,allocate,0x7f8a40000000,512,0x0\n";
  const trace t = pmrkit::parse_rmm_log(log);
  EXPECT_EQ(t.header.origin, pmrkit::trace_origin::rmm_log);
  ASSERT_EQ(t.records.size(), 5u);
  EXPECT_EQ(t.records[0].action, trace_action::allocate);
  EXPECT_EQ(t.records[0].bytes, 1024u);
  EXPECT_EQ(t.records[0].alignment, 256u);
  EXPECT_EQ(t.records[0].nanoseconds, 0u);
  EXPECT_EQ(t.records[1].nanoseconds, 150'000u);
  EXPECT_EQ(t.records[1].thread, 1u);
  EXPECT_EQ(t.records[2].action, trace_action::deallocate);
  EXPECT_EQ(t.records[2].partner, 0u);
  EXPECT_EQ(t.records[3].action, trace_action::failed_allocation);
  EXPECT_EQ(t.records[3].nanoseconds, 1'499'900'000u);
  // The address is reused: a new id.
  EXPECT_EQ(t.records[4].action, trace_action::allocate);
  EXPECT_NE(t.records[4].id, t.records[0].id);
  EXPECT_EQ(t.records[1].partner, trace_record::no_partner);

  const trace seconds = pmrkit::parse_rmm_log(
      "1,1634567890.123456,allocate,0x10,8,0\n1,1634567890.223456,free,0x10,8,0\n", "log", 64);
  ASSERT_EQ(seconds.records.size(), 2u);
  EXPECT_EQ(seconds.records[1].nanoseconds, 100'000'000u);
  EXPECT_EQ(seconds.records[1].alignment, 64u);
}

TEST(TraceFile, RmmLogProblemsNameTheLine) {
  const auto error = [](const std::string& text) -> std::string {
    try {
      (void)pmrkit::parse_rmm_log(text, "log.csv");
    } catch (const trace_error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(error("Thread,Time,Action,Pointer,Size,Stream\n1,10:00:00.0,free,0x10,8,0\n"),
            "log.csv: line 2 (byte 39): free of address 0x10, which is not live (never "
            "allocated, or freed already)");
  EXPECT_EQ(error("1,10:00:00.0,allocate,0x10,8,0\n1,10:00:00.1,allocate,0x10,8,0\n"),
            "log.csv: line 2 (byte 31): address 0x10 allocated again while live (allocated on "
            "line 1)");
  EXPECT_EQ(error("1,10:00:00.0,grab,0x10,8,0\n"),
            "log.csv: line 1 (byte 0): unknown action \"grab\", expected allocate, free or "
            "allocate failure");
  EXPECT_EQ(error("1,10:00:00.0,allocate,0xZZ,8,0\n"),
            "log.csv: line 1 (byte 0): pointer \"0xZZ\" is not a hexadecimal address");
  EXPECT_EQ(error("1,10:00:00.0,allocate,0x10,eight,0\n"),
            "log.csv: line 1 (byte 0): size \"eight\" is not a number of bytes");
  EXPECT_EQ(error("1,noon,allocate,0x10,8,0\n"),
            "log.csv: line 1 (byte 0): time \"noon\" is neither HH:MM:SS.ffffff nor seconds");
  EXPECT_EQ(error("1,10:00:00.0,allocate\n"),
            "log.csv: line 1 (byte 0): expected Thread,Time,Action,Pointer,Size[,Stream], found "
            "3 fields");
  EXPECT_EQ(error("1,10:00:00.0,allocate,0x10,8,0\n1,10:00:00.1,free,0x10,16,0\n"),
            "log.csv: line 2 (byte 31): free of address 0x10 with 16 bytes; it was allocated with "
            "8 (line 1)");
}

}  // namespace
