// test_resource: a strict memory resource for tests, in the spirit of BDE's
// bslma::TestAllocator, that records every block it hands out.
//
// Hand it to the object under test as its upstream (or to a container
// directly). On `deallocate` it detects a pointer it never returned, a double
// free, a size or an alignment that differs from the allocation (BDE does not
// check the size; this does), and writes before or after the block, through
// guard bytes placed around each one. New blocks are filled with
// `allocated_fill`, freed blocks are scribbled with `freed_fill` before they
// go back upstream. It counts blocks and bytes in use, their maximum and
// total, and allocations and deallocations, and it reports the blocks still
// in use (leaks) when it is destroyed; `leaks()` lists them at any time.
//
// Errors go, according to the mode, to stderr followed by `std::abort()`
// (`error_mode::abort`, the default: a misuse stops the test at the faulty
// call) or into a list that tests inspect (`error_mode::record`). In record
// mode the faulty call is otherwise ignored, or, when the block is known
// (size or alignment mismatch, guard overwritten), the block is freed with the
// figures it was allocated with, so one bug does not cascade into others.
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
// Thread safety: every member function is safe to call concurrently (a mutex
// guards the records), so it can be the upstream of concurrent resources.
//
// Example:
//   pmrkit::test_resource upstream({.name = "upstream", .mode = pmrkit::error_mode::record});
//   {
//     std::pmr::vector<int> v({1, 2, 3}, &upstream);
//   }
//   assert(upstream.blocks_in_use() == 0 && upstream.errors().empty());
#pragma once

#include <pmr/core/violation.hpp>

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

/// What a test_resource does when it detects misuse or a leak.
enum class error_mode : unsigned char {
  abort,   ///< print one line per error to stderr, then std::abort()
  record,  ///< append to errors(); the faulty call is otherwise ignored
};

struct test_resource_options {
  std::string_view name = "test_resource";  ///< shown in every report (copied)
  error_mode mode = error_mode::abort;
  std::size_t guard_bytes = 16;  ///< guard bytes before and after each block; 0 disables
  bool fill = true;              ///< fill new and freed blocks with patterns
  bool quiet = false;            ///< record mode: do not print leaks at destruction
};

struct test_resource_stats {
  std::size_t blocks_in_use = 0;
  std::size_t bytes_in_use = 0;
  std::size_t max_blocks_in_use = 0;
  std::size_t max_bytes_in_use = 0;
  std::size_t total_blocks = 0;        ///< blocks ever handed out
  std::size_t total_bytes = 0;         ///< bytes ever handed out
  std::size_t allocations = 0;         ///< allocate calls, failed ones included
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

  /// Throws std::invalid_argument ("guard_bytes") when guard_bytes > 4096.
  explicit test_resource(test_resource_options options = {},
                         std::pmr::memory_resource* upstream = std::pmr::get_default_resource());
  explicit test_resource(std::string_view name,
                         std::pmr::memory_resource* upstream = std::pmr::get_default_resource());
  test_resource(const test_resource&) = delete;
  test_resource& operator=(const test_resource&) = delete;

  /// Reports leaks (abort mode: prints them and aborts; record mode: prints
  /// them unless quiet), then returns every outstanding block upstream.
  ~test_resource() override;

  // Fault injection.

  /// The next `limit` allocations succeed, the one after throws; -1 disables.
  void set_allocation_limit(long long limit) noexcept;
  /// Allocations left before the injected failure, or -1 when disabled.
  [[nodiscard]] long long allocation_limit() const noexcept;

  // Observers.

  [[nodiscard]] test_resource_stats stats() const;
  [[nodiscard]] std::size_t blocks_in_use() const;
  [[nodiscard]] std::size_t bytes_in_use() const;
  [[nodiscard]] bool has_leaks() const { return blocks_in_use() != 0; }
  /// The blocks still in use, oldest first.
  [[nodiscard]] std::vector<block_info> leaks() const;
  /// True when `pointer` is a block this resource handed out and not yet freed.
  [[nodiscard]] bool owns(const void* pointer) const;

  /// Errors recorded so far (record mode), oldest first. Each `resource_name`
  /// refers to this resource's name.
  [[nodiscard]] std::vector<violation> errors() const;
  [[nodiscard]] std::size_t error_count() const;
  void clear_errors();

  /// Checks the guard bytes of every block in use; reports each block whose
  /// guards were overwritten and returns true when none was.
  bool check_guards();

  /// Reports `v` through this resource's error mode (used by exception_test).
  void report(const violation& v);

  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] error_mode mode() const noexcept { return mode_; }
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

  void report_locked(const violation& v);
  bool check_guards_locked(const void* pointer, const block_record& record);
  void free_block_locked(const void* pointer, const block_record& record);
  void print_leaks_locked() const;

  std::string name_;
  error_mode mode_;
  std::size_t guard_bytes_;
  bool fill_;
  bool quiet_;
  std::pmr::memory_resource* upstream_;

  mutable std::mutex mutex_;
  long long allocation_limit_ = -1;
  test_resource_stats stats_;
  std::unordered_map<const void*, block_record> blocks_;
  std::unordered_set<const void*> freed_;  // recently freed pointers, to tell a double free
  std::vector<violation> errors_;
};

}  // namespace pmrkit
