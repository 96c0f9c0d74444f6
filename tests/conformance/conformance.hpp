// The conformance suite: one typed GoogleTest suite that checks, from the
// outside, the contract every pmrkit resource keeps (docs/contract.md), and
// that the standard resources are held to as far as it applies to them.
//
// How a resource joins. Include this header in exactly ONE .cpp of the
// family's test executable (it defines the suite's tests; a second inclusion
// in the same executable would register them twice), write a traits struct
// per resource and instantiate the suite with them:
//
//   #include "conformance/conformance.hpp"
//
//   struct chunked_arena_traits {
//     using resource_type = pmrkit::chunked_arena_resource;
//     static constexpr std::string_view name = "pmrkit::chunked_arena_resource";
//     static constexpr pmrkit::conformance::capabilities caps{.reuses_memory = false};
//     static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
//       return std::make_unique<resource_type>(pmrkit::chunked_arena_options{}, upstream);
//     }
//     static void release(resource_type& r) { r.release(); }  // only if it has release()
//   };
//   using arena_types = ::testing::Types<chunked_arena_traits /*, ... */>;
//   INSTANTIATE_TYPED_TEST_SUITE_P(arenas, resource_conformance, arena_types,
//                                  pmrkit::conformance::traits_names);
//
// The last argument is optional; it names the tests after `name`
// ("arenas/resource_conformance/pmrkit_chunked_arena_resource.ContentsArePreserved...")
// instead of after an index.
//
// `make` may return any owning pointer to the resource instead of a
// unique_ptr: an adaptor that needs an object of its own between it and the
// upstream returns a std::shared_ptr aliasing a struct that holds both.
//
// The traits. `caps` says which checks apply; pmrkit resources keep the
// defaults (every check). A check that does not apply is skipped with
// "not applicable to <name>: <why>". A resource whose frees must be newest
// first (a stack) sets `lifo_only`: every check and workload then frees in
// reverse allocation order, and the container checks, whose containers free
// a buffer after taking its replacement, do not apply. `release(r)` is
// detected with a requires expression: define it only when the resource has
// release(). Optionally, `recorded_errors(r)` returns the misuse the
// resource recorded rather than reported to the violation handler
// (pmrkit::test_resource in record mode); it must be empty when a test ends.
//
// The fixture builds the resource with `make(&upstream)` over a test_resource
// in record mode, so every block the resource takes is checked on return. When
// a test ends the resource is destroyed, and the upstream must have recorded
// no error and have no block left in use; no violation may have been reported.
//
// The checks are plain functions over a `std::pmr::memory_resource&` that
// return a testing::AssertionResult, so they can be pointed at a broken
// resource to show that they fail (tests/conformance/std_resources_test.cpp).
#pragma once

#include <pmr/core/align.hpp>
#include <pmr/core/error.hpp>
#include <pmr/core/violation.hpp>
#include <pmr/testing/exception_test.hpp>
#include <pmr/testing/test_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include <gtest/gtest.h>
#include <boost/container/deque.hpp>
#include <boost/container/devector.hpp>
#include <boost/container/flat_map.hpp>
#include <boost/container/small_vector.hpp>
#include <boost/container/stable_vector.hpp>
#include <boost/container/vector.hpp>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <forward_list>
#include <functional>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <memory_resource>
#include <new>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pmrkit::conformance {

/// What applies to a resource. Designated initialisers must follow this order.
struct capabilities {
  /// Deallocated memory serves later requests (false for monotonic strategies).
  bool reuses_memory = true;
  /// A non-power-of-two alignment throws allocation_error with bad_alignment.
  bool checks_alignment = true;
  /// A request no machine can serve throws allocation_error.
  bool huge_request_throws_allocation_error = true;
  /// The destructor returns every byte upstream, blocks still allocated
  /// included (false for a decorator that forwards every block and owns none).
  bool releases_on_destruction = true;
  /// When the upstream throws, the error reaches the caller, nothing leaks and
  /// the resource stays usable.
  bool survives_upstream_failures = true;
  /// The largest alignment the checks request (a power of two).
  std::size_t max_alignment = 4096;
  /// The largest size the checks request: lower it for resources that serve
  /// bounded sizes only.
  std::size_t max_size = std::numeric_limits<std::size_t>::max();
  /// Frees must be newest first (a stack): the checks free blocks in reverse
  /// allocation order, and the container checks do not apply.
  bool lifo_only = false;
  /// Serves the std and Boost containers of the container checks (false for a
  /// resource that refuses requests above a small max_size).
  bool serves_containers = true;
  /// Equal only to itself (rule 8 of docs/contract.md). False for a class that documents
  /// otherwise (an adaptor equal to another over an equal upstream): the
  /// equality check then asks only that it equals itself, symmetrically, and
  /// neither the upstream nor new_delete_resource().
  bool equality_is_identity = true;
};

/// Why the container checks do not apply to a lifo_only resource.
inline constexpr std::string_view containers_free_out_of_order =
    "containers free out of LIFO order (a growing vector frees its old buffer after taking the "
    "new one)";

/// Why the container checks do not apply to a resource with serves_containers false.
inline constexpr std::string_view containers_need_any_size =
    "containers ask for sizes the resource refuses (a growing vector)";

/// The message of the std::invalid_argument `make()` throws, or "(nothing thrown)": for the
/// tests of bad options, which compare it with the exact text.
inline std::string invalid_argument_of(const auto& make) {
  try {
    make();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(nothing thrown)";
}

/// "not applicable to <name>: <why>", the message of every skipped check.
inline std::string not_applicable(std::string_view name, std::string_view why) {
  std::string text = "not applicable to ";
  text.append(name).append(": ").append(why);
  return text;
}

/// The bottom of every upstream chain the suite builds: new and delete, except
/// that a request over 4 GiB throws std::bad_alloc without reaching operator
/// new. Nothing in the suite asks for that much except the huge requests that
/// must fail, and AddressSanitizer's operator new aborts on those instead of
/// throwing, which would end the run.
class bounded_new_delete_resource final : public std::pmr::memory_resource {
 public:
  static constexpr std::size_t max_request = std::size_t{1} << 32;

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (bytes > max_request || alignment > max_request) throw std::bad_alloc();
    return std::pmr::new_delete_resource()->allocate(bytes, alignment);
  }
  void do_deallocate(void* pointer, std::size_t bytes, std::size_t alignment) override {
    std::pmr::new_delete_resource()->deallocate(pointer, bytes, alignment);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }
};

// --- Blocks with a pattern --------------------------------------------------------------------

/// A block obtained from the resource under test; `seed` picks its pattern.
struct block {
  std::byte* pointer = nullptr;
  std::size_t size = 0;
  std::size_t alignment = 0;
  std::uint64_t seed = 0;
};

inline std::uintptr_t address_of(const void* pointer) noexcept {
  return reinterpret_cast<std::uintptr_t>(pointer);
}

/// Byte `offset` of the pattern `seed`: neighbouring bytes and blocks differ,
/// so a block written over by another, or shifted, is told from an intact one.
inline std::byte pattern_byte(std::uint64_t seed, std::size_t offset) noexcept {
  return static_cast<std::byte>(((seed << 32) + offset) * 0x9E3779B97F4A7C15ULL >> 56);
}

inline std::string describe_block(const block& b) {
  char text[128];
  std::snprintf(text, sizeof text, "block #%llu at %p (%zu bytes, alignment %zu)",
                static_cast<unsigned long long>(b.seed), static_cast<const void*>(b.pointer),
                b.size, b.alignment);
  return text;
}

inline void fill_pattern(const block& b) noexcept {
  for (std::size_t i = 0; i < b.size; ++i)
    b.pointer[i] = pattern_byte(b.seed, i);
}

inline ::testing::AssertionResult pattern_intact(const block& b) {
  for (std::size_t i = 0; i < b.size; ++i) {
    if (b.pointer[i] != pattern_byte(b.seed, i)) {
      return ::testing::AssertionFailure()
             << describe_block(b) << " was overwritten: byte " << i << " is "
             << static_cast<unsigned>(b.pointer[i]) << ", expected "
             << static_cast<unsigned>(pattern_byte(b.seed, i));
    }
  }
  return ::testing::AssertionSuccess();
}

/// Seeds unique in the process, so blocks of different sets never share a pattern.
inline std::uint64_t next_block_seed() noexcept {
  static std::uint64_t next = 0;
  return ++next;
}

/// No two blocks share a byte. Zero-size blocks are not expected here.
inline ::testing::AssertionResult blocks_do_not_overlap(std::span<const block> blocks) {
  std::vector<const block*> sorted;
  sorted.reserve(blocks.size());
  for (const block& b : blocks)
    sorted.push_back(&b);
  std::sort(sorted.begin(), sorted.end(), [](const block* a, const block* b) {
    return address_of(a->pointer) < address_of(b->pointer);
  });
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    const block& previous = *sorted[i - 1];
    if (address_of(sorted[i]->pointer) < address_of(previous.pointer) + previous.size) {
      return ::testing::AssertionFailure()
             << describe_block(*sorted[i]) << " overlaps " << describe_block(previous);
    }
  }
  return ::testing::AssertionSuccess();
}

/// Blocks taken from one resource, each filled with its own pattern, given
/// back when the set is destroyed. With `lifo_only` the blocks stay in
/// allocation order and only the newest may be freed (see `pick`).
class block_set {
 public:
  explicit block_set(std::pmr::memory_resource& resource, bool lifo_only = false)
      : resource_(&resource), lifo_only_(lifo_only) {}
  block_set(const block_set&) = delete;
  block_set& operator=(const block_set&) = delete;
  ~block_set() { free_all(); }

  /// Throws what the resource throws; the set is then unchanged.
  const block& allocate(std::size_t size, std::size_t alignment) {
    blocks_.reserve(blocks_.size() + 1);  // so keeping the block cannot throw
    void* pointer = resource_->allocate(size, alignment);
    if (pointer == nullptr) {
      throw std::logic_error("allocate returned a null pointer instead of throwing");
    }
    blocks_.push_back({static_cast<std::byte*>(pointer), size, alignment, next_block_seed()});
    fill_pattern(blocks_.back());
    return blocks_.back();
  }

  /// The block to free next, given a random number: any block, or the
  /// newest when frees must be newest first. The set must not be empty.
  [[nodiscard]] std::size_t pick(std::uint32_t random) const noexcept {
    return lifo_only_ ? blocks_.size() - 1 : random % blocks_.size();
  }

  /// Checks block `index`, then frees it; the last block takes its index
  /// (with lifo_only, `index` must be the last block's: the order is kept).
  ::testing::AssertionResult free(std::size_t index) {
    if (lifo_only_ && index + 1 != blocks_.size()) {
      throw std::logic_error("block_set: only the newest block may be freed (lifo_only)");
    }
    const block b = blocks_[index];
    blocks_[index] = blocks_.back();
    blocks_.pop_back();
    ::testing::AssertionResult intact = pattern_intact(b);
    resource_->deallocate(b.pointer, b.size, b.alignment);
    return intact;
  }

  /// Checks and frees every block, newest first.
  ::testing::AssertionResult free_all_checked() {
    ::testing::AssertionResult result = ::testing::AssertionSuccess();
    while (!blocks_.empty()) {
      ::testing::AssertionResult intact = free(blocks_.size() - 1);
      if (result && !intact) result = intact;
    }
    return result;
  }

  void free_all() noexcept {
    while (!blocks_.empty()) {
      const block& b = blocks_.back();
      resource_->deallocate(b.pointer, b.size, b.alignment);
      blocks_.pop_back();
    }
  }

  /// Forgets the blocks without freeing them, after release() or to leave
  /// them to the destructor.
  void abandon() noexcept { blocks_.clear(); }

  [[nodiscard]] ::testing::AssertionResult all_intact() const {
    for (const block& b : blocks_) {
      if (::testing::AssertionResult intact = pattern_intact(b); !intact) return intact;
    }
    return ::testing::AssertionSuccess();
  }

  [[nodiscard]] std::span<const block> blocks() const noexcept { return blocks_; }
  [[nodiscard]] std::size_t size() const noexcept { return blocks_.size(); }
  [[nodiscard]] bool lifo_only() const noexcept { return lifo_only_; }

 private:
  std::pmr::memory_resource* resource_;
  bool lifo_only_;
  std::vector<block> blocks_;  // on the global heap: the suite's bookkeeping is not measured
};

/// A reproducible mix of requests: mostly small with natural alignment, some
/// medium, a few large or over-aligned, within `caps`.
class request_generator {
 public:
  request_generator(const capabilities& caps, std::uint32_t seed)
      : max_size_(caps.max_size),
        max_alignment_(caps.max_alignment),
        state_(seed * 2654435761U | 1U) {}

  std::uint32_t next() noexcept {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return state_;
  }

  std::size_t size() noexcept {
    const std::uint32_t pick = next() % 100;
    std::size_t size = 0;
    if (pick < 60) {
      size = 1 + next() % 128;
    } else if (pick < 85) {
      size = 129 + next() % 896;
    } else if (pick < 97) {
      size = 1025 + next() % 7168;
    } else {
      size = 8193 + next() % 57344;
    }
    return std::min(size, max_size_);
  }

  std::size_t alignment() noexcept {
    const std::uint32_t pick = next() % 100;
    std::size_t alignment = 0;
    if (pick < 75) {
      alignment = std::size_t{1} << (next() % 4);
    } else if (pick < 90) {
      alignment = alignof(std::max_align_t);
    } else {
      alignment = std::size_t{32} << (next() % 8);
    }
    return std::min(alignment, max_alignment_);
  }

 private:
  std::size_t max_size_;
  std::size_t max_alignment_;
  std::uint32_t state_;
};

/// Allocates `count` blocks of mixed requests into `blocks`, freeing a random
/// one (after checking it) after every third; then checks all that are left.
/// Throws what the resource throws.
inline ::testing::AssertionResult run_mixed_workload(block_set& blocks, const capabilities& caps,
                                                     std::size_t count, std::uint32_t seed) {
  request_generator requests(caps, seed);
  for (std::size_t i = 0; i < count; ++i) {
    blocks.allocate(requests.size(), requests.alignment());
    if (i % 3 == 2) {
      if (::testing::AssertionResult intact = blocks.free(blocks.pick(requests.next())); !intact) {
        return intact;
      }
    }
  }
  return blocks.all_intact();
}

/// A short workload that must succeed: the resource is usable.
inline ::testing::AssertionResult check_usable(std::pmr::memory_resource& resource,
                                               const capabilities& caps) {
  block_set blocks(resource, caps.lifo_only);
  if (::testing::AssertionResult result = run_mixed_workload(blocks, caps, 30, 77); !result) {
    return result;
  }
  return blocks.free_all_checked();
}

// --- What the upstream saw ----------------------------------------------------------------------

/// The upstream recorded no misuse (each error described on failure).
inline ::testing::AssertionResult no_errors(const test_resource& upstream) {
  const std::vector<violation> errors = upstream.errors();
  if (errors.empty()) return ::testing::AssertionSuccess();
  ::testing::AssertionResult failure = ::testing::AssertionFailure();
  failure << errors.size() << " error(s) recorded by '" << upstream.name() << "':";
  for (const violation& v : errors)
    failure << "\n  " << describe(v);
  return failure;
}

/// The upstream has nothing in use (the oldest blocks listed on failure).
inline ::testing::AssertionResult no_blocks_in_use(const test_resource& upstream) {
  const std::vector<block_info> leaks = upstream.leaks();
  if (leaks.empty()) return ::testing::AssertionSuccess();
  ::testing::AssertionResult failure = ::testing::AssertionFailure();
  failure << "'" << upstream.name() << "' still has " << leaks.size() << " block(s), "
          << upstream.bytes_in_use() << " bytes, in use:";
  for (std::size_t i = 0; i < leaks.size() && i < 5; ++i) {
    failure << "\n  block #" << leaks[i].sequence << " at " << leaks[i].pointer << ": "
            << leaks[i].size << " bytes, alignment " << leaks[i].alignment;
  }
  return failure;
}

inline ::testing::AssertionResult upstream_is_clean(const test_resource& upstream) {
  if (::testing::AssertionResult result = no_errors(upstream); !result) return result;
  return no_blocks_in_use(upstream);
}

inline ::testing::AssertionResult no_violations(const violation_recorder& recorder) {
  const std::vector<violation_recorder::entry> entries = recorder.violations();
  if (entries.empty()) return ::testing::AssertionSuccess();
  ::testing::AssertionResult failure = ::testing::AssertionFailure();
  failure << entries.size() << " violation(s) reported:";
  for (const violation_recorder::entry& e : entries) {
    failure << "\n  "
            << describe({e.kind, e.resource_name, e.pointer, e.size, e.alignment, e.expected_size,
                         e.expected_alignment});
  }
  return failure;
}

// --- The checks, one per behaviour --------------------------------------------------------------

/// Many blocks of mixed requests, some freed and replaced, never share a byte.
inline ::testing::AssertionResult check_blocks_are_distinct(std::pmr::memory_resource& resource,
                                                            const capabilities& caps) {
  request_generator requests(caps, 1);
  block_set blocks(resource, caps.lifo_only);
  for (int i = 0; i < 300; ++i)
    blocks.allocate(requests.size(), requests.alignment());
  if (::testing::AssertionResult result = blocks_do_not_overlap(blocks.blocks()); !result) {
    return result;
  }
  // Free a third, so that the new blocks come from reused memory where there
  // is any: every third block, or the newest third when frees are LIFO.
  for (std::size_t i = blocks.size(); i-- > 0;) {
    if (caps.lifo_only ? i < 200 : i % 3 != 0) continue;
    if (::testing::AssertionResult intact = blocks.free(i); !intact) return intact;
  }
  for (int i = 0; i < 200; ++i)
    blocks.allocate(requests.size(), requests.alignment());
  if (::testing::AssertionResult result = blocks_do_not_overlap(blocks.blocks()); !result) {
    return result;
  }
  return blocks.free_all_checked();
}

/// Every power-of-two alignment up to caps.max_alignment, for sizes smaller
/// than, equal to and larger than the alignment; two of each, all kept at
/// once, so that blocks following one another in a chunk are checked too.
inline ::testing::AssertionResult check_alignment(std::pmr::memory_resource& resource,
                                                  const capabilities& caps) {
  block_set blocks(resource, caps.lifo_only);
  for (std::size_t alignment = 1; alignment <= caps.max_alignment; alignment *= 2) {
    for (std::size_t size : {std::size_t{1}, alignment / 2, alignment - 1, alignment, alignment + 1,
                             3 * alignment, std::size_t{100}}) {
      if (size == 0 || size > caps.max_size) continue;
      for (int copy = 0; copy < 2; ++copy) {
        const block& b = blocks.allocate(size, alignment);
        if (!is_aligned(b.pointer, alignment)) {
          return ::testing::AssertionFailure()
                 << "allocate(" << size << ", " << alignment << ") returned "
                 << static_cast<const void*>(b.pointer) << ", which is not " << alignment
                 << "-aligned";
        }
      }
    }
    if (alignment > std::numeric_limits<std::size_t>::max() / 2) break;
  }
  if (::testing::AssertionResult result = blocks_do_not_overlap(blocks.blocks()); !result) {
    return result;
  }
  return blocks.free_all_checked();
}

/// Random allocations and frees: every block keeps its pattern until freed.
inline ::testing::AssertionResult check_contents_preserved(std::pmr::memory_resource& resource,
                                                           const capabilities& caps,
                                                           int operations = 2000) {
  request_generator requests(caps, 3);
  block_set blocks(resource, caps.lifo_only);
  for (int operation = 0; operation < operations; ++operation) {
    if (blocks.size() != 0 && requests.next() % 100 < 40) {
      if (::testing::AssertionResult intact = blocks.free(blocks.pick(requests.next())); !intact) {
        return intact;
      }
    } else {
      blocks.allocate(requests.size(), requests.alignment());
    }
    if (operation % 500 == 499) {
      if (::testing::AssertionResult intact = blocks.all_intact(); !intact) return intact;
    }
  }
  return blocks.free_all_checked();
}

/// allocate(0, a) returns a non-null, a-aligned pointer, freed with size 0,
/// that lies inside no normal block allocated before or after it.
inline ::testing::AssertionResult check_zero_size(std::pmr::memory_resource& resource,
                                                  const capabilities& caps) {
  struct zero_blocks {
    std::pmr::memory_resource& resource;
    std::vector<block> blocks;
    ~zero_blocks() {
      for (auto b = blocks.rbegin(); b != blocks.rend(); ++b) {
        resource.deallocate(b->pointer, 0, b->alignment);
      }
    }
  } zeros{resource, {}};
  // With lifo_only the zero-size blocks join the others, to be freed newest first.
  block_set normal(resource, caps.lifo_only);
  std::vector<block> lifo_zeros;  // with lifo_only: the zero-size blocks among `normal`
  request_generator requests(caps, 4);

  for (std::size_t alignment : {1, 2, 4, 8, 16, 64, 256, 4096}) {
    if (alignment > caps.max_alignment) continue;
    for (int i = 0; i < 3; ++i) {
      normal.allocate(requests.size(), requests.alignment());
      void* pointer = nullptr;
      if (caps.lifo_only) {
        pointer = normal.allocate(0, alignment).pointer;
        lifo_zeros.push_back(normal.blocks().back());
      } else {
        zeros.blocks.reserve(zeros.blocks.size() + 1);
        pointer = resource.allocate(0, alignment);
        if (pointer == nullptr) {
          return ::testing::AssertionFailure()
                 << "allocate(0, " << alignment << ") returned a null pointer";
        }
        zeros.blocks.push_back({static_cast<std::byte*>(pointer), 0, alignment, 0});
      }
      if (!is_aligned(pointer, alignment)) {
        return ::testing::AssertionFailure() << "allocate(0, " << alignment << ") returned "
                                             << pointer << ", which is not aligned";
      }
    }
  }
  for (int i = 0; i < 10; ++i)
    normal.allocate(requests.size(), requests.alignment());

  for (const block& zero :
       caps.lifo_only ? std::span<const block>(lifo_zeros) : std::span<const block>(zeros.blocks)) {
    for (const block& b : normal.blocks()) {
      if (address_of(b.pointer) <= address_of(zero.pointer) &&
          address_of(zero.pointer) < address_of(b.pointer) + b.size) {
        return ::testing::AssertionFailure()
               << "allocate(0, " << zero.alignment << ") returned "
               << static_cast<const void*>(zero.pointer) << ", inside " << describe_block(b);
      }
    }
  }
  return normal.free_all_checked();
}

namespace detail {
/// One request that must throw allocation_error; the reason is checked when given.
inline ::testing::AssertionResult throws_allocation_error(
    std::pmr::memory_resource& resource, std::size_t size, std::size_t alignment,
    const std::function<::testing::AssertionResult(const allocation_error&)>& check_error) {
  try {
    void* pointer = resource.allocate(size, alignment);
    resource.deallocate(pointer, size, alignment);
    return ::testing::AssertionFailure() << "allocate(" << size << ", " << alignment
                                         << ") returned " << pointer << " instead of throwing";
  } catch (const allocation_error& e) {
    return check_error ? check_error(e) : ::testing::AssertionSuccess();
  } catch (const std::bad_alloc& e) {
    return ::testing::AssertionFailure()
           << "allocate(" << size << ", " << alignment << ") threw a std::bad_alloc ("
           << typeid(e).name() << ": " << e.what() << ") that is not a pmrkit::allocation_error";
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure()
           << "allocate(" << size << ", " << alignment << ") threw " << typeid(e).name() << ": "
           << e.what() << " instead of a pmrkit::allocation_error";
  }
}
}  // namespace detail

/// Requests no machine can serve throw allocation_error, and the resource
/// is usable afterwards.
inline ::testing::AssertionResult check_huge_requests(std::pmr::memory_resource& resource,
                                                      const capabilities& caps) {
  constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
  for (std::size_t size :
       {max, max - 4096, max / 2 + 1, max / 2, std::size_t{1} << 62, std::size_t{1} << 48}) {
    for (std::size_t alignment :
         {std::size_t{1}, std::min(alignof(std::max_align_t), caps.max_alignment),
          std::min(std::size_t{4096}, caps.max_alignment)}) {
      if (::testing::AssertionResult result =
              detail::throws_allocation_error(resource, size, alignment, {});
          !result) {
        return result;
      }
    }
  }
  if (::testing::AssertionResult usable = check_usable(resource, caps); !usable) {
    return usable << " (after the huge requests)";
  }
  return ::testing::AssertionSuccess();
}

/// An alignment that is not a power of two throws allocation_error with
/// reason bad_alignment and the request's figures, and the resource is usable
/// afterwards.
inline ::testing::AssertionResult check_bad_alignment(std::pmr::memory_resource& resource,
                                                      const capabilities& caps) {
  for (std::size_t alignment : {0, 3, 6, 12, 24, 48, 100}) {
    for (std::size_t size : {1, 64}) {
      const auto check_error = [&](const allocation_error& e) -> ::testing::AssertionResult {
        if (e.reason() != failure_reason::bad_alignment || e.alignment() != alignment ||
            e.requested() != size) {
          return ::testing::AssertionFailure()
                 << "allocate(" << size << ", " << alignment << ") threw '" << e.what()
                 << "', expected reason bad alignment with the request's size and alignment";
        }
        return ::testing::AssertionSuccess();
      };
      if (::testing::AssertionResult result =
              detail::throws_allocation_error(resource, size, alignment, check_error);
          !result) {
        return result;
      }
    }
  }
  if (::testing::AssertionResult usable = check_usable(resource, caps); !usable) {
    return usable << " (after the bad alignments)";
  }
  return ::testing::AssertionSuccess();
}

// --- Containers ---------------------------------------------------------------------------------

namespace detail {
/// Collects the failed expectations of a container workload.
class expectations {
 public:
  void expect(bool ok, std::string_view what) {
    if (ok) return;
    ++failed_;
    if (failed_ <= 10) text_.append("\n  ").append(what);
  }
  [[nodiscard]] ::testing::AssertionResult result() const {
    if (failed_ == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << failed_ << " container expectation(s) failed:" << text_;
  }

 private:
  std::size_t failed_ = 0;
  std::string text_;
};

/// Text long enough that a string holding it allocates (no small-string buffer).
inline std::string long_text(int i) {
  char text[64];
  std::snprintf(text, sizeof text, "value %06d, long enough to need a buffer of its own", i);
  return text;
}

inline bool holds_long_text(const std::pmr::string& s, int i) {
  return std::string_view(s) == long_text(i);
}

/// A permutation of 0..n-1 (n not a multiple of 7919), so inserts hit the whole structure.
inline int shuffled(int i, int n) {
  return static_cast<int>((static_cast<long long>(i) * 7919) % n);
}

/// A vector-like container of ints: push_back, erase the odd ones, insert at
/// the front, shrink; checks the contents.
template <class Vector>
void exercise_int_vector(Vector v, int n, std::string_view what, expectations& e) {
  for (int i = 0; i < n; ++i)
    v.push_back(i);
  v.erase(std::remove_if(v.begin(), v.end(), [](int x) { return x % 2 != 0; }), v.end());
  v.insert(v.begin(), 100, -1);
  v.shrink_to_fit();
  bool ok = v.size() == static_cast<std::size_t>(n / 2 + 100) && v.front() == -1;
  for (int i = 0; ok && i < n / 2; ++i)
    ok = v[static_cast<std::size_t>(100 + i)] == 2 * i;
  e.expect(ok, what);
}

/// A vector-like container of std::pmr::string: the elements must get the
/// container's resource through uses-allocator construction.
template <class Vector>
void exercise_string_vector(Vector v, std::pmr::memory_resource& resource, int n,
                            std::string_view what, expectations& e) {
  for (int i = 0; i < n / 2; ++i)
    v.emplace_back(long_text(i));
  v.erase(v.begin(), v.begin() + n / 4);
  bool ok = v.size() == static_cast<std::size_t>(n / 2 - n / 4);
  for (std::size_t i = 0; ok && i < v.size(); ++i) {
    ok = holds_long_text(v[i], static_cast<int>(i) + n / 4) &&
         v[i].get_allocator().resource() == &resource;
  }
  e.expect(ok, what);
}

/// A double-ended container of ints: pushes at both ends (every `front_every`-th
/// element at the front), then `pop_front` (and, when `pop_back`, pops at the
/// back) a quarter of the way; compared with std::deque doing the same.
template <class Deque>
void exercise_double_ended(Deque d, int n, int front_every, bool pop_back, std::string_view what,
                           expectations& e) {
  std::deque<int> expected;
  for (int i = 0; i < n; ++i) {
    if (i % front_every == 0) {
      d.push_front(i);
      expected.push_front(i);
    } else {
      d.push_back(i);
      expected.push_back(i);
    }
  }
  for (int i = 0; i < n / 4; ++i) {
    d.pop_front();
    expected.pop_front();
    if (pop_back) {
      d.pop_back();
      expected.pop_back();
    }
  }
  e.expect(std::equal(d.begin(), d.end(), expected.begin(), expected.end()), what);
}
}  // namespace detail

/// std::pmr containers on `resource`: thousands of inserts and erases, the
/// contents checked, the allocator propagated to the elements.
inline ::testing::AssertionResult check_std_containers(std::pmr::memory_resource& resource,
                                                       int n = 2000) {
  detail::expectations e;
  detail::exercise_int_vector(std::pmr::vector<int>(&resource), n,
                              "std::pmr::vector<int>: contents after erase and insert", e);
  detail::exercise_string_vector(
      std::pmr::vector<std::pmr::string>(&resource), resource, n,
      "std::pmr::vector<std::pmr::string>: contents, or the strings' resource", e);
  // Even elements at the front (front_every 2 puts i % 2 == 0 there).
  detail::exercise_double_ended(std::pmr::deque<int>(&resource), n, 2, true,
                                "std::pmr::deque<int>: contents after pushes and pops at both ends",
                                e);
  {
    std::pmr::list<int> l(&resource);
    for (int i = 0; i < n; ++i)
      l.push_back(detail::shuffled(i, n));
    l.remove_if([](int x) { return x % 2 != 0; });
    l.sort(std::greater<>());
    int expected = n % 2 == 0 ? n - 2 : n - 1;
    bool ok = l.size() == static_cast<std::size_t>((n + 1) / 2);
    for (int x : l) {
      ok = ok && x == expected;
      expected -= 2;
    }
    e.expect(ok, "std::pmr::list<int>: contents after remove_if and sort");
  }
  {
    std::pmr::forward_list<int> l(&resource);
    for (int i = 0; i < n; ++i)
      l.push_front(i);
    l.remove_if([](int x) { return x % 3 == 0; });
    l.reverse();
    bool ok = true;
    int expected = 1;
    for (int x : l) {
      ok = ok && x == expected;
      expected += expected % 3 == 1 ? 1 : 2;
    }
    e.expect(ok && expected >= n, "std::pmr::forward_list<int>: contents after remove_if");
  }
  {
    std::pmr::map<int, std::pmr::string> m(&resource);
    for (int i = 0; i < n; ++i) {
      const int key = detail::shuffled(i, n);
      m.emplace(key, detail::long_text(key));
    }
    for (int key = 0; key < n; key += 2)
      m.erase(key);
    bool ok = m.size() == static_cast<std::size_t>(n / 2);
    for (const auto& [key, value] : m) {
      ok = ok && key % 2 != 0 && detail::holds_long_text(value, key) &&
           value.get_allocator().resource() == &resource;
    }
    e.expect(ok, "std::pmr::map<int, std::pmr::string>: contents after erasing half");
  }
  {
    std::pmr::set<int> s(&resource);
    for (int i = 0; i < n; ++i)
      s.insert(detail::shuffled(i, n));
    s.erase(s.lower_bound(n / 4), s.lower_bound(n / 4 + n / 2));
    bool ok = s.size() == static_cast<std::size_t>(n - n / 2);
    int previous = -1;
    for (int x : s) {
      ok = ok && x > previous && (x < n / 4 || x >= n / 4 + n / 2);
      previous = x;
    }
    e.expect(ok, "std::pmr::set<int>: contents after erasing a range");
  }
  {
    std::pmr::unordered_map<int, std::pmr::string> m(&resource);
    for (int i = 0; i < n; ++i)
      m.emplace(i, detail::long_text(i));
    m.rehash(4 * static_cast<std::size_t>(n));
    for (int i = 1; i < n; i += 2)
      m.erase(i);
    bool ok = m.size() == static_cast<std::size_t>((n + 1) / 2);
    for (int i = 0; ok && i < n; ++i) {
      const auto found = m.find(i);
      ok = i % 2 == 0 ? found != m.end() && detail::holds_long_text(found->second, i)
                      : found == m.end();
    }
    e.expect(ok, "std::pmr::unordered_map<int, std::pmr::string>: contents after rehash and erase");
  }
  {
    std::pmr::string s(&resource);
    for (int i = 0; i < n; ++i)
      s.push_back(static_cast<char>('a' + i % 26));
    s.erase(0, static_cast<std::size_t>(n / 2));
    s.shrink_to_fit();
    bool ok = s.size() == static_cast<std::size_t>(n - n / 2);
    for (std::size_t i = 0; ok && i < s.size(); ++i) {
      ok = s[i] == static_cast<char>('a' + (static_cast<int>(i) + n / 2) % 26);
    }
    e.expect(ok, "std::pmr::string: contents after appending and erasing");
  }
  return e.result();
}

/// Boost.Container containers with std::pmr::polymorphic_allocator on `resource`.
inline ::testing::AssertionResult check_boost_containers(std::pmr::memory_resource& resource,
                                                         int n = 2000) {
  namespace bc = boost::container;
  using std::pmr::polymorphic_allocator;
  detail::expectations e;
  detail::exercise_int_vector(bc::vector<int, polymorphic_allocator<int>>(&resource), n,
                              "boost::container::vector<int>: contents after erase and insert", e);
  // Elements get the resource through polymorphic_allocator::construct
  // (uses-allocator construction), which Boost's allocator_traits must call.
  detail::exercise_string_vector(
      bc::vector<std::pmr::string, polymorphic_allocator<std::pmr::string>>(&resource), resource, n,
      "boost::container::vector<std::pmr::string>: contents, or the strings' resource", e);
  detail::exercise_double_ended(
      bc::deque<int, polymorphic_allocator<int>>(&resource), n, 2, true,
      "boost::container::deque<int>: contents after pushes and pops at both ends", e);
  {
    bc::flat_map<int, int, std::less<>, polymorphic_allocator<std::pair<int, int>>> m(&resource);
    for (int i = 0; i < n; ++i) {
      const int key = detail::shuffled(i, n);
      m.emplace(key, -key);
    }
    for (int key = 0; key < n; key += 2)
      m.erase(key);
    m.shrink_to_fit();
    bool ok = m.size() == static_cast<std::size_t>(n / 2);
    for (const auto& [key, value] : m)
      ok = ok && key % 2 != 0 && value == -key;
    e.expect(ok, "boost::container::flat_map<int, int>: contents after erasing half");
  }
  {
    using small_vector = bc::small_vector<int, 16, polymorphic_allocator<int>>;
    // Its allocator wraps ours and is constructible from it only explicitly.
    const small_vector::allocator_type allocator(polymorphic_allocator<int>{&resource});
    small_vector inline_only(allocator);
    for (int i = 0; i < 16; ++i)
      inline_only.push_back(i);
    small_vector v(allocator);
    for (int i = 0; i < n; ++i)
      v.push_back(i);
    v.erase(v.begin(), v.begin() + n / 2);
    bool ok = v.size() == static_cast<std::size_t>(n - n / 2) && inline_only.back() == 15;
    for (std::size_t i = 0; ok && i < v.size(); ++i)
      ok = v[i] == static_cast<int>(i) + n / 2;
    e.expect(ok, "boost::container::small_vector<int, 16>: contents beyond the inline capacity");
  }
  {
    bc::stable_vector<int, polymorphic_allocator<int>> v(&resource);
    for (int i = 0; i < n; ++i)
      v.push_back(i);
    const int* kept = &v[static_cast<std::size_t>(n - 2)];
    // Erasing one element at a time keeps the other elements where they are.
    for (auto it = v.begin(); it != v.end();)
      it = *it % 2 != 0 ? v.erase(it) : it + 1;
    bool ok = v.size() == static_cast<std::size_t>(n / 2);
    for (std::size_t i = 0; ok && i < v.size(); ++i)
      ok = v[i] == 2 * static_cast<int>(i);
    e.expect(ok && *kept == n - 2 && kept == &v.back(),
             "boost::container::stable_vector<int>: contents, or a reference, after erase");
  }
  detail::exercise_double_ended(
      bc::devector<int, polymorphic_allocator<int>>(&resource), n, 3, false,
      "boost::container::devector<int>: contents after pushes at both ends", e);
  return e.result();
}

/// The suite's type names for INSTANTIATE_TYPED_TEST_SUITE_P: the traits'
/// `name` with each run of characters other than letters and digits turned
/// into one '_' ("std::pmr::monotonic_buffer_resource" becomes
/// "std_pmr_monotonic_buffer_resource"), so that --gtest_filter can name them.
struct traits_names {
  template <class Traits>
  static std::string GetName(int) {
    std::string name;
    for (const char c : Traits::name) {
      const bool alphanumeric =
          (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      if (alphanumeric) {
        name += c;
      } else if (!name.empty() && name.back() != '_') {
        name += '_';
      }
    }
    return name;
  }
};

/// The traits define release(r): the resource has release().
template <class Traits>
concept has_release = requires(typename Traits::resource_type& r) {
  Traits::release(r);
};

/// The resource's stats() reports bytes_from_upstream.
template <class Resource>
concept reports_bytes_from_upstream = requires(const Resource& r) {
  { r.stats().bytes_from_upstream } -> std::convertible_to<std::size_t>;
};

/// The resource has upstream_resource().
template <class Resource>
concept has_upstream_resource = requires(const Resource& r) {
  { r.upstream_resource() } -> std::convertible_to<std::pmr::memory_resource*>;
};

}  // namespace pmrkit::conformance

// The fixture and the tests live in the global namespace, so that a family
// instantiates them with the unqualified name `resource_conformance`.

template <class Traits>
class resource_conformance : public ::testing::Test {
 protected:
  using resource_type = typename Traits::resource_type;
  static constexpr const pmrkit::conformance::capabilities& caps = Traits::caps;
  static_assert(pmrkit::is_power_of_two(Traits::caps.max_alignment),
                "capabilities::max_alignment must be a power of two");

  void SetUp() override { resource_ = Traits::make(&upstream); }

  void TearDown() override {
    if (resource_) {
      if constexpr (requires(const resource_type& r) { Traits::recorded_errors(r); }) {
        for (const pmrkit::violation& v : Traits::recorded_errors(*resource_)) {
          ADD_FAILURE() << Traits::name << " recorded: " << pmrkit::describe(v);
        }
      }
      upstream.check_guards();  // a resource writing outside its chunks
      resource_.reset();
    }
    EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(upstream))
        << "the upstream after " << Traits::name << " was destroyed";
    EXPECT_TRUE(pmrkit::conformance::no_violations(violations));
  }

  resource_type& resource() {
    if (!resource_) throw std::logic_error("make() returned no resource");
    return *resource_;
  }

  static std::string not_applicable(std::string_view why) {
    return pmrkit::conformance::not_applicable(Traits::name, why);
  }

  // Declared in this order so they outlive the resource.
  pmrkit::violation_recorder violations;
  pmrkit::conformance::bounded_new_delete_resource system;
  pmrkit::test_resource upstream{{.name = "conformance upstream"}, &system};

 private:
  decltype(Traits::make(std::declval<std::pmr::memory_resource*>())) resource_;
};

TYPED_TEST_SUITE_P(resource_conformance);

TYPED_TEST_P(resource_conformance, BlocksAreDistinctAndDoNotOverlap) {
  EXPECT_TRUE(pmrkit::conformance::check_blocks_are_distinct(this->resource(), this->caps));
}

TYPED_TEST_P(resource_conformance, EveryAlignmentUpToTheMaximumIsHonoured) {
  EXPECT_TRUE(pmrkit::conformance::check_alignment(this->resource(), this->caps));
}

TYPED_TEST_P(resource_conformance, ContentsArePreservedAcrossAllocationsAndFrees) {
  EXPECT_TRUE(pmrkit::conformance::check_contents_preserved(this->resource(), this->caps));
}

TYPED_TEST_P(resource_conformance, ZeroSizeRequestsAreAlignedAndInsideNoOtherBlock) {
  EXPECT_TRUE(pmrkit::conformance::check_zero_size(this->resource(), this->caps));
}

TYPED_TEST_P(resource_conformance, HugeRequestsThrowAllocationErrorAndLeaveItUsable) {
  if (!this->caps.huge_request_throws_allocation_error) {
    GTEST_SKIP() << this->not_applicable("huge requests do not throw pmrkit::allocation_error");
  }
  EXPECT_TRUE(pmrkit::conformance::check_huge_requests(this->resource(), this->caps));
}

TYPED_TEST_P(resource_conformance, NonPowerOfTwoAlignmentThrowsBadAlignment) {
  if (!this->caps.checks_alignment) {
    GTEST_SKIP() << this->not_applicable(
        "a non-power-of-two alignment is undefined behaviour there, not an error");
  }
  EXPECT_TRUE(pmrkit::conformance::check_bad_alignment(this->resource(), this->caps));
}

TYPED_TEST_P(resource_conformance, ReleaseReturnsEverythingUpstreamAndKeepsItUsable) {
  if constexpr (!pmrkit::conformance::has_release<TypeParam>) {
    GTEST_SKIP() << this->not_applicable("it has no release()");
  } else {
    auto& resource = this->resource();
    for (std::uint32_t round = 0; round < 2; ++round) {
      {
        pmrkit::conformance::block_set blocks(resource, this->caps.lifo_only);
        ASSERT_TRUE(pmrkit::conformance::run_mixed_workload(blocks, this->caps, 200, 10 + round));
        blocks.abandon();  // release() takes them back
      }
      TypeParam::release(resource);
      ASSERT_TRUE(pmrkit::conformance::no_blocks_in_use(this->upstream))
          << "after release() #" << round + 1;
      EXPECT_TRUE(pmrkit::conformance::check_usable(resource, this->caps))
          << "after release() #" << round + 1;
    }
  }
}

TYPED_TEST_P(resource_conformance, DestructionReturnsEverythingUpstream) {
  pmrkit::test_resource own_upstream({.name = "conformance destruction upstream"}, &this->system);
  {
    const auto resource = TypeParam::make(&own_upstream);
    pmrkit::conformance::block_set blocks(*resource, this->caps.lifo_only);
    ASSERT_TRUE(pmrkit::conformance::run_mixed_workload(blocks, this->caps, 200, 20));
    if (this->caps.releases_on_destruction) {
      blocks.abandon();  // the destructor takes them back
    } else {
      ASSERT_TRUE(blocks.free_all_checked());
    }
  }
  EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(own_upstream));
}

TYPED_TEST_P(resource_conformance, FailedUpstreamAllocationsLeakNothing) {
  if (!this->caps.survives_upstream_failures) {
    GTEST_SKIP() << this->not_applicable("a failing upstream breaks it");
  }
  const std::size_t runs = pmrkit::exception_test(this->upstream, [&] {
    const auto resource = TypeParam::make(&this->upstream);
    pmrkit::conformance::block_set blocks(*resource, this->caps.lifo_only);
    EXPECT_TRUE(pmrkit::conformance::run_mixed_workload(blocks, this->caps, 120, 30));
  });
  EXPECT_GT(runs, 1U) << "the workload never allocated from the upstream, so nothing was failed";
  EXPECT_TRUE(pmrkit::conformance::no_errors(this->upstream));
}

TYPED_TEST_P(resource_conformance, ResourceStaysUsableAfterUpstreamFailures) {
  if (!this->caps.survives_upstream_failures) {
    GTEST_SKIP() << this->not_applicable("a failing upstream breaks it");
  }
  struct limit_reset {
    pmrkit::test_resource& upstream;
    ~limit_reset() { upstream.set_allocation_limit(-1); }
  } reset{this->upstream};
  auto& resource = this->resource();
  // Blocks from before the failures must come through them intact.
  pmrkit::conformance::block_set survivors(resource, this->caps.lifo_only);
  ASSERT_TRUE(pmrkit::conformance::run_mixed_workload(survivors, this->caps, 60, 40));

  constexpr long long max_runs = 2000;
  bool completed = false;
  for (long long limit = 0; limit < max_runs && !completed; ++limit) {
    pmrkit::conformance::block_set blocks(resource, this->caps.lifo_only);
    this->upstream.set_allocation_limit(limit);
    try {
      ASSERT_TRUE(pmrkit::conformance::run_mixed_workload(blocks, this->caps, 120, 41));
      completed = true;
    } catch (const pmrkit::allocation_error&) {
      // The failure injected upstream, or the resource's own translation of it.
    } catch (const std::bad_alloc& e) {
      FAIL() << "with the upstream failing after " << limit << " allocations, " << TypeParam::name
             << " threw a std::bad_alloc (" << typeid(e).name() << ": " << e.what()
             << ") that is not a pmrkit::allocation_error";
    }
    this->upstream.set_allocation_limit(-1);
    ASSERT_TRUE(survivors.all_intact()) << "after the upstream failed after " << limit;
    ASSERT_TRUE(blocks.all_intact()) << "after the upstream failed after " << limit;
    ASSERT_TRUE(pmrkit::conformance::check_usable(resource, this->caps))
        << "after the upstream failed after " << limit;
    ASSERT_TRUE(blocks.free_all_checked());
  }
  EXPECT_TRUE(completed) << "the workload still failed after " << max_runs << " runs";
  EXPECT_TRUE(survivors.free_all_checked());
}

TYPED_TEST_P(resource_conformance, StandardContainersWork) {
  if (this->caps.lifo_only) {
    GTEST_SKIP() << this->not_applicable(pmrkit::conformance::containers_free_out_of_order);
  }
  if (!this->caps.serves_containers) {
    GTEST_SKIP() << this->not_applicable(pmrkit::conformance::containers_need_any_size);
  }
  EXPECT_TRUE(pmrkit::conformance::check_std_containers(this->resource()));
}

TYPED_TEST_P(resource_conformance, BoostContainersWork) {
  if (this->caps.lifo_only) {
    GTEST_SKIP() << this->not_applicable(pmrkit::conformance::containers_free_out_of_order);
  }
  if (!this->caps.serves_containers) {
    GTEST_SKIP() << this->not_applicable(pmrkit::conformance::containers_need_any_size);
  }
  EXPECT_TRUE(pmrkit::conformance::check_boost_containers(this->resource()));
}

TYPED_TEST_P(resource_conformance, FreedMemoryIsReused) {
  if (!this->caps.reuses_memory) {
    GTEST_SKIP() << this->not_applicable("it does not reuse freed memory");
  }
  auto& resource = this->resource();
  const auto round = [&](std::uint32_t seed) {
    pmrkit::conformance::block_set blocks(resource, this->caps.lifo_only);
    EXPECT_TRUE(pmrkit::conformance::run_mixed_workload(blocks, this->caps, 300, seed));
    if (this->caps.lifo_only || !this->caps.serves_containers) return;
    EXPECT_TRUE(pmrkit::conformance::check_std_containers(resource, 1000));
    EXPECT_TRUE(pmrkit::conformance::check_boost_containers(resource, 1000));
  };
  // The same work again, with everything freed in between, needs no more memory.
  round(50);
  const std::size_t after_first = this->upstream.bytes_in_use();
  round(50);
  round(50);
  EXPECT_LE(this->upstream.bytes_in_use(), after_first)
      << "the upstream's bytes in use grew when the same work was repeated";
}

TYPED_TEST_P(resource_conformance, EqualityIsIdentity) {
  auto& resource = this->resource();
  const auto other = TypeParam::make(&this->upstream);
  EXPECT_TRUE(resource.is_equal(resource));
  EXPECT_TRUE(resource == resource);
  if (this->caps.equality_is_identity) {
    EXPECT_FALSE(resource.is_equal(*other));
    EXPECT_FALSE(other->is_equal(resource));
  } else {
    EXPECT_EQ(resource.is_equal(*other), other->is_equal(resource)) << "equality is not symmetric";
  }
  EXPECT_FALSE(resource.is_equal(this->upstream));
  EXPECT_FALSE(resource.is_equal(*std::pmr::new_delete_resource()));
}

TYPED_TEST_P(resource_conformance, UpstreamResourceIsTheUpstream) {
  if constexpr (!pmrkit::conformance::has_upstream_resource<typename TypeParam::resource_type>) {
    GTEST_SKIP() << this->not_applicable(
        "it has no upstream_resource() returning a std::pmr::memory_resource*");
  } else {
    EXPECT_EQ(this->resource().upstream_resource(), &this->upstream);
  }
}

TYPED_TEST_P(resource_conformance, StatsBytesFromUpstreamMatchTheUpstream) {
  using resource_type = typename TypeParam::resource_type;
  if constexpr (!pmrkit::conformance::reports_bytes_from_upstream<resource_type>) {
    GTEST_SKIP() << this->not_applicable("its stats() reports no bytes_from_upstream");
  } else {
    static_assert(noexcept(std::declval<const resource_type&>().stats()),
                  "stats() must be noexcept (docs/contract.md)");
    auto& resource = this->resource();
    const auto matches = [&](const char* when) {
      EXPECT_EQ(resource.stats().bytes_from_upstream, this->upstream.bytes_in_use())
          << TypeParam::name << ": stats().bytes_from_upstream is not what the upstream holds "
          << when;
    };
    matches("before any allocation");
    for (std::uint32_t round = 0; round < 3; ++round) {
      pmrkit::conformance::block_set blocks(resource, this->caps.lifo_only);
      ASSERT_TRUE(pmrkit::conformance::run_mixed_workload(blocks, this->caps, 200, 60 + round));
      matches("with blocks in use");
      if (round == 2 && this->caps.serves_containers && !this->caps.lifo_only) {
        EXPECT_TRUE(pmrkit::conformance::check_std_containers(resource, 500));
        matches("after the standard containers");
      }
      ASSERT_TRUE(blocks.free_all_checked());
      matches("after every block was freed");
    }
    if constexpr (pmrkit::conformance::has_release<TypeParam>) {
      TypeParam::release(resource);
      matches("after release()");
    }
  }
}

REGISTER_TYPED_TEST_SUITE_P(
    resource_conformance, StatsBytesFromUpstreamMatchTheUpstream, BlocksAreDistinctAndDoNotOverlap,
    EveryAlignmentUpToTheMaximumIsHonoured, ContentsArePreservedAcrossAllocationsAndFrees,
    ZeroSizeRequestsAreAlignedAndInsideNoOtherBlock,
    HugeRequestsThrowAllocationErrorAndLeaveItUsable, NonPowerOfTwoAlignmentThrowsBadAlignment,
    ReleaseReturnsEverythingUpstreamAndKeepsItUsable, DestructionReturnsEverythingUpstream,
    FailedUpstreamAllocationsLeakNothing, ResourceStaysUsableAfterUpstreamFailures,
    StandardContainersWork, BoostContainersWork, FreedMemoryIsReused, EqualityIsIdentity,
    UpstreamResourceIsTheUpstream);
