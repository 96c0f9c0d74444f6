// Fuzzes memory_system_config::parse, the file syntax of a memory system's
// config: any text either parses or throws std::invalid_argument naming the
// source, line and key (never another exception, never a crash), and a
// config that parses either builds a memory_system or is refused by its
// constructor with std::invalid_argument (or allocation_error when the pages
// it asks for cannot be had).
#include "fuzz_harness.hpp"

#include <pmr/region/memory_system.hpp>

#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  pmrkit::memory_system_config config;
  try {
    config = pmrkit::memory_system_config::parse(text, "fuzz");
  } catch (const std::invalid_argument& e) {
    if (std::string_view(e.what()).find("fuzz") == std::string_view::npos) {
      pmrkit::fuzz::fail(std::string("a parse error that does not name its source: ") + e.what());
    }
    return 0;
  }
  // Keep what is built small: the machine's memory is not what is fuzzed.
  std::size_t total = 0;
  for (const pmrkit::region_spec& region : config.regions) {
    if (!region.segment_name.empty() || region.capacity > (std::size_t{64} << 20)) return 0;
    total += region.capacity;
  }
  if (total > (std::size_t{256} << 20) || config.emergency_reserve > (std::size_t{64} << 20)) {
    return 0;
  }
  try {
    pmrkit::memory_system system(config);
    (void)system.format();
  } catch (const std::invalid_argument&) {
  } catch (const pmrkit::allocation_error&) {
  }
  return 0;
}
