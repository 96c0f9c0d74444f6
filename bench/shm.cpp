// The shm scenarios' rows: pmrkit_shm (pmrkit::shm_resource), boost_ipc
// (boost::interprocess::managed_shared_memory) and pmrkit_multipool, the in-process reference
// that shows what sharing costs. Each shared row allocates inside a POSIX shared memory object of
// its own, named after the process (and a counter) and removed when the subject is destroyed,
// also when building it fails.
//
// The shm_map_insert scenario (custom rows): one timed iteration constructs a map of int to int
// in shared memory, inserts map_items pairs (container_keys(), duplicates included, so somewhat
// fewer nodes) and destroys the map. pmrkit_shm_boost_map is boost::container::map with
// pmrkit::shm_allocator, the map object itself in the segment (as a named object would be), so
// any process could use it; boost_ipc_map is boost::interprocess::map with
// boost::interprocess::allocator in a managed_shared_memory, also in its segment;
// pmrkit_shm_pmr_map is std::pmr::map over the shm_resource, the map object on the stack: its
// nodes are in the segment but hold raw pointers, valid only at this mapping's address.
#include "registry.hpp"
#include "upstream.hpp"
#include "workload.hpp"

#include <pmr/core/config.hpp>

#if PMRKIT_HAS_SHM

#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory_resource>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <boost/container/map.hpp>
#include <boost/interprocess/allocators/allocator.hpp>
#include <boost/interprocess/containers/map.hpp>
#include <boost/interprocess/creation_tags.hpp>
#include <boost/interprocess/managed_shared_memory.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <pmr/pool/multipool_resource.hpp>
#include <pmr/shm/shm_allocator.hpp>
#include <pmr/shm/shm_resource.hpp>
#include <pmr/shm/shm_segment.hpp>

namespace pmrkit::bench {
namespace {

// Both shared rows get a segment of this size: far more than any scenario keeps live (the
// uniform churn with two threads, about 16 MiB), so neither runs short or fragments into failure.
constexpr std::size_t segment_size = std::size_t{256} << 20;

// "<prefix>-<pid>-<n>": unique in the process (n counts) and among processes (the pid), so
// concurrent runs do not collide and a leftover of a killed run is recognisable.
std::string unique_name(std::string_view prefix) {
  static std::atomic<unsigned> counter = 0;
  return std::string(prefix) + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
}

// A shared memory name that is removed when this is destroyed. The first member of a subject, so
// the name goes once the segment is unmapped, and also when building the segment or what follows
// throws (the members built so far are destroyed).
template <class Remove>
class owned_name {
 public:
  explicit owned_name(std::string name) : name_(std::move(name)) {}
  owned_name(const owned_name&) = delete;
  owned_name& operator=(const owned_name&) = delete;
  ~owned_name() {
    try {
      Remove{}(name_);
    } catch (const std::exception&) {  // a destructor must not throw; the name is then left
    }
  }
  const std::string& str() const noexcept { return name_; }

 private:
  std::string name_;
};

// pmrkit::shm_resource, default options, over a POSIX segment it takes over.
class pmrkit_shm_api {
 public:
  static constexpr capabilities caps = concurrent;

  pmrkit_shm_api() = default;
  pmrkit_shm_api(const pmrkit_shm_api&) = delete;
  pmrkit_shm_api& operator=(const pmrkit_shm_api&) = delete;

  void* allocate(std::size_t bytes, std::size_t alignment) {
    return resource_.allocate(bytes, alignment);
  }
  void deallocate(void* p, std::size_t bytes, std::size_t alignment) {
    resource_.deallocate(p, bytes, alignment);
  }

  struct remove {
    void operator()(const std::string& name) const { pmrkit::shm_segment::remove(name); }
  };

 private:
  owned_name<remove> name_{unique_name("/pmrkit-bench-shm")};
  pmrkit::shm_resource resource_{pmrkit::shm_segment::create(name_.str(), segment_size),
                                 pmrkit::shm_resource_options{}};
};

// boost::interprocess::managed_shared_memory: rbtree_best_fit over mutex_family (a
// process-shared mutex around every call), the default. allocate throws bad_alloc when full.
class boost_ipc_api {
 public:
  static constexpr capabilities caps = concurrent;

  boost_ipc_api() = default;
  boost_ipc_api(const boost_ipc_api&) = delete;
  boost_ipc_api& operator=(const boost_ipc_api&) = delete;

  void* allocate(std::size_t bytes, std::size_t alignment) {
    // rbtree_best_fit aligns every block to alignof(std::max_align_t).
    return alignment <= alignof(std::max_align_t) ? segment_.allocate(bytes)
                                                  : segment_.allocate_aligned(bytes, alignment);
  }
  void deallocate(void* p, std::size_t, std::size_t) { segment_.deallocate(p); }

  struct remove {
    void operator()(const std::string& name) const {
      boost::interprocess::shared_memory_object::remove(name.c_str());
    }
  };

 private:
  // Boost adds the leading slash.
  owned_name<remove> name_{unique_name("pmrkit-bench-boost")};
  boost::interprocess::managed_shared_memory segment_{boost::interprocess::create_only,
                                                      name_.str().c_str(), segment_size};
};

// --- shm_map_insert ------------------------------------------------------------------------------

constexpr std::size_t map_items = 10000;
constexpr std::size_t map_segment_size = std::size_t{64} << 20;

std::span<const int> map_keys() {
  return container_keys().first(map_items);
}

// Inserts the keys into `map` (each key maps to its index) and checks the map's size.
template <class Map>
void fill(Map& map, std::span<const int> keys, std::size_t& size) {
  int value = 0;
  for (const int key : keys)
    map.emplace(key, value++);
  size = map.size();
}

// The timed loop: `one_map(size)` builds, fills and destroys one map, setting `size`.
template <class OneMap>
void run_map_insert(benchmark::State& state, OneMap one_map) {
  std::size_t size = 0;
  one_map(size);  // untimed: the segment's pages touched, the caches filled
  const std::size_t expected = size;
  for (auto _ : state) {
    one_map(size);
    benchmark::DoNotOptimize(size);
  }
  if (size != expected || size == 0) state.SkipWithError("the map lost nodes");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * map_items));
}

void pmrkit_shm_boost_map(benchmark::State& state) {
  using map = boost::container::map<int, int, std::less<int>,
                                    pmrkit::shm_allocator<std::pair<const int, int>>>;
  const owned_name<pmrkit_shm_api::remove> name(unique_name("/pmrkit-bench-shm-map"));
  pmrkit::shm_resource resource(pmrkit::shm_segment::create(name.str(), map_segment_size),
                                pmrkit::shm_resource_options{});
  const std::span<const int> keys = map_keys();
  run_map_insert(state, [&](std::size_t& size) {
    const pmrkit::full_ptr<map> m = resource.new_object<map>(resource);
    fill(*m, keys, size);
    resource.delete_object(m);
  });
}

void boost_ipc_map(benchmark::State& state) {
  namespace ipc = boost::interprocess;
  using allocator =
      ipc::allocator<std::pair<const int, int>, ipc::managed_shared_memory::segment_manager>;
  using map = ipc::map<int, int, std::less<int>, allocator>;
  const owned_name<boost_ipc_api::remove> name(unique_name("pmrkit-bench-boost-map"));
  ipc::managed_shared_memory segment(ipc::create_only, name.str().c_str(), map_segment_size);
  const std::span<const int> keys = map_keys();
  run_map_insert(state, [&](std::size_t& size) {
    map* m = segment.construct<map>(ipc::anonymous_instance)(
        std::less<int>(), allocator(segment.get_segment_manager()));
    fill(*m, keys, size);
    segment.destroy_ptr(m);
  });
}

void pmrkit_shm_pmr_map(benchmark::State& state) {
  const owned_name<pmrkit_shm_api::remove> name(unique_name("/pmrkit-bench-shm-map"));
  pmrkit::shm_resource resource(pmrkit::shm_segment::create(name.str(), map_segment_size),
                                pmrkit::shm_resource_options{});
  const std::span<const int> keys = map_keys();
  run_map_insert(state, [&](std::size_t& size) {
    std::pmr::map<int, int> m(&resource);
    fill(m, keys, size);
  });
}

}  // namespace

void add_shm_rows(registry& rows) {
  rows.add_shm_native<pmrkit_shm_api>("pmrkit_shm");
  // Not thread-safe: in the shm_*_t<N> scenarios each thread has its own.
  rows.add_shm_resource<releasable>("pmrkit_multipool",
                                    [] { return pmrkit::multipool_resource(counted_upstream()); });
  rows.add_shm_native<boost_ipc_api>("boost_ipc");
  rows.add_custom("shm_map_insert", "pmrkit_shm_boost_map", pmrkit_shm_boost_map);
  rows.add_custom("shm_map_insert", "pmrkit_shm_pmr_map", pmrkit_shm_pmr_map);
  rows.add_custom("shm_map_insert", "boost_ipc_map", boost_ipc_map);
}

}  // namespace pmrkit::bench

#else

namespace pmrkit::bench {
void add_shm_rows(registry&) {}
}  // namespace pmrkit::bench

#endif
