#include <pmr/arena/strings.hpp>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace pmrkit {

std::string_view copy_string(std::pmr::memory_resource& resource, std::string_view text) {
  return copy_string_n(resource, text, text.size());
}

std::string_view copy_string_n(std::pmr::memory_resource& resource, std::string_view text,
                               std::size_t count) {
  const std::size_t length = std::min(count, text.size());
  auto* copy = static_cast<char*>(resource.allocate(length + 1, 1));
  std::memcpy(copy, text.data(), length);
  copy[length] = '\0';
  return {copy, length};
}

std::string_view format_string(std::pmr::memory_resource& resource, const char* format, ...) {
  std::va_list arguments;
  va_start(arguments, format);
  std::va_list measuring;
  va_copy(measuring, arguments);
  const int length = std::vsnprintf(nullptr, 0, format, measuring);
  va_end(measuring);
  if (length < 0) {
    va_end(arguments);
    throw std::invalid_argument("pmrkit::format_string: format could not be applied");
  }
  const auto size = static_cast<std::size_t>(length);
  char* text = nullptr;
  try {
    text = static_cast<char*>(resource.allocate(size + 1, 1));
  } catch (...) {
    va_end(arguments);
    throw;
  }
  std::vsnprintf(text, size + 1, format, arguments);
  va_end(arguments);
  return {text, size};
}

}  // namespace pmrkit
