// The shm scenarios' rows: pmrkit_shm (pmrkit::shm_resource), boost_ipc
// (boost::interprocess::managed_shared_memory) and pmrkit_multipool, the in-process reference
// that shows what sharing costs. Each shared row allocates inside a POSIX shared memory object of
// its own, named after the process (and a counter) and removed when the subject is destroyed,
// also when building it fails.
#include "registry.hpp"
#include "upstream.hpp"

#include <pmr/core/config.hpp>

#if PMRKIT_HAS_SHM

#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

#include <boost/interprocess/creation_tags.hpp>
#include <boost/interprocess/managed_shared_memory.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <pmr/pool/multipool_resource.hpp>
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

 private:
  struct remove {
    void operator()(const std::string& name) const { pmrkit::shm_segment::remove(name); }
  };
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

 private:
  struct remove {
    void operator()(const std::string& name) const {
      boost::interprocess::shared_memory_object::remove(name.c_str());
    }
  };
  // Boost adds the leading slash.
  owned_name<remove> name_{unique_name("pmrkit-bench-boost")};
  boost::interprocess::managed_shared_memory segment_{boost::interprocess::create_only,
                                                      name_.str().c_str(), segment_size};
};

}  // namespace

void add_shm_rows(registry& rows) {
  rows.add_shm_native<pmrkit_shm_api>("pmrkit_shm");
  // Not thread-safe: in the shm_*_t<N> scenarios each thread has its own.
  rows.add_shm_resource<releasable>("pmrkit_multipool",
                                    [] { return pmrkit::multipool_resource(counted_upstream()); });
  rows.add_shm_native<boost_ipc_api>("boost_ipc");
}

}  // namespace pmrkit::bench

#else

namespace pmrkit::bench {
void add_shm_rows(registry&) {}
}  // namespace pmrkit::bench

#endif
