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

class boost_to_std_resource final : public std::pmr::memory_resource {
 public:
  explicit boost_to_std_resource(boost::container::pmr::memory_resource& boost) : boost_(&boost) {}

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    return boost_->allocate(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    boost_->deallocate(p, bytes, alignment);
  }
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  boost::container::pmr::memory_resource* boost_;
};

template <class R>
requires std::derived_from<R, boost::container::pmr::memory_resource>
struct std_bridge<R> {
  using type = boost_to_std_resource;
};

}  // namespace pmrkit::bench
