#include <pmr/core/upstream.hpp>

#include <pmr/core/error.hpp>

namespace pmrkit {

void* allocate_from_upstream(std::pmr::memory_resource* upstream, std::size_t bytes,
                             std::size_t alignment, std::string_view resource_name,
                             std::size_t requested, std::size_t requested_alignment) {
  try {
    return upstream->allocate(bytes, alignment);
  } catch (const allocation_error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw_allocation_error(failure_reason::upstream_failed, requested, requested_alignment,
                           resource_name);
  }
}

}  // namespace pmrkit
