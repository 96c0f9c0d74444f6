// guarded_resource: every block against a protected page, so an overrun or an underrun faults at
// its first byte (after BDE's bdlma::GuardingAllocator).
//
// Each allocate reserves address space of its own from the OS page layer (mmap; VirtualAlloc on
// Windows): the block's data pages plus one guard page, which stays reserved and so
// inaccessible. With `guard_position::after` (the default) the block ENDS exactly where the
// guard page begins, so writing or reading one byte past the end faults; with
// `guard_position::before` it STARTS exactly where the guard page ends, so one byte before the
// start faults.
//
// What alignment costs. With `after` the start is the end less the size, aligned down to the
// requested alignment A, so a block whose size A does not divide ends up to
// min(A, page size) - 1 bytes before the guard page (an alignment above the page size costs no
// more than the page: the reservation is placed so that the block's end lands within a page of
// the guard). Those bytes, and the bytes before the start in the block's first page, are filled
// with a pattern when the block is handed out and checked when it is freed: a write there is
// reported as a `buffer_overrun` (after the end) or `buffer_underrun` (before the start)
// violation, so the padding is no blind spot, only a later one. With `before` the bytes after
// the end in the last page are filled and checked the same way. A request of 0 bytes gets a
// pointer at the start of an inaccessible page: any access faults.
//
// Use after free. A freed block's pages are decommitted (inaccessible, their memory back to
// the OS) and the address space stays reserved in a quarantine of the last
// `quarantine_blocks` freed blocks, so a use after free faults, and a second free of a block
// still in quarantine is told apart as a double free. The oldest leaves the quarantine (its
// address space released) when a newer one arrives. Note that the OS limits the mappings of a
// process (Linux: vm.max_map_count, 65530 by default); every live or quarantined block takes one
// or two.
//
// Bookkeeping. The user's pages hold nothing but the block: the table of blocks (address,
// reservation, size, alignment, state) lives in memory taken from the upstream (default
// std::pmr::get_default_resource()), which serves nothing else; `bytes_from_upstream` counts
// it. A wild write into the table is thus no more likely than into any other heap memory, and
// no overrun of a block can reach it without faulting first.
//
// Sizes are std::size_t throughout (no int truncation: a block of 5 GiB is 5 GiB). Errors: an
// alignment that is not a power of two is `allocation_error` bad_alignment; a size or alignment
// whose pages overflow std::size_t, size_overflow; the OS's refusal, out_of_capacity (with the
// errno text); the upstream's failure (for the table) as docs/contract.md §3 says. Misuse on
// deallocation (a foreign pointer, a double free, a size or alignment other than the
// allocation's, bytes of the padding overwritten) is reported to the violation handler in EVERY
// build, like test_resource (checking is its job): the misused call is then ignored, while a
// block whose padding was overwritten is reported and freed. `release()` gives every block's
// address space back, quarantine included, and the table's memory to the upstream; the
// destructor calls it.
//
// Costs: at least two pages of address space and one page of memory per block, and a few
// system calls per allocate and deallocate. Choose it in tests and debugging runs to find the
// overrun, underrun or use after free that a heap would absorb silently; put it in place of a
// pool or arena's upstream only to check the pool itself. Run with `after` and again with
// `before` to catch both directions at the fault.
//
// Thread safety: safe to share between threads (a mutex guards the table and the figures).
//
// Example:
//   pmrkit::guarded_resource guarded;  // guard page after each block
//   auto* p = static_cast<char*>(guarded.allocate(100, 4));
//   p[99] = 'x';  // the last byte; p[100] is the guard page's first byte and would fault
//   assert(reinterpret_cast<std::uintptr_t>(p + 100) % guarded.page_size() == 0);
//   const pmrkit::guarded_stats s = guarded.stats();
//   assert(s.bytes_in_use == 100 && s.blocks_in_use == 1 && s.guard_pages == 1);
//   assert(s.bytes_mapped == 2 * guarded.page_size());
//   guarded.deallocate(p, 100, 4);  // p's page is now inaccessible, in quarantine
//   assert(guarded.stats().quarantined_blocks == 1);
//   pmrkit::guarded_resource under({.position = pmrkit::guard_position::before});
//   auto* q = static_cast<char*>(under.allocate(10));
//   assert(reinterpret_cast<std::uintptr_t>(q) % under.page_size() == 0);  // q[-1] would fault
//   under.deallocate(q, 10);
#pragma once

#include <cstddef>
#include <memory_resource>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace pmrkit {

/// Where guarded_resource puts the guard page of a block.
enum class guard_position : unsigned char {
  after,  ///< the block ends at the guard page: overruns fault
  before  ///< the block starts right after the guard page: underruns fault
};

/// The lower-case name of `position`: "after", "before".
[[nodiscard]] std::string_view to_string(guard_position position) noexcept;

struct guarded_options {
  /// Freed blocks kept reserved and inaccessible, so a use after free faults (0: their
  /// address space is released at once). At most 65536.
  std::size_t quarantine_blocks = 64;
  guard_position position = guard_position::after;
  std::string_view name = "guarded";  ///< shown in errors and violations (copied)
};

struct guarded_stats {
  std::size_t bytes_in_use = 0;        ///< bytes requested and not yet freed
  std::size_t peak_bytes_in_use = 0;   ///< the most bytes_in_use has been
  std::size_t blocks_in_use = 0;       ///< blocks handed out and not yet freed
  std::size_t peak_blocks_in_use = 0;  ///< the most blocks_in_use has been
  std::size_t allocations = 0;         ///< allocate calls that returned a block
  std::size_t deallocations = 0;       ///< deallocate calls
  /// Address space reserved for the blocks in use: data pages, guard page and, for alignments
  /// above the page with `before`, the pages that align the start.
  std::size_t bytes_mapped = 0;
  std::size_t peak_bytes_mapped = 0;         ///< the most bytes_mapped has been
  std::size_t guard_pages = 0;               ///< guard pages of the blocks in use (one each)
  std::size_t quarantined_blocks = 0;        ///< freed blocks still reserved, inaccessible
  std::size_t quarantined_bytes = 0;         ///< the address space they hold
  std::size_t bytes_from_upstream = 0;       ///< the block table's memory, from the upstream
  std::size_t peak_bytes_from_upstream = 0;  ///< the most bytes_from_upstream has been
};

class guarded_resource final : public std::pmr::memory_resource {
 public:
  /// Throws std::invalid_argument when `options.position` is no guard_position,
  /// `options.quarantine_blocks` is above 65536 or `upstream` is null.
  explicit guarded_resource(guarded_options options = {},
                            std::pmr::memory_resource* upstream = std::pmr::get_default_resource());
  /// The default options over `upstream` (a template, so that `{}` never reads as a null
  /// upstream).
  template <class Upstream>
  requires std::is_convertible_v<Upstream, std::pmr::memory_resource*>
  explicit guarded_resource(Upstream upstream) : guarded_resource(guarded_options{}, upstream) {}
  /// Not copyable. Declared on a non-const reference so that `guarded_resource r({})` means the
  /// default options.
  guarded_resource(guarded_resource&) = delete;
  guarded_resource& operator=(const guarded_resource&) = delete;
  /// Gives everything back (release()).
  ~guarded_resource() override;

  /// Releases the address space of every block, in use or in quarantine, and gives the table's
  /// memory back to the upstream; the resource stays usable.
  void release() noexcept;

  [[nodiscard]] guarded_stats stats() const noexcept;
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept {
    return counted_.upstream;
  }
  [[nodiscard]] guard_position position() const noexcept { return position_; }
  /// The size of the guard page and the unit of every block's pages.
  [[nodiscard]] std::size_t page_size() const noexcept { return page_; }
  /// The options it was built with (`name` refers to the resource's copy).
  [[nodiscard]] guarded_options options() const noexcept {
    return {.quarantine_blocks = quarantine_limit_, .position = position_, .name = name_};
  }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  /// Forwards to the upstream and counts what it holds (the table's memory).
  struct counting_upstream final : std::pmr::memory_resource {
    explicit counting_upstream(std::pmr::memory_resource* r) noexcept : upstream(r) {}
    std::pmr::memory_resource* upstream;
    std::size_t in_use = 0;  // guarded by the resource's mutex, as every use of the table
    std::size_t peak = 0;

   private:
    void* do_allocate(std::size_t bytes, std::size_t alignment) override;
    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
    [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
      return this == &other;
    }
  };

  /// One block, in use or in quarantine.
  struct block {
    std::byte* base = nullptr;  ///< the reservation
    std::size_t extent = 0;     ///< its size (data pages, guard page, alignment lead)
    std::byte* data = nullptr;  ///< the committed pages
    std::size_t committed = 0;  ///< their size
    std::size_t requested = 0;  ///< the caller's size
    std::size_t alignment = 0;  ///< the caller's alignment
    bool quarantined = false;   ///< freed, its pages inaccessible
  };
  using table = std::pmr::unordered_map<const void*, block>;

  std::string name_;
  guard_position position_;
  std::size_t quarantine_limit_;
  std::size_t page_;
  mutable std::mutex mutex_;
  counting_upstream counted_;                 // guarded by mutex_
  table blocks_;                              // guarded by mutex_
  std::pmr::vector<const void*> quarantine_;  // guarded by mutex_: a ring, oldest at next_
  std::size_t next_quarantined_ = 0;          // guarded by mutex_
  guarded_stats stats_;                       // guarded by mutex_ (upstream figures aside)
};

}  // namespace pmrkit
