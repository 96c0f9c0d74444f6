#include <pmr/region/memory_type.hpp>

#include <utility>

namespace pmrkit {

namespace {

constexpr std::array<std::pair<memory_flags, std::string_view>, 4> flag_names{{
    {memory_flags::dma_capable, "dma_capable"},
    {memory_flags::zero_fill, "zero_fill"},
    {memory_flags::huge_pages, "huge_pages"},
    {memory_flags::critical, "critical"},
}};

}  // namespace

std::string_view to_string(memory_type type) noexcept {
  switch (type) {
    case memory_type::system:
      return "system";
    case memory_type::video:
      return "video";
    case memory_type::audio:
      return "audio";
    case memory_type::network:
      return "network";
    case memory_type::shared:
      return "shared";
    case memory_type::temporary:
      return "temporary";
  }
  return "unknown";
}

std::optional<memory_type> parse_memory_type(std::string_view name) noexcept {
  for (const memory_type type : all_memory_types) {
    if (to_string(type) == name) return type;
  }
  return std::nullopt;
}

std::string to_string(memory_flags flags) {
  std::string text;
  for (const auto& [flag, name] : flag_names) {
    if (!has_flag(flags, flag)) continue;
    if (!text.empty()) text += '|';
    text += name;
  }
  return text.empty() ? std::string("none") : text;
}

std::optional<memory_flags> parse_memory_flags(std::string_view text) noexcept {
  memory_flags flags = memory_flags::none;
  while (!text.empty()) {
    const std::size_t end = text.find_first_of("|,");
    const std::string_view name = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (name.empty() || name == "none") continue;
    bool known = false;
    for (const auto& [flag, flag_name] : flag_names) {
      if (flag_name == name) {
        flags |= flag;
        known = true;
      }
    }
    if (!known) return std::nullopt;
  }
  return flags;
}

}  // namespace pmrkit
