// fuzz_harness: one libFuzzer harness for every pmrkit resource, driven by a
// "subject" that builds the resource from fuzz-chosen options and says which
// bulk calls it has.
//
// The input bytes are read as a sequence of calls: allocate (sizes from 0 to
// several MiB and near SIZE_MAX, alignments of every power of two up to 8192
// and some that are not), deallocate of a live block the input picks (only the
// newest for a LIFO subject), pmrkit::reallocate, and the subject's bulk calls
// when it has them (reset, release, shrink, checkpoint/rewind, scopes). A
// model checks after each call: alignment (the request's and the subject's
// least), no overlap with a live block, each block's pattern kept until it is
// freed, a bad request (an alignment that is not a power of two, a size near
// SIZE_MAX) throwing pmrkit::allocation_error and the resource staying usable.
// Under the subject is strict_upstream: it records every block, checks every
// deallocation against it, fails on request, hands out addresses rising or
// falling as the input says, poisons what it got back (ASan), and at the end
// must have every byte back. Any violation report aborts.
//
// A subject S has:
//   S(fuzz_input&, std::pmr::memory_resource* upstream)  (std::invalid_argument: skip the input)
//   std::pmr::memory_resource& resource()
//   static constexpr bool lifo              only the newest block may be freed
//   std::size_t least_alignment() const     every block is aligned to at least this
// and optionally: reset(), release() (both free every block; a reset() that
// returns bool says whether it did), shrink() (frees none), checkpoint() / rewind(marker) (frees
// what came after the marker), open_scope() / close_scope() (a scope stack; closing frees what came
// after), check_everything_back() (called once every block is freed, before the subject goes:
// a root, which has no upstream to count, checks its own figures). resource_subject<Resource,
// options_from> is such a subject for a resource whose bulk calls are its own: it forwards
// exactly the ones the resource has.
#pragma once

#include <pmr/core/error.hpp>
#include <pmr/core/reallocate.hpp>
#include <pmr/core/violation.hpp>

#include <sys/mman.h>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory_resource>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define PMRKIT_FUZZ_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define PMRKIT_FUZZ_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#endif
#endif
#ifndef PMRKIT_FUZZ_POISON
#define PMRKIT_FUZZ_POISON(p, n) ((void)(p), (void)(n))
#define PMRKIT_FUZZ_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace pmrkit::fuzz {

[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "pmrkit fuzz: model check failed: %s\n", what.c_str());
  std::abort();
}

inline void abort_on_violation(const violation& v) {
  std::fprintf(stderr, "pmrkit fuzz: a legal sequence reached the violation handler: %s\n",
               describe(v).c_str());
  std::abort();
}

/// The fuzz input, read front to back; zeros once it runs out.
class fuzz_input {
 public:
  fuzz_input(const std::uint8_t* data, std::size_t size) noexcept : data_(data), size_(size) {}
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  std::uint8_t u8() noexcept {
    if (size_ == 0) return 0;
    --size_;
    return *data_++;
  }
  std::uint16_t u16() noexcept { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
  std::uint32_t u32() noexcept {
    return static_cast<std::uint32_t>(u16()) | (static_cast<std::uint32_t>(u16()) << 16);
  }
  /// A value in [lo, hi].
  std::size_t range(std::size_t lo, std::size_t hi) noexcept {
    const std::size_t span = hi - lo;
    if (span == 0) return lo;
    const std::uint32_t raw = span <= 0xff ? u8() : span <= 0xffff ? u16() : u32();
    return lo + static_cast<std::size_t>(raw) % (span + 1);
  }
  /// A power of two 2^lo..2^hi.
  std::size_t power_of_two(unsigned lo, unsigned hi) noexcept {
    return std::size_t{1} << range(lo, hi);
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
};

/// A strict recording upstream over one reserved range: blocks from the low
/// end rising or from the high end falling, each checked on deallocation,
/// freed bytes poisoned, an injected failure on request.
class strict_upstream final : public std::pmr::memory_resource {
 public:
  static constexpr std::size_t capacity = std::size_t{1} << 30;

  strict_upstream() {
    void* p = ::mmap(nullptr, capacity, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) fail("strict_upstream: mmap failed");
    base_ = static_cast<std::byte*>(p);
    low_ = base_;
    high_ = base_ + capacity;
  }
  strict_upstream(const strict_upstream&) = delete;
  strict_upstream& operator=(const strict_upstream&) = delete;
  ~strict_upstream() override {
    // Only what was handed out can be poisoned.
    PMRKIT_FUZZ_UNPOISON(base_, static_cast<std::size_t>(low_ - base_));
    PMRKIT_FUZZ_UNPOISON(high_, static_cast<std::size_t>(base_ + capacity - high_));
    ::munmap(base_, capacity);
  }

  void set_falling(bool falling) noexcept { falling_ = falling; }
  /// The next `n` allocations succeed, the one after throws (once).
  void fail_after(long n) noexcept { fail_after_ = n; }
  [[nodiscard]] std::size_t blocks_in_use() const noexcept { return blocks_.size(); }
  [[nodiscard]] std::size_t bytes_in_use() const noexcept { return bytes_; }

 private:
  struct record {
    std::size_t size;
    std::size_t alignment;
  };

  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
      throw allocation_error(failure_reason::bad_alignment, bytes, alignment, "strict_upstream");
    }
    if (fail_after_ == 0) {
      fail_after_ = -1;
      throw allocation_error(failure_reason::injected_failure, bytes, alignment, "strict_upstream");
    }
    if (fail_after_ > 0) --fail_after_;
    const auto lo = reinterpret_cast<std::uintptr_t>(low_);
    const auto hi = reinterpret_cast<std::uintptr_t>(high_);
    const std::size_t extent = bytes == 0 ? 1 : bytes;
    std::uintptr_t at = 0;
    if (alignment > capacity || extent > capacity) {
      throw allocation_error(failure_reason::out_of_capacity, bytes, alignment, "strict_upstream");
    }
    if (falling_) {
      if (hi - lo < extent) {
        throw allocation_error(failure_reason::out_of_capacity, bytes, alignment,
                               "strict_upstream");
      }
      at = (hi - extent) & ~(alignment - 1);
      if (at < lo) {
        throw allocation_error(failure_reason::out_of_capacity, bytes, alignment,
                               "strict_upstream");
      }
      high_ = reinterpret_cast<std::byte*>(at);
    } else {
      at = (lo + alignment - 1) & ~(alignment - 1);
      if (at > hi || hi - at < extent) {
        throw allocation_error(failure_reason::out_of_capacity, bytes, alignment,
                               "strict_upstream");
      }
      low_ = reinterpret_cast<std::byte*>(at + extent);
    }
    void* p = reinterpret_cast<void*>(at);
    PMRKIT_FUZZ_UNPOISON(p, extent);
    blocks_.emplace(p, record{bytes, alignment});
    bytes_ += bytes;
    return p;
  }

  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    auto it = blocks_.find(p);
    if (it == blocks_.end()) {
      fail("strict_upstream: deallocate of a block it did not hand out (or twice): " +
           std::to_string(reinterpret_cast<std::uintptr_t>(p)));
    }
    if (it->second.size != bytes || it->second.alignment != alignment) {
      fail("strict_upstream: deallocate with size " + std::to_string(bytes) + ", alignment " +
           std::to_string(alignment) + " of a block allocated with " +
           std::to_string(it->second.size) + ", " + std::to_string(it->second.alignment));
    }
    PMRKIT_FUZZ_POISON(p, bytes == 0 ? 1 : bytes);
    bytes_ -= bytes;
    blocks_.erase(it);
  }

  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  std::byte* base_ = nullptr;
  std::byte* low_ = nullptr;
  std::byte* high_ = nullptr;
  bool falling_ = false;
  long fail_after_ = -1;
  std::map<void*, record> blocks_;
  std::size_t bytes_ = 0;
};

/// The pattern byte at `offset` of block `id`.
inline std::byte pattern(std::uint64_t id, std::size_t offset) noexcept {
  return static_cast<std::byte>((id * 151u) ^ (offset * 31u) ^ (offset >> 9));
}

/// The offsets of a block of `size` bytes that carry its pattern: all of a
/// small block; the first and last 4 KiB and every 509th byte of a large one.
template <class F>
void for_each_patterned(std::size_t size, F&& f) {
  constexpr std::size_t full = 16384;
  constexpr std::size_t edge = 4096;
  if (size <= full) {
    for (std::size_t i = 0; i < size; ++i)
      f(i);
    return;
  }
  for (std::size_t i = 0; i < edge; ++i)
    f(i);
  for (std::size_t i = edge; i < size - edge; i += 509)
    f(i);
  for (std::size_t i = size - edge; i < size; ++i)
    f(i);
}

struct live_block {
  std::byte* p;
  std::size_t size;
  std::size_t alignment;
  std::uint64_t seq;  // allocation order
  std::uint64_t id;   // pattern
};

/// The model: the live blocks in allocation order, their address map, the
/// markers and scopes still valid.
class model {
 public:
  std::vector<live_block> blocks;
  std::map<std::uintptr_t, std::size_t> extents;  // address -> size, non-empty blocks only
  std::vector<std::uint64_t> scopes;
  std::uint64_t next_seq = 0;
  std::uint64_t next_id = 1;

  void fill(const live_block& b) {
    for_each_patterned(b.size, [&](std::size_t i) { b.p[i] = pattern(b.id, i); });
  }
  /// Checks the pattern of `b` (laid out for `size`) at offsets below `limit`, at `at`.
  static void check(const live_block& b, std::size_t limit, const std::byte* at, const char* when) {
    for_each_patterned(b.size, [&](std::size_t i) {
      if (i < limit && at[i] != pattern(b.id, i)) {
        fail(std::string("contents of a live block changed (") + when + "): block of " +
             std::to_string(b.size) + " bytes, alignment " + std::to_string(b.alignment) +
             ", offset " + std::to_string(i));
      }
    });
  }

  void add(std::byte* p, std::size_t size, std::size_t alignment, std::size_t least,
           std::uint64_t id) {
    const auto address = reinterpret_cast<std::uintptr_t>(p);
    if (p == nullptr) fail("allocate returned null");
    const std::size_t need = std::max(alignment, least);
    if (address % need != 0) {
      fail("block " + std::to_string(address) + " of " + std::to_string(size) +
           " bytes not aligned to " + std::to_string(need) + " (requested " +
           std::to_string(alignment) + ")");
    }
    if (size != 0) {
      if (address + size < address) fail("block wraps around the address space");
      auto next = extents.lower_bound(address);
      if (next != extents.end() && next->first < address + size) {
        fail("new block [" + std::to_string(address) + ", +" + std::to_string(size) +
             ") overlaps a live block at " + std::to_string(next->first));
      }
      if (next != extents.begin()) {
        auto prev = std::prev(next);
        if (prev->first + prev->second > address) {
          fail("new block at " + std::to_string(address) + " overlaps a live block at " +
               std::to_string(prev->first) + " of " + std::to_string(prev->second) + " bytes");
        }
      }
      extents.emplace(address, size);
    }
    blocks.push_back({p, size, alignment, next_seq++, id});
    fill(blocks.back());
  }

  /// Forgets block `index` (its bytes checked first).
  void remove(std::size_t index) {
    const live_block& b = blocks[index];
    check(b, b.size, b.p, "before deallocate");
    if (b.size != 0) extents.erase(reinterpret_cast<std::uintptr_t>(b.p));
    blocks.erase(blocks.begin() + static_cast<std::ptrdiff_t>(index));
  }

  /// Forgets every block allocated at or after `seq` (freed by a rewind).
  void drop_from(std::uint64_t seq) {
    for (std::size_t i = blocks.size(); i-- > 0;) {
      if (blocks[i].seq >= seq) {
        if (blocks[i].size != 0) extents.erase(reinterpret_cast<std::uintptr_t>(blocks[i].p));
        blocks.erase(blocks.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
  }

  void check_all(const char* when) const {
    for (const live_block& b : blocks)
      check(b, b.size, b.p, when);
  }
};

/// The options every arena over a bump chain shares (chunked, local, stack,
/// concurrent): the first and largest chunk, the growth factor, and a least
/// alignment of 2^0 to 2^max_alignment_log (above 4096 the constructor refuses it).
template <class Options>
void draw_chain_options(fuzz_input& in, Options& o, unsigned max_alignment_log) {
  o.initial_chunk_size = in.range(256, 65536);
  o.max_chunk_size = o.initial_chunk_size * in.range(1, 64);
  o.growth_factor = in.range(1, 16);
  o.alignment = in.power_of_two(0, max_alignment_log);
}

/// Draws an allocation size: mostly small, sometimes MiB, sometimes near SIZE_MAX.
inline std::size_t draw_size(fuzz_input& in, bool& huge) {
  huge = false;
  constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
  switch (in.u8() % 16) {
    case 0:
      return 0;
    case 1:
    case 2:
    case 3:
    case 4:
    case 5:
      return in.range(1, 64);
    case 6:
    case 7:
    case 8:
      return in.range(1, 4096);
    case 9:
    case 10:
      return in.range(1, 65536);
    case 11:
      return in.range(65536, std::size_t{6} << 20);
    case 12:
      huge = true;
      return max - in.range(0, 8192);
    case 13:
      huge = true;
      return max / 2 + in.range(0, 8192);
    case 14:
      return in.power_of_two(0, 20);
    default:
      return in.power_of_two(0, 16) - 1 + in.range(0, 2);
  }
}

/// Draws an alignment: a power of two up to 8192, or (rarely) not one.
inline std::size_t draw_alignment(fuzz_input& in, bool& bad) {
  bad = false;
  const std::uint8_t k = in.u8();
  if (k < 232) return in.power_of_two(0, 13);
  bad = true;
  static constexpr std::size_t not_powers[] = {0, 3, 6, 12, 24, 48, 100, 4095, 4097, 12288};
  return not_powers[k % std::size(not_powers)];
}

template <class S>
struct marker_of {
  using type = int;
};
template <class S>
requires requires(S& s) {
  s.checkpoint();
}
struct marker_of<S> {
  using type = decltype(std::declval<S&>().checkpoint());
};

template <class Subject>
int run_one(const std::uint8_t* data, std::size_t size) {
  static const bool installed = (set_violation_handler(&abort_on_violation), true);
  (void)installed;
  fuzz_input in(data, size);
  strict_upstream upstream;
  const std::uint8_t setup = in.u8();
  upstream.set_falling((setup & 1) != 0);
  std::optional<Subject> subject;
  try {
    subject.emplace(in, &upstream);
  } catch (const std::invalid_argument&) {
    return 0;  // options the constructor rejects, as documented
  } catch (const allocation_error&) {
    return 0;  // the construction's own allocation failed
  }
  std::pmr::memory_resource& r = subject->resource();
  const std::size_t least = subject->least_alignment();
  model m;
  // The markers taken and still certainly valid, with the seq counter when each was taken.
  std::vector<std::pair<typename marker_of<Subject>::type, std::uint64_t>> marks;
  // A free or resize of a block rolls back past the markers taken after it.
  auto forget_marks_after = [&](std::uint64_t seq) {
    std::erase_if(marks, [&](const auto& mark) { return mark.second > seq; });
  };

  auto pick = [&]() -> std::optional<std::size_t> {
    if (m.blocks.empty()) return std::nullopt;
    std::size_t index = 0;
    if constexpr (Subject::lifo) {
      index = m.blocks.size() - 1;
    } else {
      index = in.range(0, m.blocks.size() - 1);
    }
    if constexpr (requires { subject->close_scope(); }) {
      // What a scope still open took before it may not be popped.
      if (!m.scopes.empty() && m.blocks[index].seq < m.scopes.back()) return std::nullopt;
    }
    return index;
  };

  for (int step = 0; step < 256 && !in.empty(); ++step) {
    const std::uint8_t op = in.u8();
    switch (op % 16) {
      default: {  // allocate
        bool huge = false;
        bool bad = false;
        const std::size_t bytes = draw_size(in, huge);
        const std::size_t alignment = draw_alignment(in, bad);
        void* p = nullptr;
        try {
          p = r.allocate(bytes, alignment);
        } catch (const allocation_error&) {
          break;  // refused (bad request, capacity, the upstream's injected failure)
        } catch (const std::exception& e) {
          fail(std::string("allocate threw something other than allocation_error: ") + e.what());
        }
        if (bad || huge) {
          fail("allocate(" + std::to_string(bytes) + ", " + std::to_string(alignment) +
               ") succeeded; a bad request must throw allocation_error");
        }
        m.add(static_cast<std::byte*>(p), bytes, alignment, least, m.next_id++);
        break;
      }
      case 6:
      case 7:
      case 8: {  // deallocate
        const auto index = pick();
        if (!index) break;
        const live_block b = m.blocks[*index];
        m.remove(*index);
        forget_marks_after(b.seq);
        r.deallocate(b.p, b.size, b.alignment);
        break;
      }
      case 9: {  // reallocate
        const auto index = pick();
        if (!index) break;
        live_block b = m.blocks[*index];
        bool huge = false;
        const std::size_t new_size = draw_size(in, huge);
        void* q = nullptr;
        try {
          q = pmrkit::reallocate(r, b.p, b.size, new_size, b.alignment);
        } catch (const allocation_error&) {
          m.check(b, b.size, b.p, "after a failed reallocate");
          break;
        }
        if (huge) fail("reallocate to " + std::to_string(new_size) + " bytes succeeded");
        model::check(b, std::min(b.size, new_size), static_cast<const std::byte*>(q),
                     "reallocate's copy");
        if (b.size != 0) m.extents.erase(reinterpret_cast<std::uintptr_t>(b.p));
        forget_marks_after(b.seq);
        m.blocks.erase(m.blocks.begin() + static_cast<std::ptrdiff_t>(*index));
        m.add(static_cast<std::byte*>(q), new_size, b.alignment, least, b.id);
        break;
      }
      case 10: {  // reset / release: everything free
        if constexpr (
            requires { subject->reset(); } || requires { subject->release(); }) {
          m.check_all("before reset or release");
          bool done = false;
          if constexpr (requires { subject->reset(); }) {
            if ((in.u8() & 1) != 0) {
              if constexpr (std::is_same_v<decltype(subject->reset()), bool>) {
                done = subject->reset();  // false: this one has no reset, nothing changed
              } else {
                subject->reset();
                done = true;
              }
            }
          }
          if constexpr (requires { subject->release(); }) {
            if (!done) {
              subject->release();
              done = true;
            }
          }
          if (!done) break;
          m.blocks.clear();
          m.extents.clear();
          marks.clear();
          m.scopes.clear();
        }
        break;
      }
      case 11: {  // shrink
        if constexpr (requires { subject->shrink(); }) {
          (void)subject->shrink();
          m.check_all("after shrink");
        }
        break;
      }
      case 12: {  // checkpoint
        if constexpr (requires { subject->checkpoint(); }) {
          marks.emplace_back(subject->checkpoint(), m.next_seq);
        }
        break;
      }
      case 13: {  // rewind to a marker still valid
        if constexpr (requires { subject->checkpoint(); }) {
          if (marks.empty()) break;
          const std::size_t index = in.range(0, marks.size() - 1);
          const std::uint64_t seq = marks[index].second;
          if (!m.scopes.empty() && seq < m.scopes.back()) break;  // not past an open scope
          subject->rewind(marks[index].first);
          m.drop_from(seq);
          marks.resize(index + 1);
          m.check_all("after rewind");
        }
        break;
      }
      case 14: {  // open a scope
        if constexpr (requires { subject->open_scope(); }) {
          if (m.scopes.size() < 16) {
            subject->open_scope();
            m.scopes.push_back(m.next_seq);
          }
        }
        break;
      }
      case 15: {  // close the innermost scope, or change the upstream's behaviour
        if constexpr (requires { subject->close_scope(); }) {
          if (!m.scopes.empty() && (op & 0x10) != 0) {
            subject->close_scope();
            const std::uint64_t opened = m.scopes.back();
            m.drop_from(opened);
            m.scopes.pop_back();
            std::erase_if(marks, [&](const auto& mark) { return mark.second > opened; });
            m.check_all("after closing a scope");
            break;
          }
        }
        const std::uint8_t what = in.u8();
        if ((what & 0x80) != 0) {
          upstream.set_falling((what & 1) != 0);
        } else {
          upstream.fail_after(what % 8);
        }
        break;
      }
    }
  }

  // Everything back: close the scopes, free the blocks newest first, destroy.
  upstream.fail_after(-1);
  if constexpr (requires { subject->close_scope(); }) {
    while (!m.scopes.empty()) {
      subject->close_scope();
      m.drop_from(m.scopes.back());
      m.scopes.pop_back();
    }
  }
  while (!m.blocks.empty()) {
    const live_block b = m.blocks.back();
    m.remove(m.blocks.size() - 1);
    r.deallocate(b.p, b.size, b.alignment);
  }
  if constexpr (requires { subject->check_everything_back(); }) subject->check_everything_back();
  subject.reset();
  if (upstream.blocks_in_use() != 0) {
    fail("the upstream did not get every block back: " + std::to_string(upstream.blocks_in_use()) +
         " blocks, " + std::to_string(upstream.bytes_in_use()) + " bytes in use");
  }
  return 0;
}

}  // namespace pmrkit::fuzz

namespace pmrkit::fuzz {

/// The subject of a resource built from `options_from(in)` (over the upstream when it takes
/// one), whose bulk calls are the resource's own: each is there exactly when the resource has it,
/// so the harness finds the same calls on the subject. The least alignment is the options'
/// `alignment` where they have one.
template <class Resource, auto options_from, bool Lifo = false>
struct resource_subject {
  static constexpr bool lifo = Lifo;
  Resource r;

  resource_subject(fuzz_input& in, std::pmr::memory_resource* upstream)
      : resource_subject(options_from(in), upstream, 0) {}
  std::pmr::memory_resource& resource() { return r; }
  [[nodiscard]] std::size_t least_alignment() const {
    if constexpr (requires { r.options().alignment; }) {
      return r.options().alignment;
    } else {
      return 1;
    }
  }
  void reset() requires requires(Resource& x) { x.reset(); }
  { r.reset(); }
  void release() requires requires(Resource& x) { x.release(); }
  { r.release(); }
  std::size_t shrink() requires requires(Resource& x) { x.shrink(); }
  { return r.shrink(); }
  auto checkpoint() requires requires(Resource& x) { x.checkpoint(); }
  { return r.checkpoint(); }
  template <class Marker>
  void rewind(const Marker& marker) requires requires(Resource& x) {
    x.rewind(marker);
  }
  { r.rewind(marker); }

 private:
  template <class Options>
  resource_subject(Options options, std::pmr::memory_resource* upstream, int) requires
      std::constructible_from<Resource, Options, std::pmr::memory_resource*>
      : r(options, upstream) {}
  template <class Options>
  resource_subject(Options options, std::pmr::memory_resource*, long)  // a root: no upstream
      : r(options) {}
};

}  // namespace pmrkit::fuzz

/// Defines LLVMFuzzerTestOneInput for `Subject`.
#define PMRKIT_FUZZ_SUBJECT(Subject)                                                  \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { \
    return pmrkit::fuzz::run_one<Subject>(data, size);                                \
  }
