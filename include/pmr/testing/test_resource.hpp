// test_resource: a strict memory resource for tests, in the spirit of BDE's
// bslma::TestAllocator, that records every block it hands out.
//
// Hand it to the object under test as its upstream (or to a container
// directly). On `deallocate` it detects a pointer it never returned, a double
// free, a size or an alignment that differs from the allocation (BDE does not
// check the size; this does), and writes before or after the block, through
// guard bytes placed around each one. New blocks are filled with
// `allocated_fill`, freed blocks are scribbled with `freed_fill` before they
// go back upstream. It counts blocks and bytes in use, their peak and
// total, and allocations and deallocations, and it reports the blocks still
// in use (leaks) when it is destroyed; `leaks()` lists them at any time.
//
// Misuse and leaks are reported the way every pmrkit resource reports misuse:
// through the violation handler (`pmrkit::report_violation`,
// <pmr/core/violation.hpp>), whose default prints one line to stderr and
// aborts, so a misuse stops the test at the faulty call. A test that provokes
// misuse on purpose installs a `violation_recorder`
// (<pmr/testing/violation_recorder.hpp>) and inspects it. Each violation is
// also recorded in the resource's own `errors()`, whatever the handler. When
// the handler returns, the faulty call is otherwise ignored, or, when the
// block is known (size or alignment mismatch, guard overwritten), the block
// is freed with the figures it was allocated with, so one bug does not
// cascade into others. Blocks still in use at destruction are one `leak`
// violation (their bytes and the oldest block); `leaks()` lists them at any
// time. The handler is called outside the resource's lock.
//
// Fault injection: after `set_allocation_limit(n)` the next n allocations
// succeed and the one after throws `allocation_error` (reason
// `injected_failure`); the limit is then spent (-1). `exception_test` in
// <pmr/testing/exception_test.hpp> uses it to fail every allocation in turn.
//
// Choose it to test code that takes a memory resource; choose a real strategy
// for anything else (it keeps a record per block and checks guards, so it is
// slow on purpose).
//
// Constructed as `test_resource t;`, `t(upstream)`, `t(options)`,
// `t(options, upstream)`, `t({})`, `t({}, upstream)`, or with a name first:
// `t("name")`, `t("name", upstream)`.
//
// Thread safety: every member function is safe to call concurrently (a mutex
// guards the records), so it can be the upstream of concurrent resources.
//
// Example:
//   pmrkit::test_resource upstream({.name = "upstream"});
//   {
//     std::pmr::vector<int> v({1, 2, 3}, &upstream);
//   }
//   assert(upstream.blocks_in_use() == 0 && upstream.errors().empty());
//   pmrkit::violation_recorder recorder;  // misuse on purpose: record, do not abort
//   void* p = upstream.allocate(16);
//   upstream.deallocate(p, 32);  // the wrong size: reported, then freed as allocated
//   assert(recorder.count(pmrkit::violation_kind::size_mismatch) == 1);
//   assert(upstream.errors().size() == 1 && upstream.blocks_in_use() == 0);
#pragma once

#include <pmr/core/violation.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace pmrkit {

struct test_options {
  std::size_t guard_bytes =
      16;            ///< guard bytes before and after each block (at most 4096; 0: none)
  bool fill = true;  ///< fill new and freed blocks with patterns
  std::string_view name = "test_resource";  ///< shown in every report (copied)
};

struct test_stats {
  std::size_t blocks_in_use = 0;       ///< blocks handed out and not yet freed
  std::size_t bytes_in_use = 0;        ///< their bytes, as requested
  std::size_t peak_blocks_in_use = 0;  ///< the most blocks_in_use has been
  std::size_t peak_bytes_in_use = 0;   ///< the most bytes_in_use has been
  std::size_t total_blocks = 0;        ///< blocks ever handed out
  std::size_t total_bytes = 0;         ///< bytes ever handed out
  std::size_t allocations = 0;         ///< allocate calls that returned a block
  std::size_t deallocations = 0;       ///< deallocate calls, faulty ones included
  std::size_t failed_allocations = 0;  ///< allocate calls that threw
  std::size_t injected_failures = 0;   ///< of those, the ones the allocation limit caused
};

/// A block still in use.
struct block_info {
  const void* pointer = nullptr;
  std::size_t size = 0;
  std::size_t alignment = 0;
  std::uint64_t sequence = 0;  ///< 0 for the first block this resource handed out
};

class test_resource final : public std::pmr::memory_resource {
 public:
  static constexpr unsigned char allocated_fill = 0xCD;
  static constexpr unsigned char freed_fill = 0xDD;
  static constexpr unsigned char guard_fill = 0xFD;

  /// Throws std::invalid_argument ("guard_bytes") when guard_bytes > 4096,
  /// or when `upstream` is null.
  explicit test_resource(test_options options = {},
                         std::pmr::memory_resource* upstream = std::pmr::get_default_resource());
  /// The default options over `upstream` (a template, so that `{}` never
  /// reads as a null upstream).
  template <std::convertible_to<std::pmr::memory_resource*> Upstream>
  explicit test_resource(Upstream upstream) : test_resource(test_options{}, upstream) {}
  /// The default options but the name (a template, so that `{}` means the
  /// options).
  template <class Name>
  requires(
      std::convertible_to<const Name&, std::string_view> &&
      !std::convertible_to<
          const Name&,
          std::pmr::memory_resource*>) explicit test_resource(const Name& name,
                                                              std::pmr::memory_resource* upstream =
                                                                  std::pmr::get_default_resource())
      : test_resource(test_options{.name = std::string_view(name)}, upstream) {}
  /// Not copyable. Declared on a non-const reference so that `{}` does not
  /// convert to it and `test_resource t({})` means the default options.
  test_resource(test_resource&) = delete;
  test_resource& operator=(const test_resource&) = delete;

  /// Reports the blocks still in use as one `leak` violation (recorded, and
  /// passed to the violation handler: the default one aborts), then returns
  /// every outstanding block upstream.
  ~test_resource() override;

  // Fault injection.

  /// The next `limit` allocations succeed, the one after throws; -1 disables.
  void set_allocation_limit(long long limit) noexcept;
  /// Allocations left before the injected failure, or -1 when disabled.
  [[nodiscard]] long long allocation_limit() const noexcept;

  // Observers.

  [[nodiscard]] test_stats stats() const noexcept;
  [[nodiscard]] std::size_t blocks_in_use() const noexcept;
  [[nodiscard]] std::size_t bytes_in_use() const noexcept;
  [[nodiscard]] bool has_leaks() const noexcept { return blocks_in_use() != 0; }
  /// The blocks still in use, oldest first.
  [[nodiscard]] std::vector<block_info> leaks() const;
  /// True when `pointer` is a block this resource handed out and not yet freed.
  [[nodiscard]] bool owns(const void* pointer) const;

  /// The violations this resource detected so far, oldest first (each also
  /// went to the violation handler). Each `resource_name` refers to this
  /// resource's name.
  [[nodiscard]] std::vector<violation> errors() const;
  [[nodiscard]] std::size_t error_count() const;
  void clear_errors();

  /// Checks the guard bytes of every block in use; reports each block whose
  /// guards were overwritten and returns true when none was.
  bool check_guards();

  /// Records `v` as this resource's (its name replaces v's) and passes it to
  /// the violation handler (used by exception_test).
  void report(const violation& v);

  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept { return upstream_; }

 private:
  struct block_record {
    std::byte* base;  // what the upstream returned
    std::size_t size;
    std::size_t alignment;
    std::size_t front;  // bytes from base to the user pointer
    std::size_t total;  // bytes taken from the upstream
    std::size_t upstream_alignment;
    std::uint64_t sequence;
  };

  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* pointer, std::size_t bytes, std::size_t alignment) override;
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  // Violations found under the lock, reported once it is released.
  using found_violations = std::vector<violation>;

  void record_locked(const violation& v, found_violations& found);
  bool check_guards_locked(const void* pointer, const block_record& record,
                           found_violations& found);
  void free_block_locked(const void* pointer, const block_record& record);
  void report_unlocked(const found_violations& found) const;

  std::string name_;
  std::size_t guard_bytes_;
  bool fill_;
  std::pmr::memory_resource* upstream_;

  mutable std::mutex mutex_;
  long long allocation_limit_ = -1;
  test_stats stats_;
  std::unordered_map<const void*, block_record> blocks_;
  std::unordered_set<const void*> freed_;  // recently freed pointers, to tell a double free
  std::vector<violation> errors_;
};

}  // namespace pmrkit
