#include <pmr/core/violation.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace pmrkit {

namespace {
std::atomic<violation_handler> installed_handler{&default_violation_handler};

// Formats `v` into `buffer`; shared by describe() and the default handler,
// which must not allocate.
void format(const violation& v, char* buffer, std::size_t capacity) noexcept {
  const std::string_view kind = to_string(v.kind);
  const auto name_length = static_cast<int>(v.resource_name.size());
  const char* name = v.resource_name.data();
  const auto kind_length = static_cast<int>(kind.size());
  switch (v.kind) {
    case violation_kind::size_mismatch:
    case violation_kind::alignment_mismatch:
      std::snprintf(buffer, capacity,
                    "pmrkit: '%.*s' %.*s: pointer %p, size %zu (allocated %zu), alignment %zu "
                    "(allocated %zu)",
                    name_length, name, kind_length, kind.data(), v.pointer, v.size, v.expected_size,
                    v.alignment, v.expected_alignment);
      break;
    case violation_kind::leak:
      std::snprintf(buffer, capacity, "pmrkit: '%.*s' %.*s: %zu bytes still in use, first block %p",
                    name_length, name, kind_length, kind.data(), v.size, v.pointer);
      break;
    default:
      std::snprintf(buffer, capacity, "pmrkit: '%.*s' %.*s: pointer %p, size %zu, alignment %zu",
                    name_length, name, kind_length, kind.data(), v.pointer, v.size, v.alignment);
      break;
  }
}
}  // namespace

std::string_view to_string(violation_kind kind) noexcept {
  switch (kind) {
    case violation_kind::foreign_pointer:
      return "foreign pointer";
    case violation_kind::double_free:
      return "double free";
    case violation_kind::size_mismatch:
      return "size mismatch";
    case violation_kind::alignment_mismatch:
      return "alignment mismatch";
    case violation_kind::out_of_order:
      return "out of order";
    case violation_kind::stale_checkpoint:
      return "stale checkpoint";
    case violation_kind::buffer_overrun:
      return "buffer overrun";
    case violation_kind::buffer_underrun:
      return "buffer underrun";
    case violation_kind::leak:
      return "leak";
  }
  return "unknown violation";
}

std::string describe(const violation& v) {
  char buffer[512];
  format(v, buffer, sizeof buffer);
  return buffer;
}

void default_violation_handler(const violation& v) noexcept {
  char buffer[512];
  format(v, buffer, sizeof buffer);
  std::fprintf(stderr, "%s\n", buffer);
  std::fflush(stderr);
  std::abort();
}

violation_handler set_violation_handler(violation_handler handler) noexcept {
  return installed_handler.exchange(handler != nullptr ? handler : &default_violation_handler);
}

violation_handler get_violation_handler() noexcept {
  return installed_handler.load();
}

void report_violation(const violation& v) {
  installed_handler.load()(v);
}

}  // namespace pmrkit
