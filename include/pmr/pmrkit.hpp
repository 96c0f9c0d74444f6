// pmrkit: std::pmr::memory_resource strategies and decorators.
//
// This umbrella header includes every public pmrkit header of the core
// library (the target pmrkit::pmrkit), which needs no Boost. Include the
// individual headers instead to keep compile times down. The Boost.Container
// bridge, <pmr/interop/boost_bridge.hpp>, is a component of its own (the
// target pmrkit::boost, which links Boost.Container) and is not included
// here: include it yourself.
//
// Example:
//   pmrkit::test_resource upstream("demo");
//   std::pmr::vector<int> numbers({1, 2, 3}, &upstream);
//   assert(upstream.blocks_in_use() == 1);
#pragma once

#include <pmr/arena/arena_resource.hpp>
#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/arena/concurrent_arena_resource.hpp>
#include <pmr/arena/local_arena.hpp>
#include <pmr/arena/make_arena.hpp>
#include <pmr/arena/stack_resource.hpp>
#include <pmr/arena/strings.hpp>
#include <pmr/arena/vmem_arena_resource.hpp>
#include <pmr/buddy/buddy_resource.hpp>
#include <pmr/cache/lru_cache.hpp>
#include <pmr/core/align.hpp>
#include <pmr/core/attributes.hpp>
#include <pmr/core/config.hpp>
#include <pmr/core/error.hpp>
#include <pmr/core/literals.hpp>
#include <pmr/core/log.hpp>
#include <pmr/core/poison.hpp>
#include <pmr/core/reallocate.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/core/violation.hpp>
#include <pmr/decorator/budget_resource.hpp>
#include <pmr/decorator/fallback_resource.hpp>
#include <pmr/decorator/guarded_resource.hpp>
#include <pmr/decorator/pressure_resource.hpp>
#include <pmr/decorator/size_router_resource.hpp>
#include <pmr/decorator/statistics_resource.hpp>
#include <pmr/decorator/synchronized_resource.hpp>
#include <pmr/decorator/threading.hpp>
#include <pmr/decorator/trace_resource.hpp>
#include <pmr/pool/concurrent_pool_resource.hpp>
#include <pmr/pool/multipool_resource.hpp>
#include <pmr/pool/object_pool.hpp>
#include <pmr/pool/pool_resource.hpp>
#include <pmr/region/locked_page_resource.hpp>
#include <pmr/region/memory_system.hpp>
#include <pmr/region/memory_type.hpp>
#include <pmr/region/page_resource.hpp>
#include <pmr/region/page_source.hpp>
#include <pmr/region/region_resource.hpp>
#include <pmr/testing/exception_test.hpp>
#include <pmr/testing/test_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>
#include <pmr/trace/trace_file.hpp>
#if PMRKIT_HAS_SHM
#include <pmr/shm/full_ptr.hpp>
#include <pmr/shm/offset_ptr.hpp>
#include <pmr/shm/shm_allocator.hpp>
#include <pmr/shm/shm_error.hpp>
#include <pmr/shm/shm_resource.hpp>
#include <pmr/shm/shm_segment.hpp>
#endif
