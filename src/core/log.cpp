#include <pmr/core/log.hpp>

#include <atomic>
#include <cstdio>

namespace pmrkit {

namespace {
std::atomic<log_handler> installed_handler{&default_log_handler};
}  // namespace

std::string_view to_string(log_level level) noexcept {
  switch (level) {
    case log_level::debug:
      return "debug";
    case log_level::info:
      return "info";
    case log_level::warning:
      return "warning";
    case log_level::error:
      return "error";
  }
  return "unknown";
}

void default_log_handler(log_level level, std::string_view message) noexcept {
  if (level < log_level::warning) return;
  const std::string_view label = to_string(level);
  std::fprintf(stderr, "pmrkit: %.*s: %.*s\n", static_cast<int>(label.size()), label.data(),
               static_cast<int>(message.size()), message.data());
}

log_handler set_log_handler(log_handler handler) noexcept {
  return installed_handler.exchange(handler != nullptr ? handler : &default_log_handler);
}

log_handler get_log_handler() noexcept {
  return installed_handler.load();
}

void log(log_level level, std::string_view message) {
  installed_handler.load()(level, message);
}

}  // namespace pmrkit
