// The peers pmrkit is measured against: the standard library, Boost.Container, foonathan/memory,
// mimalloc and glibc malloc.
#include <dlfcn.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory_resource>
#include <new>

#include <mimalloc.h>
#include <boost/container/pmr/monotonic_buffer_resource.hpp>
#include <boost/container/pmr/synchronized_pool_resource.hpp>
#include <boost/container/pmr/unsynchronized_pool_resource.hpp>
#include <foonathan/memory/memory_pool.hpp>
#include <foonathan/memory/memory_stack.hpp>

#include "registry.hpp"
#include "upstream.hpp"

namespace pmrkit::bench {
namespace {

constexpr std::size_t max_fundamental_alignment = alignof(std::max_align_t);

// glibc malloc/free; aligned_alloc only when malloc's alignment is not enough.
struct malloc_api {
  static constexpr capabilities caps = concurrent;
  void* allocate(std::size_t bytes, std::size_t alignment) {
    void* p = alignment <= max_fundamental_alignment
                  ? std::malloc(bytes)
                  : std::aligned_alloc(alignment, (bytes + alignment - 1) / alignment * alignment);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  void deallocate(void* p, std::size_t, std::size_t) noexcept { std::free(p); }
};

// mimalloc through dlopen, not linking: see bench/CMakeLists.txt.
class mimalloc_api {
 public:
  static constexpr capabilities caps = concurrent;
  static bool available() { return library().free != nullptr; }

  void* allocate(std::size_t bytes, std::size_t alignment) {
    void* p = alignment <= max_fundamental_alignment ? functions_.malloc(bytes)
                                                     : functions_.malloc_aligned(bytes, alignment);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  void deallocate(void* p, std::size_t, std::size_t) noexcept { functions_.free(p); }

 private:
  struct functions {
    decltype(&mi_malloc) malloc = nullptr;
    decltype(&mi_malloc_aligned) malloc_aligned = nullptr;
    decltype(&mi_free) free = nullptr;
  };

  static const functions& library() {
    static const functions loaded = [] {
      functions f;
      void* handle = dlopen(PMRKIT_BENCH_MIMALLOC_PATH, RTLD_NOW | RTLD_LOCAL);
      if (handle == nullptr) handle = dlopen(PMRKIT_BENCH_MIMALLOC_SONAME, RTLD_NOW | RTLD_LOCAL);
      if (handle == nullptr) return f;
      f.malloc = reinterpret_cast<decltype(f.malloc)>(dlsym(handle, "mi_malloc"));
      f.malloc_aligned =
          reinterpret_cast<decltype(f.malloc_aligned)>(dlsym(handle, "mi_malloc_aligned"));
      f.free = reinterpret_cast<decltype(f.free)>(dlsym(handle, "mi_free"));
      if (f.malloc == nullptr || f.malloc_aligned == nullptr) f.free = nullptr;
      return f;
    }();
    return loaded;
  }

  functions functions_ = library();
};

// memory_stack: bump allocation, no individual free, unwind to the start marker as release-all
// (keeps its blocks cached, like a reset).
class foonathan_stack_api {
 public:
  static constexpr capabilities caps = monotonic;
  void* allocate(std::size_t bytes, std::size_t alignment) {
    return stack_.allocate(bytes, alignment);
  }
  void deallocate(void*, std::size_t, std::size_t) noexcept {}
  void release() noexcept { stack_.unwind(start_); }

 private:
  using stack = foonathan::memory::memory_stack<>;
  stack stack_{stack::min_block_size(64 * 1024)};
  stack::marker start_ = stack_.top();
};

// memory_pool: one node size, so it only runs where every request fits a node.
class foonathan_pool_api {
 public:
  static constexpr std::size_t node_size = 32;
  static constexpr capabilities caps{.block_size = node_size};
  void* allocate(std::size_t bytes, std::size_t alignment) {
    // The registry already keeps larger requests away; this keeps the adaptor honest.
    if (bytes > node_size || alignment > max_fundamental_alignment) throw std::bad_alloc();
    return pool_.allocate_node();
  }
  void deallocate(void* p, std::size_t, std::size_t) noexcept { pool_.deallocate_node(p); }

 private:
  using pool = foonathan::memory::memory_pool<>;
  pool pool_{node_size, pool::min_block_size(node_size, 4096)};
};

}  // namespace

// The std and Boost resources take their chunks from counted_upstream() (upstream.hpp), so they
// report upstream_peak; the Boost ones through pmrkit's bridge (counted_boost_upstream()).
void add_peer_rows(registry& rows) {
  rows.add_resource<concurrent>("new_delete", [] { return std::pmr::new_delete_resource(); });
  rows.add_native<malloc_api>("malloc");
  rows.add_resource<monotonic>(
      "std_monotonic", [] { return std::pmr::monotonic_buffer_resource(counted_upstream()); });
  rows.add_resource<releasable>(
      "std_unsync_pool", [] { return std::pmr::unsynchronized_pool_resource(counted_upstream()); });
  rows.add_resource<concurrent_releasable>(
      "std_sync_pool", [] { return std::pmr::synchronized_pool_resource(counted_upstream()); });
  rows.add_resource<monotonic>("boost_monotonic", [] {
    return boost::container::pmr::monotonic_buffer_resource(counted_boost_upstream());
  });
  rows.add_resource<releasable>("boost_unsync_pool", [] {
    return boost::container::pmr::unsynchronized_pool_resource(counted_boost_upstream());
  });
  rows.add_resource<concurrent_releasable>("boost_sync_pool", [] {
    return boost::container::pmr::synchronized_pool_resource(counted_boost_upstream());
  });
  rows.add_native<foonathan_stack_api>("foonathan_stack");
  rows.add_native<foonathan_pool_api>("foonathan_pool");
  if (mimalloc_api::available()) {
    rows.add_native<mimalloc_api>("mimalloc");
  } else {
    std::fprintf(stderr, "pmrkit_bench: cannot load %s, no mimalloc rows\n",
                 PMRKIT_BENCH_MIMALLOC_PATH);
  }
  rows.add<std_allocator_subject>("std_map_default");
}

}  // namespace pmrkit::bench
