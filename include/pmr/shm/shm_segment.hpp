// shm_segment: a mapping of shared memory that several processes open by
// name, with a header that says what it is and an allocator inside it.
//
// A segment is `size` bytes of shared memory mapped into this process, from
// one of three backends behind one interface:
//   - posix: a POSIX shared memory object (shm_open, under /dev/shm on
//     Linux); named "/name" (the leading slash may be left out);
//   - file: a file (a path), which persists across reboots;
//   - anonymous: an unnamed shared mapping, for tests and for a parent that
//     shares memory with the children it forks (they inherit the mapping).
//
// Its layout: a header page at offset 0 (magic "PMRKSHM1", layout version,
// the segment's size, the base address its creator mapped it at, a state
// word, where the other parts lie), then the user header area (`user_header<T>()`,
// `options.user_header_size` bytes, as Hermes SHM's custom header), then
// the allocator's area, formatted at creation and used by shm_resource.
// Nothing in the segment is a raw pointer: everything is an offset from the
// segment's start, so any process may map it anywhere.
//
// Creation is race-free: the creator takes the name exclusively
// (O_CREAT | O_EXCL), reserves the space with posix_fallocate, and claims the
// state word with a compare-and-swap (uninitialised → initialising); it
// builds the header and the allocator and then publishes "ready". Racing
// `open_or_create` calls build it exactly once: the losers open it and wait
// (at most `options.wait`) for "ready". A full /dev/shm or file system fails
// at creation with a shm_error (no_space) naming the size asked and the space
// free, never with a SIGBUS on first touch.
//
// `open` validates everything before handing the segment out: a missing name,
// a name in use (create), no permission, a wrong magic, version or size, a
// file shorter than its header says, a segment stuck "initialising" past the
// wait, a segment marked corrupted or whose allocator state is invalid: each
// is a shm_error whose code() says which.
//
// The object unmaps on destruction; `remove(name)` deletes the name (the
// memory lives on while some process maps it, as with shm_unlink).
//
// Choose it to share memory between processes; put a shm_resource over it to
// allocate inside it. POSIX only (Linux, the BSDs, macOS).
//
// std::pmr containers hold raw pointers and a `memory_resource*` whose vtable
// is per process; with `fixed_address` the segment is at the same address in
// every process and each process builds its own resource at the same address
// just below it (`shm_resource::at_fixed_address`), so such containers work
// from all of them. Boost.Container's containers with `shm_allocator` need
// neither (offset pointers): choose those when the address cannot be agreed.
//
// Thread safety: a segment object is not shared between threads while it is
// moved or destroyed; its accessors may be called from any thread.
//
// Example:
//   auto segment = pmrkit::shm_segment::create("/pmrkit-doc-segment", 1 << 20,
//                                              {.user_header_size = sizeof(int)});
//   segment.user_header<int>() = 42;
//   {
//     auto again = pmrkit::shm_segment::open("/pmrkit-doc-segment");
//     assert(again.user_header<int>() == 42 && again.size() == (1 << 20));
//     assert(again.base() != segment.base());  // a second mapping of the same memory
//   }
//   assert(pmrkit::shm_segment::remove("/pmrkit-doc-segment"));
#pragma once

#include <pmr/shm/shm_error.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

namespace pmrkit {

/// Where a segment's memory comes from.
enum class shm_backend : unsigned char {
  posix,      ///< shm_open: named "/name", lives until removed or the machine reboots
  file,       ///< a file at a path: persists across reboots
  anonymous,  ///< an unnamed shared mapping: shared with the children this process forks
};

struct shm_segment_options {
  shm_backend backend = shm_backend::posix;
  /// Bytes of the user header area (user_header<T>()); set at creation, read from the header on
  /// open.
  std::size_t user_header_size = 0;
  /// Permission bits of a new segment's name or file.
  unsigned permissions = 0600;
  /// How long open and open_or_create wait for a segment being created elsewhere to become ready.
  std::chrono::milliseconds wait{2000};
  /// Map the segment at the same address in every process (the one its creator
  /// chose, recorded in the header), with a private page just below it where
  /// each process keeps its own shm_resource (shm_resource::at_fixed_address),
  /// so std::pmr containers, which hold raw pointers and a memory_resource*,
  /// work from every process. An address already in use in this process is a
  /// shm_error (address_in_use), never a mapping elsewhere. Named segments only.
  bool fixed_address = false;
  /// With fixed_address, where a creator asks to map it (0: an address derived
  /// from the name, far from where the OS puts libraries, heaps and stacks).
  std::uintptr_t address_hint = 0;
};

class shm_resource;

/// Where a segment lies in this process and what its header says.
class shm_segment {
 public:
  /// The size of the header page at offset 0.
  static constexpr std::size_t header_size = 4096;
  /// The smallest segment: the header, a page of user header and allocator state, and room.
  static constexpr std::size_t min_size = 64 * 1024;

  /// Creates the segment `name` of `size` bytes (rounded up to a page) and
  /// formats it. Throws std::invalid_argument for a bad name or size (saying
  /// why), shm_error for the rest (name_in_use, no_space, permission_denied…).
  [[nodiscard]] static shm_segment create(std::string_view name, std::size_t size,
                                          shm_segment_options options = {});
  /// Opens and validates the existing segment `name` (its size from its header).
  [[nodiscard]] static shm_segment open(std::string_view name, shm_segment_options options = {});
  /// Opens `name` if it exists, else creates it with `size`; exactly one of
  /// several racing callers creates it. created() says which happened. A
  /// segment left "initialising" by a creator that died (its pid gone) is
  /// rebuilt, empty, after options.wait, by exactly one caller (created() is
  /// then true); `open` reports it as still_initialising instead.
  [[nodiscard]] static shm_segment open_or_create(std::string_view name, std::size_t size,
                                                  shm_segment_options options = {});
  /// A new anonymous shared segment (options.backend is ignored).
  [[nodiscard]] static shm_segment anonymous(std::size_t size, shm_segment_options options = {});
  /// Deletes the name (a POSIX name or a file path); the memory lives on while
  /// mapped. Returns false when there was none; throws shm_error otherwise.
  static bool remove(std::string_view name, shm_backend backend = shm_backend::posix);

  /// Throws std::invalid_argument saying why `name` is no valid POSIX shared
  /// memory name: empty, longer than 255 characters after the leading slash,
  /// a slash other than the first character, "." or "..", or a NUL.
  static void validate_name(std::string_view name);

  shm_segment(shm_segment&& other) noexcept;
  shm_segment& operator=(shm_segment&& other) noexcept;
  shm_segment(const shm_segment&) = delete;
  shm_segment& operator=(const shm_segment&) = delete;
  /// Unmaps (the segment itself lives on until removed).
  ~shm_segment();

  /// The name as given to the OS ("/name" for posix, the path for file, "" for anonymous).
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] shm_backend backend() const noexcept { return backend_; }
  /// Bytes mapped, the header included.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// Where the segment starts in this process.
  [[nodiscard]] std::byte* base() const noexcept { return base_; }
  /// The address the segment's creator mapped it at (a hint for mapping it
  /// at the same address elsewhere).
  [[nodiscard]] std::uintptr_t preferred_base() const noexcept;
  /// True when this object created and formatted the segment.
  [[nodiscard]] bool created() const noexcept { return created_; }
  /// True when `p` lies inside the mapping.
  [[nodiscard]] bool contains(const void* p) const noexcept {
    const auto* b = static_cast<const std::byte*>(p);
    return b >= base_ && b < base_ + size_;
  }

  /// The user header area.
  [[nodiscard]] std::span<std::byte> user_header_area() const noexcept;
  /// The user header area as a T (implicit-lifetime: trivially copyable and
  /// default constructible). Throws std::invalid_argument when T does not fit
  /// the area or its alignment exceeds 64.
  template <class T>
  [[nodiscard]] T& user_header() const {
    static_assert(std::is_trivially_copyable_v<T>, "the user header holds plain data only");
    check_user_header(sizeof(T), alignof(T));
    return *reinterpret_cast<T*>(user_header_area().data());
  }
  /// The allocator's area (what shm_resource manages).
  [[nodiscard]] std::span<std::byte> allocator_area() const noexcept;

  /// Marks the segment corrupted: every later open fails with shm_errc::corrupted.
  void mark_corrupted() noexcept;

  /// With fixed_address: the private page below base() where this process's
  /// resource lives (shm_resource::at_fixed_address); else nullptr.
  [[nodiscard]] void* resource_page() const noexcept;
  /// True when mapped with fixed_address (at preferred_base()).
  [[nodiscard]] bool fixed_address() const noexcept { return fixed_; }

 private:
  shm_segment() = default;
  static shm_segment open_impl(std::string_view name, shm_segment_options options,
                               bool rebuild_abandoned);
  void check_user_header(std::size_t size, std::size_t alignment) const;
  void unmap() noexcept;
  void map_fixed_new(int fd, std::size_t size, std::uintptr_t hint, std::string_view path);
  void map_fixed_at(int fd, std::size_t size, std::uintptr_t address, std::string_view path);

  std::string name_;
  shm_backend backend_ = shm_backend::posix;
  std::byte* base_ = nullptr;
  std::size_t size_ = 0;
  bool created_ = false;
  bool fixed_ = false;
  shm_resource* fixed_resource_ = nullptr;  // in resource_page(), destroyed before unmapping

  friend class shm_resource;
};

}  // namespace pmrkit
