#include <pmr/arena/arena_resource.hpp>

namespace pmrkit {

std::string_view to_string(arena_strategy strategy) noexcept {
  switch (strategy) {
    case arena_strategy::chained:
      return "chained";
    case arena_strategy::virtual_memory:
      return "virtual";
  }
  return "unknown";
}

}  // namespace pmrkit
