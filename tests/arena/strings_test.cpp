#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/arena/strings.hpp>
#include <pmr/testing/exception_test.hpp>
#include <pmr/testing/test_resource.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

constexpr pmrkit::test_options recording{.name = "strings"};

TEST(Strings, CopyIsNulTerminatedAndIndependentOfTheSource) {
  pmrkit::test_resource resource(recording, std::pmr::new_delete_resource());
  std::string source = "hello, arena";
  const std::string_view copy = pmrkit::copy_string(resource, source);
  source[0] = 'J';
  EXPECT_EQ(copy, "hello, arena");
  EXPECT_EQ(copy.data()[copy.size()], '\0');
  EXPECT_EQ(resource.stats().bytes_in_use, source.size() + 1);
  resource.deallocate(const_cast<char*>(copy.data()), copy.size() + 1, 1);
  EXPECT_TRUE(resource.errors().empty());
}

TEST(Strings, CopyNTakesAtMostNCharacters) {
  pmrkit::chunked_arena_resource arena({.alignment = 1}, std::pmr::new_delete_resource());
  EXPECT_EQ(pmrkit::copy_string_n(arena, "abcdef", 3), "abc");
  EXPECT_EQ(pmrkit::copy_string_n(arena, "ab", 10), "ab");
  const std::string_view empty = pmrkit::copy_string_n(arena, "abc", 0);
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.data()[0], '\0');
}

TEST(Strings, FormatHandlesShortAndLongOutput) {
  pmrkit::chunked_arena_resource arena({}, std::pmr::new_delete_resource());
  EXPECT_EQ(pmrkit::format_string(arena, "%s-%03d", "id", 7), "id-007");
  const std::string long_text(5000, 'x');
  const std::string_view formatted = pmrkit::format_string(arena, "[%s]", long_text.c_str());
  EXPECT_EQ(formatted.size(), 5002U);
  EXPECT_EQ(formatted.front(), '[');
  EXPECT_EQ(formatted.back(), ']');
  EXPECT_EQ(formatted.data()[formatted.size()], '\0');
}

TEST(Strings, FailedAllocationLeaksNothing) {
  pmrkit::test_resource resource(recording, std::pmr::new_delete_resource());
  const std::size_t runs = pmrkit::exception_test(resource, [&] {
    const std::string_view text = pmrkit::format_string(resource, "%d", 12345);
    resource.deallocate(const_cast<char*>(text.data()), text.size() + 1, 1);
  });
  EXPECT_EQ(runs, 2U);
  EXPECT_TRUE(resource.errors().empty());
}

}  // namespace
