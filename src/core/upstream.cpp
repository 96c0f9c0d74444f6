#include <pmr/core/upstream.hpp>

#include <pmr/core/align.hpp>
#include <pmr/core/error.hpp>

#include <cstdio>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>

namespace pmrkit {

void* allocate_from_upstream(std::pmr::memory_resource* upstream, std::size_t bytes,
                             std::size_t alignment, std::string_view resource_name,
                             std::size_t requested, std::size_t requested_alignment) {
  // A block past PTRDIFF_MAX (a request plus a header, a chunk) can never be had; refused here
  // rather than passed to an upstream that may wrap it into a tiny block (libstdc++'s aligned
  // new) or abort (AddressSanitizer's allocator).
  if (!object_size_fits(bytes)) [[unlikely]] {
    throw_allocation_error(failure_reason::size_overflow, requested, requested_alignment,
                           resource_name);
  }
  try {
    return upstream->allocate(bytes, alignment);
  } catch (...) {
    rethrow_upstream_failure(resource_name, requested, requested_alignment);
  }
}

void rethrow_upstream_failure(std::string_view resource_name, std::size_t requested,
                              std::size_t alignment) {
  try {
    throw;
  } catch (const allocation_error&) {
    throw;
  } catch (const std::bad_alloc& upstream_error) {
    // The message keeps the upstream's text in the error's fixed buffer
    // ("upstream: " + what(), truncated): nothing here allocates but the
    // exception object itself, and the upstream's exception is nested.
    char detail[256];
    std::snprintf(detail, sizeof detail, "upstream: %s", upstream_error.what());
    std::throw_with_nested(allocation_error(failure_reason::upstream_failed, requested, alignment,
                                            resource_name, detail));
  }
}

void throw_null_upstream(std::string_view class_name, std::string_view parameter) {
  std::string message(class_name);
  message.append(": ").append(parameter).append(" must not be null");
  throw std::invalid_argument(message);
}

}  // namespace pmrkit
