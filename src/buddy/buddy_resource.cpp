#include <pmr/buddy/buddy_resource.hpp>

#include <pmr/core/error.hpp>
#include <pmr/core/options.hpp>
#include <pmr/core/poison.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/core/violation.hpp>

#include <algorithm>
#include <cstring>
#include <map>
#include <new>
#include <vector>

namespace pmrkit {

using detail::buddy_tree;

// The metadata block of a region: this header, then layout_.words() words (detail/buddy_tree.hpp:
// the region's level mask and free sets, and in checked builds its in-use bitmaps).
struct buddy_resource::region {
  std::byte* base;           // aligned to the region size
  std::size_t usable_begin;  // the bytes [usable_begin, usable_end) of the region are ours:
  std::size_t usable_end;    // all of them, or a buffer's part of its window
  std::uint32_t slot;        // index in slots_
  bool from_upstream;        // else a window of the buffer
  std::uint64_t* words() noexcept { return reinterpret_cast<std::uint64_t*>(this + 1); }
  const std::uint64_t* words() const noexcept {
    return reinterpret_cast<const std::uint64_t*>(this + 1);
  }
};

static_assert(sizeof(buddy_resource::region) % alignof(std::uint64_t) == 0);

namespace {

constexpr std::size_t word_bits = 64;

constexpr std::string_view class_name = "buddy_resource";

buddy_options validated(buddy_options options, std::pmr::memory_resource* upstream,
                        bool with_buffer) {
  (void)require_upstream(upstream, "pmrkit::buddy_resource");
  require_option(is_power_of_two(options.region_size), class_name, "region_size",
                 "must be a power of two");
  require_option(is_power_of_two(options.min_block), class_name, "min_block",
                 "must be a power of two");
  require_option(options.min_block <= options.region_size, class_name, "min_block",
                 "must not exceed region_size");
  require_option(options.region_size / options.min_block <= (std::size_t{1} << 30), class_name,
                 "region_size", "/ min_block must be at most 2^30");
  require_option(options.max_regions != 0 || with_buffer, class_name, "max_regions",
                 "must be at least 1 without a buffer");
  require_option(options.cache_blocks_per_order <= buddy_options::max_cache_blocks_per_order,
                 class_name, "cache_blocks_per_order", "must be at most 1024");
  return options;
}

std::uintptr_t address(const void* p) noexcept {
  return reinterpret_cast<std::uintptr_t>(p);
}

bool test_bit(const std::uint64_t* bits, std::size_t i) noexcept {
  return (bits[i / word_bits] >> (i % word_bits) & 1U) != 0;
}
void set_bit(std::uint64_t* bits, std::size_t i) noexcept {
  bits[i / word_bits] |= std::uint64_t{1} << (i % word_bits);
}
void clear_bit(std::uint64_t* bits, std::size_t i) noexcept {
  bits[i / word_bits] &= ~(std::uint64_t{1} << (i % word_bits));
}

}  // namespace

buddy_resource::buddy_resource(with_buffer, std::span<std::byte> buffer, buddy_options options,
                               std::pmr::memory_resource* upstream)
    : name_(validated(options, upstream, !buffer.empty()).name),
      upstream_(upstream),
      buffer_(buffer),
      max_regions_(options.max_regions),
      region_size_(options.region_size),
      region_shift_(log2_floor(options.region_size)),
      min_shift_(log2_floor(options.min_block)),
      top_level_(region_shift_ - min_shift_),
      layout_(top_level_ + 1, PMRKIT_CHECKED != 0),
      slots_(&tables_),
      index_(&tables_),
      level_regions_(&tables_),
      cache_capacity_(options.cache_blocks_per_order) {
  require_option(buffer.data() != nullptr || buffer.empty(), class_name, "buffer",
                 "must not be null");
  require_option(
      buffer.empty() || align_up(address(buffer.data()), options.min_block) + options.min_block <=
                            address(buffer.data()) + buffer.size(),
      class_name, "buffer", "must hold at least one min_block-aligned block of min_block bytes");
}

buddy_resource::~buddy_resource() {
  release();
}

// Memory from the upstream.

void* buddy_resource::table_resource::do_allocate(std::size_t bytes, std::size_t alignment) {
  void* p = allocate_from_upstream(owner_->upstream_, bytes, alignment, owner_->name_);
  owner_->took(bytes);
  return p;
}

void buddy_resource::table_resource::do_deallocate(void* p, std::size_t bytes,
                                                   std::size_t alignment) {
  owner_->upstream_->deallocate(p, bytes, alignment);
  owner_->gave_back(bytes);
}

void buddy_resource::took(std::size_t bytes) noexcept {
  from_upstream_ += bytes;
  const std::size_t now = from_upstream_ + large_.bytes_from_upstream();
  if (now > peak_from_upstream_) peak_from_upstream_ = now;
}

std::size_t buddy_resource::metadata_bytes() const noexcept {
  return sizeof(region) + layout_.words() * sizeof(std::uint64_t);
}

// The free sets.

inline buddy_tree buddy_resource::tree_of(region& r) const noexcept {
  return {layout_, r.words()};
}

inline buddy_tree buddy_resource::tree_of(const region& r) const noexcept {
  return {layout_, const_cast<std::uint64_t*>(r.words())};
}

struct buddy_resource::level_events {
  buddy_resource* self;
  region* r;
  void level_gained(unsigned level) const noexcept { self->level_gained(*r, level); }
  void level_lost(unsigned level) const noexcept { self->level_lost(*r, level); }
};

inline void buddy_resource::level_gained(region& r, unsigned level) noexcept {
  set_bit(level_regions_.data() + level * slot_words_, r.slot);
  if (regions_with_level_[level]++ == 0) levels_free_ |= std::uint32_t{1} << level;
  region*& first = first_with_level_[level];
  if (first == nullptr || r.slot < first->slot) first = &r;
}

inline void buddy_resource::level_lost(const region& r, unsigned level) noexcept {
  clear_bit(level_regions_.data() + level * slot_words_, r.slot);
  if (--regions_with_level_[level] == 0) {
    levels_free_ &= ~(std::uint32_t{1} << level);
    first_with_level_[level] = nullptr;
  } else if (first_with_level_[level] == &r) {
    first_with_level_[level] = lowest_slot_with(level);
  }
}

// Allocation.

void* buddy_resource::allocate_block(std::size_t bytes, std::size_t alignment, unsigned level) {
  if (cached_[level] != 0) {  // checked builds come here for it (unchecked ones inline it)
    void* p = cache_of(level)[--cached_[level]];
    ++in_use_[level];
    bytes_requested_ += bytes;
#if PMRKIT_CHECKED
    region* r = find_region(p);
    tree_of(*r).set_used(level, static_cast<std::size_t>(static_cast<std::byte*>(p) - r->base) >>
                                    (min_shift_ + level));
#endif
    detail::revive(p, block_size(level));
    return p;
  }
  std::uint32_t available = levels_free_ >> level;
  if (available == 0) [[unlikely]] {
    // Served otherwise only by merging the caches, laying out the buffer, or a new region.
    if (any_cached()) {
      coalesce();
      available = levels_free_ >> level;
    }
    if (available == 0 && !buffer_installed_ && !buffer_.empty()) install_buffer();
    available = levels_free_ >> level;
    if (available == 0) {
      add_upstream_region(bytes, alignment);
      available = levels_free_ >> level;
    }
  }
  // Best fit: the smallest free block that is large enough, from the first region (lowest slot)
  // that has one (so `from` is that region's smallest free level at or above `level`).
  const unsigned from = level + static_cast<unsigned>(std::countr_zero(available));
  region* r = first_with_level_[from];
  const buddy_tree tree = tree_of(*r);
  // Split: the upper half of each half stays free.
  const std::size_t index = tree.take_from(from, level, level_events{this, r});
  ++in_use_[level];
  bytes_requested_ += bytes;
  std::byte* block = r->base + (index << (min_shift_ + level));
#if PMRKIT_CHECKED
  tree.set_used(level, index);
#endif
  detail::revive(block, block_size(level));
  return block;
}

void* buddy_resource::allocate_large(std::size_t bytes, std::size_t alignment) {
  check_request(bytes, alignment, name_);
  void* p = large_.allocate(upstream_, bytes, alignment, name_);
  took(0);  // the large block is counted by large_; this keeps the peak
  return p;
}

buddy_resource::region* buddy_resource::lowest_slot_with(unsigned level) const noexcept {
  const std::uint64_t* words = level_regions_.data() + level * slot_words_;
  for (std::size_t w = 0;; ++w) {
    if (words[w] != 0) {
      return slots_[w * word_bits + static_cast<std::size_t>(std::countr_zero(words[w]))];
    }
  }
}

// Deallocation.

void buddy_resource::free_block(void* p, [[maybe_unused]] std::size_t bytes,
                                [[maybe_unused]] std::size_t alignment, unsigned level) noexcept {
  region* r = find_region(p);
#if PMRKIT_CHECKED
  if (!check_free(r, p, bytes, alignment, level)) return;
#endif
  const std::size_t index =
      static_cast<std::size_t>(static_cast<std::byte*>(p) - r->base) >> (min_shift_ + level);
  --in_use_[level];
  bytes_requested_ -= bytes;
  const buddy_tree tree = tree_of(*r);
#if PMRKIT_CHECKED
  tree.clear_used(level, index);
#endif
  detail::retire(p, block_size(level));
  if (cache_limit_ != 0) {
    // Into the cache, unmerged; a full cache first merges its older half.
    if (cached_[level] == cache_limit_) merge_oldest(level, (cache_limit_ + 1) / 2);
    cache_of(level)[cached_[level]++] = p;
    return;
  }
  tree.give(level, index, level_events{this, r});  // merges while the buddy is free
}

// The caches.

void buddy_resource::merge_block(void* p, unsigned level) noexcept {
  region* r = find_region(p);
  const std::size_t index =
      static_cast<std::size_t>(static_cast<std::byte*>(p) - r->base) >> (min_shift_ + level);
  tree_of(*r).give(level, index, level_events{this, r});
}

void buddy_resource::merge_oldest(unsigned level, std::size_t count) noexcept {
  if (count == 0) return;  // also: no cache yet (it comes with the first region)
  void** cache = cache_of(level);
  for (std::size_t i = 0; i < count; ++i)
    merge_block(cache[i], level);
  std::copy(cache + count, cache + cached_[level], cache);
  cached_[level] -= static_cast<std::uint32_t>(count);
}

std::size_t buddy_resource::coalesce() noexcept {
  std::size_t merged = 0;
  for (unsigned level = 0; level <= top_level_; ++level) {
    merged += cached_[level];
    merge_oldest(level, cached_[level]);
  }
  return merged;
}

bool buddy_resource::any_cached() const noexcept {
  return std::any_of(cached_.begin(), cached_.begin() + top_level_ + 1,
                     [](std::uint32_t n) { return n != 0; });
}

bool buddy_resource::is_cached(const void* p, unsigned level) const noexcept {
  void** const cache = cache_of(level);
  return std::find(cache, cache + cached_[level], p) != cache + cached_[level];
}

bool buddy_resource::free_after_merge(const region& r, const std::byte* p,
                                      unsigned level) const noexcept {
  const auto offset = static_cast<std::size_t>(p - r.base);
  if (tree_of(r).is_free(level, offset >> (min_shift_ + level)) || is_cached(p, level)) return true;
  // Free once merged only if both halves are. (No block containing `p` is free in the tree, as
  // the caller climbs from a cached block, so a half free in the tree is free at its own level.)
  return level != 0 && free_after_merge(r, p, level - 1) &&
         free_after_merge(r, p + block_size(level - 1), level - 1);
}

std::size_t buddy_resource::largest_after_merge(std::size_t largest_in_trees) const noexcept {
  std::size_t largest = largest_in_trees;
  // From each cached block, climb while its buddy is (or would be once merged) free: where the
  // climb stops is a block merging makes. The trees' own free blocks merge with nothing.
  for (unsigned level = 0; level <= top_level_; ++level) {
    for (std::uint32_t i = 0; i < cached_[level] && largest < region_size_; ++i) {
      const auto* block = static_cast<const std::byte*>(cache_of(level)[i]);
      const region* r = find_region(block);
      unsigned at = level;
      for (; at < top_level_; ++at) {
        const std::size_t size = block_size(at);
        const std::byte* buddy = r->base + (static_cast<std::size_t>(block - r->base) ^ size);
        if (!free_after_merge(*r, buddy, at)) break;
        block = std::min(block, buddy);
      }
      largest = std::max(largest, block_size(at));
    }
  }
  return largest;
}

// The index: a region's home slot is a multiplicative hash of its base / region_size; a
// lookup probes from there until it finds the region or an empty slot.

std::size_t buddy_resource::home_of(std::uintptr_t base) const noexcept {
  constexpr std::uint64_t golden = 0x9E3779B97F4A7C15U;
  const std::uint64_t key = static_cast<std::uint64_t>(base >> region_shift_);
  return static_cast<std::size_t>((key * golden) >> 32U) & (index_.size() - 1);
}

buddy_resource::region* buddy_resource::find_region(const void* p) const noexcept {
  if (index_.empty()) return nullptr;
  const std::uintptr_t base = address(p) & ~(std::uintptr_t{region_size_} - 1);
  for (std::size_t at = home_of(base);; at = (at + 1) & (index_.size() - 1)) {
    region* r = index_[at];
    if (r == nullptr || address(r->base) == base) return r;
  }
}

void buddy_resource::index_insert(region* r) noexcept {
  std::size_t at = home_of(address(r->base));
  while (index_[at] != nullptr)
    at = (at + 1) & (index_.size() - 1);
  index_[at] = r;
}

void buddy_resource::index_erase(region* r) noexcept {
  const std::size_t mask = index_.size() - 1;
  std::size_t hole = home_of(address(r->base));
  while (index_[hole] != r)
    hole = (hole + 1) & mask;
  // Backward-shift deletion: move up every later entry of the run whose home is not between
  // the hole and it, so no lookup meets an empty slot before its region.
  for (std::size_t next = (hole + 1) & mask; index_[next] != nullptr; next = (next + 1) & mask) {
    const std::size_t home = home_of(address(index_[next]->base));
    if (((next - home) & mask) >= ((next - hole) & mask)) {
      index_[hole] = index_[next];
      hole = next;
    }
  }
  index_[hole] = nullptr;
}

#if PMRKIT_CHECKED
bool buddy_resource::check_free(const region* r, const void* p, std::size_t bytes,
                                std::size_t alignment, unsigned level) const noexcept {
  const std::size_t offset = r == nullptr ? 0 : address(p) - address(r->base);
  if (r == nullptr || offset < r->usable_begin || offset >= r->usable_end) {
    report_violation({violation_kind::foreign_pointer, name_, p, bytes, alignment});
    return false;
  }
  const buddy_tree tree = tree_of(*r);
  const auto used = [&](unsigned l) {
    return offset % (std::size_t{1} << (min_shift_ + l)) == 0 &&
           tree.is_used(l, offset >> (min_shift_ + l));
  };
  if (used(level)) return true;
  for (unsigned other = 0; other <= top_level_; ++other) {
    if (used(other)) {  // a block in use starts here, of another size
      const std::size_t size = std::size_t{1} << (min_shift_ + other);
      report_violation({violation_kind::size_mismatch, name_, p, bytes, alignment, size, size});
      return false;
    }
  }
  for (unsigned other = 0; other <= top_level_; ++other) {
    if (tree.is_used(other, offset >> (min_shift_ + other))) {
      // Inside a block in use: not the start of any block.
      report_violation({violation_kind::foreign_pointer, name_, p, bytes, alignment});
      return false;
    }
  }
  report_violation({violation_kind::double_free, name_, p, bytes, alignment});
  return false;
}
#endif

// Regions.

buddy_resource::region* buddy_resource::add_upstream_region(std::size_t bytes,
                                                            std::size_t alignment) {
  if (upstream_regions_ >= max_regions_) {
    throw_allocation_error(failure_reason::out_of_capacity, bytes, alignment, name_);
  }
  auto* base = static_cast<std::byte*>(
      allocate_from_upstream(upstream_, region_size_, region_size_, name_, bytes, alignment));
  took(region_size_);
  try {
    region* r = new_region(base, true, 0, region_size_);
    ++upstream_regions_;
    return r;
  } catch (...) {
    upstream_->deallocate(base, region_size_, region_size_);
    gave_back(region_size_);
    throw;
  }
}

void buddy_resource::install_buffer() {
  const std::uintptr_t begin = align_up(address(buffer_.data()), min_block());
  const std::uintptr_t end = (address(buffer_.data()) + buffer_.size()) & ~(min_block() - 1);
  try {
    for (std::uintptr_t window = begin & ~(region_size_ - 1); window < end;
         window += region_size_) {
      const std::size_t usable_begin = std::max(begin, window) - window;
      const std::size_t usable_end = std::min(end - window, region_size_);
      if (usable_begin < usable_end) {
        new_region(reinterpret_cast<std::byte*>(window), false, usable_begin, usable_end);
      }
    }
  } catch (...) {
    for (region* r : slots_) {
      if (r != nullptr && !r->from_upstream) remove_region(r);
    }
    throw;
  }
  buffer_installed_ = true;
}

buddy_resource::region* buddy_resource::new_region(std::byte* base, bool from_upstream,
                                                   std::size_t usable_begin,
                                                   std::size_t usable_end) {
  // Room in the tables first, in new storage that replaces the old only once the metadata is
  // taken too: a failure anywhere leaves the buddy as it was, holding nothing more.
  const auto free_slot = std::find(slots_.begin(), slots_.end(), nullptr);
  const auto slot = static_cast<std::size_t>(free_slot - slots_.begin());
  const bool new_slot = slot == slots_.size();
  std::pmr::vector<region*> more_slots(&tables_);
  const bool grow_slots = new_slot && slots_.size() == slots_.capacity();
  if (grow_slots) {
    more_slots.reserve(std::max<std::size_t>(8, 2 * slots_.capacity()));
    more_slots.assign(slots_.begin(), slots_.end());
  }
  std::pmr::vector<std::uint64_t> wider(&tables_);
  const bool widen = new_slot && slot == slot_words_ * word_bits;
  if (widen) {  // one more word of slot bits per level
    wider.assign((top_level_ + 1) * (slot_words_ + 1), 0);
    for (unsigned level = 0; level <= top_level_; ++level) {
      std::copy_n(level_regions_.begin() + static_cast<std::ptrdiff_t>(level * slot_words_),
                  slot_words_,
                  wider.begin() + static_cast<std::ptrdiff_t>(level * (slot_words_ + 1)));
    }
  }
  std::size_t regions = 0;
  for (const region* other : slots_)
    regions += other != nullptr ? 1 : 0;
  std::pmr::vector<region*> larger(&tables_);
  const bool rehash = 2 * (regions + 1) > index_.size();
  if (rehash) larger.assign(std::max<std::size_t>(8, 2 * index_.size()), nullptr);
  // The caches' slots, with the first region.
  void** cache = nullptr;
  if (cache_ == nullptr && cache_capacity_ != 0) {
    cache = static_cast<void**>(tables_.allocate(cache_bytes(), alignof(void*)));
  }
  region* r = nullptr;
  try {
    r = static_cast<region*>(
        allocate_from_upstream(upstream_, metadata_bytes(), alignof(region), name_));
  } catch (...) {
    if (cache != nullptr) tables_.deallocate(cache, cache_bytes(), alignof(void*));
    throw;
  }
  took(metadata_bytes());
  // Nothing fails from here on.
  if (cache != nullptr) {
    cache_ = cache;
    cache_limit_ = cache_capacity_;
  }
  if (grow_slots) slots_.swap(more_slots);
  if (widen) {
    level_regions_.swap(wider);
    ++slot_words_;
  }
  if (rehash) {  // into a table twice as large
    larger.swap(index_);
    for (region* other : larger) {
      if (other != nullptr) index_insert(other);
    }
  }
  new (r) region{.base = base,
                 .usable_begin = usable_begin,
                 .usable_end = usable_end,
                 .slot = static_cast<std::uint32_t>(slot),
                 .from_upstream = from_upstream};
  std::memset(r->words(), 0, layout_.words() * sizeof(std::uint64_t));
  if (new_slot) {
    slots_.push_back(r);  // within the capacity reserved above
  } else {
    slots_[slot] = r;
  }
  index_insert(r);
  detail::retire(base + usable_begin, usable_end - usable_begin);
  // The usable bytes as the largest aligned blocks that tile them: all of a whole region.
  const buddy_tree tree = tree_of(*r);
  tree.free_range(usable_begin >> min_shift_, usable_end >> min_shift_, level_events{this, r});
  return r;
}

void buddy_resource::remove_region(region* r) noexcept {
  const std::uint32_t mask = tree_of(*r).level_mask();
  for (unsigned level = 0; level <= top_level_; ++level) {
    if ((mask >> level & 1U) != 0) level_lost(*r, level);
  }
  slots_[r->slot] = nullptr;
  index_erase(r);
  detail::revive(r->base + r->usable_begin, r->usable_end - r->usable_begin);
  if (r->from_upstream) {
    upstream_->deallocate(r->base, region_size_, region_size_);
    gave_back(region_size_);
    --upstream_regions_;
  }
  upstream_->deallocate(r, metadata_bytes(), alignof(region));
  gave_back(metadata_bytes());
}

// Bulk operations.

void buddy_resource::release() noexcept {
  // The cached blocks go with their regions (a buffer's are free again when it is laid out anew).
  cached_ = {};
  if (cache_ != nullptr) {
    tables_.deallocate(cache_, cache_bytes(), alignof(void*));
    cache_ = nullptr;
    cache_limit_ = 0;
  }
  for (region* r : slots_) {
    if (r != nullptr) remove_region(r);
  }
  // Give the tables' storage back too.
  std::pmr::vector<region*>(slots_.get_allocator()).swap(slots_);
  std::pmr::vector<region*>(index_.get_allocator()).swap(index_);
  std::pmr::vector<std::uint64_t>(level_regions_.get_allocator()).swap(level_regions_);
  slot_words_ = 0;
  buffer_installed_ = false;
  in_use_ = {};
  bytes_requested_ = 0;
  large_.release(upstream_);
}

std::size_t buddy_resource::shrink() noexcept {
  coalesce();
  const std::size_t before = from_upstream_;
  for (region* r : slots_) {
    if (r != nullptr && r->from_upstream && (tree_of(*r).level_mask() >> top_level_ & 1U) != 0) {
      remove_region(r);
    }
  }
  return before - from_upstream_;
}

// Observers.

bool buddy_resource::owns(const void* p) const noexcept {
  const region* r = find_region(p);
  if (r == nullptr) return false;
  const std::size_t offset = address(p) - address(r->base);
  return offset >= r->usable_begin && offset < r->usable_end;
}

template <class Visit>
void buddy_resource::for_each_pending_buffer_region(Visit visit) const noexcept {
  // The windows install_buffer() will lay out, and the free blocks each will start with: the
  // usable range cut into the largest aligned power-of-two blocks, as the region's tree holds it.
  if (buffer_installed_ || buffer_.empty()) return;
  const std::uintptr_t begin = align_up(address(buffer_.data()), min_block());
  const std::uintptr_t end = (address(buffer_.data()) + buffer_.size()) & ~(min_block() - 1);
  for (std::uintptr_t window = begin & ~(region_size_ - 1); window < end; window += region_size_) {
    const std::uintptr_t from = std::max(begin, window);
    const std::uintptr_t to = std::min(end, window + region_size_);
    if (from >= to) continue;
    std::array<std::size_t, max_levels> free{};
    for (std::uintptr_t at = from; at < to;) {
      std::size_t block =
          std::min<std::size_t>(region_size_, std::size_t{1} << std::countr_zero(at));
      while (at + block > to)
        block >>= 1;
      ++free[static_cast<unsigned>(std::countr_zero(block)) - min_shift_];
      at += block;
    }
    visit(static_cast<std::size_t>(to - from), free);
  }
}

buddy_order_stats buddy_resource::order_stats(std::size_t order) const noexcept {
  const auto level = static_cast<unsigned>(order);
  buddy_order_stats result{.block_size = block_size(level),
                           .free_blocks = cached_[level],
                           .blocks_in_use = in_use_[level],
                           .blocks_cached = cached_[level]};
  for (region* r : slots_) {
    if (r != nullptr) {
      result.free_blocks += tree_of(*r).free_count(level);
    }
  }
  for_each_pending_buffer_region(
      [&](std::size_t, const auto& free) { result.free_blocks += free[level]; });
  return result;
}

buddy_stats buddy_resource::stats() const noexcept {
  buddy_stats result{.bytes_from_upstream = from_upstream_ + large_.bytes_from_upstream(),
                     .peak_bytes_from_upstream = peak_from_upstream_,
                     .chunk_count = upstream_regions_,
                     .large_blocks_in_use = large_.count(),
                     .large_bytes_in_use = large_.bytes(),
                     .bytes_requested = bytes_requested_};
  for (const region* r : slots_) {
    if (r == nullptr) continue;
    ++result.regions;
    result.capacity += r->usable_end - r->usable_begin;
  }
  // A buffer is laid out at the first allocation that needs it: until then, count what it
  // will be, so the figures of a fresh (or released) buddy over a buffer are already right.
  std::uint32_t levels_free = levels_free_;
  for_each_pending_buffer_region([&](std::size_t usable, const auto& free) {
    result.capacity += usable;
    for (unsigned level = 0; level <= top_level_; ++level) {
      if (free[level] != 0) levels_free |= std::uint32_t{1} << level;
    }
  });
  for (unsigned level = 0; level <= top_level_; ++level) {
    const buddy_order_stats order = order_stats(level);
    result.blocks_in_use += order.blocks_in_use;
    result.bytes_in_use += order.blocks_in_use * order.block_size;
    result.bytes_free += order.free_blocks * order.block_size;
    result.bytes_cached += order.blocks_cached * order.block_size;
  }
  // The trees' largest free block, then what merging the cached blocks would make (what an
  // allocation that needs it does): O(cached blocks * orders) lookups, none when nothing is cached.
  const std::size_t largest_in_trees =
      levels_free == 0 ? 0 : block_size(static_cast<unsigned>(std::bit_width(levels_free)) - 1U);
  result.largest_free_block =
      result.bytes_cached == 0 ? largest_in_trees : largest_after_merge(largest_in_trees);
  if (result.largest_free_block != 0) {
    result.external_fragmentation = 1.0 - static_cast<double>(result.largest_free_block) /
                                              static_cast<double>(result.bytes_free);
  }
  result.internal_fragmentation = result.bytes_in_use - result.bytes_requested;
  return result;
}

std::string buddy_resource::verify() const {
  // The caches: each block in a region, in its usable range, at its size's alignment; grouped by
  // region for the trees' check, where they must overlap nothing and tile with the rest.
  std::map<const region*, std::vector<buddy_tree::block>> held;
  for (unsigned level = 0; level <= top_level_; ++level) {
    if (cached_[level] > cache_limit_) {
      return "level " + std::to_string(level) + ": more cached blocks than the cache holds";
    }
    for (std::uint32_t i = 0; i < cached_[level]; ++i) {
      const void* p = cache_of(level)[i];
      const std::string what =
          "cached block at " + std::to_string(address(p)) + " of level " + std::to_string(level);
      const region* r = find_region(p);
      if (r == nullptr) return what + ": in no region";
      const std::size_t offset = address(p) - address(r->base);
      if (offset % block_size(level) != 0) return what + ": not aligned to its size";
      if (offset < r->usable_begin || offset + block_size(level) > r->usable_end) {
        return what + ": outside the region's usable range";
      }
      held[r].push_back({level, offset >> (min_shift_ + level)});
    }
  }
  std::uint32_t levels_seen = 0;
  std::array<std::uint32_t, max_levels> regions_seen{};
  std::size_t regions = 0;
  std::array<std::size_t, max_levels> used_seen{};
  for (const region* r : slots_) {
    if (r == nullptr) continue;
    ++regions;
    const std::string where = "region at " + std::to_string(address(r->base));
    if (find_region(r->base + region_size_ - 1) != r) {
      return where + ": missing from the address index";
    }
    // The region itself: its free sets, in-use bitmaps and level mask.
    const buddy_tree tree = tree_of(*r);
    const auto cached = held.find(r);
    if (std::string wrong =
            tree.verify(r->usable_begin >> min_shift_, r->usable_end >> min_shift_,
                        cached == held.end() ? std::span<const buddy_tree::block>{}
                                             : std::span<const buddy_tree::block>(cached->second));
        !wrong.empty()) {
      return where + ": " + wrong;
    }
    // Across regions: the level sets, the counts of regions per level, the blocks in use.
    for (unsigned level = 0; level <= top_level_; ++level) {
      if ((tree.level_mask() >> level & 1U) != 0) {
        levels_seen |= std::uint32_t{1} << level;
        ++regions_seen[level];
        if (!test_bit(level_regions_.data() + level * slot_words_, r->slot)) {
          return where + ", level " + std::to_string(level) +
                 ": the region is missing from the level's region set";
        }
      }
      if (PMRKIT_CHECKED) used_seen[level] += tree.used_count(level);
    }
  }
  if (levels_seen != levels_free_) return "the free-level mask disagrees with the regions";
  for (unsigned level = 0; level <= top_level_; ++level) {
    if (regions_seen[level] != regions_with_level_[level]) {
      return "level " + std::to_string(level) + ": wrong count of regions with a free block";
    }
    if (first_with_level_[level] !=
        (regions_seen[level] == 0 ? nullptr : lowest_slot_with(level))) {
      return "level " + std::to_string(level) + ": the first region with a free block is stale";
    }
    if (PMRKIT_CHECKED && used_seen[level] != in_use_[level]) {
      return "level " + std::to_string(level) + ": blocks in use disagree with the bitmaps";
    }
  }
  if (static_cast<std::size_t>(std::count_if(
          index_.begin(), index_.end(), [](const region* r) { return r != nullptr; })) != regions) {
    return "the address index has stale regions";
  }
  return {};
}

}  // namespace pmrkit
