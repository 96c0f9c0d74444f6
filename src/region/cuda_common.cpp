#include "cuda_common.hpp"

#include <pmr/core/config.hpp>
#include <pmr/core/violation.hpp>

#include <algorithm>
#include <cstdio>

#if defined(_WIN32)
#include <windows.h>
#else
#include <unistd.h>
#endif

namespace pmrkit::detail::cuda {

std::size_t host_page_size() noexcept {
#if defined(_WIN32)
  SYSTEM_INFO info;
  GetSystemInfo(&info);
  return info.dwPageSize;
#else
  const long size = sysconf(_SC_PAGESIZE);
  return size > 0 ? static_cast<std::size_t>(size) : 4096;
#endif
}

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

void block_table::insert(void* p, const block& b) {
  blocks_.emplace(p, b);
  // A pointer handed out again is no longer a freed one.
  std::replace(recently_freed_.begin(), recently_freed_.end(), p, static_cast<void*>(nullptr));
}

std::optional<block> block_table::take(void* p, std::size_t bytes, std::size_t alignment,
                                       std::string_view resource_name) {
  const auto found = blocks_.find(p);
  if (found == blocks_.end()) {
#if PMRKIT_CHECKED
    report_violation(
        {.kind = recently_freed(p) ? violation_kind::double_free : violation_kind::foreign_pointer,
         .resource_name = resource_name,
         .pointer = p,
         .size = bytes,
         .alignment = alignment});
#else
    (void)bytes;
    (void)alignment;
    (void)resource_name;
#endif
    return std::nullopt;
  }
#if PMRKIT_CHECKED
  const block& b = found->second;
  if (b.bytes != bytes || b.alignment != alignment) {
    report_violation({.kind = b.bytes != bytes ? violation_kind::size_mismatch
                                               : violation_kind::alignment_mismatch,
                      .resource_name = resource_name,
                      .pointer = p,
                      .size = bytes,
                      .alignment = alignment,
                      .expected_size = b.bytes,
                      .expected_alignment = b.alignment});
    return std::nullopt;
  }
#endif
  const block taken = found->second;
  blocks_.erase(found);
  remember_freed(p);
  return taken;
}

void block_table::remember_freed(void* p) noexcept {
  recently_freed_[next_freed_] = p;
  next_freed_ = (next_freed_ + 1) % recently_freed_.size();
}

bool block_table::recently_freed(const void* p) const noexcept {
  return std::find(recently_freed_.begin(), recently_freed_.end(), p) != recently_freed_.end();
}

}  // namespace pmrkit::detail::cuda
