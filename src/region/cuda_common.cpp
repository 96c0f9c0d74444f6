#include "cuda_common.hpp"

#include <pmr/core/config.hpp>
#include <pmr/core/violation.hpp>

#include <algorithm>
#include <cstdio>

namespace pmrkit::detail::cuda {

error_text::error_text(std::string_view call, cudaError_t error) noexcept : text{} {
  const char* name = cudaGetErrorName(error);
  const char* what = cudaGetErrorString(error);
  std::snprintf(text, sizeof text, "%.*s: %s: %s", static_cast<int>(call.size()), call.data(),
                name != nullptr ? name : "cudaError?", what != nullptr ? what : "unknown error");
}

void throw_cuda_error(std::string_view call, cudaError_t error, std::size_t bytes,
                      std::size_t alignment, std::string_view resource_name) {
  (void)cudaGetLastError();  // a non-sticky error must not surface in the caller's next call
  const failure_reason reason = error == cudaErrorMemoryAllocation
                                    ? failure_reason::out_of_capacity
                                    : failure_reason::upstream_failed;
  throw allocation_error(reason, bytes, alignment, resource_name, error_text(call, error).text);
}

}  // namespace pmrkit::detail::cuda
