#include <pmr/core/upstream.hpp>

#include <pmr/core/error.hpp>

#include <gtest/gtest.h>

#include <memory_resource>
#include <new>
#include <stdexcept>
#include <string>

namespace {

/// Throws what it is told to from allocate.
class throwing_resource final : public std::pmr::memory_resource {
 public:
  enum class what { bad_alloc, allocation_error, logic_error };
  explicit throwing_resource(what w) : what_(w) {}

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    switch (what_) {
      case what::bad_alloc:
        throw std::bad_alloc();
      case what::allocation_error:
        throw pmrkit::budget_exceeded(bytes, alignment, "inner budget", 10, 2);
      case what::logic_error:
        break;
    }
    throw std::logic_error("not a memory problem");
  }
  void do_deallocate(void*, std::size_t, std::size_t) override {}
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  what what_;
};

/// What a decorator's handler turns the upstream's exception into.
void forward(std::pmr::memory_resource& upstream) {
  try {
    (void)upstream.allocate(100, 16);
  } catch (...) {
    pmrkit::rethrow_upstream_failure("decorator", 100, 16);
  }
}

TEST(AllocateFromUpstream, APlainBadAllocBecomesUpstreamFailedWithTheCallersFigures) {
  throwing_resource upstream(throwing_resource::what::bad_alloc);
  try {
    (void)pmrkit::allocate_from_upstream(&upstream, 4096, 64, "pool", 100, 8);
    FAIL() << "nothing thrown";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::upstream_failed);
    EXPECT_EQ(e.requested(), 100U);
    EXPECT_EQ(e.alignment(), 8U);
    EXPECT_EQ(e.resource_name(), "pool");
  }
}

TEST(RethrowUpstreamFailure, APlainBadAllocBecomesUpstreamFailed) {
  throwing_resource upstream(throwing_resource::what::bad_alloc);
  try {
    forward(upstream);
    FAIL() << "nothing thrown";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::upstream_failed);
    EXPECT_EQ(e.requested(), 100U);
    EXPECT_EQ(e.alignment(), 16U);
    EXPECT_EQ(e.resource_name(), "decorator");
  }
}

TEST(RethrowUpstreamFailure, AnAllocationErrorPassesUnchanged) {
  throwing_resource upstream(throwing_resource::what::allocation_error);
  try {
    forward(upstream);
    FAIL() << "nothing thrown";
  } catch (const pmrkit::budget_exceeded& e) {
    EXPECT_EQ(e.resource_name(), "inner budget");
    EXPECT_EQ(e.limit(), 10U);
  }
  EXPECT_THROW((void)pmrkit::allocate_from_upstream(&upstream, 1, 1, "pool"),
               pmrkit::budget_exceeded);
}

TEST(RethrowUpstreamFailure, OtherExceptionsPassUnchanged) {
  throwing_resource upstream(throwing_resource::what::logic_error);
  EXPECT_THROW(forward(upstream), std::logic_error);
  EXPECT_THROW((void)pmrkit::allocate_from_upstream(&upstream, 1, 1, "pool"), std::logic_error);
}

TEST(RequireUpstream, ANullPointerNamesTheClassAndTheParameter) {
  std::pmr::memory_resource* heap = std::pmr::new_delete_resource();
  EXPECT_EQ(pmrkit::require_upstream(heap, "pmrkit::x"), heap);
  try {
    std::pmr::memory_resource* missing = nullptr;
    (void)pmrkit::require_upstream(missing, "pmrkit::router", "large");
    FAIL() << "nothing thrown";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "pmrkit::router: large must not be null");
  }
}

}  // namespace
