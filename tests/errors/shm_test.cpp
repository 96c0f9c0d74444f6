// docs/errors.md, "Shared memory": each row's test, named after it. Segments are named
// /pmrkit-test-<pid>-errors-... and removed (tests/shm's shm.no_leftovers checks for leftovers).
#include <pmr/core/error.hpp>
#include <pmr/shm/shm_allocator.hpp>
#include <pmr/shm/shm_error.hpp>
#include <pmr/shm/shm_resource.hpp>
#include <pmr/shm/shm_segment.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "errors/errors_test_support.hpp"

namespace {

using errors_test::expect_allocation_error;
using errors_test::expect_invalid_argument;
using pmrkit::shm_errc;
using pmrkit::shm_segment;
constexpr std::size_t mib = std::size_t{1} << 20;

std::string segment_name(const char* what) {
  return "/pmrkit-test-" + std::to_string(::getpid()) + "-errors-" + what;
}

// Removes the segment at scope exit.
struct removed_at_exit {
  std::string name;
  ~removed_at_exit() { (void)shm_segment::remove(name); }
};

template <class Body>
void expect_shm_error(Body&& body, shm_errc code) {
  try {
    body();
    ADD_FAILURE() << "no shm_error; expected " << pmrkit::to_string(code);
  } catch (const pmrkit::shm_error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
  }
}

TEST(Shm, BadSegmentName) {
  const std::string too_long = "/" + std::string(300, 'x');
  const std::vector<std::string> names{
      "", "/", "/a/b", ".", "/..", too_long, std::string("/a\0b", 4)};
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    expect_invalid_argument([&] { (void)shm_segment::create(name, mib); },
                            "pmrkit::shm_segment: name '");
    expect_invalid_argument([&] { (void)shm_segment::open(name); }, "pmrkit::shm_segment: name '");
  }
}

TEST(Shm, SegmentSizeOutOfRange) {
  const removed_at_exit guard{segment_name("size")};
  expect_invalid_argument([&] { (void)shm_segment::create(guard.name, 1024); },
                          "pmrkit::shm_segment: size must be at least");
  expect_invalid_argument([&] { (void)shm_segment::create(guard.name, std::size_t{1} << 50); },
                          "pmrkit::shm_segment: size must be at most 64 TiB");
  expect_invalid_argument(
      [&] {
        (void)shm_segment::create(guard.name, mib, {.user_header_size = std::size_t{1} << 31});
      },
      "pmrkit::shm_segment: user_header_size");
}

TEST(Shm, AnonymousWithFixedAddress) {
  expect_invalid_argument([] { (void)shm_segment::anonymous(mib, {.fixed_address = true}); },
                          "pmrkit::shm_segment: fixed_address");
}

TEST(Shm, OpenMissingSegment) {
  expect_shm_error([] { (void)shm_segment::open(segment_name("missing")); }, shm_errc::not_found);
}

TEST(Shm, CreateExistingSegment) {
  const removed_at_exit guard{segment_name("twice")};
  const shm_segment first = shm_segment::create(guard.name, mib);
  expect_shm_error([&] { (void)shm_segment::create(guard.name, mib); }, shm_errc::name_in_use);
}

// A shared memory object that is no pmrkit segment (its first bytes are not the magic).
TEST(Shm, OpenForeignObject) {
  const removed_at_exit guard{segment_name("foreign")};
  const int fd = ::shm_open(guard.name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  const std::vector<unsigned char> garbage(64 * 1024, 0xAB);
  ASSERT_EQ(::write(fd, garbage.data(), garbage.size()), static_cast<ssize_t>(garbage.size()));
  ::close(fd);
  expect_shm_error([&] { (void)shm_segment::open(guard.name); }, shm_errc::bad_magic);
}

TEST(Shm, OpenCorruptedSegment) {
  const removed_at_exit guard{segment_name("corrupted")};
  shm_segment segment = shm_segment::create(guard.name, mib);
  segment.mark_corrupted();
  expect_shm_error([&] { (void)shm_segment::open(guard.name); }, shm_errc::corrupted);
}

TEST(Shm, ResourceBadOptions) {
  expect_invalid_argument(
      [] { pmrkit::shm_resource r({.segment_size = mib, .cache_limit = 5000}); },
      "pmrkit::shm_resource: cache_limit");
  shm_segment segment = shm_segment::anonymous(mib);
  shm_segment taken = std::move(segment);
  expect_invalid_argument([&] { pmrkit::shm_resource r(segment); },
                          "pmrkit::shm_resource: segment");
}

// new_objects<T>(count) whose count * sizeof(T) overflows: size_overflow (before the fix, the
// standard's std::bad_array_new_length, a std::bad_alloc that is no pmrkit error).
TEST(Shm, NewObjectsCountOverflow) {
  pmrkit::shm_resource shm({.segment_size = mib});
  const std::size_t count = errors_test::opaque(SIZE_MAX / sizeof(std::uint64_t) + 1);
  expect_allocation_error([&] { (void)shm.new_objects<std::uint64_t>(count); },
                          pmrkit::failure_reason::size_overflow);
  expect_allocation_error([&] { (void)shm.construct_array<std::uint64_t>("many", count); },
                          pmrkit::failure_reason::size_overflow);
  errors_test::expect_usable(shm);
}

TEST(Shm, AllocatorCountOverflow) {
  pmrkit::shm_resource shm({.segment_size = mib});
  pmrkit::shm_allocator<std::uint64_t> allocator(shm);
  expect_allocation_error([&] { (void)allocator.allocate(allocator.max_size() + 1); },
                          pmrkit::failure_reason::size_overflow);
}

// An allocator whose segment has no shm_resource in this process: allocate is shm_error
// not_found; deallocate reports a foreign_pointer violation (every build) and frees nothing.
TEST(Shm, AllocatorWithoutResource) {
  shm_segment segment = shm_segment::anonymous(mib);
  std::optional<pmrkit::shm_allocator<std::uint64_t>> allocator;
  pmrkit::offset_ptr<std::uint64_t> block;
  {
    pmrkit::shm_resource shm(segment);
    allocator.emplace(shm);
    block = allocator->allocate(4);
  }
  expect_shm_error([&] { (void)allocator->allocate(1); }, shm_errc::not_found);
  const pmrkit::violation_recorder recorder;
  allocator->deallocate(block, 4);
  ASSERT_EQ(recorder.size(), 1u);
  EXPECT_EQ(recorder.violations().front().kind, pmrkit::violation_kind::foreign_pointer);
}

TEST(Shm, NamedObjectTypeMismatch) {
  pmrkit::shm_resource shm({.segment_size = mib});
  (void)shm.construct<std::uint64_t>("counter", std::uint64_t{7});
  expect_shm_error([&] { (void)shm.find<std::uint32_t>("counter"); }, shm_errc::type_mismatch);
  expect_shm_error([&] { (void)shm.find_or_construct<double>("counter", 1.0); },
                   shm_errc::type_mismatch);
}

TEST(Shm, NamedObjectExists) {
  pmrkit::shm_resource shm({.segment_size = mib});
  (void)shm.construct<std::uint64_t>("counter", std::uint64_t{7});
  expect_shm_error([&] { (void)shm.construct<std::uint64_t>("counter", std::uint64_t{8}); },
                   shm_errc::object_exists);
  EXPECT_EQ(*shm.find<std::uint64_t>("counter"), 7u);
}

TEST(Shm, DestroyMissingNamedObject) {
  pmrkit::shm_resource shm({.segment_size = mib});
  EXPECT_FALSE(shm.destroy<std::uint64_t>("nothing"));
}

}  // namespace
