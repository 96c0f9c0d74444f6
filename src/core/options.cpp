#include <pmr/core/options.hpp>

#include <stdexcept>
#include <string>

namespace pmrkit {

void throw_invalid_option(std::string_view class_name, std::string_view field,
                          std::string_view rule) {
  std::string message("pmrkit::");
  message.append(class_name).append(": ").append(field).append(" ").append(rule);
  throw std::invalid_argument(message);
}

}  // namespace pmrkit
