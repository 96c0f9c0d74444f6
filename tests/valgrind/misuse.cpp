// Misuses of pooled and arena memory that only memcheck's client requests make
// visible (core/poison.hpp): the blocks stay inside a chunk the resource holds
// from its upstream, so without the requests memcheck sees an ordinary read of
// allocated memory and says nothing. Each case is run under Valgrind by
// tests/valgrind/expect_report.cmake (ctest: valgrind.<case>), which expects
// memcheck's report; a case run without Valgrind does the same misuse quietly.
//
//   misuse has_memcheck         prints 1 when the client requests are compiled in
//   misuse pool_after_free      reads a pool_resource block after deallocate (magazine)
//   misuse pool_free_list       reads a block spilled onto the free list (its link word)
//   misuse multipool_after_free reads a multipool_resource block after deallocate
//   misuse concurrent_after_free reads a concurrent_pool_resource block in a thread cache
//   misuse arena_after_reset    reads a chunked_arena_resource block after reset()
//   misuse buddy_after_free     reads a buddy_resource block after deallocate
//   misuse pool_uninitialised   branches on a recycled pool block never written since
//   misuse pool_clean           allocates, writes, frees and reuses properly (no report)
#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/buddy/buddy_resource.hpp>
#include <pmr/core/poison.hpp>
#include <pmr/pool/concurrent_pool_resource.hpp>
#include <pmr/pool/multipool_resource.hpp>
#include <pmr/pool/pool_resource.hpp>

#include <cstdio>
#include <cstring>
#include <memory_resource>
#include <string_view>
#include <vector>

namespace {

// Reads one byte through a volatile pointer, so the read is really made.
int peek(const void* p) {
  return *static_cast<const volatile unsigned char*>(p);
}

int pool_after_free() {
  pmrkit::pool_resource pool({.block_size = 64}, std::pmr::new_delete_resource());
  void* p = pool.allocate(64, 8);
  std::memset(p, 1, 64);
  pool.deallocate(p, 64, 8);
  return peek(static_cast<char*>(p) + 40);
}

int pool_free_list() {
  pmrkit::pool_resource pool({.block_size = 32, .initial_blocks = 64},
                             std::pmr::new_delete_resource());
  std::vector<void*> blocks;
  for (int i = 0; i < 50; ++i)
    blocks.push_back(pool.allocate(32, 8));
  // More than the magazine holds: the first freed are spilled onto the free list.
  for (int i = 0; i < 40; ++i)
    pool.deallocate(blocks[i], 32, 8);
  return peek(blocks[0]);  // the link word
}

int multipool_after_free() {
  pmrkit::multipool_resource pool(std::pmr::new_delete_resource());
  void* p = pool.allocate(24, 8);
  std::memset(p, 1, 24);
  pool.deallocate(p, 24, 8);
  return peek(static_cast<char*>(p) + 20);
}

int concurrent_after_free() {
  pmrkit::concurrent_pool_resource pool(std::pmr::new_delete_resource());
  void* p = pool.allocate(64, 8);
  std::memset(p, 1, 64);
  pool.deallocate(p, 64, 8);
  return peek(static_cast<char*>(p) + 8);
}

int arena_after_reset() {
  pmrkit::chunked_arena_resource arena({}, std::pmr::new_delete_resource());
  void* p = arena.allocate(64, 8);
  std::memset(p, 1, 64);
  arena.reset();
  return peek(p);
}

int buddy_after_free() {
  pmrkit::buddy_resource buddy(std::pmr::new_delete_resource());
  (void)buddy.allocate(64, 8);  // keeps the region from being given back
  void* p = buddy.allocate(64, 8);
  std::memset(p, 1, 64);
  buddy.deallocate(p, 64, 8);
  return peek(p);
}

int pool_uninitialised() {
  pmrkit::pool_resource pool({.block_size = 64}, std::pmr::new_delete_resource());
  void* first = pool.allocate(64, 8);
  std::memset(first, 1, 64);
  pool.deallocate(first, 64, 8);
  // The same block again: written before it was freed, but undefined to its new owner.
  auto* p = static_cast<unsigned char*>(pool.allocate(64, 8));
  int result = 0;
  if (p[40] == 1) result = 1;  // a conditional jump on undefined bytes
  pool.deallocate(p, 64, 8);
  return result;
}

int pool_clean() {
  pmrkit::pool_resource pool({.block_size = 32, .initial_blocks = 64},
                             std::pmr::new_delete_resource());
  std::vector<unsigned char*> blocks;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 50; ++i) {
      auto* p = static_cast<unsigned char*>(pool.allocate(32, 8));
      std::memset(p, i, 32);
      blocks.push_back(p);
    }
    int sum = 0;
    for (unsigned char* p : blocks)
      sum += p[31];
    if (sum != 49 * 50 / 2) return 1;
    for (unsigned char* p : blocks)
      pool.deallocate(p, 32, 8);
    blocks.clear();
    (void)pool.shrink();
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view which = argc > 1 ? argv[1] : "";
  int value = 0;
  if (which == "has_memcheck") {
    std::printf("%d\n", PMRKIT_HAS_MEMCHECK);
    return 0;
  }
  if (which == "has_asan") {
    std::printf("%d\n", PMRKIT_HAS_ASAN);
    return 0;
  }
  if (which == "pool_after_free") {
    value = pool_after_free();
  } else if (which == "pool_free_list") {
    value = pool_free_list();
  } else if (which == "multipool_after_free") {
    value = multipool_after_free();
  } else if (which == "concurrent_after_free") {
    value = concurrent_after_free();
  } else if (which == "arena_after_reset") {
    value = arena_after_reset();
  } else if (which == "buddy_after_free") {
    value = buddy_after_free();
  } else if (which == "pool_uninitialised") {
    value = pool_uninitialised();
  } else if (which == "pool_clean") {
    return pool_clean();
  } else {
    std::fprintf(stderr, "misuse: unknown case '%s'\n", argc > 1 ? argv[1] : "");
    return 2;
  }
  std::printf("%s: read %d\n", argv[1], value);
  return 0;
}
