// What shm_pmr_test and shm_child's pmr_containers role share: std::pmr
// containers living in a segment mapped with fixed_address, found by name.
#pragma once

#include <map>
#include <memory_resource>
#include <string>
#include <unordered_map>
#include <vector>

namespace shm_pmr {

using map_type = std::pmr::map<int, std::pmr::string>;
using strings_type = std::pmr::vector<std::pmr::string>;
using counts_type = std::pmr::unordered_map<int, long>;

inline constexpr const char* map_name = "map";
inline constexpr const char* strings_name = "strings";
inline constexpr const char* counts_name = "counts";

// A string long enough to live outside the string object (no small-string buffer).
inline std::string text(int i) {
  return "value number " + std::to_string(i) + " that is longer than a small string";
}

}  // namespace shm_pmr
