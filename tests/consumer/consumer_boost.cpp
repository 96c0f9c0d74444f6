// A program outside the pmrkit tree that uses the Boost.Container bridge, the
// component pmrkit::boost (CMake: find_package(pmrkit ... COMPONENTS boost);
// pkg-config: pmrkit-boost): a Boost.Container pmr vector in a pmrkit arena,
// and a std::pmr vector over Boost's new_delete_resource(), which is compiled
// into the Boost.Container library, so that library must reach the link.
#include <pmr/interop/boost_bridge.hpp>
#include <pmr/pmrkit.hpp>

#include <boost/container/pmr/global_resource.hpp>
#include <boost/container/pmr/vector.hpp>

#include <cstdio>
#include <memory_resource>
#include <vector>

int main() {
  pmrkit::test_resource upstream("consumer_boost", std::pmr::new_delete_resource());
  bool ok = true;
  {
    pmrkit::chunked_arena_resource arena({}, &upstream);
    pmrkit::to_boost_resource boost_side(&arena);
    boost::container::pmr::vector<int> numbers(&boost_side);
    for (int i = 0; i < 1000; ++i)
      numbers.push_back(i);
    ok = numbers[999] == 999 && arena.owns(numbers.data());
  }
  pmrkit::from_boost_resource std_side(boost::container::pmr::new_delete_resource());
  {
    std::pmr::vector<int> numbers({1, 2, 3}, &std_side);
    numbers.resize(1000, 7);
    ok = ok && numbers[2] == 3 && numbers[999] == 7;
  }
  ok = ok && upstream.blocks_in_use() == 0;
  std::printf("pmrkit %s consumer (boost bridge): %s\n", PMRKIT_VERSION_STRING,
              ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
