// Fuzzes the trace readers: parse_trace (the binary trace file) and
// parse_rmm_log (RMM's CSV). Any input either parses or throws trace_error
// naming the source and an offset inside the input (never another exception,
// never a crash); what parses pairs every free with an allocation of the same
// id before it, and encoding it and parsing it again gives the same records.
// The first byte picks the reader; binary inputs get a valid header in front
// half the time, so the fuzzer reaches the records.
#include "fuzz_harness.hpp"

#include <pmr/trace/trace_file.hpp>

#include <cstring>
#include <string_view>
#include <vector>

namespace {

void check_pairs(const pmrkit::trace& t) {
  for (std::size_t i = 0; i < t.records.size(); ++i) {
    const pmrkit::trace_record& r = t.records[i];
    if (r.action != pmrkit::trace_action::deallocate) continue;
    if (r.partner >= i) pmrkit::fuzz::fail("a free paired with a later record");
    const pmrkit::trace_record& a = t.records[r.partner];
    if (a.action != pmrkit::trace_action::allocate || a.id != r.id || a.partner != i) {
      pmrkit::fuzz::fail("a free paired with a record that is not its allocation");
    }
  }
}

template <class Parse>
void expect_parse_or_trace_error(std::size_t size, Parse parse) {
  try {
    const pmrkit::trace t = parse();
    check_pairs(t);
    const pmrkit::trace again = pmrkit::parse_trace(pmrkit::encode_trace(t), "again");
    if (again.records.size() != t.records.size()) pmrkit::fuzz::fail("re-encoding lost records");
    for (std::size_t i = 0; i < t.records.size(); ++i) {
      const pmrkit::trace_record& x = t.records[i];
      const pmrkit::trace_record& y = again.records[i];
      if (x.action != y.action || x.thread != y.thread || x.id != y.id || x.bytes != y.bytes ||
          x.alignment != y.alignment || x.nanoseconds != y.nanoseconds || x.partner != y.partner) {
        pmrkit::fuzz::fail("re-encoding changed a record");
      }
    }
  } catch (const pmrkit::trace_error& e) {
    if (std::string_view(e.what()).find("fuzz") != 0) {
      pmrkit::fuzz::fail(std::string("an error that does not start with its source: ") + e.what());
    }
    if (e.offset() > size) pmrkit::fuzz::fail("an error offset past the input");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  ++data;
  --size;
  if (mode % 3 == 2) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    expect_parse_or_trace_error(size, [&] { return pmrkit::parse_rmm_log(text, "fuzz"); });
    return 0;
  }
  std::vector<std::byte> bytes;
  if (mode % 3 == 1) {
    bytes.resize(pmrkit::trace_header_size);
    pmrkit::encode_trace_header(pmrkit::trace_header{}, bytes.data());
  }
  const std::size_t prefix = bytes.size();
  bytes.resize(prefix + size);
  if (size != 0) std::memcpy(bytes.data() + prefix, data, size);
  expect_parse_or_trace_error(bytes.size(), [&] { return pmrkit::parse_trace(bytes, "fuzz"); });
  return 0;
}
