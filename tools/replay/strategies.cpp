#include "strategies.hpp"

#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/arena/stack_resource.hpp>
#include <pmr/buddy/buddy_resource.hpp>
#include <pmr/pool/concurrent_pool_resource.hpp>
#include <pmr/pool/multipool_resource.hpp>
#include <pmr/pool/pool_resource.hpp>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstdio>
#include <stdexcept>

namespace pmrkit::replay {
namespace {

std::size_t get(const settings& s, std::string_view field, std::size_t fallback) {
  const auto it = s.find(field);
  return it == s.end() ? fallback : parse_size(it->second, field);
}

/// A std::pmr resource that owns nothing more than itself.
class system_heap final : public std::pmr::memory_resource {
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    return std::pmr::new_delete_resource()->allocate(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    std::pmr::new_delete_resource()->deallocate(p, bytes, alignment);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }
};

std::string none(const trace_profile&, const settings&) {
  return {};
}

/// An arena's or a stack's largest chunk, unless set: a 256th of what the trace allocates in
/// all (for an arena) or of its live peak (for a stack), a power of two from 64 KiB (the
/// resources' default) to 64 MiB, so a trace of hundreds of MiB is not served 64 KiB at a time.
std::size_t max_chunk_for(std::uint64_t bytes) {
  const std::uint64_t wanted =
      std::clamp<std::uint64_t>(bytes / 256, std::uint64_t{64} << 10, std::uint64_t{64} << 20);
  return static_cast<std::size_t>(std::bit_ceil(wanted));
}

std::string pool_refuses(const trace_profile& p, const settings& s) {
  if (p.distinct_sizes > 1 && s.find("block_size") == s.end()) {
    return "cannot serve: " + std::to_string(p.distinct_sizes) + " distinct sizes (" +
           format_bytes(p.smallest) + " to " + format_bytes(p.largest) +
           "); a pool serves one size (set pool.block_size to round every request up)";
  }
  if (p.max_alignment > 4096) {
    return "cannot serve: alignment " + std::to_string(p.max_alignment) + " above a pool's 4096";
  }
  return {};
}

std::string stack_refuses(const trace_profile& p, const settings&) {
  if (p.lifo_frees == p.deallocations) return {};
  char share[32];
  std::snprintf(share, sizeof share, "%.1f%%", 100.0 * (1.0 - p.lifo_share()));
  return "cannot serve: " + std::string(share) +
         " of frees are not of the newest live block; a stack frees newest first";
}

template <class Resource>
std::unique_ptr<std::pmr::memory_resource> own(std::unique_ptr<Resource> r) {
  return r;
}

/// One of the standard pools, with the pool options a trace may set.
template <class Pool>
std::unique_ptr<std::pmr::memory_resource> make_std_pool(std::pmr::memory_resource* up,
                                                         const settings& s, const trace_profile&) {
  return own(
      std::make_unique<Pool>(std::pmr::pool_options{get(s, "max_blocks_per_chunk", 0),
                                                    get(s, "largest_required_pool_block", 0)},
                             up));
}

const std::vector<strategy> table = {
    {"malloc",
     "the system heap (operator new); the baseline",
     {},
     "",
     true,
     true,
     none,
     [](std::pmr::memory_resource*, const settings&, const trace_profile&) {
       return own(std::make_unique<system_heap>());
     }},
    {"multipool",
     "pmrkit::multipool_resource: size classes, one thread",
     {"max_blocks_per_chunk", "largest_required_pool_block"},
     "",
     false,
     false,
     none,
     [](std::pmr::memory_resource* up, const settings& s, const trace_profile&) {
       return own(std::make_unique<multipool_resource>(
           multipool_options{
               .max_blocks_per_chunk = get(s, "max_blocks_per_chunk", 0),
               .largest_required_pool_block = get(s, "largest_required_pool_block", 0)},
           up));
     }},
    {"concurrent_pool",
     "pmrkit::concurrent_pool_resource: size classes, thread caches",
     {"max_blocks_per_chunk", "largest_required_pool_block", "cache_bytes_per_class"},
     "",
     true,
     false,
     none,
     [](std::pmr::memory_resource* up, const settings& s, const trace_profile&) {
       return own(std::make_unique<concurrent_pool_resource>(
           concurrent_pool_options{
               .max_blocks_per_chunk = get(s, "max_blocks_per_chunk", 0),
               .largest_required_pool_block = get(s, "largest_required_pool_block", 0),
               .cache_bytes_per_class = get(s, "cache_bytes_per_class", std::size_t{32} << 10)},
           up));
     }},
    {"pool",
     "pmrkit::pool_resource: blocks of one size",
     {"block_size", "initial_blocks", "max_blocks_per_chunk", "growth_factor"},
     "",
     false,
     false,
     pool_refuses,
     [](std::pmr::memory_resource* up, const settings& s, const trace_profile& p) {
       std::size_t alignment = alignof(std::max_align_t);
       while (alignment < p.max_alignment)
         alignment *= 2;
       return own(std::make_unique<pool_resource>(
           pool_options{.block_size = get(s, "block_size", p.largest == 0 ? 1 : p.largest),
                        .block_alignment = alignment,
                        .initial_blocks = get(s, "initial_blocks", 64),
                        .max_blocks_per_chunk = get(s, "max_blocks_per_chunk", 4096),
                        .growth_factor = get(s, "growth_factor", 2),
                        .on_mismatch = pool_mismatch::reject},
           up));
     }},
    {"buddy",
     "pmrkit::buddy_resource: power-of-two blocks, merged with their buddies",
     {"region_size", "min_block", "cache_blocks_per_order"},
     "",
     false,
     false,
     none,
     [](std::pmr::memory_resource* up, const settings& s, const trace_profile&) {
       return own(std::make_unique<buddy_resource>(
           buddy_options{.region_size = get(s, "region_size", std::size_t{1} << 20),
                         .min_block = get(s, "min_block", 64),
                         .cache_blocks_per_order = get(s, "cache_blocks_per_order", 16)},
           up));
     }},
    {"chunked_arena",
     "pmrkit::chunked_arena_resource: bump allocation, frees only its newest block; chunks up to a "
     "256th of the bytes allocated",
     {"initial_chunk_size", "max_chunk_size", "growth_factor", "alignment"},
     "it frees only its newest block and its dedicated chunks",
     false,
     false,
     none,
     [](std::pmr::memory_resource* up, const settings& s, const trace_profile& p) {
       return own(std::make_unique<chunked_arena_resource>(
           chunked_arena_options{
               .initial_chunk_size = get(s, "initial_chunk_size", 4096),
               .max_chunk_size = get(s, "max_chunk_size", max_chunk_for(p.bytes_allocated)),
               .growth_factor = get(s, "growth_factor", 2),
               .alignment = get(s, "alignment", alignof(std::max_align_t))},
           up));
     }},
    {"stack",
     "pmrkit::stack_resource: bump allocation freed newest first; chunks up to a 256th of the live "
     "peak",
     {"initial_chunk_size", "max_chunk_size", "growth_factor"},
     "",
     false,
     false,
     stack_refuses,
     [](std::pmr::memory_resource* up, const settings& s, const trace_profile& p) {
       return own(std::make_unique<stack_resource>(
           stack_options{
               .initial_chunk_size = get(s, "initial_chunk_size", 4096),
               .max_chunk_size = get(s, "max_chunk_size", max_chunk_for(p.peak_live_bytes)),
               .growth_factor = get(s, "growth_factor", 2)},
           up));
     }},
    {"std_pool",
     "std::pmr::unsynchronized_pool_resource (peer)",
     {"max_blocks_per_chunk", "largest_required_pool_block"},
     "",
     false,
     false,
     none,
     make_std_pool<std::pmr::unsynchronized_pool_resource>},
    {"std_sync_pool",
     "std::pmr::synchronized_pool_resource (peer)",
     {"max_blocks_per_chunk", "largest_required_pool_block"},
     "",
     true,
     false,
     none,
     make_std_pool<std::pmr::synchronized_pool_resource>},
    {"std_monotonic",
     "std::pmr::monotonic_buffer_resource (peer): frees nothing",
     {},
     "it never frees",
     false,
     false,
     none,
     [](std::pmr::memory_resource* up, const settings&, const trace_profile&) {
       return own(std::make_unique<std::pmr::monotonic_buffer_resource>(up));
     }},
};

}  // namespace

const std::vector<strategy>& strategies() {
  return table;
}

const strategy* find_strategy(std::string_view name) {
  for (const strategy& s : table) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::size_t parse_size(std::string_view text, std::string_view field) {
  std::size_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  std::string_view suffix(end, static_cast<std::size_t>(text.data() + text.size() - end));
  unsigned shift = 0;
  if (suffix == "K" || suffix == "KiB" || suffix == "k") {
    shift = 10;
  } else if (suffix == "M" || suffix == "MiB") {
    shift = 20;
  } else if (suffix == "G" || suffix == "GiB") {
    shift = 30;
  } else if (!suffix.empty()) {
    shift = 64;
  }
  if (ec != std::errc{} || end == text.data() || shift == 64 ||
      (value << shift >> shift) != value) {
    throw std::invalid_argument(std::string(field) + ": \"" + std::string(text) +
                                "\" is not a byte count (a number, optionally with K, M or G)");
  }
  return value << shift;
}

}  // namespace pmrkit::replay
