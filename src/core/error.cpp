#include <pmr/core/error.hpp>

#include <algorithm>
#include <cstdio>

namespace pmrkit {

std::string_view to_string(failure_reason reason) noexcept {
  switch (reason) {
    case failure_reason::out_of_capacity:
      return "out of capacity";
    case failure_reason::budget_exceeded:
      return "budget exceeded";
    case failure_reason::bad_alignment:
      return "bad alignment";
    case failure_reason::size_overflow:
      return "size overflow";
    case failure_reason::upstream_failed:
      return "upstream failed";
    case failure_reason::injected_failure:
      return "injected failure";
  }
  return "unknown failure";
}

allocation_error::allocation_error(failure_reason reason, std::size_t requested,
                                   std::size_t alignment, std::string_view resource_name) noexcept
    : allocation_error(reason, requested, alignment, resource_name, {}) {}

allocation_error::allocation_error(failure_reason reason, std::size_t requested,
                                   std::size_t alignment, std::string_view resource_name,
                                   std::string_view detail) noexcept
    : reason_(reason), requested_(requested), alignment_(alignment), name_{}, message_{} {
  const std::size_t name_length = std::min(resource_name.size(), name_capacity - 1);
  std::copy_n(resource_name.data(), name_length, name_);
  name_[name_length] = '\0';
  const std::string_view why = to_string(reason);
  std::snprintf(message_, message_capacity,
                "pmrkit: '%s' %.*s: requested %zu bytes, alignment %zu%s%.*s", name_,
                static_cast<int>(why.size()), why.data(), requested, alignment,
                detail.empty() ? "" : "; ", static_cast<int>(detail.size()),
                detail.empty() ? "" : detail.data());
}

namespace {
struct budget_detail {
  char text[96];
  budget_detail(std::size_t limit, std::size_t remaining) noexcept {
    std::snprintf(text, sizeof text, "limit %zu, remaining %zu", limit, remaining);
  }
};
}  // namespace

budget_exceeded::budget_exceeded(std::size_t requested, std::size_t alignment,
                                 std::string_view resource_name, std::size_t limit,
                                 std::size_t remaining) noexcept
    : allocation_error(failure_reason::budget_exceeded, requested, alignment, resource_name,
                       budget_detail(limit, remaining).text),
      limit_(limit),
      remaining_(remaining) {}

void throw_allocation_error(failure_reason reason, std::size_t requested, std::size_t alignment,
                            std::string_view resource_name) {
  throw allocation_error(reason, requested, alignment, resource_name);
}

}  // namespace pmrkit
