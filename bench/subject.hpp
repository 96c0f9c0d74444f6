// Subjects: the things benchmarked, behind one small interface the scenarios are written against.
//
// A subject offers allocate(bytes, alignment) / deallocate(p, bytes, alignment) on its concrete
// type (so a final std::pmr resource is devirtualised and a native API is called directly),
// release() when it can free everything at once, a std::pmr::memory_resource* for the container
// workloads, and a `caps` constant saying which scenarios apply. resource_subject builds one from
// any of: a std::pmr resource, a Boost.Container pmr resource, a pointer to either, or a native
// API struct (allocate/deallocate[/release] plus caps). Each benchmark run constructs a fresh
// subject, so nothing carries over between runs; the churn_t scenarios share that one subject
// between their threads, so they only take subjects whose caps say thread_safe.
#pragma once

#include <concepts>
#include <cstddef>
#include <memory>
#include <memory_resource>
#include <type_traits>

#include <pmr/interop/boost_bridge.hpp>

namespace pmrkit::bench {

// What a subject can do; scenarios that need something else skip it.
struct capabilities {
  // Non-zero: serves only requests of at most this many bytes (a pool with one block size). Only
  // the fixed-size scenarios and the container workloads whose every request fits apply.
  std::size_t block_size = 0;
  // release() frees every block at once: bump_release uses it instead of one free per block.
  bool release_all = false;
  // false: deallocate does nothing (monotonic, stack). Each batch ends with release(), timed,
  // and churn, which needs real frees to mean anything, is skipped.
  bool individual_free = true;
  // The subject may be called from several threads at once. With individual_free it gets the
  // churn_t<N> scenarios: one subject shared by N threads.
  bool thread_safe = false;
};

// The usual combinations.
inline constexpr capabilities general{};                        // malloc-like
inline constexpr capabilities releasable{.release_all = true};  // pools with release()
inline constexpr capabilities monotonic{.release_all = true, .individual_free = false};
inline constexpr capabilities concurrent{.thread_safe = true};  // thread-safe malloc-like
inline constexpr capabilities concurrent_releasable{.release_all = true, .thread_safe = true};

template <class S>
concept allocating_subject = requires(S& s, void* p, std::size_t n) {
  { S::caps } -> std::convertible_to<capabilities>;
  { s.allocate(n, n) } -> std::same_as<void*>;
  s.deallocate(p, n, n);
};

// Subjects the container workloads can run on: they hand out an allocator for the containers.
template <class S>
concept container_subject = requires(S& s) {
  { S::caps } -> std::convertible_to<capabilities>;
  s.container_allocator();
};

// Serves std::pmr containers from a native API (malloc, mimalloc, foonathan). The allocation
// scenarios call the API directly; only the container workloads go through this.
template <class Api>
class native_resource final : public std::pmr::memory_resource {
 public:
  explicit native_resource(Api* api) : api_(api) {}

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    return api_->allocate(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    api_->deallocate(p, bytes, alignment);
  }
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  Api* api_;
};

// Needed by resources that are already std::pmr: nothing.
struct no_bridge {
  explicit no_bridge(const auto*) {}
};

// The std::pmr::memory_resource the container workloads use for a resource of type R, built
// from a pointer to the resource.
template <class R>
struct std_bridge {
  using type = native_resource<R>;
};
template <class R>
requires std::derived_from<R, std::pmr::memory_resource>
struct std_bridge<R> {
  using type = no_bridge;
};
// Boost.Container resources: pmrkit's bridge.
template <class R>
requires std::derived_from<R, boost::container::pmr::memory_resource>
struct std_bridge<R> {
  using type = pmrkit::from_boost_resource;
};

struct release_member {
  void operator()(auto& resource) const { resource.release(); }
};

// Factory for native API structs, which are default-constructible.
template <class Api>
struct construct {
  Api operator()() const { return Api{}; }
};

// The one subject template. Factory is a captureless callable returning the resource (or a pointer
// to it); it runs once per benchmark run. Release is what release() does when Caps says
// release_all.
template <capabilities Caps, class Factory, class Release = release_member>
class resource_subject {
 public:
  static constexpr capabilities caps = Caps;
  static_assert(Caps.individual_free || Caps.release_all,
                "a subject without individual frees needs release() to bound its memory");

  using held_type = std::invoke_result_t<Factory&>;
  using resource_type = std::remove_pointer_t<held_type>;

  resource_subject() = default;
  resource_subject(const resource_subject&) = delete;
  resource_subject& operator=(const resource_subject&) = delete;

  void* allocate(std::size_t bytes, std::size_t alignment) {
    return get().allocate(bytes, alignment);
  }
  void deallocate(void* p, std::size_t bytes, std::size_t alignment) {
    get().deallocate(p, bytes, alignment);
  }
  void release() { Release{}(get()); }

  std::pmr::memory_resource* resource() {
    if constexpr (std::derived_from<resource_type, std::pmr::memory_resource>) {
      return &get();
    } else {
      return &bridge_;
    }
  }
  std::pmr::polymorphic_allocator<std::byte> container_allocator() { return {resource()}; }

 private:
  resource_type& get() {
    if constexpr (std::is_pointer_v<held_type>) {
      return *held_;
    } else {
      return held_;
    }
  }

  held_type held_ = Factory{}();
  [[no_unique_address]] typename std_bridge<resource_type>::type bridge_{&get()};
};

// std_map_default: the containers with std::allocator, for the container workloads only.
struct std_allocator_subject {
  static constexpr capabilities caps{};
  void release() {}
  std::allocator<std::byte> container_allocator() { return {}; }
};

}  // namespace pmrkit::bench
