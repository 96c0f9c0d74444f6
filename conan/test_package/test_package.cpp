// The Conan package's consumer: a pmrkit arena behind a std::pmr::vector, over
// a strict test_resource upstream. Exits non-zero when the vector's contents,
// the arena's figures or what went back upstream are wrong. It also calls into
// the compiled Boost.Container library, which must reach a consumer through
// pmrkit's requirement (pmrkit links Boost::container publicly).
#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/testing/test_resource.hpp>

#include <boost/container/pmr/global_resource.hpp>
#include <cstdio>
#include <memory_resource>
#include <vector>

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
    const auto stats = arena.stats();
    std::printf("pmrkit %s test_package: sum %lld, %zu chunks, %zu bytes from upstream\n",
                PMRKIT_VERSION_STRING, sum, stats.chunk_count, stats.bytes_from_upstream);
    ok = numbers.size() == 10000 && sum == 49995000LL && stats.bytes_from_upstream > 0 &&
         upstream.blocks_in_use() > 0;
  }
  arena.release();
  ok = ok && upstream.blocks_in_use() == 0;
  ok = ok && boost::container::pmr::new_delete_resource() != nullptr;
  std::puts(ok ? "test_package: ok" : "test_package: FAILED");
  return ok ? 0 : 1;
}
