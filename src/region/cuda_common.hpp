// What the CUDA page sources share (internal to pmrkit_cuda, not installed):
// turning a CUDA error into an allocation_error (the page size is the OS page layer's). Their
// live blocks are kept in the page sources' one block map (page_map.hpp).
//
// Thread safety: the functions may be called from any thread.
#pragma once

#include <pmr/core/error.hpp>

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string_view>

namespace pmrkit::detail::cuda {

/// "<call>: <error name>: <error string>", in a fixed buffer (no allocation).
struct error_text {
  char text[200];
  error_text(std::string_view call, cudaError_t error) noexcept;
};

/// Clears the runtime's last (non-sticky) error and throws allocation_error:
/// out_of_capacity for cudaErrorMemoryAllocation, upstream_failed for any
/// other error, with error_text(call, error) as its detail.
[[noreturn]] void throw_cuda_error(std::string_view call, cudaError_t error, std::size_t bytes,
                                   std::size_t alignment, std::string_view resource_name);

}  // namespace pmrkit::detail::cuda
