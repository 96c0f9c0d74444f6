// The log hook: where pmrkit says things that are not errors.
//
// A resource that silently changes course, for example a factory falling back
// from a virtual-memory arena to a chunked one, says so through this hook. The
// default handler prints warnings and errors to stderr as
// "pmrkit: warning: <message>" and drops debug and info messages. Install a
// handler to route messages into an application's logger; nullptr silences
// nothing but restores the default.
//
// Thread safety: the handler is stored atomically; `log` may be called from
// any thread, and the handler must be safe to call concurrently.
//
// Example:
//   pmrkit::log_handler previous =
//       pmrkit::set_log_handler([](pmrkit::log_level level, std::string_view message) {
//         if (level >= pmrkit::log_level::warning) std::clog << "[pmrkit] " << message << '\n';
//       });
//   pmrkit::log(pmrkit::log_level::info, "dropped by this handler");
//   pmrkit::set_log_handler(previous);
#pragma once

#include <string_view>

namespace pmrkit {

enum class log_level : unsigned char { debug, info, warning, error };

/// The lower-case name of `level`, e.g. "warning".
[[nodiscard]] std::string_view to_string(log_level level) noexcept;

using log_handler = void (*)(log_level level, std::string_view message);

/// Prints warnings and errors to stderr; ignores debug and info.
void default_log_handler(log_level level, std::string_view message) noexcept;

/// Installs `handler` (nullptr restores the default) and returns the previous one.
log_handler set_log_handler(log_handler handler) noexcept;

/// The handler now installed.
[[nodiscard]] log_handler get_log_handler() noexcept;

/// Passes `message` to the installed handler.
void log(log_level level, std::string_view message);

}  // namespace pmrkit
