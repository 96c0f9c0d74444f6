#include <pmr/arena/arena_resource.hpp>

#include <atomic>

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

namespace pmrkit::detail {

std::uint64_t next_arena_id() noexcept {
  static std::atomic<std::uint64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

}  // namespace pmrkit::detail
