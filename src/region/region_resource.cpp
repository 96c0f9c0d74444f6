#include <pmr/region/region_resource.hpp>

#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/arena/detail/bump_chain.hpp>
#include <pmr/buddy/buddy_resource.hpp>
#include <pmr/core/align.hpp>
#include <pmr/core/config.hpp>
#include <pmr/core/error.hpp>
#include <pmr/core/options.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/pool/pool_resource.hpp>
#include <pmr/region/locked_page_resource.hpp>
#include <pmr/region/page_source.hpp>
#if PMRKIT_HAS_SHM
#include <pmr/shm/shm_resource.hpp>
#include <pmr/shm/shm_segment.hpp>
#endif

#include "../os/pages.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <optional>
#include <stdexcept>

namespace pmrkit {

namespace {

constexpr std::string_view class_name = "region_resource";
constexpr std::size_t max_alignment = 4096;  // what the pool and the arena accept
constexpr std::size_t min_buddy_block = 64;

// The upstream of a region's pool or arena: hands out the region's memory, once, to the one
// chunk request the strategy makes; every other request is refused as out of capacity, so
// the strategy reports a full region the way it reports any refusal.
class region_buffer final : public std::pmr::memory_resource {
 public:
  region_buffer(std::byte* base, std::size_t size, std::string_view name) noexcept
      : base_(base), size_(size), name_(name) {}
  region_buffer(region_buffer&) = delete;
  region_buffer& operator=(const region_buffer&) = delete;

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (handed_out_ || bytes > size_ || !is_aligned(base_, alignment)) {
      throw_allocation_error(failure_reason::out_of_capacity, bytes, alignment, name_);
    }
    handed_out_ = true;
    return base_;
  }
  void do_deallocate(void*, std::size_t, std::size_t) override { handed_out_ = false; }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  std::byte* base_;
  std::size_t size_;
  std::string_view name_;  // the region's name, which outlives this
  bool handed_out_ = false;
};

std::size_t default_alignment(memory_type type) noexcept {
  switch (type) {
    case memory_type::video:
      return 256;
    case memory_type::audio:
    case memory_type::network:
      return 64;
    default:
      return alignof(std::max_align_t);
  }
}

region_strategy default_strategy(memory_type type) noexcept {
  switch (type) {
    case memory_type::audio:
    case memory_type::network:
      return region_strategy::pool;
    case memory_type::temporary:
      return region_strategy::arena;
    case memory_type::shared:
      return region_strategy::shared_segment;
    default:
      return region_strategy::buddy;
  }
}

std::size_t default_block_size(memory_type type) noexcept {
  switch (type) {
    case memory_type::audio:
      return 4096;
    case memory_type::network:
      return 2048;
    default:
      return 0;
  }
}

std::string_view default_backing(memory_type type, memory_flags flags) noexcept {
  if (type == memory_type::shared) return "shared_memory";
  if (has_flag(flags, memory_flags::dma_capable)) return "locked_pages";
  if (has_flag(flags, memory_flags::huge_pages)) return "huge_pages";
  return "pages";
}

double fragmentation_percent(std::size_t largest_free, std::size_t free) noexcept {
  if (free == 0) return 0;
  return 100.0 * (1.0 - static_cast<double>(largest_free) / static_cast<double>(free));
}

}  // namespace

std::string_view to_string(region_strategy strategy) noexcept {
  switch (strategy) {
    case region_strategy::type_default:
      return "type_default";
    case region_strategy::buddy:
      return "buddy";
    case region_strategy::pool:
      return "pool";
    case region_strategy::arena:
      return "arena";
    case region_strategy::shared_segment:
      return "shared_segment";
  }
  return "unknown";
}

std::optional<region_strategy> parse_region_strategy(std::string_view name) noexcept {
  for (const region_strategy strategy :
       {region_strategy::type_default, region_strategy::buddy, region_strategy::pool,
        region_strategy::arena, region_strategy::shared_segment}) {
    if (to_string(strategy) == name) return strategy;
  }
  return std::nullopt;
}

region_spec region_spec::for_type(memory_type type, std::size_t capacity) {
  region_spec spec;
  spec.capacity = capacity;
  spec.type = type;
  return spec.resolved();
}

region_spec region_spec::resolved() const {
  region_spec spec = *this;
  if (type == memory_type::audio) spec.flags |= memory_flags::dma_capable;
  if (spec.alignment == 0) spec.alignment = default_alignment(type);
  if (spec.strategy == region_strategy::type_default) spec.strategy = default_strategy(type);
  if (spec.block_size == 0 && spec.strategy == region_strategy::pool) {
    spec.block_size = default_block_size(type);
    if (spec.block_size == 0) spec.block_size = 4096;
  }
  if (spec.backing.empty()) spec.backing = default_backing(type, spec.flags);
  if (spec.name.empty()) spec.name = to_string(type);
  return spec;
}

// The suballocator over the region: exactly one of the strategies is engaged.
struct region_resource::strategy_state {
  strategy_state(std::byte* base, std::size_t size, std::string_view name) noexcept
      : buffer(base, size, name) {}

  region_buffer buffer;
  std::optional<buddy_resource> buddy;
  std::optional<pool_resource> pool;
  std::optional<chunked_arena_resource> arena;
#if PMRKIT_HAS_SHM
  std::optional<shm_segment> segment;
  std::optional<shm_resource> shared;
#endif
  std::pmr::memory_resource* active = nullptr;
  std::size_t largest_request = 0;  // buddy: the largest block size
  std::size_t pool_blocks = 0;      // pool: the blocks its one chunk holds
};

region_resource::region_resource(region_spec spec, std::pmr::memory_resource* upstream)
    : spec_(std::move(spec)),
      upstream_(require_upstream(upstream, "pmrkit::region_resource")),
      source_(upstream) {
  spec_ = spec_.resolved();
  require_option(spec_.capacity != 0, class_name, "capacity", "must not be 0");
  require_option(is_power_of_two(spec_.alignment) && spec_.alignment <= max_alignment, class_name,
                 "alignment", "must be a power of two no greater than 4096");
  const bool shared = spec_.strategy == region_strategy::shared_segment;
  require_option(shared == (spec_.type == memory_type::shared), class_name, "strategy",
                 "must be shared_segment exactly when the type is shared");
  if (spec_.strategy == region_strategy::pool) {
    require_option(spec_.block_size <= spec_.capacity, class_name, "block_size",
                   "must not exceed the capacity");
  }
  if (shared) {
#if PMRKIT_HAS_SHM
    state_ = std::make_unique<strategy_state>(nullptr, 0, spec_.name);
    state_->segment.emplace(spec_.segment_name.empty()
                                ? shm_segment::anonymous(spec_.capacity)
                                : shm_segment::open_or_create(spec_.segment_name, spec_.capacity));
    state_->shared.emplace(*state_->segment);
    state_->active = &*state_->shared;
    base_ = state_->segment->base();
    taken_ = state_->segment->size();
    backing_ = "shared memory";
    locked_ = false;
    return;
#else
    throw_invalid_option(class_name, "type", "shared needs pmrkit built with PMRKIT_WITH_SHM");
#endif
  }

  // What the upstream gives, and what the region must add to honour its flags.
  const std::optional<page_properties> properties = page_properties_of(upstream_);
  backing_ = properties ? std::string(dynamic_cast<const page_source&>(*upstream_).backing())
                        : std::string("upstream");
  locked_ = properties && properties->locked;
  if (has_flag(spec_.flags, memory_flags::dma_capable) && !locked_) {
    std::string locker_name = spec_.name;
    locker_ =
        std::make_unique<locked_page_resource>(locked_page_options{.name = locker_name}, upstream_);
    source_ = locker_.get();
    backing_ = "locked " + backing_;
    locked_ = true;
  }

  // A buddy's blocks are aligned to their size: aligning the whole region to its largest
  // power of two lets one block span it. Pools and arenas need only the pages.
  const std::size_t page = detail::os::page_size();
  taken_ = spec_.capacity;
  taken_alignment_ = std::max(page, spec_.alignment);
  if (spec_.strategy == region_strategy::buddy) {
    taken_alignment_ = std::max(taken_alignment_, std::bit_floor(spec_.capacity));
  }
  try {
    base_ = static_cast<std::byte*>(source_->allocate(taken_, taken_alignment_));
  } catch (...) {
    rethrow_upstream_failure(spec_.name, taken_, taken_alignment_);
  }
  huge_pages_ = properties && properties->huge_pages;
  if (has_flag(spec_.flags, memory_flags::huge_pages) && !huge_pages_) {
    // Advise whole pages of the region only (the block need not be page-sized).
    const auto begin = align_up(reinterpret_cast<std::uintptr_t>(base_), page);
    const auto end = (reinterpret_cast<std::uintptr_t>(base_) + taken_) / page * page;
    if (end > begin) {
      huge_pages_ = detail::os::advise_huge_pages(reinterpret_cast<void*>(begin), end - begin);
    }
  }

  try {
    state_ = std::make_unique<strategy_state>(base_, taken_, spec_.name);
    switch (spec_.strategy) {
      case region_strategy::buddy: {
        const std::size_t region_size = std::bit_floor(spec_.capacity);
        const std::size_t min_block =
            std::min(region_size, std::max(spec_.alignment, min_buddy_block));
        // The bookkeeping (bitmaps, tables) comes from the heap, not from the page source.
        state_->buddy.emplace(std::span<std::byte>(base_, taken_),
                              buddy_options{.region_size = region_size,
                                            .min_block = std::max(min_block, region_size >> 30),
                                            .max_regions = 0,
                                            .name = spec_.name},
                              std::pmr::new_delete_resource());
        state_->active = &*state_->buddy;
        state_->largest_request = region_size;
        break;
      }
      case region_strategy::pool: {
        const pool_options options{.block_size = spec_.block_size,
                                   .block_alignment = spec_.alignment};
        const std::size_t blocks = pool_resource::blocks_fitting(taken_, options);
        state_->pool_blocks = blocks;
        require_option(blocks != 0, class_name, "block_size",
                       "leaves no room for a block in the capacity");
        state_->pool.emplace(pool_options{.block_size = spec_.block_size,
                                          .block_alignment = spec_.alignment,
                                          .initial_blocks = blocks,
                                          .max_blocks_per_chunk = blocks,
                                          .growth_factor = 1,
                                          .on_mismatch = pool_mismatch::reject,
                                          .name = spec_.name},
                             &state_->buffer);
        state_->active = &*state_->pool;
        break;
      }
      case region_strategy::arena:
        require_option(spec_.capacity >= 256, class_name, "capacity",
                       "must be at least 256 bytes for an arena");
        state_->arena.emplace(chunked_arena_options{.initial_chunk_size = taken_,
                                                    .max_chunk_size = taken_,
                                                    .growth_factor = 1,
                                                    .alignment = spec_.alignment,
                                                    .size_limit = taken_,
                                                    .name = spec_.name},
                              &state_->buffer);
        state_->active = &*state_->arena;
        break;
      default:
        throw_invalid_option(class_name, "strategy", "is not a strategy");
    }
  } catch (...) {
    state_.reset();
    source_->deallocate(base_, taken_, taken_alignment_);
    throw;
  }
}

region_resource::~region_resource() {
  if (state_ == nullptr) return;
  const bool shared = spec_.strategy == region_strategy::shared_segment;
  state_.reset();  // the strategy gives its chunk back to the buffer, the metadata to the heap
  if (!shared) source_->deallocate(base_, taken_, taken_alignment_);
}

void region_resource::reset() {
  if (!state_->arena) {
    throw std::logic_error("pmrkit::region_resource: '" + spec_.name +
                           "' frees block by block: reset() needs the arena strategy");
  }
  state_->arena->reset();
  blocks_ = 0;
}

std::size_t region_resource::buddy_block(std::size_t bytes, std::size_t alignment) const noexcept {
  return std::bit_ceil(std::max({bytes, alignment, state_->buddy->min_block()}));
}

bool region_resource::owns(const void* p) const noexcept {
  const auto* address = static_cast<const std::byte*>(p);
  return address >= base_ && address < base_ + taken_;
}

void* region_resource::do_allocate(std::size_t bytes, std::size_t alignment) {
  check_request(bytes, alignment, spec_.name);
  if (state_->largest_request != 0 && std::max(bytes, alignment) > state_->largest_request) {
    ++failures_;  // the buddy would pass it to its upstream: no block of the region holds it
    throw_allocation_error(failure_reason::out_of_capacity, bytes, alignment, spec_.name);
  }
  const std::size_t at = std::max(alignment, spec_.alignment);
  void* p = nullptr;
  try {
    p = state_->active->allocate(bytes, at);
  } catch (...) {
    ++failures_;
    rethrow_upstream_failure(spec_.name, bytes, alignment);
  }
  if (has_flag(spec_.flags, memory_flags::zero_fill) && bytes != 0) std::memset(p, 0, bytes);
  ++allocations_;
  ++blocks_;
  if (state_->buddy) {  // the buddy keeps no peak: count its blocks here
    buddy_in_use_ += buddy_block(bytes, at);
    if (buddy_in_use_ > peak_) peak_ = buddy_in_use_;
  }
  return p;
}

void region_resource::do_deallocate(void* p, std::size_t bytes, std::size_t alignment) {
  const std::size_t at = std::max(alignment, spec_.alignment);
  state_->active->deallocate(p, bytes, at);
  if (state_->buddy) buddy_in_use_ -= std::min(buddy_in_use_, buddy_block(bytes, at));
  ++deallocations_;
  if (blocks_ != 0) --blocks_;
}

region_stats region_resource::stats() const noexcept {
  region_stats s;
  s.blocks_in_use = blocks_;
  s.allocations = allocations_;
  s.deallocations = deallocations_;
  s.failures = failures_;
  s.bytes_from_upstream = spec_.strategy == region_strategy::shared_segment ? 0 : taken_;
  if (state_->buddy) {
    const buddy_stats b = state_->buddy->stats();
    s.capacity = b.capacity;
    s.bytes_in_use = b.bytes_in_use;
    s.bytes_free = b.bytes_free;
    s.largest_free_block = b.largest_free_block;
    s.peak_bytes_in_use = peak_;
  } else if (state_->pool) {
    const pool_stats p = state_->pool->stats();
    s.capacity = state_->pool_blocks * p.block_size;
    s.bytes_in_use = p.bytes_in_use;
    s.bytes_free = s.capacity - s.bytes_in_use;
    s.largest_free_block = s.bytes_free != 0 ? spec_.block_size : 0;
    s.peak_bytes_in_use = p.peak_bytes_in_use;
  } else if (state_->arena) {
    const arena_stats a = state_->arena->stats();
    // The chunk's header comes first; the chunk is taken at the first block.
    s.capacity = taken_ - align_up(sizeof(detail::chunk_header),
                                   std::max(spec_.alignment, alignof(std::max_align_t)));
    s.bytes_in_use = a.bytes_in_use;
    s.bytes_free = a.chunk_count != 0 ? a.bytes_available : s.capacity;
    s.largest_free_block = s.bytes_free;
    s.peak_bytes_in_use = a.peak_bytes_in_use;
  }
#if PMRKIT_HAS_SHM
  else if (state_->shared) {
    const shm_stats m = state_->shared->stats();
    s.capacity = m.capacity;
    s.bytes_in_use = m.bytes_in_use;
    s.bytes_free = m.bytes_free + m.bytes_cached;
    s.largest_free_block = m.largest_free_block;
    s.peak_bytes_in_use = m.peak_bytes_in_use;
  }
#endif
  // A pool's free blocks each serve any request it serves: it has no external fragmentation.
  s.fragmentation_percent =
      state_->pool ? 0.0 : fragmentation_percent(s.largest_free_block, s.bytes_free);
  return s;
}

}  // namespace pmrkit
