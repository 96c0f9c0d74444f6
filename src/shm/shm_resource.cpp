#include <pmr/shm/shm_resource.hpp>

#include <pmr/buddy/detail/buddy_tree.hpp>
#include <pmr/core/align.hpp>
#include <pmr/core/error.hpp>
#include <pmr/core/options.hpp>
#include <pmr/core/violation.hpp>
#include <pmr/pool/detail/size_classes.hpp>

#include "heap_format.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <unordered_map>

namespace pmrkit {

namespace size_classes = detail::size_classes;
using detail::buddy_layout;
using detail::buddy_tree;

namespace {

constexpr std::uint64_t heap_magic = 0x5041454853524D50ULL;  // "PMRSHEAP"
constexpr std::uint32_t heap_version = 2;
constexpr std::size_t page = 4096;  // the buddy's min-block and the largest alignment
constexpr unsigned page_shift = 12;
constexpr std::size_t small_limit = 8192;
constexpr std::size_t class_count = size_classes::count_for(small_limit);
constexpr std::size_t run_bytes = 65536;  // small blocks are carved from runs of this size
constexpr unsigned run_level = 4;         // run_bytes / page == 1 << run_level
constexpr std::size_t slot_count = 64;
constexpr std::size_t bucket_count = 64;
constexpr std::size_t max_cache_limit = 1024;
constexpr std::size_t max_name = 1024;
constexpr std::uint8_t large_mark = 0x80;     // page map: the first page of a large block, | level
constexpr std::size_t granule = 16;           // the in-use bits: one per granule of the region
constexpr std::size_t journal_capacity = 64;  // words one locked step may change (at most ~16)

static_assert(size_classes::class_size(class_count - 1) == small_limit);
static_assert(run_bytes == page << run_level);
static_assert(class_count < large_mark);

// The fork generation: a child's inherited bindings to its parent's cache slots are stale.
std::atomic<std::uint64_t> fork_generation{1};
std::atomic<std::uint64_t> next_instance{1};

}  // namespace

// The cache of one thread: per class a list of free blocks linked through their first
// eight bytes (segment offsets, 0 ends it). Only its owner writes it; stats() and verify()
// read it (relaxed atomics: plain loads and stores).
struct shm_resource::cache_slot {
  struct bin {
    std::atomic<std::uint64_t> head;
    std::atomic<std::uint64_t> count;
  };
  std::atomic<std::uint64_t> owner;  // 0: free; else pid << 32 | the thread's number
  std::atomic<std::uint64_t> token;  // the owner process's start time (0: unknown)
  std::uint64_t reserved[6];
  bin bins[class_count];

  // Returns `slot`, one of r's, to the segment and forgets it (a thread exits or flushes).
  static void give_back(shm_resource& r, cache_slot& slot) noexcept {
    r.return_slot(slot);
    const std::lock_guard guard(r.slots_lock_);
    std::erase_if(r.slots_, [&](const auto& s) { return s.first == &slot; });
  }
};

// The allocator's state at the start of the allocator area. Positions are segment offsets.
struct shm_resource::heap {
  struct class_state {
    std::uint64_t free_head;  // a list of free blocks (0: empty)
    std::uint64_t free_count;
    std::uint64_t carve;      // the next block of the newest run never handed out
    std::uint64_t carve_end;  // the end of that run's last whole block
    std::uint64_t runs;
  };

  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t checked;  // 1: the in-use bits and the buddy's used bitmaps are kept
  std::uint64_t area_offset;
  std::uint64_t area_bytes;
  std::uint64_t region_offset;  // the buddy's region, page-aligned
  std::uint64_t region_pages;   // usable pages of the region
  std::uint64_t words_offset;   // the buddy's words
  std::uint64_t page_map_offset;
  std::uint64_t used_bits_offset;  // one bit per granule of the region
  buddy_layout layout;
  pthread_mutex_t lock;
  std::uint64_t damaged;  // 1: a repair failed; the segment is refused from then on
  std::uint64_t repairs;  // times a process found the lock's owner dead and repaired the state
  // The undo journal of the locked step in flight: each word a step changes is recorded
  // (where, its old value, and for an in-use bit its mask) before it changes; the step's
  // end empties it. The next locker after a death undoes what it holds (repair_locked).
  struct journal_entry {
    std::uint64_t offset;
    std::uint64_t old;
    std::uint64_t mask;  // 0: the whole word; else the one bit restored
  };
  std::uint64_t journal_count;
  journal_entry journal[journal_capacity];
  // A named object under construction (its constructor runs under the lock): its blocks,
  // freed by a repair when the entry never got linked.
  std::uint64_t pending_entry;
  std::uint64_t pending_entry_bytes;
  std::uint64_t pending_object;
  std::uint64_t pending_object_bytes;
  std::uint64_t pending_alignment;
  // Under the lock.
  std::uint64_t bytes_out;  // out of the free lists and the buddy: callers' and caches'
  std::uint64_t blocks_out;
  std::uint64_t peak_bytes_out;
  std::uint64_t large_blocks;
  std::uint64_t large_bytes;
  std::uint64_t named_count;
  class_state classes[class_count];
  std::uint64_t buckets[bucket_count];  // named-object entries, chained
  alignas(64) cache_slot slots[slot_count];
};

namespace {

using heap_t = shm_resource::heap;

// A named object's entry: this header, then the name's characters.
struct name_entry {
  std::uint64_t next;
  std::uint64_t object;
  std::uint64_t count;
  std::uint64_t size;
  std::uint64_t alignment;
  std::uint64_t tag;
  std::uint64_t name_length;
  char* name() noexcept { return reinterpret_cast<char*>(this + 1); }
};

template <class T>
T* in_segment(std::byte* base, std::uint64_t offset) noexcept {
  return std::launder(reinterpret_cast<T*>(base + offset));
}

std::uint64_t& link_of(std::byte* base, std::uint64_t block) noexcept {
  return *in_segment<std::uint64_t>(base, block);
}

// The in-use bit of a small block (checked segments): atomic, since threads free into their
// caches without the lock.
std::atomic_ref<std::uint64_t> used_word(std::byte* base, const heap_t& h,
                                         std::uint64_t block) noexcept {
  const std::uint64_t cell = (block - h.region_offset) / granule;
  return std::atomic_ref<std::uint64_t>(
      *in_segment<std::uint64_t>(base, h.used_bits_offset + cell / 64 * 8));
}
std::uint64_t used_bit(const heap_t& h, std::uint64_t block) noexcept {
  return std::uint64_t{1} << ((block - h.region_offset) / granule % 64);
}

// The journal (heap::journal). Each locked step records a word before changing it; the
// compiler keeps the three stores in order (a killed process loses no executed store, so
// program order is all that matters): the entry, then the count, then the word.
void journal_word(std::byte* base, heap_t& h, const void* word, std::uint64_t mask = 0) noexcept {
  const std::uint64_t n = h.journal_count;
  if (n == journal_capacity) std::abort();  // a step larger than designed: a pmrkit bug
  const std::uint64_t old =
      std::atomic_ref<std::uint64_t>(*static_cast<std::uint64_t*>(const_cast<void*>(word)))
          .load(std::memory_order_relaxed);
  h.journal[n] = {static_cast<std::uint64_t>(static_cast<const std::byte*>(word) - base),
                  mask == 0 ? old : old & mask, mask};
  std::atomic_signal_fence(std::memory_order_seq_cst);
  h.journal_count = n + 1;
  std::atomic_signal_fence(std::memory_order_seq_cst);
}
void logged(std::byte* base, heap_t& h, std::uint64_t& word, std::uint64_t value) noexcept {
  journal_word(base, h, &word);
  word = value;
}
void logged(std::byte* base, heap_t& h, std::atomic<std::uint64_t>& word,
            std::uint64_t value) noexcept {
  journal_word(base, h, &word);
  word.store(value, std::memory_order_relaxed);
}
// The page map's byte `page`, through the journal (the word holding it is recorded).
void logged_mark(std::byte* base, heap_t& h, std::uint64_t page, std::uint8_t value,
                 std::size_t count = 1) noexcept {
  auto* first = in_segment<std::uint8_t>(base, h.page_map_offset + page);
  const std::uint64_t begin = (h.page_map_offset + page) & ~std::uint64_t{7};
  for (std::uint64_t at = begin; at < h.page_map_offset + page + count; at += 8)
    journal_word(base, h, base + at);
  std::memset(first, value, count);
}
// Sets or clears the in-use bit of `block` through the journal (only that bit is restored:
// other threads change the word's other bits without the lock).
void logged_used(std::byte* base, heap_t& h, std::uint64_t block, bool in_use) noexcept {
  const std::uint64_t cell = (block - h.region_offset) / granule;
  auto* word = in_segment<std::uint64_t>(base, h.used_bits_offset + cell / 64 * 8);
  const std::uint64_t bit = std::uint64_t{1} << (cell % 64);
  journal_word(base, h, word, bit);
  if (in_use) {
    std::atomic_ref<std::uint64_t>(*word).fetch_or(bit);
  } else {
    std::atomic_ref<std::uint64_t>(*word).fetch_and(~bit);
  }
}
// The step is whole: nothing to undo.
void commit(heap_t& h) noexcept {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  h.journal_count = 0;
}
// Puts back every word the journal holds, newest first.
void undo(std::byte* base, heap_t& h) noexcept {
  for (std::uint64_t i = std::min<std::uint64_t>(h.journal_count, journal_capacity); i-- > 0;) {
    const heap_t::journal_entry& e = h.journal[i];
    std::atomic_ref<std::uint64_t> word(*in_segment<std::uint64_t>(base, e.offset));
    if (e.mask == 0) {
      word.store(e.old, std::memory_order_relaxed);
    } else if (e.old != 0) {
      word.fetch_or(e.mask);
    } else {
      word.fetch_and(~e.mask);
    }
  }
  commit(h);
}

// Whether the process that took a cache slot as `owner` (pid << 32 | thread) with `token`
// (its start time) still runs: a pid reused by another process has another start time.
std::uint64_t start_time_of(long pid) noexcept {
#if defined(__linux__)
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  std::FILE* file = std::fopen(path, "r");
  if (file == nullptr) return 0;
  char line[1024];
  const std::size_t n = std::fread(line, 1, sizeof line - 1, file);
  std::fclose(file);
  line[n] = '\0';
  const char* after_name = std::strrchr(line, ')');  // the name may hold spaces
  if (after_name == nullptr) return 0;
  // Fields 3.. follow; the start time is field 22.
  unsigned long long value = 0;
  int field = 2;
  for (const char* c = after_name + 1; *c != '\0'; ++c) {
    if (*c == ' ') {
      if (++field == 22) {
        value = std::strtoull(c + 1, nullptr, 10);
        break;
      }
    }
  }
  return value;
#else
  (void)pid;
  return 0;
#endif
}
std::uint64_t this_process_token() noexcept {
  static const std::uint64_t token = start_time_of(static_cast<long>(::getpid()));
  return token;
}
bool owner_alive(std::uint64_t owner, std::uint64_t token) noexcept {
  const auto pid = static_cast<pid_t>(owner >> 32);
  if (pid == ::getpid()) return true;
  if (::kill(pid, 0) == -1 && errno == ESRCH) return false;
  if (token == 0) return true;
  const std::uint64_t now = start_time_of(static_cast<long>(pid));
  return now == 0 || now == token;
}

// Blocks of class `index` in a run, from a table (no division on the free path).
constexpr auto run_blocks = [] {
  std::array<std::uint32_t, class_count> blocks{};
  for (std::size_t index = 0; index < class_count; ++index)
    blocks[index] = static_cast<std::uint32_t>(run_bytes / size_classes::class_size(index));
  return blocks;
}();
std::size_t blocks_per_run(std::size_t index) noexcept {
  return run_blocks[index];
}

struct geometry {
  std::uint64_t region_offset, region_pages, words_offset, page_map_offset, used_bits_offset;
  std::uint32_t levels;
};

// Where everything lies in an area of `bytes` at `area_offset`; region_pages 0 when too small.
geometry plan(std::uint64_t area_offset, std::uint64_t bytes, bool checked) {
  geometry g{};
  const std::uint64_t end = area_offset + bytes;
  const std::uint64_t max_pages = bytes / page;
  const unsigned levels =
      max_pages <= 1 ? 1 : static_cast<unsigned>(std::bit_width(max_pages - 1)) + 1;
  if (levels > buddy_layout::max_levels) return g;
  const buddy_layout layout(levels, checked);
  std::uint64_t at_offset = align_up(area_offset + sizeof(heap_t), 64);
  g.words_offset = at_offset;
  at_offset += layout.words() * sizeof(std::uint64_t);
  g.page_map_offset = at_offset;
  at_offset = align_up(at_offset + max_pages, 64);
  g.used_bits_offset = at_offset;
  if (checked) at_offset += align_up(max_pages * page / granule / 8, 8);
  g.region_offset = align_up(at_offset, page);
  g.region_pages = g.region_offset < end ? (end - g.region_offset) / page : 0;
  g.levels = levels;
  return g;
}

}  // namespace

namespace detail::shm {

std::size_t min_heap_bytes() noexcept {
  return align_up(sizeof(heap_t), page) + 4 * run_bytes;
}

void format_heap(std::byte* base, std::span<std::byte> area) {
  const auto area_offset = static_cast<std::uint64_t>(area.data() - base);
  const bool checked = PMRKIT_CHECKED != 0;
  const geometry g = plan(area_offset, area.size(), checked);
  auto* h = new (area.data()) heap_t{};
  h->magic = heap_magic;
  h->version = heap_version;
  h->checked = checked ? 1 : 0;
  h->area_offset = area_offset;
  h->area_bytes = area.size();
  h->region_offset = g.region_offset;
  h->region_pages = g.region_pages;
  h->words_offset = g.words_offset;
  h->page_map_offset = g.page_map_offset;
  h->used_bits_offset = g.used_bits_offset;
  h->layout = buddy_layout(g.levels, checked);
  pthread_mutexattr_t attributes;
  pthread_mutexattr_init(&attributes);
  pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_RECURSIVE);
#if PMRKIT_SHM_ROBUST
  pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
#endif
  const int err = pthread_mutex_init(&h->lock, &attributes);
  pthread_mutexattr_destroy(&attributes);
  if (err != 0) {
    throw shm_error(shm_errc::system_error,
                    "pmrkit: shm segment: cannot make its process-shared lock", err);
  }
  // The area below the region is zero already (a new segment); the region's pages all free.
  const buddy_tree tree(h->layout, in_segment<std::uint64_t>(base, h->words_offset));
  tree.free_range(0, h->region_pages);
}

const char* check_heap(const std::byte* base, std::span<const std::byte> area) noexcept {
  if (area.size() < sizeof(heap_t)) return "the allocator area is smaller than its state";
  const auto* h = reinterpret_cast<const heap_t*>(area.data());
  if (h->magic != heap_magic) return "its magic is wrong";
  if (h->version != heap_version) return "its layout version is not this pmrkit's";
  const auto area_offset = static_cast<std::uint64_t>(area.data() - base);
  if (h->area_offset != area_offset || h->area_bytes != area.size()) {
    return "its recorded place disagrees with the segment header";
  }
  if (h->checked > 1) return "its mode word is invalid";
  const geometry g = plan(area_offset, area.size(), h->checked != 0);
  if (g.region_offset != h->region_offset || g.region_pages != h->region_pages ||
      g.words_offset != h->words_offset || g.page_map_offset != h->page_map_offset ||
      g.used_bits_offset != h->used_bits_offset ||
      !(buddy_layout(g.levels, h->checked != 0) == h->layout)) {
    return "its geometry disagrees with the area's size";
  }
  if (h->damaged != 0) return "a process died holding its lock";
  return nullptr;
}

}  // namespace detail::shm

// The lock.

class shm_resource::locked {
 public:
  explicit locked(const shm_resource& r) : r_(r) {
    const int err = pthread_mutex_lock(&r.heap_->lock);
    if (err == EOWNERDEAD) {
      // Its holder died in a locked step: undo the step from the journal, take back what
      // dead processes' caches hold, rebuild what follows from the rest, and carry on.
      try {
        r.repair_locked();
      } catch (...) {
        r.heap_->damaged = 1;
        pthread_mutex_consistent(&r.heap_->lock);
        pthread_mutex_unlock(&r.heap_->lock);
        r.segment_->mark_corrupted();
        throw;
      }
      pthread_mutex_consistent(&r.heap_->lock);
    } else if (err != 0) {
      throw shm_error(shm_errc::system_error,
                      "pmrkit: shm segment '" + r.name_ + "': cannot take its lock", err);
    }
    if (r.heap_->damaged != 0) {
      pthread_mutex_unlock(&r.heap_->lock);
      throw shm_error(shm_errc::corrupted,
                      "pmrkit: shm segment '" + r.name_ +
                          "': corrupted: a repair after a lock owner's death failed");
    }
  }
  locked(const locked&) = delete;
  locked& operator=(const locked&) = delete;
  ~locked() {
    commit(*r_.heap_);
    pthread_mutex_unlock(&r_.heap_->lock);
  }

 private:
  const shm_resource& r_;
};

// This process's threads and their slots.

namespace {

struct binding {
  std::uint64_t instance;
  std::uint64_t generation;
  shm_resource::cache_slot* slot;
};

// The live resources of this process, by instance; the lock also guards every resource's
// slots_. Never destroyed: threads may exit after static destruction began.
struct registry {
  std::mutex lock;
  std::unordered_map<std::uint64_t, shm_resource*> live;
  // By mapping base, for from_base(): the newest resource over each mapping. Its own lock,
  // taken last and holding nothing else: from_base runs under a segment's lock (a container's
  // destructor in destroy<T>), while the registry's lock is taken before a segment's.
  std::mutex base_lock;
  std::unordered_map<const void*, shm_resource*> by_base;
  std::atomic<std::uint64_t> version{1};  // changes whenever a resource comes or goes
  std::atomic<std::uint32_t> threads{0};
};
registry& the_registry() {
  static auto* r = new registry;
  return *r;
}

// The calling thread's bindings; on exit, its slots go back.
struct thread_bindings {
  std::vector<binding> all;
  std::uint32_t number = 0;
  ~thread_bindings();
};

thread_local binding last_binding{};  // trivial: no guard on the fast path
thread_local thread_bindings bindings;

void after_fork_in_child() {
  fork_generation.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

namespace {
thread_bindings::~thread_bindings() {
  registry& reg = the_registry();
  const std::lock_guard guard(reg.lock);
  const std::uint64_t generation = fork_generation.load(std::memory_order_relaxed);
  for (const binding& b : all) {
    if (b.slot == nullptr || b.generation != generation) continue;
    const auto live = reg.live.find(b.instance);
    if (live != reg.live.end()) shm_resource::cache_slot::give_back(*live->second, *b.slot);
  }
  all.clear();
  last_binding = {};
}
}  // namespace

inline shm_resource::cache_slot* shm_resource::my_slot() {
  if (last_binding.instance == instance_ &&
      last_binding.generation == fork_generation.load(std::memory_order_relaxed)) [[likely]] {
    return last_binding.slot;
  }
  return bind_slot();
}

shm_resource::cache_slot* shm_resource::bind_slot() {
  const std::uint64_t generation = fork_generation.load(std::memory_order_relaxed);
  for (const binding& b : bindings.all) {
    if (b.instance == instance_ && b.generation == generation) {
      last_binding = b;
      return b.slot;
    }
  }
  cache_slot* slot = nullptr;
  if (cache_limit_ != 0) {
    registry& reg = the_registry();
    if (bindings.number == 0) bindings.number = reg.threads.fetch_add(1) + 1;
    const std::uint64_t owner = static_cast<std::uint64_t>(::getpid()) << 32 | bindings.number;
    for (int attempt = 0; attempt < 2 && slot == nullptr; ++attempt) {
      if (attempt == 1) (void)reclaim_dead_caches();  // none free: maybe some owner is gone
      for (cache_slot& s : heap_->slots) {
        std::uint64_t expected = 0;
        if (s.owner.load(std::memory_order_relaxed) == 0 &&
            s.owner.compare_exchange_strong(expected, owner, std::memory_order_acquire)) {
          s.token.store(this_process_token(), std::memory_order_relaxed);
          slot = &s;
          break;
        }
      }
    }
    if (slot != nullptr) {
      const std::lock_guard guard(slots_lock_);
      slots_.emplace_back(slot, generation);
    }
  }
  bindings.all.erase(std::remove_if(bindings.all.begin(), bindings.all.end(),
                                    [&](const binding& b) { return b.generation != generation; }),
                     bindings.all.end());
  last_binding = {instance_, generation, slot};
  bindings.all.push_back(last_binding);
  return slot;
}

void shm_resource::return_slot(cache_slot& slot) noexcept {
  try {
    const locked guard(*this);
    empty_slot_locked(slot, false);
  } catch (const shm_error&) {  // a damaged segment keeps the blocks where they are
  }
  slot.owner.store(0, std::memory_order_release);
}

void shm_resource::flush_thread_cache() noexcept {
  const std::uint64_t generation = fork_generation.load(std::memory_order_relaxed);
  registry& reg = the_registry();
  cache_slot* slot = nullptr;
  for (auto b = bindings.all.begin(); b != bindings.all.end(); ++b) {
    if (b->instance == instance_) {
      if (b->generation == generation) slot = b->slot;
      bindings.all.erase(b);
      break;
    }
  }
  if (last_binding.instance == instance_) last_binding = {};
  if (slot == nullptr) return;
  const std::lock_guard guard(reg.lock);
  cache_slot::give_back(*this, *slot);
}

// Construction.

shm_resource::shm_resource(shm_resource_options options)
    : owned_(shm_segment::anonymous(options.segment_size)), segment_(&*owned_) {
  attach(options);
}

shm_resource::shm_resource(shm_segment& segment, shm_resource_options options)
    : segment_(&segment) {
  attach(options);
}

shm_resource& shm_resource::at_fixed_address(shm_segment& segment, shm_resource_options options) {
  if (segment.fixed_resource_ != nullptr) return *segment.fixed_resource_;
  void* page = segment.resource_page();
  if (page == nullptr) {
    throw std::invalid_argument(
        "pmrkit::shm_resource: at_fixed_address: the segment is not mapped with fixed_address");
  }
  static_assert(sizeof(shm_resource) <= 4096, "the resource fits the smallest page");
  auto* r = ::new (page) shm_resource(segment, options);
  segment.fixed_resource_ = r;
  return *r;
}

void shm_resource::attach(shm_resource_options options) {
  require_option(options.cache_limit <= max_cache_limit, "shm_resource", "cache_limit",
                 "must be at most 1024");
  require_option(segment_->base() != nullptr, "shm_resource", "segment",
                 "must be a mapped segment (not one moved from)");
  base_ = segment_->base();
  const std::span<std::byte> area = segment_->allocator_area();
  if (const char* problem = detail::shm::check_heap(base_, area)) {
    throw shm_error(shm_errc::corrupted, "pmrkit: shm segment '" + std::string(segment_->name()) +
                                             "': corrupted: " + problem);
  }
  heap_ = std::launder(reinterpret_cast<heap*>(area.data()));
  name_ = segment_->name().empty() ? "(anonymous)" : std::string(segment_->name());
  cache_limit_ = options.cache_limit;
  checked_ = heap_->checked != 0;
  instance_ = next_instance.fetch_add(1, std::memory_order_relaxed);
  static std::once_flag fork_handler;
  std::call_once(fork_handler, [] { pthread_atfork(nullptr, nullptr, after_fork_in_child); });
  registry& reg = the_registry();
  const std::lock_guard guard(reg.lock);
  reg.live.emplace(instance_, this);
  const std::lock_guard base_guard(reg.base_lock);
  reg.by_base[base_] = this;
  reg.version.fetch_add(1, std::memory_order_relaxed);
}

shm_resource::~shm_resource() {
  registry& reg = the_registry();
  const std::lock_guard guard(reg.lock);
  reg.live.erase(instance_);
  {
    const std::lock_guard base_guard(reg.base_lock);
    reg.version.fetch_add(1, std::memory_order_relaxed);
    if (const auto at = reg.by_base.find(base_); at != reg.by_base.end() && at->second == this) {
      reg.by_base.erase(at);
      for (const auto& [instance, other] : reg.live) {  // another over the mapping takes over
        if (other->base_ == base_) reg.by_base[base_] = other;
      }
    }
  }
  const std::uint64_t generation = fork_generation.load(std::memory_order_relaxed);
  std::vector<std::pair<cache_slot*, std::uint64_t>> slots;
  {
    const std::lock_guard slots_guard(slots_lock_);
    slots.swap(slots_);
  }
  for (const auto& [slot, claimed] : slots) {
    if (claimed == generation) return_slot(*slot);
  }
  if (last_binding.instance == instance_) last_binding = {};
}

namespace {
struct base_lookup {
  const void* base;
  std::uint64_t version;
  shm_resource* resource;
};
thread_local base_lookup last_lookup{};
}  // namespace

shm_resource* shm_resource::from_base(const void* base) noexcept {
  registry& reg = the_registry();
  const std::uint64_t version = reg.version.load(std::memory_order_acquire);
  if (last_lookup.base == base && last_lookup.version == version) [[likely]] {
    return last_lookup.resource;
  }
  const std::lock_guard guard(reg.base_lock);
  const auto at = reg.by_base.find(base);
  shm_resource* found = at == reg.by_base.end() ? nullptr : at->second;
  if (found != nullptr) last_lookup = {base, reg.version.load(std::memory_order_relaxed), found};
  return found;
}

bool shm_resource::do_is_equal(const std::pmr::memory_resource& other) const noexcept {
  const auto* shm = dynamic_cast<const shm_resource*>(&other);
  return shm != nullptr && shm->heap_ == heap_;
}

// Allocation.

// The most blocks of class `index` a thread's cache keeps: cache_limit, and no more than a
// run's worth of bytes, so large classes do not hoard runs.
std::size_t shm_resource::cache_limit_of(std::size_t index) const noexcept {
  return std::min(cache_limit_, std::max<std::size_t>(2, blocks_per_run(index)));
}

std::size_t shm_resource::block_size(std::size_t bytes, std::size_t alignment) const noexcept {
  if (!is_power_of_two(alignment) || alignment > page) return 0;
  const std::size_t index = size_classes::index_of(bytes, alignment, class_count);
  if (index < class_count) return size_classes::class_size(index);
  if (bytes > (std::size_t{1} << 46)) return 0;
  const std::size_t pages = (bytes + page - 1) / page;
  const auto level = static_cast<unsigned>(std::bit_width(pages - 1));
  return level <= heap_->layout.top_level() ? page << level : 0;
}

void* shm_resource::do_allocate(std::size_t bytes, std::size_t alignment) {
  if (!is_power_of_two(alignment) || alignment > page) [[unlikely]] {
    throw_allocation_error(failure_reason::bad_alignment, bytes, alignment, name_);
  }
  const std::size_t index = size_classes::index_of(bytes, alignment, class_count);
  if (index >= class_count) return allocate_large(bytes, alignment);
  cache_slot* slot = my_slot();
  if (slot == nullptr) [[unlikely]] {
    const locked guard(*this);
    return base_ + allocate_small_locked(index, true);
  }
  cache_slot::bin& bin = slot->bins[index];
  const std::uint64_t block = bin.head.load(std::memory_order_relaxed);
  if (block == 0) [[unlikely]] {
    return refill(*slot, index);
  }
  // In use before it leaves the cache: a process killed in between leaves a cached block
  // marked in use, which reclaiming its cache clears (never a block out but unmarked).
  if (checked_) used_word(base_, *heap_, block).fetch_or(used_bit(*heap_, block));
  bin.head.store(link_of(base_, block), std::memory_order_relaxed);
  bin.count.store(bin.count.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  return base_ + block;
}

// Takes one block of class `index` from its free list or its newest run, a new run when
// neither has one; the lock is held and the step journaled. `for_caller`: the block leaves
// for a caller (its in-use bit is set), else for a cache.
std::uint64_t shm_resource::allocate_small_locked(std::size_t index, bool for_caller) {
  heap& h = *heap_;
  heap::class_state& c = h.classes[index];
  const std::size_t size = size_classes::class_size(index);
  std::uint64_t block = c.free_head;
  if (block != 0) {
    logged(base_, h, c.free_head, link_of(base_, block));
    logged(base_, h, c.free_count, c.free_count - 1);
  } else {
    if (c.carve == c.carve_end) {
      const buddy_tree tree(h.layout, in_segment<std::uint64_t>(base_, h.words_offset));
      if (!tree.can_take(run_level)) {
        throw_allocation_error(failure_reason::out_of_capacity, size,
                               size_classes::class_alignment(index), name_);
      }
      // The buddy's words are not journaled: a repair rebuilds them from the page map.
      const std::size_t run = tree.take(run_level);
      if (checked_) tree.set_used(run_level, run);
      const std::uint64_t first_page = run << run_level;
      logged_mark(base_, h, first_page, static_cast<std::uint8_t>(index + 1),
                  std::size_t{1} << run_level);
      const std::uint64_t start = h.region_offset + first_page * page;
      logged(base_, h, c.carve_end, start + blocks_per_run(index) * size);
      logged(base_, h, c.carve, start);
      logged(base_, h, c.runs, c.runs + 1);
    }
    block = c.carve;
    logged(base_, h, c.carve, block + size);
  }
  h.bytes_out += size;  // the counters are rebuilt by a repair, not journaled
  ++h.blocks_out;
  h.peak_bytes_out = std::max(h.peak_bytes_out, h.bytes_out);
  if (checked_ && for_caller) logged_used(base_, h, block, true);
  return block;
}

void* shm_resource::refill(cache_slot& slot, std::size_t index) {
  const locked guard(*this);
  const std::uint64_t first = allocate_small_locked(index, true);  // throws when none is left
  commit(*heap_);
  cache_slot::bin& bin = slot.bins[index];
  const std::size_t want = (cache_limit_of(index) + 1) / 2;
  try {
    for (std::size_t i = 1; i < want; ++i) {  // one journaled step per block
      const std::uint64_t block = allocate_small_locked(index, false);
      logged(base_, *heap_, link_of(base_, block), bin.head.load(std::memory_order_relaxed));
      logged(base_, *heap_, bin.head, block);
      logged(base_, *heap_, bin.count, bin.count.load(std::memory_order_relaxed) + 1);
      commit(*heap_);
    }
  } catch (const allocation_error&) {  // the segment is nearly full: one block is enough
  }
  return base_ + first;
}

void* shm_resource::allocate_large(std::size_t bytes, std::size_t alignment) {
  check_request(bytes, alignment, name_);
  const std::size_t size = block_size(bytes, alignment);
  if (size == 0) throw_allocation_error(failure_reason::out_of_capacity, bytes, alignment, name_);
  const locked guard(*this);
  return base_ + allocate_large_locked(bytes, alignment, size);
}

std::uint64_t shm_resource::allocate_large_locked(std::size_t bytes, std::size_t alignment,
                                                  std::size_t size) {
  heap& h = *heap_;
  const auto level = static_cast<unsigned>(std::countr_zero(size) - page_shift);
  const buddy_tree tree(h.layout, in_segment<std::uint64_t>(base_, h.words_offset));
  if (!tree.can_take(level)) {
    throw_allocation_error(failure_reason::out_of_capacity, bytes, alignment, name_);
  }
  const std::size_t index = tree.take(level);
  if (checked_) tree.set_used(level, index);
  const std::uint64_t first_page = static_cast<std::uint64_t>(index) << level;
  logged_mark(base_, h, first_page, static_cast<std::uint8_t>(large_mark | level));
  h.bytes_out += size;
  ++h.blocks_out;
  h.peak_bytes_out = std::max(h.peak_bytes_out, h.bytes_out);
  ++h.large_blocks;
  h.large_bytes += size;
  return h.region_offset + first_page * page;
}

// Any block, with the lock held (named objects take theirs here, so a repair can undo them).
std::uint64_t shm_resource::allocate_locked(std::size_t bytes, std::size_t alignment) {
  const std::size_t index = size_classes::index_of(bytes, alignment, class_count);
  if (index < class_count) return allocate_small_locked(index, true);
  check_request(bytes, alignment, name_);
  const std::size_t size = block_size(bytes, alignment);
  if (size == 0) throw_allocation_error(failure_reason::out_of_capacity, bytes, alignment, name_);
  return allocate_large_locked(bytes, alignment, size);
}

void shm_resource::deallocate_locked(std::uint64_t block, std::size_t bytes,
                                     std::size_t alignment) noexcept {
  const std::size_t index = size_classes::index_of(bytes, alignment, class_count);
  if (index < class_count) {
    if (checked_) logged_used(base_, *heap_, block, false);
    deallocate_small_locked(block, index);
  } else {
    free_large_locked(block - heap_->region_offset, block_size(bytes, alignment));
  }
}

// Deallocation.

void shm_resource::do_deallocate(void* p, std::size_t bytes, std::size_t alignment) {
  const std::size_t index = is_power_of_two(alignment) && alignment <= page
                                ? size_classes::index_of(bytes, alignment, class_count)
                                : class_count;
  if (index >= class_count) {
    deallocate_large(p, bytes, alignment);
    return;
  }
  if (checked_ && !check_small_free(p, bytes, alignment, index)) return;
  const auto block = static_cast<std::uint64_t>(static_cast<std::byte*>(p) - base_);
  cache_slot* slot = my_slot();
  if (slot == nullptr) [[unlikely]] {
    const locked guard(*this);
    if (checked_) logged_used(base_, *heap_, block, false);
    deallocate_small_locked(block, index);
    return;
  }
  cache_slot::bin& bin = slot->bins[index];
  std::uint64_t count = bin.count.load(std::memory_order_relaxed);
  if (count >= cache_limit_of(index)) [[unlikely]] {
    spill(*slot, index);
    count = bin.count.load(std::memory_order_relaxed);
  }
  link_of(base_, block) = bin.head.load(std::memory_order_relaxed);
  bin.head.store(block, std::memory_order_relaxed);
  bin.count.store(count + 1, std::memory_order_relaxed);
  // Free once it is in the cache (a process killed before leaves it in use: its own).
  if (checked_ && (used_word(base_, *heap_, block).fetch_and(~used_bit(*heap_, block)) &
                   used_bit(*heap_, block)) == 0) [[unlikely]] {
    report_violation({violation_kind::double_free, name_, p, bytes, alignment});  // a race
  }
}

void shm_resource::deallocate_small_locked(std::uint64_t block, std::size_t index) noexcept {
  heap& h = *heap_;
  heap::class_state& c = h.classes[index];
  link_of(base_, block) = c.free_head;  // the block is in no list: nothing to undo there
  logged(base_, h, c.free_head, block);
  logged(base_, h, c.free_count, c.free_count + 1);
  h.bytes_out -= size_classes::class_size(index);
  --h.blocks_out;
}

// Puts a cache's list of `count` blocks of class `index`, from `head`, in front of the
// class's free list; the lock is held.
void shm_resource::give_list_locked(std::size_t index, std::uint64_t head,
                                    std::uint64_t count) noexcept {
  heap& h = *heap_;
  heap::class_state& c = h.classes[index];
  std::uint64_t tail = head;
  while (link_of(base_, tail) != 0)
    tail = link_of(base_, tail);
  logged(base_, h, link_of(base_, tail), c.free_head);
  logged(base_, h, c.free_head, head);
  logged(base_, h, c.free_count, c.free_count + count);
  h.bytes_out -= count * size_classes::class_size(index);
  h.blocks_out -= count;
}

// Gives every bin of `slot` back to the class lists, one journaled step per bin; with
// `clear_marks` (a dead process's cache) the blocks' in-use bits are cleared too, and each
// list is walked defensively: it stops at the first link that is no free block of the class
// (a push the process did not finish).
std::size_t shm_resource::empty_slot_locked(cache_slot& slot, bool clear_marks) noexcept {
  heap& h = *heap_;
  std::size_t blocks = 0;
  for (std::size_t index = 0; index < class_count; ++index) {
    cache_slot::bin& bin = slot.bins[index];
    const std::uint64_t head = bin.head.load(std::memory_order_relaxed);
    std::uint64_t count = bin.count.load(std::memory_order_relaxed);
    if (head == 0) {
      if (count != 0) {  // a pop the dead process did not finish: its count is stale
        logged(base_, h, bin.count, 0);
        commit(h);
      }
      continue;
    }
    if (clear_marks) {
      const std::size_t size = size_classes::class_size(index);
      const std::uint8_t* map = in_segment<std::uint8_t>(base_, h.page_map_offset);
      const auto valid = [&](std::uint64_t block) {
        if (block < h.region_offset || block >= h.region_offset + h.region_pages * page) {
          return false;
        }
        const std::uint64_t offset = block - h.region_offset;
        const heap::class_state& c = h.classes[index];
        return map[offset / page] == index + 1 && offset % run_bytes % size == 0 &&
               offset % run_bytes / size < blocks_per_run(index) &&
               !(block >= c.carve && block < c.carve_end);
      };
      if (!valid(head)) {
        logged(base_, h, bin.head, 0);
        logged(base_, h, bin.count, 0);
        commit(h);
        continue;
      }
      std::uint64_t walked = 1;
      std::uint64_t last = head;
      const std::uint64_t limit = std::min<std::uint64_t>(count + 1, max_cache_limit + 1);
      while (link_of(base_, last) != 0 && walked < limit && valid(link_of(base_, last))) {
        last = link_of(base_, last);
        ++walked;
      }
      if (link_of(base_, last) != 0) logged(base_, h, link_of(base_, last), 0);
      count = walked;
      if (checked_) {  // free blocks: clearing is idempotent, so it is not journaled
        for (std::uint64_t b = head; b != 0; b = link_of(base_, b))
          used_word(base_, h, b).fetch_and(~used_bit(h, b));
      }
    }
    give_list_locked(index, head, count);
    logged(base_, h, bin.head, 0);
    logged(base_, h, bin.count, 0);
    commit(h);
    blocks += count;
  }
  return blocks;
}

std::size_t shm_resource::reclaim_dead_caches() {
  const locked guard(*this);
  return reclaim_dead_locked();
}

std::size_t shm_resource::reclaim_dead_locked() noexcept {
  std::size_t blocks = 0;
  for (cache_slot& slot : heap_->slots) {
    const std::uint64_t owner = slot.owner.load(std::memory_order_acquire);
    if (owner == 0 || owner_alive(owner, slot.token.load(std::memory_order_relaxed))) continue;
    blocks += empty_slot_locked(slot, true);
    slot.owner.store(0, std::memory_order_release);
  }
  return blocks;
}

// Moves the older half of a full bin to the class's list, in one journaled step.
void shm_resource::spill(cache_slot& slot, std::size_t index) noexcept {
  cache_slot::bin& bin = slot.bins[index];
  const std::uint64_t count = bin.count.load(std::memory_order_relaxed);
  const std::uint64_t keep = count / 2;
  std::uint64_t last_kept = 0;
  std::uint64_t block = bin.head.load(std::memory_order_relaxed);
  for (std::uint64_t i = 0; i < keep; ++i) {
    last_kept = block;
    block = link_of(base_, block);
  }
  try {
    const locked guard(*this);
    heap& h = *heap_;
    if (last_kept == 0) {
      logged(base_, h, bin.head, 0);
    } else {
      logged(base_, h, link_of(base_, last_kept), 0);
    }
    logged(base_, h, bin.count, keep);
    give_list_locked(index, block, count - keep);
  } catch (const shm_error&) {  // a damaged segment: the bin stays full and takes the block
  }
}

bool shm_resource::check_small_free(void* p, std::size_t bytes, std::size_t alignment,
                                    std::size_t index) const noexcept {
  const auto* b = static_cast<std::byte*>(p);
  const std::byte* region = base_ + heap_->region_offset;
  if (b < region || b >= region + heap_->region_pages * page) {
    report_violation({violation_kind::foreign_pointer, name_, p, bytes, alignment});
    return false;
  }
  const auto offset = static_cast<std::uint64_t>(b - region);
  const std::uint8_t mark =
      *in_segment<std::uint8_t>(base_, heap_->page_map_offset + offset / page);
  if (mark == 0 || (mark & large_mark) != 0) {
    if ((mark & large_mark) != 0 && offset % page == 0) {
      const std::size_t size = page << (mark & ~large_mark);
      report_violation({violation_kind::size_mismatch, name_, p, bytes, alignment, size, size});
    } else {
      report_violation({violation_kind::foreign_pointer, name_, p, bytes, alignment});
    }
    return false;
  }
  const std::size_t actual = mark - 1u;
  const std::size_t size = size_classes::class_size(actual);
  const std::uint64_t in_run = offset % run_bytes;
  if (in_run % size != 0 || in_run / size >= blocks_per_run(actual)) {
    report_violation({violation_kind::foreign_pointer, name_, p, bytes, alignment});
    return false;
  }
  const auto block = static_cast<std::uint64_t>(b - base_);
  if ((used_word(base_, *heap_, block).load() & used_bit(*heap_, block)) == 0) {
    report_violation({violation_kind::double_free, name_, p, bytes, alignment});
    return false;
  }
  if (actual != index) {
    report_violation({violation_kind::size_mismatch, name_, p, bytes, alignment, size,
                      size_classes::class_alignment(actual)});
    return false;
  }
  return true;
}

void shm_resource::deallocate_large(void* p, std::size_t bytes, std::size_t alignment) noexcept {
  const std::size_t size = block_size(bytes, alignment);
  const auto* b = static_cast<std::byte*>(p);
  const std::byte* region = base_ + heap_->region_offset;
  const bool inside = b >= region && b < region + heap_->region_pages * page;
  if ((!inside || size == 0) && !checked_) return;  // no block of this segment: nothing to do
  const auto offset = inside ? static_cast<std::uint64_t>(b - region) : 0;
  std::uint8_t* mark =
      inside ? in_segment<std::uint8_t>(base_, heap_->page_map_offset + offset / page) : nullptr;
  const auto level = size == 0 ? 0U : static_cast<unsigned>(std::countr_zero(size) - page_shift);
  if (checked_) {
    if (!inside || offset % page != 0 || size == 0 || (*mark != 0 && (*mark & large_mark) == 0)) {
      report_violation({violation_kind::foreign_pointer, name_, p, bytes, alignment});
      return;
    }
    if (*mark == 0) {
      report_violation({violation_kind::double_free, name_, p, bytes, alignment});
      return;
    }
    if (*mark != (large_mark | level)) {
      const std::size_t actual = page << (*mark & ~large_mark);
      report_violation({violation_kind::size_mismatch, name_, p, bytes, alignment, actual, actual});
      return;
    }
  }
  try {
    const locked guard(*this);
    free_large_locked(offset, size);
  } catch (const shm_error&) {  // a damaged segment: the block stays taken
  }
}

// Gives back the large block `size` bytes at `offset` in the region; the lock is held.
void shm_resource::free_large_locked(std::uint64_t offset, std::size_t size) noexcept {
  heap& h = *heap_;
  const auto level = static_cast<unsigned>(std::countr_zero(size) - page_shift);
  logged_mark(base_, h, offset / page, 0);
  const buddy_tree tree(h.layout, in_segment<std::uint64_t>(base_, h.words_offset));
  const std::size_t index = offset / page >> level;
  if (checked_) tree.clear_used(level, index);
  tree.give(level, index);
  h.bytes_out -= size;
  --h.blocks_out;
  --h.large_blocks;
  h.large_bytes -= size;
}

full_ptr<void> shm_resource::reallocate_full(full_ptr<void> p, std::size_t old_bytes,
                                             std::size_t new_bytes, std::size_t alignment) {
  if (!p) return allocate_full(new_bytes, alignment);
  if (block_size(old_bytes, alignment) != 0 &&
      block_size(old_bytes, alignment) == block_size(new_bytes, alignment)) {
    return p;
  }
  void* fresh = allocate(new_bytes, alignment);
  std::memcpy(fresh, p.get(), std::min(old_bytes, new_bytes));
  deallocate(p.get(), old_bytes, alignment);
  return full_ptr<void>(base_, fresh);
}

// Named objects.

namespace {

name_entry* find_entry(std::byte* base, const heap_t& h, std::string_view name,
                       std::uint64_t** link = nullptr) noexcept {
  auto* slot = const_cast<std::uint64_t*>(&h.buckets[detail::fnv1a(name) % bucket_count]);
  while (*slot != 0) {
    name_entry* e = in_segment<name_entry>(base, *slot);
    if (std::string_view(e->name(), e->name_length) == name) {
      if (link != nullptr) *link = slot;
      return e;
    }
    slot = &e->next;
  }
  return nullptr;
}

shm_object_info info_of(const name_entry& e) {
  auto& entry = const_cast<name_entry&>(e);
  return {.name = std::string(entry.name(), entry.name_length),
          .offset = shm_offset{e.object},
          .count = e.count,
          .size = e.size,
          .alignment = e.alignment,
          .type_tag = e.tag};
}

void check_name(std::string_view name) {
  if (name.empty() || name.size() > max_name) {
    throw std::invalid_argument(
        "pmrkit::shm_resource: name: a named object's name must have 1 to " +
        std::to_string(max_name) + " characters");
  }
}

}  // namespace

shm_resource::entry_view shm_resource::emplace_named(std::string_view name, std::size_t bytes,
                                                     std::size_t count, std::size_t size,
                                                     std::size_t alignment, std::uint64_t tag,
                                                     bool or_find, void (*build)(void*, void*),
                                                     void* context) {
  check_name(name);
  const locked guard(*this);
  if (name_entry* e = find_entry(base_, *heap_, name)) {
    if (!or_find) {
      throw shm_error(shm_errc::object_exists, "pmrkit: shm segment '" + name_ +
                                                   "': object exists: '" + std::string(name) + "'");
    }
    check_type(info_of(*e), size, alignment, tag);
    return {base_ + e->object, static_cast<std::size_t>(e->count), false};
  }
  // Both blocks in one journaled step, recorded as pending before the constructor runs: a
  // process dying in the constructor leaves them to the next locker's repair, which frees
  // them since the entry never got linked.
  heap& h = *heap_;
  const std::size_t entry_bytes = sizeof(name_entry) + name.size();
  const std::size_t object_bytes = bytes == 0 ? 1 : bytes;
  const std::uint64_t entry_block = allocate_locked(entry_bytes, alignof(name_entry));
  std::uint64_t object_block = 0;
  try {
    object_block = allocate_locked(object_bytes, alignment);
  } catch (...) {
    deallocate_locked(entry_block, entry_bytes, alignof(name_entry));
    throw;
  }
  h.pending_entry = entry_block;
  h.pending_entry_bytes = entry_bytes;
  h.pending_object = object_block;
  h.pending_object_bytes = object_bytes;
  h.pending_alignment = alignment;
  commit(h);
  const auto forget_pending = [&h] {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    h.pending_entry = 0;
  };
  void* object = base_ + object_block;
  try {
    build(context, object);
  } catch (...) {
    deallocate_locked(object_block, object_bytes, alignment);
    deallocate_locked(entry_block, entry_bytes, alignof(name_entry));
    forget_pending();
    throw;
  }
  auto* e = new (base_ + entry_block) name_entry{.next = 0,
                                                 .object = object_block,
                                                 .count = count,
                                                 .size = size,
                                                 .alignment = alignment,
                                                 .tag = tag,
                                                 .name_length = name.size()};
  std::memcpy(e->name(), name.data(), name.size());
  std::uint64_t& bucket = h.buckets[detail::fnv1a(name) % bucket_count];
  e->next = bucket;
  logged(base_, h, bucket, entry_block);
  ++h.named_count;
  commit(h);
  forget_pending();
  return {object, count, true};
}

bool shm_resource::erase_named(std::string_view name, std::size_t size, std::size_t alignment,
                               std::uint64_t tag, void (*destroy)(void*, std::size_t)) {
  check_name(name);
  const locked guard(*this);
  std::uint64_t* link = nullptr;
  name_entry* e = find_entry(base_, *heap_, name, &link);
  if (e == nullptr) return false;
  check_type(info_of(*e), size, alignment, tag);
  destroy(base_ + e->object, e->count);
  heap& h = *heap_;
  logged(base_, h, *link, e->next);
  --h.named_count;
  const std::size_t bytes = e->count * e->size;
  const std::uint64_t entry_block = offset_of(e).value;
  deallocate_locked(e->object, bytes == 0 ? 1 : bytes, e->alignment);
  deallocate_locked(entry_block, sizeof(name_entry) + e->name_length, alignof(name_entry));
  return true;
}

// Repair.

// After a lock owner died: undo its step, free a named object's blocks it left pending,
// take back dead processes' caches, rebuild the buddy and the counters from the page map,
// the runs and the lists, and check the result. Throws shm_error (corrupted) if it is not
// whole; the caller then marks the segment corrupted.
void shm_resource::repair_locked() const {
  auto& self = const_cast<shm_resource&>(*this);
  heap& h = *heap_;
  undo(base_, h);
  if (h.pending_entry != 0) {
    bool linked = false;
    for (const std::uint64_t head : h.buckets) {
      for (std::uint64_t e = head; e != 0 && !linked; e = in_segment<name_entry>(base_, e)->next)
        linked = e == h.pending_entry;
    }
    if (!linked) {
      self.deallocate_locked(h.pending_object, h.pending_object_bytes, h.pending_alignment);
      self.deallocate_locked(h.pending_entry, h.pending_entry_bytes, alignof(name_entry));
      commit(h);
    }
    h.pending_entry = 0;
  }
  (void)self.reclaim_dead_locked();
  rebuild_locked();
  ++h.repairs;
  if (std::string problem = verify_locked(); !problem.empty()) {
    throw shm_error(shm_errc::corrupted, "pmrkit: shm segment '" + name_ +
                                             "': corrupted: the repair after a lock owner's "
                                             "death left: " +
                                             problem);
  }
}

// Rebuilds what follows from the page map, the runs and the lists: the buddy's words (free
// pages are those no run or large block covers), the runs per class, and the counters.
void shm_resource::rebuild_locked() const {
  heap& h = *heap_;
  const std::uint8_t* map = in_segment<std::uint8_t>(base_, h.page_map_offset);
  auto* words = in_segment<std::uint64_t>(base_, h.words_offset);
  std::fill_n(words, h.layout.words(), std::uint64_t{0});
  const buddy_tree tree(h.layout, words);
  std::array<std::uint64_t, class_count> runs{};
  std::uint64_t large_blocks = 0;
  std::uint64_t large_bytes = 0;
  std::uint64_t free_from = 0;
  for (std::uint64_t p = 0; p < h.region_pages;) {
    const std::uint8_t mark = map[p];
    if (mark == 0) {
      ++p;
      continue;
    }
    tree.free_range(free_from, p);
    unsigned level = run_level;
    if ((mark & large_mark) != 0) {
      level = mark & ~large_mark;
      ++large_blocks;
      large_bytes += page << level;
    } else {
      ++runs[mark - 1u];
    }
    if (h.checked != 0) tree.set_used(level, p >> level);
    p += std::uint64_t{1} << level;
    free_from = p;
  }
  tree.free_range(free_from, h.region_pages);
  std::uint64_t bytes_out = large_bytes;
  std::uint64_t blocks_out = large_blocks;
  for (std::size_t index = 0; index < class_count; ++index) {
    heap::class_state& c = h.classes[index];
    c.runs = runs[index];
    const std::size_t size = size_classes::class_size(index);
    const std::uint64_t carved = c.runs * blocks_per_run(index) - (c.carve_end - c.carve) / size;
    blocks_out += carved - c.free_count;
    bytes_out += (carved - c.free_count) * size;
  }
  h.bytes_out = bytes_out;
  h.blocks_out = blocks_out;
  h.peak_bytes_out = std::max(h.peak_bytes_out, bytes_out);
  h.large_blocks = large_blocks;
  h.large_bytes = large_bytes;
  std::uint64_t named = 0;
  for (const std::uint64_t head : h.buckets) {
    for (std::uint64_t e = head; e != 0; e = in_segment<name_entry>(base_, e)->next)
      ++named;
  }
  h.named_count = named;
}

std::optional<shm_object_info> shm_resource::lookup(std::string_view name) const {
  check_name(name);
  const locked guard(*this);
  if (const name_entry* e = find_entry(base_, *heap_, name)) return info_of(*e);
  return std::nullopt;
}

void shm_resource::check_type(const shm_object_info& found, std::size_t size, std::size_t alignment,
                              std::uint64_t tag) const {
  if (found.size == size && found.alignment == alignment && found.type_tag == tag) return;
  throw shm_error(shm_errc::type_mismatch,
                  "pmrkit: shm segment '" + name_ + "': type mismatch: '" + found.name +
                      "' holds elements of " + std::to_string(found.size) + " bytes, alignment " +
                      std::to_string(found.alignment) + ", tag " + std::to_string(found.type_tag) +
                      "; asked for " + std::to_string(size) + " bytes, alignment " +
                      std::to_string(alignment) + ", tag " + std::to_string(tag));
}

std::vector<shm_object_info> shm_resource::named_objects() const {
  std::vector<shm_object_info> result;
  const locked guard(*this);
  for (const std::uint64_t head : heap_->buckets) {
    for (std::uint64_t e = head; e != 0; e = in_segment<name_entry>(base_, e)->next)
      result.push_back(info_of(*in_segment<name_entry>(base_, e)));
  }
  return result;
}

// Observers.

shm_stats shm_resource::stats() const noexcept {
  shm_stats s{};
  try {
    const locked guard(*this);
    std::size_t cached_bytes = 0;
    std::size_t cached_blocks = 0;
    for (const cache_slot& slot : heap_->slots) {
      if (slot.owner.load(std::memory_order_relaxed) == 0) continue;
      ++s.cache_slots_in_use;
      for (std::size_t index = 0; index < class_count; ++index) {
        const std::uint64_t count = slot.bins[index].count.load(std::memory_order_relaxed);
        cached_blocks += count;
        cached_bytes += count * size_classes::class_size(index);
      }
    }
    const buddy_tree tree(heap_->layout, in_segment<std::uint64_t>(base_, heap_->words_offset));
    std::size_t buddy_free = 0;
    for (unsigned level = 0; level < heap_->layout.levels(); ++level)
      buddy_free += tree.free_count(level) * (page << level);
    std::size_t runs = 0;
    std::size_t class_free = 0;
    for (std::size_t index = 0; index < class_count; ++index) {
      const heap::class_state& c = heap_->classes[index];
      runs += c.runs;
      class_free += c.free_count * size_classes::class_size(index) + (c.carve_end - c.carve);
    }
    s.bytes_in_use = heap_->bytes_out - cached_bytes;
    s.blocks_in_use = heap_->blocks_out - cached_blocks;
    s.peak_bytes_in_use = heap_->peak_bytes_out;
    s.capacity = heap_->region_pages * page;
    s.bytes_free = buddy_free + class_free;
    s.bytes_cached = cached_bytes;
    const std::uint32_t mask = tree.level_mask();
    s.largest_free_block = mask == 0 ? 0 : page << (std::bit_width(mask) - 1);
    s.small_run_bytes = runs * run_bytes;
    s.large_blocks_in_use = heap_->large_blocks;
    s.large_bytes_in_use = heap_->large_bytes;
    s.named_objects = heap_->named_count;
    s.repairs = heap_->repairs;
  } catch (const shm_error&) {  // a damaged segment: no figures
  }
  return s;
}

std::string shm_resource::verify() const {
  const locked guard(*this);
  return verify_locked();
}

std::string shm_resource::verify_locked() const {
  const heap& h = *heap_;
  const buddy_tree tree(h.layout, in_segment<std::uint64_t>(base_, h.words_offset));
  if (std::string problem = tree.verify(0, h.region_pages); !problem.empty()) {
    return "buddy: " + problem;
  }
  const std::uint8_t* map = in_segment<std::uint8_t>(base_, h.page_map_offset);
  std::vector<std::size_t> runs(class_count, 0);
  std::size_t large_blocks = 0;
  std::size_t large_bytes = 0;
  std::size_t run_count = 0;
  for (std::size_t p = 0; p < h.region_pages;) {
    const std::uint8_t mark = map[p];
    const std::string where = "page " + std::to_string(p);
    if (mark == 0) {
      ++p;
      continue;
    }
    if ((mark & large_mark) != 0) {
      const unsigned level = mark & ~large_mark;
      if (level > h.layout.top_level() || p % (std::size_t{1} << level) != 0) {
        return where + ": a large block of a bad level or misaligned";
      }
      if (h.checked != 0 && !tree.is_used(level, p >> level)) {
        return where + ": a large block the buddy does not have in use";
      }
      ++large_blocks;
      large_bytes += page << level;
      p += std::size_t{1} << level;
      continue;
    }
    if (mark > class_count || p % (std::size_t{1} << run_level) != 0) {
      return where + ": a run of a bad class or misaligned";
    }
    for (std::size_t q = p; q < p + (std::size_t{1} << run_level); ++q) {
      if (map[q] != mark) return where + ": a run whose pages disagree";
    }
    if (h.checked != 0 && !tree.is_used(run_level, p >> run_level)) {
      return where + ": a run the buddy does not have in use";
    }
    ++runs[mark - 1u];
    ++run_count;
    p += std::size_t{1} << run_level;
  }
  if (large_blocks != h.large_blocks || large_bytes != h.large_bytes) {
    return "the large blocks' count disagrees with the page map";
  }
  // Every free or cached small block: in a run of its class, at a block's start, once.
  std::vector<bool> seen(h.region_pages * page / granule, false);
  std::size_t free_small_bytes = 0;
  std::size_t cached_blocks = 0;
  std::size_t cached_bytes = 0;
  const auto walk = [&](std::uint64_t head, std::uint64_t count, std::size_t index,
                        const std::string& list) -> std::string {
    const std::size_t size = size_classes::class_size(index);
    std::uint64_t n = 0;
    for (std::uint64_t block = head; block != 0; block = link_of(base_, block)) {
      if (++n > count) return list + ": longer than its count";
      if (block < h.region_offset || block >= h.region_offset + h.region_pages * page) {
        return list + ": a block outside the region";
      }
      const std::uint64_t offset = block - h.region_offset;
      if (map[offset / page] != index + 1 || offset % run_bytes % size != 0 ||
          offset % run_bytes / size >= blocks_per_run(index)) {
        return list + ": a block not at a block's start in a run of its class";
      }
      const heap::class_state& c = h.classes[index];
      if (c.carve != c.carve_end && block >= c.carve && block < c.carve_end) {
        return list + ": a block never carved";
      }
      if (seen[offset / granule]) return list + ": a block listed twice";
      seen[offset / granule] = true;
      if (h.checked != 0 && (used_word(base_, h, block).load() & used_bit(h, block)) != 0) {
        return list + ": a free block marked in use";
      }
    }
    if (n != count) return list + ": shorter than its count";
    return {};
  };
  for (std::size_t index = 0; index < class_count; ++index) {
    const heap::class_state& c = h.classes[index];
    if (c.runs != runs[index]) return "class " + std::to_string(index) + ": runs disagree";
    if (std::string problem = walk(c.free_head, c.free_count, index,
                                   "class " + std::to_string(index) + "'s free list");
        !problem.empty()) {
      return problem;
    }
    free_small_bytes += c.free_count * size_classes::class_size(index);
  }
  // Other threads' caches change without the lock while their threads live: they are
  // counted by the totals (bytes out include them) but walked only when idle or ours.
  const cache_slot* mine = nullptr;
  const std::uint64_t generation = fork_generation.load(std::memory_order_relaxed);
  for (const binding& b : bindings.all) {
    if (b.instance == instance_ && b.generation == generation) mine = b.slot;
  }
  bool others_active = false;
  for (std::size_t s = 0; s < slot_count; ++s) {
    const cache_slot& slot = h.slots[s];
    if (slot.owner.load(std::memory_order_acquire) != 0 && &slot != mine) {
      others_active = true;
      continue;
    }
    for (std::size_t index = 0; index < class_count; ++index) {
      const std::uint64_t head = slot.bins[index].head.load(std::memory_order_relaxed);
      const std::uint64_t count = slot.bins[index].count.load(std::memory_order_relaxed);
      if (slot.owner.load(std::memory_order_relaxed) == 0 && head != 0) {
        return "cache slot " + std::to_string(s) + ": free but holding blocks";
      }
      if (std::string problem =
              walk(head, count, index,
                   "cache slot " + std::to_string(s) + ", class " + std::to_string(index));
          !problem.empty()) {
        return problem;
      }
      cached_blocks += count;
      cached_bytes += count * size_classes::class_size(index);
    }
  }
  // The totals: what is out (callers and caches) is what the runs carved less what is free,
  // plus the large blocks; and every page of the region is free in the buddy, in a run or
  // in a large block.
  std::size_t carved_bytes = 0;
  std::size_t carved_blocks = 0;
  std::size_t free_blocks = 0;
  for (std::size_t index = 0; index < class_count; ++index) {
    const heap::class_state& c = h.classes[index];
    const std::size_t size = size_classes::class_size(index);
    const std::size_t blocks = c.runs * blocks_per_run(index) - (c.carve_end - c.carve) / size;
    carved_blocks += blocks;
    carved_bytes += blocks * size;
    free_blocks += c.free_count;
  }
  if (h.bytes_out != carved_bytes - free_small_bytes + large_bytes ||
      h.blocks_out != carved_blocks - free_blocks + large_blocks) {
    return "the bytes out (" + std::to_string(h.bytes_out) +
           ") disagree with the runs, lists and large blocks (" +
           std::to_string(carved_bytes - free_small_bytes + large_bytes) + ")";
  }
  std::size_t buddy_free = 0;
  for (unsigned level = 0; level < h.layout.levels(); ++level)
    buddy_free += tree.free_count(level) * (page << level);
  if (buddy_free + run_count * run_bytes + large_bytes != h.region_pages * page) {
    return "free, run and large bytes do not add up to the region";
  }
  if (h.checked != 0 && !others_active) {  // blocks in callers' hands: the in-use bits set
    std::size_t marked = 0;
    for (std::size_t p = 0; p < h.region_pages; p += std::size_t{1} << run_level) {
      if (map[p] == 0 || (map[p] & large_mark) != 0) continue;
      const std::size_t index = map[p] - 1u;
      const std::size_t size = size_classes::class_size(index);
      for (std::size_t i = 0; i < blocks_per_run(index); ++i) {
        const std::uint64_t block = h.region_offset + p * page + i * size;
        if ((used_word(base_, h, block).load() & used_bit(h, block)) != 0) ++marked;
      }
    }
    if (marked != carved_blocks - free_blocks - cached_blocks) {
      return "the in-use bits (" + std::to_string(marked) + ") disagree with the blocks in use (" +
             std::to_string(carved_blocks - free_blocks - cached_blocks) + ")";
    }
  }
  (void)cached_bytes;
  return {};
}

}  // namespace pmrkit
