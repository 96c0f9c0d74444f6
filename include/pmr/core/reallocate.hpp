// reallocate: grow or shrink a block, in place where the resource can.
//
// `pmrkit::reallocate(resource, p, old_size, new_size, alignment)` asks a
// resource that implements `resizable_resource` (the arenas and the stack:
// their most recent block can grow or shrink where it lies) to resize in
// place; otherwise it asks the resource to move the block itself
// (`reallocate_newest`: the stack frees its newest block and takes the new
// one so that LIFO order is kept), and failing that allocates a new block,
// copies min(old, new) bytes and frees the old one. A null `p` is a plain
// allocation. The result is the block to use from now on, with `new_size`
// bytes and `alignment`.
//
// Thread safety: as the resource's.
//
// Example:
//   pmrkit::test_resource resource("buffer");
//   void* p = resource.allocate(16, 8);
//   p = pmrkit::reallocate(resource, p, 16, 64, 8);  // a copy: test_resource cannot grow in place
//   resource.deallocate(p, 64, 8);
#pragma once

#include <cstddef>
#include <memory_resource>

namespace pmrkit {

/// Implemented by resources that can resize some blocks where they lie.
class resizable_resource {
 public:
  /// Resizes the block at `p` (allocated with `old_size` and `alignment`) to
  /// `new_size` without moving it, and returns true; returns false, changing
  /// nothing, when this block cannot be resized in place.
  virtual bool try_resize(void* p, std::size_t old_size, std::size_t new_size,
                          std::size_t alignment) noexcept = 0;
  /// Called by reallocate when try_resize returned false: moves the block at
  /// `p` to a new block of `new_size` bytes, copying min(old_size, new_size)
  /// bytes and freeing `p`, in an order this resource needs (a stack: the new
  /// block must end up the newest, with `p` freed). Returns the new block, or
  /// nullptr, changing nothing, to let reallocate allocate, copy and
  /// deallocate. Throws what allocation throws; `p` is then unchanged. The
  /// default returns nullptr.
  virtual void* reallocate_newest(void* p, std::size_t old_size, std::size_t new_size,
                                  std::size_t alignment) {
    (void)p;
    (void)old_size;
    (void)new_size;
    (void)alignment;
    return nullptr;
  }

 protected:
  resizable_resource() = default;
  resizable_resource(const resizable_resource&) = default;
  resizable_resource& operator=(const resizable_resource&) = default;
  ~resizable_resource() = default;
};

/// Resizes the block `p` of `old_size` bytes to `new_size` bytes: in place
/// when `resource` is a resizable_resource that can, else as its
/// reallocate_newest moves it, else by allocate, copy and deallocate. Throws what
/// `resource.allocate` throws; then `p` is unchanged.
[[nodiscard]] void* reallocate(std::pmr::memory_resource& resource, void* p, std::size_t old_size,
                               std::size_t new_size,
                               std::size_t alignment = alignof(std::max_align_t));

}  // namespace pmrkit
