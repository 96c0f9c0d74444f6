#include "workload.hpp"

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <numeric>
#include <stdexcept>
#include <utility>
#include <vector>

namespace pmrkit::bench {
namespace {

// splitmix64: tiny, portable, and good enough for picking sizes and slots. std::uniform_*
// distributions differ between standard libraries, so ranges are reduced by hand.
class splitmix64 {
 public:
  explicit splitmix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound); the modulo bias is irrelevant at these bounds.
  std::uint64_t below(std::uint64_t bound) { return next() % bound; }

 private:
  std::uint64_t state_;
};

std::vector<std::size_t> make_fixed_sizes() {
  return std::vector<std::size_t>(batch_size, fixed_size);
}

std::vector<std::size_t> make_mixed_sizes() {
  splitmix64 rng(0x5eed0001);
  constexpr unsigned octaves = 8;  // 16 << 8 == 4096
  static_assert((min_mixed_size << octaves) == max_mixed_size);
  std::vector<std::size_t> sizes(batch_size);
  for (std::size_t& size : sizes) {
    const std::size_t low = min_mixed_size << rng.below(octaves);
    size = low + rng.below(low + 1);  // [low, 2 * low]
  }
  return sizes;
}

std::vector<std::size_t> make_uniform_sizes() {
  splitmix64 rng(0x5eed0007);
  std::vector<std::size_t> sizes(batch_size);
  for (std::size_t& size : sizes)
    size = min_mixed_size + rng.below(max_mixed_size - min_mixed_size + 1);
  return sizes;
}

struct json_text {
  std::string text;
  std::size_t records = 0;
};

json_text make_json_document() {
  static constexpr std::array<const char*, 8> words{"alpha", "bravo", "charlie", "delta",
                                                    "echo",  "fox",   "golf",    "hotel"};
  splitmix64 rng(0x5eed0006);
  json_text document;
  std::string& text = document.text;
  text.reserve(json_document_size + 1024);
  text = R"({"generator":"pmrkit_bench json_parse","records":[)";
  char buffer[192];
  const auto append = [&](int length) { text.append(buffer, static_cast<std::size_t>(length)); };
  while (text.size() < json_document_size) {
    const std::uint64_t id = document.records++;
    append(std::snprintf(buffer, sizeof buffer,
                         R"(%s{"id":%)" PRIu64 R"(,"name":"record-%06)" PRIu64
                         R"(-%s","active":%s,"score":%)" PRIu64 R"(.%02)" PRIu64 R"(,"tags":[)",
                         id == 0 ? "" : ",", id, id, words[rng.below(8)],
                         rng.below(2) == 0 ? "true" : "false", rng.below(1000), rng.below(100)));
    const std::uint64_t tags = 1 + rng.below(4);
    for (std::uint64_t t = 0; t < tags; ++t)
      text.append(t == 0 ? "\"" : ",\"").append(words[rng.below(8)]).append("\"");
    append(std::snprintf(buffer, sizeof buffer,
                         R"(],"point":[%)" PRIu64 ",%" PRIu64 ",%" PRIu64
                         R"(],"owner":{"login":"user-%)" PRIu64 R"(@example.org","karma":%)" PRIu64
                         R"(},"history":[)",
                         rng.below(10000), rng.below(10000), rng.below(10000), rng.below(100000),
                         rng.below(100000)));
    const std::uint64_t entries = rng.below(5);
    for (std::uint64_t h = 0; h < entries; ++h) {
      append(std::snprintf(buffer, sizeof buffer,
                           R"(%s{"at":%)" PRIu64 R"(,"value":%)" PRIu64
                           R"(,"note":"changed by %s in step %)" PRIu64 R"("})",
                           h == 0 ? "" : ",", 1700000000 + rng.below(10000000), rng.below(1000),
                           words[rng.below(8)], rng.below(1000)));
    }
    text += "]}";
  }
  text += "]}";
  return document;
}

const json_text& json_text_once() {
  static const json_text document = make_json_document();
  return document;
}

std::vector<std::uint32_t> iota_order() {
  std::vector<std::uint32_t> order(batch_size);
  std::iota(order.begin(), order.end(), 0U);
  return order;
}

}  // namespace

std::span<const size_variant> size_variants() {
  static const std::vector<std::size_t> fixed = make_fixed_sizes();
  static const std::vector<std::size_t> mixed = make_mixed_sizes();
  static const std::array<size_variant, 2> variants{{
      {"32", fixed, fixed_size},
      {"mixed", mixed, *std::max_element(mixed.begin(), mixed.end())},
  }};
  return variants;
}

std::span<const std::size_t> uniform_sizes() {
  static const std::vector<std::size_t> sizes = make_uniform_sizes();
  return sizes;
}

std::span<const std::uint32_t> forward_order() {
  static const std::vector<std::uint32_t> order = iota_order();
  return order;
}

std::span<const std::uint32_t> reversed_order() {
  static const std::vector<std::uint32_t> order = [] {
    std::vector<std::uint32_t> reversed = iota_order();
    std::reverse(reversed.begin(), reversed.end());
    return reversed;
  }();
  return order;
}

std::span<const std::uint32_t> shuffled_order() {
  static const std::vector<std::uint32_t> order = [] {
    std::vector<std::uint32_t> shuffled = iota_order();
    splitmix64 rng(0x5eed0002);
    for (std::size_t i = shuffled.size() - 1; i > 0; --i) {
      std::swap(shuffled[i], shuffled[rng.below(i + 1)]);  // Fisher-Yates
    }
    return shuffled;
  }();
  return order;
}

std::span<const std::uint32_t> churn_victims(std::size_t live_blocks) {
  const auto draw = [](std::size_t live) {
    splitmix64 rng(0x5eed0003);
    std::vector<std::uint32_t> slots(batch_size);
    for (std::uint32_t& slot : slots)
      slot = static_cast<std::uint32_t>(rng.below(live));
    return slots;
  };
  static const std::vector<std::uint32_t> victims = draw(churn_live_blocks);
  static const std::vector<std::uint32_t> uniform_victims = draw(uniform_churn_live_blocks);
  if (live_blocks == uniform_churn_live_blocks) return uniform_victims;
  if (live_blocks != churn_live_blocks) throw std::invalid_argument("churn_victims: live_blocks");
  return victims;
}

std::span<const int> container_keys() {
  static const std::vector<int> keys = [] {
    splitmix64 rng(0x5eed0004);
    std::vector<int> values(container_items);
    for (int& value : values)
      value = static_cast<int>(rng.below(1U << 30));
    return values;
  }();
  return keys;
}

std::span<const std::uint32_t> string_lengths() {
  static const std::vector<std::uint32_t> lengths = [] {
    splitmix64 rng(0x5eed0005);
    std::vector<std::uint32_t> values(string_items);
    for (std::uint32_t& value : values)
      value = 16 + static_cast<std::uint32_t>(rng.below(64));
    return values;
  }();
  return lengths;
}

std::string_view json_document() {
  return json_text_once().text;
}

std::size_t json_records() {
  return json_text_once().records;
}

}  // namespace pmrkit::bench
