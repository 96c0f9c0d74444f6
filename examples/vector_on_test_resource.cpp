// A std::pmr container over a pmrkit resource: every block the containers
// take is recorded, checked on free and counted.
#include <pmr/testing/test_resource.hpp>

#include <cstdio>
#include <memory_resource>
#include <string>
#include <vector>

int main() {
  pmrkit::test_resource resource("example");
  {
    std::pmr::vector<std::pmr::string> names(&resource);
    for (int i = 0; i < 100; ++i) {
      names.emplace_back("a name long enough to need its own buffer #" + std::to_string(i));
    }
    const pmrkit::test_stats stats = resource.stats();
    std::printf("%zu strings: %zu blocks (%zu bytes) in use, %zu allocations so far\n",
                names.size(), stats.blocks_in_use, stats.bytes_in_use, stats.allocations);
  }
  const pmrkit::test_stats stats = resource.stats();
  std::printf("after the vector is gone: %zu blocks in use, peak %zu bytes, %zu deallocations\n",
              stats.blocks_in_use, stats.peak_bytes_in_use, stats.deallocations);
  return stats.blocks_in_use == 0 ? 0 : 1;
}
