#include <pmr/core/reallocate.hpp>

#include <algorithm>
#include <cstring>

namespace pmrkit {

void* reallocate(std::pmr::memory_resource& resource, void* p, std::size_t old_size,
                 std::size_t new_size, std::size_t alignment) {
  if (p == nullptr) return resource.allocate(new_size, alignment);
  if (auto* resizable = dynamic_cast<resizable_resource*>(&resource); resizable != nullptr) {
    if (resizable->try_resize(p, old_size, new_size, alignment)) return p;
    if (void* moved = resizable->reallocate_newest(p, old_size, new_size, alignment)) return moved;
  }
  void* moved = resource.allocate(new_size, alignment);
  std::memcpy(moved, p, std::min(old_size, new_size));
  resource.deallocate(p, old_size, alignment);
  return moved;
}

}  // namespace pmrkit
