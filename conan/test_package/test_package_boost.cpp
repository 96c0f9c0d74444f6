// The Conan package's consumer of the component boost (pmrkit::boost): a
// Boost.Container pmr vector in a pmrkit arena through to_boost_resource, and
// a std::pmr vector over Boost's new_delete_resource() (compiled into the
// Boost.Container library, which must reach the link through the component)
// through from_boost_resource. Exits non-zero on any wrong result.
#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/interop/boost_bridge.hpp>
#include <pmr/testing/test_resource.hpp>

#include <boost/container/pmr/global_resource.hpp>
#include <boost/container/pmr/vector.hpp>

#include <cstdio>
#include <memory_resource>
#include <vector>

int main() {
  pmrkit::test_resource upstream("upstream", std::pmr::new_delete_resource());
  bool ok = true;
  {
    pmrkit::chunked_arena_resource arena({}, &upstream);
    pmrkit::to_boost_resource boost_side(&arena);
    boost::container::pmr::vector<int> numbers(&boost_side);
    for (int i = 0; i < 10000; ++i)
      numbers.push_back(i);
    ok = numbers.size() == 10000 && numbers[9999] == 9999 && arena.owns(numbers.data());
  }
  pmrkit::from_boost_resource std_side(boost::container::pmr::new_delete_resource());
  {
    std::pmr::vector<int> numbers({1, 2, 3}, &std_side);
    numbers.resize(1000, 7);
    ok = ok && numbers[2] == 3 && numbers[999] == 7;
  }
  ok = ok && upstream.blocks_in_use() == 0;
  std::printf("pmrkit %s test_package_boost: %s\n", PMRKIT_VERSION_STRING, ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
