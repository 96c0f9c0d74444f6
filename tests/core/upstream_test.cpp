#include <pmr/core/upstream.hpp>

#include <pmr/core/error.hpp>

#include <gtest/gtest.h>

#include <exception>
#include <memory_resource>
#include <new>
#include <stdexcept>
#include <string>

namespace {

/// A user's own out-of-memory exception, as an upstream might throw.
class quota_exhausted : public std::bad_alloc {
 public:
  [[nodiscard]] const char* what() const noexcept override { return "tenant quota exhausted"; }
};

/// Throws what it is told to from allocate.
class throwing_resource final : public std::pmr::memory_resource {
 public:
  enum class what { bad_alloc, quota_exhausted, allocation_error, logic_error };
  explicit throwing_resource(what w) : what_(w) {}

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    switch (what_) {
      case what::bad_alloc:
        throw std::bad_alloc();
      case what::quota_exhausted:
        throw quota_exhausted();
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

/// Checks that `e` is upstream_failed, says `upstream_what` and nests the
/// upstream's exception, whose type `Original` std::rethrow_if_nested recovers.
template <class Original>
void expect_nested(const pmrkit::allocation_error& e, const std::string& upstream_what) {
  EXPECT_EQ(e.reason(), pmrkit::failure_reason::upstream_failed);
  EXPECT_NE(std::string(e.what()).find(upstream_what), std::string::npos) << e.what();
  ASSERT_NE(dynamic_cast<const std::nested_exception*>(&e), nullptr);
  try {
    std::rethrow_if_nested(e);
    ADD_FAILURE() << "nothing nested";
  } catch (const Original&) {
    SUCCEED();
  } catch (...) {
    ADD_FAILURE() << "another type nested";
  }
}

TEST(AllocateFromUpstream, TheUpstreamsOwnBadAllocIsNestedAndItsMessageKept) {
  throwing_resource upstream(throwing_resource::what::quota_exhausted);
  try {
    (void)pmrkit::allocate_from_upstream(&upstream, 4096, 64, "pool", 100, 8);
    FAIL() << "nothing thrown";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "pmrkit: 'pool' upstream failed: requested 100 bytes, alignment 8; upstream: tenant "
              "quota exhausted");
    expect_nested<quota_exhausted>(e, "tenant quota exhausted");
  }
}

TEST(AllocateFromUpstream, APlainBadAllocIsNestedToo) {
  throwing_resource upstream(throwing_resource::what::bad_alloc);
  try {
    (void)pmrkit::allocate_from_upstream(&upstream, 64, 8, "pool");
    FAIL() << "nothing thrown";
  } catch (const pmrkit::allocation_error& e) {
    expect_nested<std::bad_alloc>(e, std::bad_alloc().what());
  }
}

TEST(RethrowUpstreamFailure, TheUpstreamsOwnBadAllocIsNestedAndItsMessageKept) {
  throwing_resource upstream(throwing_resource::what::quota_exhausted);
  try {
    forward(upstream);
    FAIL() << "nothing thrown";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.resource_name(), "decorator");
    EXPECT_EQ(e.requested(), 100U);
    expect_nested<quota_exhausted>(e, "tenant quota exhausted");
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
  // Unchanged: the budget's own error, not one naming the caller with it nested.
  try {
    (void)pmrkit::allocate_from_upstream(&upstream, 1, 1, "pool");
  } catch (const pmrkit::budget_exceeded& e) {
    EXPECT_EQ(e.resource_name(), "inner budget");
    EXPECT_EQ(dynamic_cast<const std::nested_exception*>(&e), nullptr);
  }
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
