// page_source: what every page source (page_resource, locked_page_resource,
// cuda_pinned_resource, cuda_registered_resource) is, and how code asks what
// kind of memory one gives.
//
// A page source is a memory resource at the bottom of a chain: it hands out
// whole pages from the OS or a driver, and the strategies above it (a region,
// a pool, an arena) cut them up. Each one says what its memory is, two ways:
//
//   - at run time, `properties()` returns a `page_properties` (host
//     accessible, device accessible, locked in RAM, huge pages), and
//     `backing()` a short name for tables ("pages", "locked pages", ...);
//     code holding any `std::pmr::memory_resource*` can find out with
//     `page_properties_of(resource)` (nullopt for a resource that is no page
//     source);
//   - at compile time, as cuda::mr properties do: each source declares the
//     property tags its memory always has (`property::host_accessible`,
//     `property::device_accessible`, `property::locked`) with a `get_property`
//     friend, and `has_property<Resource, Property>` tests for one, so a
//     function template can require device-accessible memory in its
//     signature.
//
// Choose a page source as the upstream of a region_resource or of any
// strategy whose memory must be of a kind: locked for DMA, pinned for fast
// GPU copies, huge pages for large working sets. For ordinary memory the
// default resource is faster for small blocks (a page source rounds every
// request up to whole pages).
//
// Thread safety: every page source is safe to share between threads (the OS
// and the CUDA runtime are, and their own bookkeeping is locked).
//
// Example:
//   static_assert(pmrkit::has_property<pmrkit::page_resource, pmrkit::property::host_accessible>);
//   static_assert(!pmrkit::has_property<pmrkit::page_resource, pmrkit::property::locked>);
//   pmrkit::page_resource pages;
//   const pmrkit::page_properties what = pages.properties();
//   assert(what.host_accessible && !what.device_accessible && !what.locked);
//   std::pmr::memory_resource* any = &pages;
//   assert(pmrkit::page_properties_of(any)->host_accessible);
//   assert(!pmrkit::page_properties_of(std::pmr::new_delete_resource()).has_value());
#pragma once

#include <cstddef>
#include <memory_resource>
#include <optional>
#include <string_view>

namespace pmrkit {

/// What a page source's memory is.
struct page_properties {
  bool host_accessible = false;    ///< the CPU may read and write it
  bool device_accessible = false;  ///< a CUDA device may read and write it (pinned, registered)
  bool locked = false;             ///< resident in RAM: never paged out (mlock, pinned)
  bool huge_pages = false;         ///< backed by huge pages (explicit or transparent, as asked)
};

/// Property tags, for compile-time queries (`has_property`).
namespace property {
struct host_accessible {};
struct device_accessible {};
struct locked {};
}  // namespace property

/// True when `Resource` declares that all its memory has `Property`:
/// `get_property(const Resource&, Property)` is found (a friend of the class).
template <class Resource, class Property>
concept has_property = requires(const Resource& resource) {
  get_property(resource, Property{});
};

/// The base of every page source: a memory resource that says what its pages
/// are. Page sources are final classes derived from it.
class page_source : public std::pmr::memory_resource {
 public:
  /// What this source's memory is now (a source whose huge pages fell back
  /// says so here).
  [[nodiscard]] virtual page_properties properties() const noexcept = 0;
  /// A short name of the kind of memory: "pages", "huge pages", "locked
  /// pages", "cuda pinned", "cuda registered".
  [[nodiscard]] virtual std::string_view backing() const noexcept = 0;
  /// The granule: every block is a multiple of it, at an address aligned to it.
  [[nodiscard]] virtual std::size_t granule() const noexcept = 0;

 protected:
  page_source() = default;
  page_source(const page_source&) = default;
  page_source& operator=(const page_source&) = default;
  ~page_source() override = default;
};

/// The properties of `resource` when it is a page source, else nullopt.
[[nodiscard]] inline std::optional<page_properties> page_properties_of(
    const std::pmr::memory_resource* resource) noexcept {
  if (const auto* source = dynamic_cast<const page_source*>(resource)) {
    return source->properties();
  }
  return std::nullopt;
}

}  // namespace pmrkit
