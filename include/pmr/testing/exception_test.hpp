// exception_test: fail every allocation of a piece of code in turn and check
// that nothing leaks, as BDE's exception-test loop does.
//
// `exception_test(resource, body)` runs `body` with the test_resource's
// allocation limit set to 0, 1, 2, ... so that its first, second, third ...
// allocation throws, until `body` completes. After each run that ended in the
// injected failure, every block `body` allocated during that run must have
// been freed again; the blocks still in use are reported as one
// `violation_kind::leak` through the violation handler (the default aborts;
// a `violation_recorder` records) and recorded in the resource's errors(). A std::bad_alloc that
// the injection did not cause, and any other exception, propagates. Returns the number of runs
// (allocations + 1).
//
// Thread safety: as the test_resource's; `body` usually runs on one thread.
//
// Example:
//   pmrkit::test_resource upstream("exception test");
//   std::size_t runs = pmrkit::exception_test(upstream, [&] {
//     std::pmr::vector<std::pmr::string> v(&upstream);
//     v.emplace_back("long enough to allocate a buffer of its own");
//   });
//   assert(runs > 1 && upstream.errors().empty());
#pragma once

#include <pmr/testing/test_resource.hpp>

#include <cstddef>
#include <functional>
#include <new>
#include <stdexcept>
#include <utility>

namespace pmrkit {

namespace detail {
/// Reports, as one leak violation, the blocks of `resource` in use whose
/// sequence is >= `first_sequence`. Returns true when there were none.
bool check_no_leak_since(test_resource& resource, std::uint64_t first_sequence);
}  // namespace detail

template <class Body>
std::size_t exception_test(test_resource& resource, Body&& body, std::size_t max_runs = 1'000'000) {
  struct limit_reset {
    test_resource& resource;
    ~limit_reset() { resource.set_allocation_limit(-1); }
  } reset{resource};

  for (std::size_t run = 0; run < max_runs; ++run) {
    const test_stats before = resource.stats();
    resource.set_allocation_limit(static_cast<long long>(run));
    try {
      std::invoke(body);
      return run + 1;
    } catch (const std::bad_alloc&) {
      if (resource.stats().injected_failures == before.injected_failures) throw;
    }
    resource.set_allocation_limit(-1);
    detail::check_no_leak_since(resource, before.total_blocks);
  }
  throw std::runtime_error("pmrkit::exception_test: the body still failed after max_runs runs");
}

}  // namespace pmrkit
