// The Conan package's consumer of the core component (pmrkit::pmrkit): a
// pmrkit arena behind a std::pmr::vector, over a strict test_resource
// upstream. Exits non-zero when the vector's contents, the arena's figures or
// what went back upstream are wrong. It must build without Boost: no Boost
// header may come with pmrkit's headers (checked below), and test_package's
// test() checks that the program links no Boost library.
#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/pmrkit.hpp>
#include <pmr/testing/test_resource.hpp>

#include <cstdio>
#include <memory_resource>
#include <vector>

#if defined(BOOST_CONFIG_HPP)
#error "pmrkit's core headers included a Boost header"
#endif

int main() {
  pmrkit::test_resource upstream("upstream", std::pmr::new_delete_resource());
  pmrkit::chunked_arena_resource arena({}, &upstream);
  bool ok = true;
  {
    std::pmr::vector<int> numbers(&arena);
    for (int i = 0; i < 10000; ++i)
      numbers.push_back(i);
    long long sum = 0;
    for (const int n : numbers)
      sum += n;
    std::printf("pmrkit %s test_package: sum %lld\n", PMRKIT_VERSION_STRING, sum);
    ok = numbers.size() == 10000 && sum == 49995000LL && arena.owns(numbers.data()) &&
         upstream.blocks_in_use() > 0;
  }
  arena.release();
  ok = ok && upstream.blocks_in_use() == 0;
  std::puts(ok ? "test_package: ok" : "test_package: FAILED");
  return ok ? 0 : 1;
}
