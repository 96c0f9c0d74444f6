#include "workload.hpp"

#include <algorithm>
#include <array>
#include <numeric>
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

std::span<const std::uint32_t> churn_victims() {
  static const std::vector<std::uint32_t> victims = [] {
    splitmix64 rng(0x5eed0003);
    std::vector<std::uint32_t> slots(batch_size);
    for (std::uint32_t& slot : slots)
      slot = static_cast<std::uint32_t>(rng.below(churn_live_blocks));
    return slots;
  }();
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

}  // namespace pmrkit::bench
