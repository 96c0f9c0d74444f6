// trace_file: pmrkit's allocation trace, the file that trace_resource and
// the pmrkit-trace preload library write and pmrkit-replay reads.
//
// A trace is every allocate and deallocate of a workload, in the order they
// happened: size, alignment, an id pairing each free with its allocation
// (ids, not addresses: an address reused by a later allocation is a new id),
// the thread, and a timestamp. Failed allocations are records too.
//
// The file (version 1, little-endian; docs/trace_format.md) is a 32-byte
// header followed by 32-byte records:
//
//   header: "PMRKTRCE" | u16 version | u16 record size (32) | u32 origin
//           | u64 start (ns since the Unix epoch) | u32 pid | u32 zero
//   record: u8 action | u8 log2(alignment) | u16 zero | u32 thread | u64 id
//           | u64 bytes | u64 ns since the start
//
// A deallocate record's bytes and alignment are what the caller passed, or 0
// and 1 when the caller did not say (free() says neither).
// Thread numbers in the file are whatever the writer used; read_trace()
// renumbers them 0, 1, 2… in the order threads first appear.
//
// Reading checks everything: a bad magic, an unknown version, a record size
// other than 32, a truncated record, an unknown action, an alignment above
// 2^63 or a non-zero reserved field is a `trace_error` naming the byte
// offset and what was expected; so is a record that contradicts the ones
// before it (an id allocated while still live, a free of an id that is not
// live, a free whose size differs from its allocation's), naming the record.
// Each record of the result knows its partner (the index of the free of an
// allocation, of the allocation of a free), so a replay needs no map.
//
// read_rmm_log() reads RMM's logging_resource_adaptor CSV
// (`Thread,Time,Action,Pointer,Size,Stream`): ids are given by address and
// order, every block gets `alignment` (RMM's logs say none; 256, RMM's
// device alignment, by default), times are read as HH:MM:SS.ffffff or
// seconds.
//
// Thread safety: pure functions over their arguments.
//
// Example:
//   pmrkit::trace t;
//   t.records.push_back({pmrkit::trace_action::allocate, 0, 1, 64, 16, 0});
//   t.records.push_back({pmrkit::trace_action::deallocate, 0, 1, 64, 16, 10});
//   const std::vector<std::byte> bytes = pmrkit::encode_trace(t);
//   assert(bytes.size() == 32 + 2 * 32);
//   const pmrkit::trace back = pmrkit::parse_trace(bytes);
//   assert(back.records.size() == 2 && back.records[0].partner == 1);
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pmrkit {

enum class trace_action : std::uint8_t {
  allocate = 1,          ///< a block was handed out
  deallocate = 2,        ///< a block was given back
  failed_allocation = 3  ///< a request that threw (its id is never freed)
};

/// Who wrote a trace.
enum class trace_origin : std::uint32_t {
  resource = 0,  ///< pmrkit::trace_resource
  preload = 1,   ///< libpmrkit_trace.so (malloc, free, operator new, …)
  rmm_log = 2,   ///< converted from an RMM logging_resource_adaptor CSV
};

/// One allocate, deallocate or failed allocation.
struct trace_record {
  /// No partner: an allocation never freed, or a failed allocation.
  static constexpr std::uint64_t no_partner = std::numeric_limits<std::uint64_t>::max();

  trace_action action = trace_action::allocate;
  std::uint32_t thread = 0;       ///< 0, 1, 2… in order of first appearance (after reading)
  std::uint64_t id = 0;           ///< pairs a free with its allocation
  std::uint64_t bytes = 0;        ///< requested (a free's: as passed, or 0)
  std::uint64_t alignment = 1;    ///< a power of two
  std::uint64_t nanoseconds = 0;  ///< since the trace started
  /// Set by reading: the index of the matching free (of an allocation) or
  /// allocation (of a free); no_partner otherwise. Ignored by encode_trace.
  std::uint64_t partner = no_partner;
};

struct trace_header {
  std::uint16_t version = 1;
  trace_origin origin = trace_origin::resource;
  std::uint64_t start_unix_nanoseconds = 0;
  std::uint32_t pid = 0;
};

struct trace {
  trace_header header;
  std::vector<trace_record> records;
};

inline constexpr std::uint16_t trace_format_version = 1;
inline constexpr std::size_t trace_header_size = 32;
inline constexpr std::size_t trace_record_size = 32;
/// The file's first eight bytes.
inline constexpr std::string_view trace_magic{"PMRKTRCE", 8};

/// A trace that cannot be read: what was wrong, where. what() reads
/// "<source>: byte <offset>: <problem>" or, for a record that contradicts
/// the ones before it, "<source>: record <n> (byte <offset>): <problem>".
class trace_error : public std::runtime_error {
 public:
  static constexpr std::uint64_t no_record = std::numeric_limits<std::uint64_t>::max();
  trace_error(const std::string& message, std::uint64_t offset, std::uint64_t record)
      : std::runtime_error(message), offset_(offset), record_(record) {}
  /// The byte offset (of the line, for an RMM log) where the problem is.
  [[nodiscard]] std::uint64_t offset() const noexcept { return offset_; }
  /// The record's index (0-based), or no_record for a header problem.
  [[nodiscard]] std::uint64_t record() const noexcept { return record_; }

 private:
  std::uint64_t offset_;
  std::uint64_t record_;
};

/// Progress of a long read: called now and then with the bytes done and the
/// total. May be empty.
using trace_progress = void (*)(void* context, std::uint64_t done, std::uint64_t total);

/// Decodes and checks a whole trace file's bytes. `source` names it in
/// errors. Throws trace_error.
[[nodiscard]] trace parse_trace(std::span<const std::byte> bytes, std::string_view source = "trace",
                                trace_progress progress = nullptr, void* context = nullptr);

/// Reads `path` and parses it. Throws trace_error, or std::system_error
/// when the file cannot be read.
[[nodiscard]] trace read_trace(const std::filesystem::path& path, trace_progress progress = nullptr,
                               void* context = nullptr);

/// The file's bytes for `t` (the header and every record; partners are not
/// stored). Throws std::invalid_argument naming the record when an
/// alignment is not a power of two.
[[nodiscard]] std::vector<std::byte> encode_trace(const trace& t);

/// Writes encode_trace(t) to `path`. Throws std::system_error.
void write_trace(const std::filesystem::path& path, const trace& t);

/// RMM's device alignment, which read_rmm_log gives every block by default.
inline constexpr std::size_t rmm_default_alignment = 256;

/// Parses an RMM logging_resource_adaptor CSV. Throws trace_error naming
/// the line (its byte offset and number) for a malformed line, a free of an
/// address that is not live, or an address allocated twice.
[[nodiscard]] trace parse_rmm_log(std::string_view text, std::string_view source = "rmm log",
                                  std::size_t alignment = rmm_default_alignment);

/// Reads `path` and parses it as an RMM log.
[[nodiscard]] trace read_rmm_log(const std::filesystem::path& path,
                                 std::size_t alignment = rmm_default_alignment);

/// The streaming side: encodes one record or the header into `out`
/// (trace_record_size or trace_header_size bytes). For writers that cannot
/// allocate (the preload library); `record.alignment` must be a power of two.
void encode_trace_header(const trace_header& header, std::byte* out) noexcept;
void encode_trace_record(const trace_record& record, std::byte* out) noexcept;

}  // namespace pmrkit
