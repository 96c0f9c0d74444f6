// The resources docs/errors.md covers, each built over a strict upstream, so
// that a row's test can run the same bad input against every one of them.
#pragma once

#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/arena/concurrent_arena_resource.hpp>
#include <pmr/arena/local_arena.hpp>
#include <pmr/arena/make_arena.hpp>
#include <pmr/arena/stack_resource.hpp>
#include <pmr/arena/vmem_arena_resource.hpp>
#include <pmr/buddy/buddy_resource.hpp>
#include <pmr/core/config.hpp>
#include <pmr/decorator/budget_resource.hpp>
#include <pmr/decorator/fallback_resource.hpp>
#include <pmr/decorator/guarded_resource.hpp>
#include <pmr/decorator/pressure_resource.hpp>
#include <pmr/decorator/size_router_resource.hpp>
#include <pmr/decorator/statistics_resource.hpp>
#include <pmr/decorator/synchronized_resource.hpp>
#include <pmr/decorator/trace_resource.hpp>
#include <pmr/pool/concurrent_pool_resource.hpp>
#include <pmr/pool/multipool_resource.hpp>
#include <pmr/pool/pool_resource.hpp>
#include <pmr/region/locked_page_resource.hpp>
#include <pmr/region/memory_system.hpp>
#include <pmr/region/page_resource.hpp>
#include <pmr/region/region_resource.hpp>
#include <pmr/testing/test_resource.hpp>
#if PMRKIT_HAS_SHM
#include <pmr/shm/shm_resource.hpp>
#endif

#include <functional>
#include <memory>
#include <memory_resource>
#include <string>
#include <vector>

namespace errors_test {

using namespace std::string_literals;

// One resource under test and whatever it needs to live.
struct subject {
  virtual ~subject() = default;
  std::pmr::memory_resource* resource = nullptr;
};

// Owns the parts of a subject and destroys them newest first (the resource before its upstream).
struct holder final : subject {
  std::vector<std::shared_ptr<void>> parts;
  ~holder() override {
    while (!parts.empty())
      parts.pop_back();
  }
};

struct entry {
  std::string name;
  std::function<std::unique_ptr<subject>(std::pmr::memory_resource* upstream)> make;
};

// A subject owning `parts...` (resources, each the upstream of the next), the last of which is
// the resource under test.
template <class... Parts>
std::unique_ptr<subject> own(std::unique_ptr<Parts>... parts) {
  auto h = std::make_unique<holder>();
  ((h->resource = parts.get()), ...);
  (h->parts.push_back(std::shared_ptr<Parts>(std::move(parts))), ...);
  return h;
}

// Every std::pmr::memory_resource of pmrkit, over `upstream` where it has one (the page
// sources, memory_system and shm_resource have none).
inline std::vector<entry> every_resource() {
  using namespace pmrkit;
  std::vector<entry> list;
  list.push_back({"chunked_arena_resource", [](std::pmr::memory_resource* up) {
                    return own(std::make_unique<chunked_arena_resource>(up));
                  }});
  list.push_back({"local_arena<1024>", [](std::pmr::memory_resource* up) {
                    return own(std::make_unique<local_arena<1024>>(up));
                  }});
  list.push_back({"concurrent_arena_resource", [](std::pmr::memory_resource* up) {
                    return own(std::make_unique<concurrent_arena_resource>(up));
                  }});
  if (vmem_arena_resource::available()) {  // PMRKIT_ENABLE_VIRTUAL=OFF: it always throws
    list.push_back({
        "vmem_arena_resource",
        [](std::pmr::memory_resource* up) {
          return own(std::make_unique<vmem_arena_resource>(
              vmem_arena_options{.reserve = std::size_t{1} << 24}, up));
        },
    });
  }
  list.push_back({"stack_resource", [](std::pmr::memory_resource* up) {
                    return own(std::make_unique<stack_resource>(up));
                  }});
  list.push_back({"make_arena", [](std::pmr::memory_resource* up) {
                    return own(make_arena({.initial_size = 4096}, up));
                  }});
  list.push_back({
      "pool_resource",
      [](std::pmr::memory_resource* up) {
        return own(std::make_unique<pool_resource>(pool_options{.block_size = 32}, up));
      },
  });
  list.push_back({"multipool_resource", [](std::pmr::memory_resource* up) {
                    return own(std::make_unique<multipool_resource>(up));
                  }});
  list.push_back({"concurrent_pool_resource", [](std::pmr::memory_resource* up) {
                    return own(std::make_unique<concurrent_pool_resource>(up));
                  }});
  list.push_back({
      "buddy_resource",
      [](std::pmr::memory_resource* up) {
        return own(std::make_unique<buddy_resource>(
            buddy_options{.region_size = std::size_t{1} << 16}, up));
      },
  });
  list.push_back({
      "budget_resource",
      [](std::pmr::memory_resource* up) {
        return own(
            std::make_unique<budget_resource>(budget_options{.limit = std::size_t{1} << 30}, up));
      },
  });
  list.push_back({"statistics_resource", [](std::pmr::memory_resource* up) {
                    return own(std::make_unique<statistics_resource>(up));
                  }});
  list.push_back({"synchronized_resource", [](std::pmr::memory_resource* up) {
                    return own(std::make_unique<synchronized_resource>(up));
                  }});
  list.push_back({"trace_resource", [](std::pmr::memory_resource* up) {
                    return own(std::make_unique<trace_resource>(up));  // in memory
                  }});
  list.push_back({
      "size_router_resource",
      [](std::pmr::memory_resource* up) {
        auto small = std::make_unique<multipool_resource>(up);
        auto router = std::make_unique<size_router_resource>(small.get(), up);
        return own(std::move(small), std::move(router));
      },
  });
  list.push_back({
      "fallback_resource",
      [](std::pmr::memory_resource* up) {
        auto pool = std::make_unique<pool_resource>(
            pool_options{.block_size = 32, .on_mismatch = pool_mismatch::reject}, up);
        auto fallback = std::make_unique<fallback_resource<pool_resource>>(pool.get(), up);
        return own(std::move(pool), std::move(fallback));
      },
  });
  list.push_back({
      "pressure_resource",
      [](std::pmr::memory_resource* up) {
        return own(std::make_unique<pressure_resource>(
            pressure_options{.capacity = std::size_t{1} << 30}, up));
      },
  });
  list.push_back({"guarded_resource", [](std::pmr::memory_resource* up) {
                    return own(std::make_unique<guarded_resource>(up));
                  }});
  list.push_back({"test_resource", [](std::pmr::memory_resource* up) {
                    return own(std::make_unique<test_resource>(up));
                  }});
  list.push_back({"page_resource", [](std::pmr::memory_resource*) {
                    return own(std::make_unique<page_resource>());
                  }});
  list.push_back({
      "locked_page_resource",
      [](std::pmr::memory_resource*) {
        auto pages = std::make_unique<page_resource>();
        auto locked = std::make_unique<locked_page_resource>(pages.get());
        return own(std::move(pages), std::move(locked));
      },
  });
  list.push_back({
      "region_resource",
      [](std::pmr::memory_resource* up) {
        return own(std::make_unique<region_resource>(
            region_spec::for_type(memory_type::video, std::size_t{1} << 20), up));
      },
  });
  list.push_back({
      "memory_system.resource()",
      [](std::pmr::memory_resource*) {
        auto system = std::make_unique<memory_system>();
        struct view final : subject {
          std::unique_ptr<memory_system> system;
        };
        auto v = std::make_unique<view>();
        v->resource = system->resource();
        v->system = std::move(system);
        return std::unique_ptr<subject>(std::move(v));
      },
  });
#if PMRKIT_HAS_SHM
  list.push_back({
      "shm_resource",
      [](std::pmr::memory_resource*) {
        return own(std::make_unique<shm_resource>(
            shm_resource_options{.segment_size = std::size_t{1} << 20}));
      },
  });
#endif
  return list;
}

}  // namespace errors_test
