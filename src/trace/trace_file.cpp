// Reading, checking and writing pmrkit's trace files (include/pmr/trace/trace_file.hpp).
#include <pmr/trace/trace_file.hpp>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>
#include <unordered_map>

#include "trace_pairing.hpp"

namespace pmrkit {
namespace {

void put_u16(std::byte* out, std::uint16_t v) noexcept {
  for (int i = 0; i < 2; ++i)
    out[i] = static_cast<std::byte>(v >> (8 * i));
}
void put_u32(std::byte* out, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i)
    out[i] = static_cast<std::byte>(v >> (8 * i));
}
void put_u64(std::byte* out, std::uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<std::byte>(v >> (8 * i));
}
std::uint64_t get(const std::byte* in, int width) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < width; ++i)
    v |= std::uint64_t{std::to_integer<std::uint8_t>(in[i])} << (8 * i);
  return v;
}

std::string hex_of(std::span<const std::byte> bytes) {
  std::string text;
  for (const std::byte b : bytes) {
    char buffer[4];
    std::snprintf(buffer, sizeof buffer, "%02x", std::to_integer<unsigned>(b));
    text += buffer;
  }
  return text;
}

/// A problem at `offset`; `record` is the record it is in, or no_record for the header.
[[noreturn]] void fail_at(std::string_view source, std::uint64_t offset, const std::string& what,
                          std::uint64_t record = trace_error::no_record) {
  throw trace_error(std::string(source) + ": byte " + std::to_string(offset) + ": " + what, offset,
                    record);
}

std::vector<std::byte> read_file(const std::filesystem::path& path) {
  // stdio rather than a stream: every failure (a missing file, a folder, a read error) leaves
  // errno, and none throws from inside the read.
  std::FILE* file = std::fopen(path.string().c_str(), "rb");
  if (file == nullptr) {
    throw std::system_error(errno, std::generic_category(), "pmrkit: cannot open " + path.string());
  }
  std::vector<std::byte> bytes;
  std::byte buffer[1 << 16];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0)
    bytes.insert(bytes.end(), buffer, buffer + n);
  const int error = std::ferror(file) != 0 ? (errno != 0 ? errno : EIO) : 0;
  std::fclose(file);
  if (error != 0) {
    throw std::system_error(error, std::generic_category(), "pmrkit: cannot read " + path.string());
  }
  return bytes;
}

}  // namespace

void encode_trace_header(const trace_header& header, std::byte* out) noexcept {
  std::memcpy(out, trace_magic.data(), trace_magic.size());
  put_u16(out + 8, header.version);
  put_u16(out + 10, static_cast<std::uint16_t>(trace_record_size));
  put_u32(out + 12, static_cast<std::uint32_t>(header.origin));
  put_u64(out + 16, header.start_unix_nanoseconds);
  put_u32(out + 24, header.pid);
  put_u32(out + 28, 0);
}

void encode_trace_record(const trace_record& record, std::byte* out) noexcept {
  out[0] = static_cast<std::byte>(record.action);
  out[1] = static_cast<std::byte>(std::countr_zero(record.alignment));
  put_u16(out + 2, 0);
  put_u32(out + 4, record.thread);
  put_u64(out + 8, record.id);
  put_u64(out + 16, record.bytes);
  put_u64(out + 24, record.nanoseconds);
}

std::vector<std::byte> encode_trace(const trace& t) {
  std::vector<std::byte> bytes(trace_header_size + t.records.size() * trace_record_size);
  encode_trace_header(t.header, bytes.data());
  std::byte* out = bytes.data() + trace_header_size;
  for (std::size_t i = 0; i < t.records.size(); ++i, out += trace_record_size) {
    if (!std::has_single_bit(t.records[i].alignment)) {
      throw std::invalid_argument("pmrkit::encode_trace: record " + std::to_string(i) +
                                  ": alignment " + std::to_string(t.records[i].alignment) +
                                  " is not a power of two");
    }
    encode_trace_record(t.records[i], out);
  }
  return bytes;
}

void write_trace(const std::filesystem::path& path, const trace& t) {
  const std::vector<std::byte> bytes = encode_trace(t);
  std::FILE* file = std::fopen(path.string().c_str(), "wb");
  if (file == nullptr) {
    throw std::system_error(errno, std::generic_category(),
                            "pmrkit: cannot write " + path.string());
  }
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
  int error = written ? 0 : errno;
  // The last bytes reach the file at the close: a full disk shows there.
  if (std::fclose(file) != 0 && error == 0) error = errno;
  if (!written && error == 0) error = EIO;
  if (error != 0) {
    throw std::system_error(error, std::generic_category(),
                            "pmrkit: cannot write " + path.string());
  }
}

trace parse_trace(std::span<const std::byte> bytes, std::string_view source,
                  trace_progress progress, void* context) {
  if (bytes.size() < trace_header_size) {
    fail_at(source, bytes.size(),
            "truncated header: expected " + std::to_string(trace_header_size) + " bytes, found " +
                std::to_string(bytes.size()));
  }
  if (std::memcmp(bytes.data(), trace_magic.data(), trace_magic.size()) != 0) {
    fail_at(source, 0,
            "not a pmrkit trace: expected the magic \"PMRKTRCE\", found bytes " +
                hex_of(bytes.first(trace_magic.size())));
  }
  trace result;
  result.header.version = static_cast<std::uint16_t>(get(bytes.data() + 8, 2));
  if (result.header.version != trace_format_version) {
    fail_at(source, 8,
            "unknown format version " + std::to_string(result.header.version) +
                " (this reader knows " + std::to_string(trace_format_version) + ")");
  }
  const std::uint64_t record_size = get(bytes.data() + 10, 2);
  if (record_size != trace_record_size) {
    fail_at(source, 10,
            "record size " + std::to_string(record_size) + ", expected " +
                std::to_string(trace_record_size));
  }
  const std::uint64_t origin = get(bytes.data() + 12, 4);
  if (origin > static_cast<std::uint32_t>(trace_origin::rmm_log)) {
    fail_at(source, 12, "unknown origin " + std::to_string(origin) + ", expected 0, 1 or 2");
  }
  result.header.origin = static_cast<trace_origin>(origin);
  result.header.start_unix_nanoseconds = get(bytes.data() + 16, 8);
  result.header.pid = static_cast<std::uint32_t>(get(bytes.data() + 24, 4));
  if (get(bytes.data() + 28, 4) != 0) fail_at(source, 28, "reserved header field is not zero");

  const std::size_t body = bytes.size() - trace_header_size;
  const std::size_t count = body / trace_record_size;
  if (body % trace_record_size != 0) {
    const std::uint64_t offset = trace_header_size + count * trace_record_size;
    fail_at(source, offset,
            "truncated record " + std::to_string(count) + ": expected " +
                std::to_string(trace_record_size) + " bytes, found " +
                std::to_string(body % trace_record_size),
            count);
  }
  result.records.reserve(count);
  detail::trace_pairing pairing(source);
  std::unordered_map<std::uint32_t, std::uint32_t> threads;
  const std::byte* in = bytes.data() + trace_header_size;
  for (std::size_t i = 0; i < count; ++i, in += trace_record_size) {
    const std::uint64_t offset = trace_header_size + i * trace_record_size;
    const auto action = std::to_integer<std::uint8_t>(in[0]);
    if (action < 1 || action > 3) {
      fail_at(source, offset,
              "record " + std::to_string(i) + ": unknown action " + std::to_string(action) +
                  ", expected 1 (allocate), 2 (deallocate) or 3 (failed allocation)",
              i);
    }
    const auto log2_alignment = std::to_integer<std::uint8_t>(in[1]);
    if (log2_alignment > 63) {
      fail_at(source, offset + 1,
              "record " + std::to_string(i) + ": alignment 2^" + std::to_string(log2_alignment) +
                  ", expected at most 2^63",
              i);
    }
    if (get(in + 2, 2) != 0) {
      fail_at(source, offset + 2, "record " + std::to_string(i) + ": reserved field is not zero",
              i);
    }
    trace_record record;
    record.action = static_cast<trace_action>(action);
    record.alignment = std::uint64_t{1} << log2_alignment;
    const auto raw_thread = static_cast<std::uint32_t>(get(in + 4, 4));
    record.thread =
        threads.try_emplace(raw_thread, static_cast<std::uint32_t>(threads.size())).first->second;
    record.id = get(in + 8, 8);
    record.bytes = get(in + 16, 8);
    record.nanoseconds = get(in + 24, 8);
    result.records.push_back(record);
    pairing.add(result.records, offset);
    if (progress != nullptr && (i & 0xfffff) == 0) progress(context, offset, bytes.size());
  }
  if (progress != nullptr) progress(context, bytes.size(), bytes.size());
  return result;
}

trace read_trace(const std::filesystem::path& path, trace_progress progress, void* context) {
  const std::vector<std::byte> bytes = read_file(path);
  return parse_trace(bytes, path.string(), progress, context);
}

trace read_rmm_log(const std::filesystem::path& path, std::size_t alignment) {
  const std::vector<std::byte> bytes = read_file(path);
  return parse_rmm_log(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                       path.string(), alignment);
}

}  // namespace pmrkit
