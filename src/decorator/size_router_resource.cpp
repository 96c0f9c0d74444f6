#include <pmr/decorator/size_router_resource.hpp>

#include <pmr/core/options.hpp>

namespace pmrkit {

namespace {

const size_router_options& checked(const size_router_options& options) {
  require_option(options.threshold != 0, "size_router_resource", "threshold", "must not be 0");
  require_option(is_power_of_two(options.max_small_alignment), "size_router_resource",
                 "max_small_alignment", "must be a power of two");
  return options;
}

}  // namespace

size_router_resource::size_router_resource(std::pmr::memory_resource* small,
                                           size_router_options options,
                                           std::pmr::memory_resource* large)
    : threshold_(checked(options).threshold),
      max_small_alignment_(options.max_small_alignment),
      small_(require_upstream(small, "pmrkit::size_router_resource", "small")),
      large_(require_upstream(large, "pmrkit::size_router_resource", "large")),
      name_(options.name) {}

}  // namespace pmrkit
