// json_parse: Boost.JSON as a real client. One timed iteration parses the same document of about
// 4 MiB (workload.cpp, built once) into a boost::json::value and destroys the value; the rows
// differ only in where the value's memory comes from:
//
//   pmrkit_chunked_arena             a chunked_arena_resource through to_boost_arena_resource,
//                                    reset() after each document: it keeps its chunks, and the
//                                    bridge tells Boost.JSON that frees do nothing, so destroying
//                                    the value does not walk it
//   pmrkit_chunked_arena_forwarding  the same arena through to_boost_resource, which forwards
//                                    frees: Boost.JSON destroys the value element by element
//   boost_json_monotonic             boost::json::monotonic_resource with, as its initial buffer,
//                                    as many bytes as it took from its upstream for the document
//                                    when fresh; release() after each document keeps the buffer.
//                                    So it reuses its memory as the arena does, and neither takes
//                                    anything from the heap after the first document
//   boost_json_default               storage_ptr(): Boost.JSON's default resource, new and delete
//
// Every row reuses one boost::json::parser, whose temporary stack (on the heap) grows during the
// first document and is reused after. That first document is parsed before the timed loop, so
// each row is measured in its steady state: its memory obtained and touched. Items are documents
// (ns/op is ns per document); bytes are the document's, for MB/s.
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <string_view>

#include <benchmark/benchmark.h>
#include <boost/json.hpp>

#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/interop/boost_bridge.hpp>

#include "registry.hpp"
#include "upstream.hpp"
#include "workload.hpp"

namespace pmrkit::bench {
namespace {

// Parses json_document() into `storage` once per iteration; `end_document` runs after the value
// is destroyed (an arena's reset, a monotonic resource's release).
template <class EndDocument>
void parse_documents(benchmark::State& state, const boost::json::storage_ptr& storage,
                     EndDocument end_document) {
  const std::string_view document = json_document();
  boost::json::parser parser;
  std::size_t records = 0;
  const auto parse_one = [&] {
    parser.reset(storage);
    parser.write(document.data(), document.size());
    {
      const boost::json::value value = parser.release();
      records = value.get_object().at("records").get_array().size();
      benchmark::DoNotOptimize(records);
    }
    end_document();
  };
  parse_one();  // untimed: the resource's memory obtained and touched, the parser's stack grown
  for (auto _ : state)
    parse_one();
  if (records != json_records()) state.SkipWithError("the parsed document lost records");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * document.size()));
}

void pmrkit_chunked_arena(benchmark::State& state) {
  const upstream_peak peak;
  pmrkit::chunked_arena_resource arena({}, counted_upstream());
  pmrkit::to_boost_arena_resource storage(&arena);
  parse_documents(state, &storage, [&] { arena.reset(); });
  peak.report(state);
}

void pmrkit_chunked_arena_forwarding(benchmark::State& state) {
  const upstream_peak peak;
  pmrkit::chunked_arena_resource arena({}, counted_upstream());
  pmrkit::to_boost_resource storage(&arena);
  parse_documents(state, &storage, [&] { arena.reset(); });
  peak.report(state);
}

// The bytes a fresh monotonic_resource takes from its upstream for the document.
std::size_t monotonic_resource_need() {
  static const std::size_t need = [] {
    counting_resource counter;
    pmrkit::to_boost_resource upstream(&counter);
    boost::json::monotonic_resource fresh(1024, &upstream);
    const boost::json::value value = boost::json::parse(json_document(), &fresh);
    return counter.held();
  }();
  return need;
}

// The monotonic resource's initial buffer, from counted_upstream() so the row reports its peak.
class counted_buffer {
 public:
  explicit counted_buffer(std::size_t size)
      : data_(static_cast<unsigned char*>(counted_upstream()->allocate(size))), size_(size) {}
  counted_buffer(const counted_buffer&) = delete;
  counted_buffer& operator=(const counted_buffer&) = delete;
  ~counted_buffer() { counted_upstream()->deallocate(data_, size_); }

  [[nodiscard]] unsigned char* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  unsigned char* data_;
  std::size_t size_;
};

void boost_json_monotonic(benchmark::State& state) {
  const std::size_t need = monotonic_resource_need();
  const upstream_peak peak;
  const counted_buffer buffer(need);
  boost::json::monotonic_resource monotonic(buffer.data(), buffer.size(), counted_boost_upstream());
  parse_documents(state, &monotonic, [&] { monotonic.release(); });
  peak.report(state);
}

void boost_json_default(benchmark::State& state) {
  parse_documents(state, boost::json::storage_ptr(), [] {});
}

}  // namespace

void add_json_rows(registry& rows) {
  rows.add_custom("json_parse", "pmrkit_chunked_arena", pmrkit_chunked_arena);
  rows.add_custom("json_parse", "pmrkit_chunked_arena_forwarding", pmrkit_chunked_arena_forwarding);
  rows.add_custom("json_parse", "boost_json_monotonic", boost_json_monotonic);
  rows.add_custom("json_parse", "boost_json_default", boost_json_default);
}

}  // namespace pmrkit::bench
