// A program outside the pmrkit tree: proves the headers, the compiled library
// and the generated config header reach a consumer, whichever way it finds
// pmrkit.
#include <pmr/pmrkit.hpp>

#include <cstdio>
#include <memory_resource>
#include <vector>

int main() {
  using namespace pmrkit::literals;
  pmrkit::test_resource resource("consumer", std::pmr::new_delete_resource());
  {
    std::pmr::vector<int> numbers(&resource);
    for (int i = 0; i < 1000; ++i)
      numbers.push_back(i);
    if (numbers[999] != 999 || resource.blocks_in_use() != 1) return 1;
  }
  std::printf("pmrkit %s consumer: %zu allocations, checked=%d, 1_KiB=%zu\n", PMRKIT_VERSION_STRING,
              resource.stats().allocations, PMRKIT_CHECKED, 1_KiB);
  return resource.blocks_in_use() == 0 ? 0 : 1;
}
