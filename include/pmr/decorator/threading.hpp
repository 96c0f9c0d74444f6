// decorator_threading: the `threading` option of budget_resource,
// statistics_resource and fallback_resource: whether their allocate and
// deallocate may run on several threads at once.
//
// A decorator is exactly as thread-safe as its upstream (docs/contract.md), so
// by default (`decorator_threading::concurrent`) callers may run on several
// threads at once. An atomic read-modify-write of a figure shared by every
// thread is a locked instruction, and when threads call the decorator at the
// same time its cache line moves between their cores on every call. So
// statistics_resource and budget_resource keep what changes on every call
// per thread: each thread that calls them gets a shard of their figures
// (statistics' counts, budget's credit taken from the limit in batches),
// written by that thread alone with plain loads and stores and found through
// a thread_local table; shared figures are touched once per batch, and
// stats() adds the shards up. Their headers say what that means for their
// figures (exact once the threads are quiet; the bounds on a peak; when a
// budget may refuse a request). fallback_resource updates its few figures,
// touched only when the primary fails, with read-modify-writes.
//
// When the calls never overlap — over an unsynchronized strategy they cannot,
// and under synchronized_resource the lock orders them — `serialized` keeps
// one set of figures updated with a relaxed load and a relaxed store (no
// thread lookup, no shards, every figure exact), and the figures may still be
// read from another thread while they change.
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
  concurrent,  ///< yes (the default): per-thread shards, or atomic read-modify-writes
  serialized,  ///< no, the caller orders them: one set of figures, relaxed loads and stores
};

}  // namespace pmrkit
