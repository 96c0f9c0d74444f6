#include <pmr/arena/make_arena.hpp>

#include <pmr/core/error.hpp>
#include <pmr/core/log.hpp>

#include <algorithm>
#include <string>

namespace pmrkit {

namespace {
constexpr std::size_t min_commit_step = std::size_t{64} << 10;
constexpr std::size_t default_max_chunk = std::size_t{64} << 10;

std::unique_ptr<arena_resource> make_chunked(const arena_options& config,
                                             std::pmr::memory_resource* upstream) {
  return std::make_unique<chunked_arena_resource>(
      chunked_arena_options{.initial_chunk_size = config.initial_size,
                            .max_chunk_size = std::max(default_max_chunk, config.initial_size),
                            .growth_factor = config.growth_factor,
                            .name = config.name},
      upstream);
}

void warn_fallback(const arena_options& config, std::string_view why) {
  std::string message = "make_arena: no virtual memory arena for '";
  message.append(config.name).append("' (").append(why).append("); using a chunked arena");
  log(log_level::warning, message);
}
}  // namespace

std::unique_ptr<arena_resource> make_arena(const arena_options& config,
                                           std::pmr::memory_resource* upstream) {
  const bool wants_virtual =
      !config.strategy.has_value() || *config.strategy == arena_strategy::virtual_memory;
  if (!wants_virtual) return make_chunked(config, upstream);
  if (!vmem_arena_resource::available()) {
    // Only an explicit request deserves a warning: the default means "where available".
    if (config.strategy.has_value()) {
      warn_fallback(config, "this build or system has no virtual memory layer");
    }
    return make_chunked(config, upstream);
  }
  const vmem_arena_options options{
      .reserve = config.max_reserve,
      .commit_step = std::max(config.initial_size, min_commit_step),
      .retain_on_reset = std::min(vmem_arena_options{}.retain_on_reset, config.max_reserve),
      .name = config.name};
  try {
    return std::make_unique<vmem_arena_resource>(options, upstream);
  } catch (const allocation_error& e) {
    if (e.reason() != failure_reason::out_of_capacity) throw;
    warn_fallback(config, e.what());
    return make_chunked(config, upstream);
  }
}

}  // namespace pmrkit
