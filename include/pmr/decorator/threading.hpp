// decorator_threading: the `threading` option of budget_resource,
// statistics_resource and fallback_resource: whether their allocate and
// deallocate may run on several threads at once.
//
// A decorator is exactly as thread-safe as its upstream (docs/contract.md), so
// by default (`decorator_threading::concurrent`) every update of its figures
// is an atomic read-modify-write and callers may run on several threads at
// once. On x86 such an instruction costs about 3 ns even uncontended and
// relaxed (it is a locked instruction), and a decorator makes two (budget) to
// four (statistics) of them per allocate + deallocate pair: more than the pair
// itself costs in a pool. When the calls never overlap — over an
// unsynchronized strategy they cannot, and under synchronized_resource the
// lock orders them — `serialized` updates with a relaxed load and a relaxed
// store instead (a cycle or two), and the figures may still be read from
// another thread while they change.
//
// Choose `serialized` for a decorator whose upstream is single-threaded
// (pool_resource, multipool_resource, the arenas) or that sits under a
// synchronized_resource; keep `concurrent` when the upstream is shared
// between threads (concurrent_pool_resource, synchronized_resource,
// new_delete_resource), or when in doubt. The other decorators have no such
// option: synchronized_resource updates its one figure under its lock,
// size_router_resource keeps none, and pressure_resource always updates its
// figures atomically (its level transitions rely on it).
//
// Thread safety: a plain enumeration.
//
// Example:
//   pmrkit::budget_resource budget(
//       {.limit = 1_MiB, .threading = pmrkit::decorator_threading::serialized});
//   assert(budget.threading() == pmrkit::decorator_threading::serialized);
#pragma once

namespace pmrkit {

/// Whether a decorator's allocate and deallocate may run on several threads at once.
enum class decorator_threading : unsigned char {
  concurrent,  ///< yes: atomic read-modify-writes (the default)
  serialized,  ///< no, the caller orders them: relaxed loads and stores, much cheaper
};

}  // namespace pmrkit
