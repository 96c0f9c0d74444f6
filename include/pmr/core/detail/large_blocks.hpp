// large_blocks: requests a resource serves with a block of their own from
// its upstream, tracked so that release() can return them.
//
// Each block gets a small header just before it, linking it into a doubly
// linked list: adding and removing a block is O(1), and release() walks the
// list once. The header records the upstream size and alignment, so the
// block goes back exactly as it came. In checked builds the header also
// names its list, so a pointer that is not one of its blocks is reported
// (`foreign_pointer`) instead of corrupting the list.
//
// A building block shared by several families, hence in core/detail:
// pool_resource uses it for forwarded requests, multipool_resource and
// concurrent_pool_resource for requests above their largest class,
// buddy_resource for requests larger than a region. Their stats() report it
// as `large_blocks_in_use` (count()) and `large_bytes_in_use` (bytes()), and
// add bytes_from_upstream() to their own `bytes_from_upstream`.
//
// Thread safety: none; concurrent_pool_resource locks around it.
//
// Example:
//   std::pmr::memory_resource* upstream = std::pmr::new_delete_resource();
//   pmrkit::detail::large_blocks blocks;
//   void* p = blocks.allocate(upstream, 100000, 64, "example");
//   assert(blocks.count() == 1 && blocks.bytes() == 100000 && p != nullptr);
//   assert(blocks.bytes_from_upstream() > 100000);  // a header before the block
//   blocks.release(upstream);  // p goes back too
//   assert(blocks.count() == 0);
#pragma once

#include <cstddef>
#include <memory_resource>
#include <string_view>

namespace pmrkit::detail {

class large_blocks {
 public:
  large_blocks() = default;
  large_blocks(const large_blocks&) = delete;
  large_blocks& operator=(const large_blocks&) = delete;

  /// `bytes` at `alignment` (a power of two) from `upstream`, tracked. Throws
  /// allocation_error naming `name` when the size overflows or the upstream fails.
  [[nodiscard]] void* allocate(std::pmr::memory_resource* upstream, std::size_t bytes,
                               std::size_t alignment, std::string_view name);
  /// Returns `p`, one of its blocks, to `upstream`. In checked builds a
  /// pointer that is not one of its blocks is a foreign_pointer violation
  /// naming `name`, and is ignored.
  void deallocate(std::pmr::memory_resource* upstream, void* p, std::size_t bytes,
                  std::size_t alignment, std::string_view name) noexcept;
  /// Returns every block to `upstream`.
  void release(std::pmr::memory_resource* upstream) noexcept;

  /// Blocks held, and the bytes asked for them.
  [[nodiscard]] std::size_t count() const noexcept { return count_; }
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
  /// Bytes taken from the upstream for them, headers included.
  [[nodiscard]] std::size_t bytes_from_upstream() const noexcept { return from_upstream_; }

 public:
  struct header;  // before each block (defined in the source file)

 private:
  void unlink_and_return(std::pmr::memory_resource* upstream, header* h) noexcept;

  header* newest_ = nullptr;
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;
  std::size_t from_upstream_ = 0;
};

}  // namespace pmrkit::detail
