// Boost.JSON documents parsed into a chunked arena: every string, array and
// object of a parsed value takes its memory from the arena through
// pmrkit::to_boost_arena_resource, destroying the value costs nothing (the
// bridge tells Boost.JSON that its frees do nothing), and reset() makes the
// arena ready for the next document with the memory it already holds.
#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/core/literals.hpp>
#include <pmr/interop/boost_bridge.hpp>
#include <pmr/testing/test_resource.hpp>

#include <boost/json.hpp>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string>

namespace {

using namespace pmrkit::literals;

// What a generated document holds, to check a parsed one against.
struct totals {
  std::uint64_t records = 0;
  std::uint64_t objects = 0;  // every JSON object, the root included
  std::uint64_t id_sum = 0;
  std::uint64_t value_sum = 0;  // of every history entry's "value"
  std::uint64_t tags = 0;
};

// splitmix64: the same document on every run and every machine.
class random_numbers {
 public:
  explicit random_numbers(std::uint64_t seed) : state_(seed) {}
  std::uint64_t below(std::uint64_t bound) {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (z ^ (z >> 31)) % bound;
  }

 private:
  std::uint64_t state_;
};

// A document of about `size` bytes: records with strings, numbers, a nested
// object and nested arrays.
std::string generate(std::size_t size, std::uint64_t seed, totals& expected) {
  static constexpr const char* words[] = {"alpha", "bravo", "charlie", "delta",
                                          "echo",  "fox",   "golf",    "hotel"};
  random_numbers random(seed);
  std::string text = R"({"generator":"pmrkit json_arena example","records":[)";
  expected = {.objects = 1};
  char buffer[192];
  while (text.size() < size) {
    const std::uint64_t id = expected.records++;
    std::snprintf(buffer, sizeof buffer,
                  R"(%s{"id":%)" PRIu64 R"(,"name":"record-%06)" PRIu64
                  R"(-%s","active":%s,"score":%)" PRIu64 R"(.%02)" PRIu64 R"(,"tags":[)",
                  id == 0 ? "" : ",", id, id, words[random.below(8)],
                  random.below(2) == 0 ? "true" : "false", random.below(1000), random.below(100));
    text += buffer;
    const std::uint64_t tags = 1 + random.below(4);
    for (std::uint64_t t = 0; t < tags; ++t) {
      text.append(t == 0 ? "\"" : ",\"").append(words[random.below(8)]).append("\"");
    }
    expected.tags += tags;
    std::snprintf(buffer, sizeof buffer,
                  R"(],"point":[%)" PRIu64 ",%" PRIu64 ",%" PRIu64
                  R"(],"owner":{"login":"user-%)" PRIu64 R"(@example.org","karma":%)" PRIu64
                  R"(},"history":[)",
                  random.below(10000), random.below(10000), random.below(10000),
                  random.below(100000), random.below(100000));
    text += buffer;
    const std::uint64_t entries = random.below(5);
    for (std::uint64_t h = 0; h < entries; ++h) {
      const std::uint64_t value = random.below(1000);
      std::snprintf(buffer, sizeof buffer,
                    R"(%s{"at":%)" PRIu64 R"(,"value":%)" PRIu64
                    R"(,"note":"changed by %s in step %)" PRIu64 R"("})",
                    h == 0 ? "" : ",", 1700000000 + random.below(10000000), value,
                    words[random.below(8)], random.below(1000));
      text += buffer;
      expected.value_sum += value;
    }
    text += "]}";
    expected.id_sum += id;
    expected.objects += 2 + entries;  // the record, its owner, its history entries
  }
  text += "]}";
  return text;
}

// Walks the whole value, counting what `totals` counts.
void walk(const boost::json::value& value, totals& found) {
  if (const boost::json::object* object = value.if_object()) {
    ++found.objects;
    for (const auto& [key, member] : *object) {
      if (key == "id") found.id_sum += member.to_number<std::uint64_t>();
      if (key == "value") found.value_sum += member.to_number<std::uint64_t>();
      if (key == "tags") found.tags += member.as_array().size();
      walk(member, found);
    }
  } else if (const boost::json::array* array = value.if_array()) {
    for (const boost::json::value& element : *array)
      walk(element, found);
  }
}

}  // namespace

int main() {
  // The test_resource under the arena checks that every chunk comes back.
  pmrkit::test_resource heap("heap");
  {
    pmrkit::chunked_arena_resource arena(
        {.initial_chunk_size = 64_KiB, .max_chunk_size = 1_MiB, .name = "json"}, &heap);
    pmrkit::to_boost_arena_resource storage(&arena);  // what Boost.JSON's storage_ptr takes
    if (!boost::json::storage_ptr(&storage).is_deallocate_trivial()) return 1;

    for (std::uint64_t document = 0; document < 3; ++document) {
      totals expected;
      const std::string text = generate(std::size_t{3} << 20, 1 + document, expected);
      totals found;
      {
        const boost::json::value value = boost::json::parse(text, &storage);
        found.records = value.as_object().at("records").as_array().size();
        walk(value, found);
      }  // nothing is freed one by one: the value's memory stays in the arena until reset()
      const pmrkit::arena_stats stats = arena.stats();
      std::printf("document %" PRIu64 ": %zu KiB of JSON, %" PRIu64 " records, %" PRIu64
                  " objects; arena: %zu KiB used in %zu chunks (%zu KiB), heap blocks so far %zu\n",
                  document, text.size() / 1024, found.records, found.objects,
                  stats.bytes_in_use / 1024, stats.chunk_count, stats.bytes_from_upstream / 1024,
                  heap.stats().total_blocks);
      if (found.records != expected.records || found.objects != expected.objects ||
          found.id_sum != expected.id_sum || found.value_sum != expected.value_sum ||
          found.tags != expected.tags) {
        std::printf("the parsed document differs from the generated one\n");
        return 1;
      }
      arena.reset();  // the next document reuses the chunks
    }
    arena.release();
    std::printf("after release(): %zu blocks from the heap in use\n", heap.blocks_in_use());
    if (heap.blocks_in_use() != 0) return 1;
  }
  return heap.has_leaks() ? 1 : 0;  // and the test_resource reports leaks on destruction
}
