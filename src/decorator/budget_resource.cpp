#include <pmr/decorator/budget_resource.hpp>

#include <pmr/core/error.hpp>

namespace pmrkit {

budget_resource::budget_resource(budget_options options, std::pmr::memory_resource* upstream)
    : name_(options.name),
      upstream_(require_upstream(upstream, "pmrkit::budget_resource")),
      threading_(options.threading),
      limit_(options.limit) {}

void budget_resource::refuse(std::size_t bytes, std::size_t alignment) {
  rejections_.add(1, threading_);
  throw budget_exceeded(bytes, alignment, name_, limit(), remaining());
}

}  // namespace pmrkit
