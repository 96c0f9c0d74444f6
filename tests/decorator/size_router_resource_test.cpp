#include <pmr/decorator/size_router_resource.hpp>

#include <pmr/core/error.hpp>
#include <pmr/pool/pool_resource.hpp>
#include <pmr/testing/test_resource.hpp>

#include "conformance/conformance.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <memory_resource>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using pmrkit::size_router_options;
using pmrkit::size_router_resource;
using pmrkit::test_resource;

/// A router whose small side is a test_resource of its own (over the suite's
/// upstream) and whose large side is the suite's upstream: a block returned
/// to the wrong side is an error one side or the other records.
class router_over_two_sides final : public std::pmr::memory_resource {
 public:
  explicit router_over_two_sides(std::pmr::memory_resource* upstream)
      : small_({.name = "small side"}, upstream),
        router_(&small_, {.threshold = 128, .max_small_alignment = 16}, upstream) {}

  [[nodiscard]] std::vector<pmrkit::violation> small_side_errors() const { return small_.errors(); }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    return router_.allocate(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    router_.deallocate(p, bytes, alignment);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  test_resource small_;
  size_router_resource router_;
};

struct size_router_traits {
  using resource_type = router_over_two_sides;
  static constexpr std::string_view name = "pmrkit::size_router_resource";
  static constexpr pmrkit::conformance::capabilities caps{.releases_on_destruction = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(upstream);
  }
  static std::vector<pmrkit::violation> recorded_errors(const resource_type& r) {
    return r.small_side_errors();
  }
};

using size_router_types = ::testing::Types<size_router_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(size_router, resource_conformance, size_router_types,
                               pmrkit::conformance::traits_names);

constexpr pmrkit::test_options small_options{.name = "small"};
constexpr pmrkit::test_options large_options{.name = "large"};

TEST(SizeRouterResource, RoutesBySizeAndAlignment) {
  test_resource small(small_options, std::pmr::new_delete_resource());
  test_resource large(large_options, std::pmr::new_delete_resource());
  size_router_resource router(&small, {.threshold = 256, .max_small_alignment = 16}, &large);

  struct request {
    std::size_t bytes;
    std::size_t alignment;
    bool small;
  };
  const std::vector<request> requests{
      {0, 1, true},   {1, 1, true},     {256, 16, true},     {256, 8, true},     {257, 8, false},
      {1, 32, false}, {256, 32, false}, {100000, 16, false}, {100, 4096, false}, {255, 16, true},
  };
  std::vector<void*> blocks;
  for (const request& r : requests) {
    EXPECT_EQ(router.is_small(r.bytes, r.alignment), r.small) << r.bytes << ", " << r.alignment;
    blocks.push_back(router.allocate(r.bytes, r.alignment));
    EXPECT_EQ(small.owns(blocks.back()), r.small) << r.bytes << ", " << r.alignment;
    EXPECT_EQ(large.owns(blocks.back()), !r.small) << r.bytes << ", " << r.alignment;
  }
  EXPECT_EQ(small.blocks_in_use(), 5U);
  EXPECT_EQ(large.blocks_in_use(), 5U);
  // Deallocation follows the same rule on the size and alignment given back.
  for (std::size_t i = 0; i < requests.size(); ++i)
    router.deallocate(blocks[i], requests[i].bytes, requests[i].alignment);
  EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(small));
  EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(large));
}

TEST(SizeRouterResource, SmallNodesGoToAPoolAndLargeBuffersElsewhere) {
  test_resource large(large_options, std::pmr::new_delete_resource());
  pmrkit::pool_resource nodes({.block_size = 64, .on_mismatch = pmrkit::pool_mismatch::reject});
  size_router_resource router(&nodes, {.threshold = 64}, &large);
  {
    std::pmr::vector<std::pmr::vector<int>> table(&router);
    table.reserve(100);  // 100 * 32 bytes: large
    for (int i = 0; i < 100; ++i)
      table.emplace_back(8, i);  // 32 bytes each: the pool
    EXPECT_EQ(nodes.stats().blocks_in_use, 100U);
    EXPECT_EQ(large.blocks_in_use(), 1U);
  }
  EXPECT_EQ(nodes.stats().blocks_in_use, 0U);
  EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(large));
}

TEST(SizeRouterResource, TheSidesErrorsReachTheCaller) {
  test_resource small(small_options, std::pmr::new_delete_resource());
  size_router_resource router(&small, {.name = "router"}, std::pmr::null_memory_resource());
  small.set_allocation_limit(0);
  try {
    (void)router.allocate(8);
    ADD_FAILURE() << "the small side's failure did not reach the caller";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::injected_failure);
  }
  try {
    (void)router.allocate(4096);
    ADD_FAILURE() << "null_memory_resource did not fail";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::upstream_failed);
    EXPECT_EQ(e.resource_name(), "router");
  }
  try {
    (void)router.allocate(8, 24);
    ADD_FAILURE() << "alignment 24 was accepted";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::bad_alignment);
  }
  EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(small));
}

/// The message of the std::invalid_argument that constructing the router throws.
std::string construction_error(const size_router_options& options, std::pmr::memory_resource* small,
                               std::pmr::memory_resource* large) {
  try {
    size_router_resource router(small, options, large);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

TEST(SizeRouterResource, InvalidOptionsAndNullSidesNameTheField) {
  std::pmr::memory_resource* heap = std::pmr::new_delete_resource();
  EXPECT_EQ(construction_error({.threshold = 0}, heap, heap),
            "pmrkit::size_router_resource: threshold must not be 0");
  EXPECT_EQ(construction_error({.max_small_alignment = 24}, heap, heap),
            "pmrkit::size_router_resource: max_small_alignment must be a power of two");
  EXPECT_EQ(construction_error({.max_small_alignment = 0}, heap, heap),
            "pmrkit::size_router_resource: max_small_alignment must be a power of two");
  EXPECT_EQ(construction_error({}, nullptr, heap),
            "pmrkit::size_router_resource: small must not be null");
  EXPECT_EQ(construction_error({}, heap, nullptr),
            "pmrkit::size_router_resource: large must not be null");
  size_router_resource router(heap, {});
  EXPECT_EQ(router.threshold(), 256U);
  EXPECT_EQ(router.max_small_alignment(), alignof(std::max_align_t));
  EXPECT_EQ(router.small_resource(), heap);
  EXPECT_EQ(router.large_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(router.name(), "size_router");
}

}  // namespace
