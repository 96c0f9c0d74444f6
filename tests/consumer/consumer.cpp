// A program outside the pmrkit tree that uses the core library alone (an
// arena, a test_resource, the literals): proves the headers, the compiled
// library and the generated config header reach a consumer, whichever way it
// finds pmrkit, and that none of it brings Boost (run_consumer.cmake checks
// the link; this file checks that no Boost header came with <pmr/pmrkit.hpp>).
#include <pmr/pmrkit.hpp>

#include <cstdio>
#include <memory_resource>
#include <vector>

// Every Boost header includes <boost/config.hpp>, which defines this.
#if defined(BOOST_CONFIG_HPP)
#error "<pmr/pmrkit.hpp> included a Boost header: the core library must not need Boost"
#endif

int main() {
  using namespace pmrkit::literals;
  pmrkit::test_resource resource("consumer", std::pmr::new_delete_resource());
  {
    std::pmr::vector<int> numbers(&resource);
    for (int i = 0; i < 1000; ++i)
      numbers.push_back(i);
    if (numbers[999] != 999 || resource.blocks_in_use() != 1) return 1;
  }
  pmrkit::chunked_arena_resource arena({}, &resource);
  {
    std::pmr::vector<int> numbers(&arena);
    for (int i = 0; i < 1000; ++i)
      numbers.push_back(i);
    if (numbers[999] != 999 || !arena.owns(numbers.data())) return 1;
  }
  arena.release();
  std::printf("pmrkit %s consumer: %zu allocations, checked=%d, 1_KiB=%zu\n", PMRKIT_VERSION_STRING,
              resource.stats().allocations, PMRKIT_CHECKED, 1_KiB);
  return resource.blocks_in_use() == 0 ? 0 : 1;
}
