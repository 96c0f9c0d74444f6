#include <memory_resource>
#include <pmr/pmrkit.hpp>
#include <vector>

int main() {
  pmrkit::test_resource upstream("demo");  // records and checks every block
  std::pmr::vector<int> numbers({1, 2, 3}, &upstream);
  numbers.push_back(4);
  return upstream.blocks_in_use() == 1 ? 0 : 1;  // leaks are reported on destruction
}
