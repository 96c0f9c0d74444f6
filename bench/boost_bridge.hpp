// TEMPORARY: a minimal boost::container::pmr -> std::pmr bridge so the Boost resources can serve
// the std::pmr container workloads. Replace it with pmrkit's interop bridge once that exists (one
// line: the std_bridge specialisation below), then delete this file.
#pragma once

#include <concepts>
#include <cstddef>
#include <memory_resource>

#include <boost/container/pmr/memory_resource.hpp>

#include "subject.hpp"

namespace pmrkit::bench {

// Boost's memory_resource has the same allocate/deallocate shape as the native APIs, so the
// adaptor written for those serves it too.
using boost_to_std_resource = native_resource<boost::container::pmr::memory_resource>;

template <class R>
requires std::derived_from<R, boost::container::pmr::memory_resource>
struct std_bridge<R> {
  using type = boost_to_std_resource;
};

}  // namespace pmrkit::bench
