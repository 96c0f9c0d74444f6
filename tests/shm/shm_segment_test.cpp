// shm_segment: creation, the three backends, names, and every way an open
// must fail (each a shm_error with its code, never a crash or a silent success).
#include <pmr/shm/shm_resource.hpp>
#include <pmr/shm/shm_segment.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include "segment_name.hpp"

namespace {

using pmrkit::shm_backend;
using pmrkit::shm_errc;
using pmrkit::shm_error;
using pmrkit::shm_segment;

constexpr std::size_t segment_size = 1 << 20;

using shm_test::segment_name;

// The code of the shm_error `f` throws (fails the test when it throws none).
template <class F>
shm_errc code_of(F&& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const shm_error& e) {
    if (message != nullptr) *message = e.what();
    return e.code();
  }
  ADD_FAILURE() << "no shm_error thrown";
  return shm_errc::system_error;
}

// A raw read-write mapping of the POSIX object `name` (to damage it on purpose).
struct raw_mapping {
  explicit raw_mapping(const std::string& name) {
    fd = ::shm_open(name.c_str(), O_RDWR, 0);
    EXPECT_GE(fd, 0);
    struct stat st {};
    ::fstat(fd, &st);
    size = static_cast<std::size_t>(st.st_size);
    base =
        static_cast<std::byte*>(::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  }
  raw_mapping(const raw_mapping&) = delete;
  raw_mapping& operator=(const raw_mapping&) = delete;
  ~raw_mapping() {
    ::munmap(base, size);
    ::close(fd);
  }
  template <class T>
  void write(std::size_t offset, T value) {
    std::memcpy(base + offset, &value, sizeof value);
  }
  int fd = -1;
  std::size_t size = 0;
  std::byte* base = nullptr;
};

// The header's fields, at their offsets (src/shm/shm_segment.cpp's segment_header).
constexpr std::size_t version_at = 8;
constexpr std::size_t size_at = 16;
constexpr std::size_t state_at = 32;
constexpr std::size_t creator_at = 36;

const pmrkit::shm_segment_options short_wait{.wait = std::chrono::milliseconds(50)};

TEST(ShmSegment, CreateThenOpenSharesTheMemoryAndTheUserHeader) {
  const segment_name name;
  struct header {
    int answer;
    char tag[12];
  };
  auto created =
      shm_segment::create(name.str(), segment_size, {.user_header_size = sizeof(header)});
  EXPECT_TRUE(created.created());
  EXPECT_EQ(created.name(), name.str());
  EXPECT_EQ(created.size(), segment_size);
  created.user_header<header>() = {42, "hello"};
  auto opened = shm_segment::open(name.str());
  EXPECT_FALSE(opened.created());
  EXPECT_EQ(opened.size(), segment_size);
  EXPECT_NE(opened.base(), created.base());
  EXPECT_EQ(opened.user_header<header>().answer, 42);
  EXPECT_STREQ(opened.user_header<header>().tag, "hello");
  EXPECT_EQ(opened.preferred_base(), reinterpret_cast<std::uintptr_t>(created.base()));
  // The same bytes through both mappings.
  opened.allocator_area().back() = std::byte{7};
  EXPECT_EQ(created.allocator_area().back(), std::byte{7});
  using too_large = std::array<char, 64>;
  EXPECT_THROW((void)opened.user_header<too_large>(), std::invalid_argument);
}

TEST(ShmSegment, ANameWithoutTheLeadingSlashMeansTheSameObject) {
  const segment_name name;
  auto created = shm_segment::create(name.str().substr(1), segment_size);
  EXPECT_EQ(created.name(), name.str());
  EXPECT_NO_THROW((void)shm_segment::open(name.str()));
}

TEST(ShmSegment, BadNamesAreInvalidArgumentsSayingWhy) {
  const auto why = [](const std::string& name) {
    try {
      shm_segment::validate_name(name);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(why("").find("empty"), std::string::npos);
  EXPECT_NE(why("/").find("empty"), std::string::npos);
  EXPECT_NE(why("/a/b").find("slash"), std::string::npos);
  EXPECT_NE(why("/..").find("\"..\""), std::string::npos);
  EXPECT_NE(why(".").find("\".\""), std::string::npos);
  EXPECT_NE(why("/" + std::string(256, 'x')).find("255"), std::string::npos);
  EXPECT_NE(why(std::string("/a\0b", 4)).find("NUL"), std::string::npos);
  EXPECT_EQ(why("/" + std::string(255, 'x')), "accepted");
  EXPECT_EQ(why("plain"), "accepted");
  EXPECT_THROW((void)shm_segment::create("/a/b", segment_size), std::invalid_argument);
  EXPECT_THROW((void)shm_segment::open(""), std::invalid_argument);
}

TEST(ShmSegment, BadSizesAreInvalidArguments) {
  const segment_name name;
  EXPECT_THROW((void)shm_segment::create(name.str(), 4096), std::invalid_argument);
  EXPECT_THROW((void)shm_segment::create(name.str(), std::size_t{1} << 50), std::invalid_argument);
  EXPECT_THROW((void)shm_segment::anonymous(0), std::invalid_argument);
  EXPECT_FALSE(shm_segment::remove(name.str()));  // nothing was left behind
}

TEST(ShmSegment, ANameInUseIsReported) {
  const segment_name name;
  auto first = shm_segment::create(name.str(), segment_size);
  std::string message;
  EXPECT_EQ(code_of([&] { (void)shm_segment::create(name.str(), segment_size); }, &message),
            shm_errc::name_in_use);
  EXPECT_NE(message.find(name.str()), std::string::npos) << message;
  EXPECT_NO_THROW((void)shm_segment::open(name.str()));  // the first is untouched
}

TEST(ShmSegment, AMissingNameIsNotFound) {
  const segment_name name;
  EXPECT_EQ(code_of([&] { (void)shm_segment::open(name.str()); }), shm_errc::not_found);
  EXPECT_FALSE(shm_segment::remove(name.str()));
}

TEST(ShmSegment, OpenOrCreateCreatesOnceThenOpens) {
  const segment_name name;
  auto first = shm_segment::open_or_create(name.str(), segment_size, {.user_header_size = 8});
  first.user_header<std::uint64_t>() = 99;
  auto second = shm_segment::open_or_create(name.str(), 2 * segment_size);
  EXPECT_TRUE(first.created());
  EXPECT_FALSE(second.created());
  EXPECT_EQ(second.size(), segment_size);  // the existing size, not the one asked
  EXPECT_EQ(second.user_header<std::uint64_t>(), 99U);
}

TEST(ShmSegment, ASizeBeyondTheFreeSpaceFailsAtCreateNamingBothFigures) {
  const segment_name name;
  struct statvfs fs {};
  ASSERT_EQ(::statvfs("/dev/shm", &fs), 0);
  const std::size_t free_bytes = static_cast<std::size_t>(fs.f_bavail) * fs.f_frsize;
  const std::size_t asked = (free_bytes + (std::size_t{1} << 30)) & ~std::size_t{4095};
  std::string message;
  EXPECT_EQ(code_of([&] { (void)shm_segment::create(name.str(), asked); }, &message),
            shm_errc::no_space);
  EXPECT_NE(message.find("asked " + std::to_string(asked) + " bytes"), std::string::npos)
      << message;
  EXPECT_NE(message.find(" free"), std::string::npos) << message;
  EXPECT_EQ(code_of([&] { (void)shm_segment::open(name.str()); }), shm_errc::not_found)
      << "a failed create leaves no name behind";
}

TEST(ShmSegment, AnObjectThatIsNoSegmentHasABadMagic) {
  const segment_name name;
  const int fd = ::shm_open(name.str().c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, segment_size), 0);
  ::close(fd);
  {
    raw_mapping raw(name.str());
    std::memset(raw.base, 0x5A, raw.size);
  }
  EXPECT_EQ(code_of([&] { (void)shm_segment::open(name.str(), short_wait); }), shm_errc::bad_magic);
}

TEST(ShmSegment, AnotherLayoutVersionIsReported) {
  const segment_name name;
  (void)shm_segment::create(name.str(), segment_size);
  raw_mapping(name.str()).write<std::uint32_t>(version_at, 2);
  std::string message;
  EXPECT_EQ(code_of([&] { (void)shm_segment::open(name.str()); }, &message), shm_errc::bad_version);
  EXPECT_NE(message.find("version 2"), std::string::npos) << message;
}

TEST(ShmSegment, AHeaderSizeThatDisagreesIsABadSize) {
  const segment_name name;
  (void)shm_segment::create(name.str(), segment_size);
  raw_mapping(name.str()).write<std::uint64_t>(size_at, segment_size / 2);
  EXPECT_EQ(code_of([&] { (void)shm_segment::open(name.str()); }), shm_errc::bad_size);
}

TEST(ShmSegment, AnObjectLargerThanItsHeaderSaysIsABadSize) {
  const segment_name name;
  (void)shm_segment::create(name.str(), segment_size);
  const int fd = ::shm_open(name.str().c_str(), O_RDWR, 0);
  ASSERT_EQ(::ftruncate(fd, 2 * segment_size), 0);
  ::close(fd);
  EXPECT_EQ(code_of([&] { (void)shm_segment::open(name.str()); }), shm_errc::bad_size);
}

TEST(ShmSegment, AShortenedObjectIsTruncated) {
  const segment_name name;
  (void)shm_segment::create(name.str(), segment_size);
  const int fd = ::shm_open(name.str().c_str(), O_RDWR, 0);
  ASSERT_EQ(::ftruncate(fd, segment_size / 2), 0);
  ::close(fd);
  std::string message;
  EXPECT_EQ(code_of([&] { (void)shm_segment::open(name.str()); }, &message), shm_errc::truncated);
  EXPECT_NE(message.find(std::to_string(segment_size / 2) + " bytes"), std::string::npos)
      << message;
}

TEST(ShmSegment, AnObjectShorterThanAHeaderIsTruncatedAfterTheWait) {
  const segment_name name;
  const int fd = ::shm_open(name.str().c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 100), 0);
  ::close(fd);
  EXPECT_EQ(code_of([&] { (void)shm_segment::open(name.str(), short_wait); }), shm_errc::truncated);
}

TEST(ShmSegment, ASegmentStuckInitialisingIsReportedAfterTheWait) {
  const segment_name name;
  (void)shm_segment::create(name.str(), segment_size);
  raw_mapping(name.str()).write<std::uint32_t>(state_at, 1);  // as if its creator died
  std::string message;
  EXPECT_EQ(code_of([&] { (void)shm_segment::open(name.str(), short_wait); }, &message),
            shm_errc::still_initialising);
  EXPECT_NE(message.find("50 ms"), std::string::npos) << message;
  EXPECT_EQ(
      code_of([&] { (void)shm_segment::open_or_create(name.str(), segment_size, short_wait); }),
      shm_errc::still_initialising);
}

TEST(ShmSegment, ASegmentWhoseCreatorDiedIsRebuiltByOpenOrCreate) {
  const segment_name name;
  (void)shm_segment::create(name.str(), segment_size);
  const pid_t dead = ::fork();  // a pid that is gone
  ASSERT_GE(dead, 0);
  if (dead == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(dead, nullptr, 0), dead);
  {
    raw_mapping raw(name.str());
    raw.write<std::uint32_t>(state_at, 1);  // "initialising", as its creator left it
    raw.write<std::uint32_t>(creator_at, static_cast<std::uint32_t>(dead));
  }
  std::string message;
  EXPECT_EQ(code_of([&] { (void)shm_segment::open(name.str(), short_wait); }, &message),
            shm_errc::still_initialising);
  EXPECT_NE(message.find("gone"), std::string::npos) << message;
  auto rebuilt = shm_segment::open_or_create(name.str(), segment_size, short_wait);
  EXPECT_TRUE(rebuilt.created());
  EXPECT_EQ(rebuilt.size(), segment_size);
  pmrkit::shm_resource r(rebuilt);
  void* p = r.allocate(100);
  r.deallocate(p, 100);
  EXPECT_EQ(r.verify(), "");
  EXPECT_NO_THROW((void)shm_segment::open(name.str()));  // ready now
}

TEST(ShmSegment, OpenWaitsForACreatorThatFinishesInTime) {
  const segment_name name;
  (void)shm_segment::create(name.str(), segment_size);
  raw_mapping raw(name.str());
  raw.write<std::uint32_t>(state_at, 1);
  std::thread creator([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(raw.base + state_at))
        .store(2, std::memory_order_release);
  });
  EXPECT_NO_THROW((void)shm_segment::open(name.str(), {.wait = std::chrono::seconds(5)}));
  creator.join();
}

TEST(ShmSegment, ASegmentMarkedCorruptedIsReported) {
  const segment_name name;
  auto segment = shm_segment::create(name.str(), segment_size);
  segment.mark_corrupted();
  EXPECT_EQ(code_of([&] { (void)shm_segment::open(name.str()); }), shm_errc::corrupted);
}

TEST(ShmSegment, ADamagedAllocatorStateIsCorrupted) {
  const segment_name name;
  auto segment = shm_segment::create(name.str(), segment_size);
  std::memset(segment.allocator_area().data(), 0xFF, 8);  // the allocator's magic
  std::string message;
  EXPECT_EQ(code_of([&] { (void)shm_segment::open(name.str()); }, &message), shm_errc::corrupted);
  EXPECT_NE(message.find("allocator"), std::string::npos) << message;
  EXPECT_EQ(code_of([&] { pmrkit::shm_resource r(segment); }), shm_errc::corrupted);
}

TEST(ShmSegment, NoPermissionIsReported) {
  const segment_name name;
  (void)shm_segment::create(name.str(), segment_size, {.permissions = 0600});
  // Another user may not open it: a child drops to 'nobody' (when root) and tries.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(3);
    try {
      (void)shm_segment::open(name.str());
    } catch (const shm_error& e) {
      ::_exit(e.code() == shm_errc::permission_denied ? 0 : 1);
    } catch (...) {
      ::_exit(4);
    }
    ::_exit(2);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  if (::geteuid() != 0) GTEST_SKIP() << "not root: cannot open as another user";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: another code, 2: opened, 3: setuid failed";
}

TEST(ShmSegment, AFileSegmentPersistsAfterEveryMappingIsGone) {
  const segment_name name("seg", shm_backend::file);
  const pmrkit::shm_segment_options file{.backend = shm_backend::file, .user_header_size = 8};
  {
    auto segment = shm_segment::create(name.str(), segment_size, file);
    segment.user_header<std::uint64_t>() = 1234;
  }
  EXPECT_TRUE(std::filesystem::exists(name.str()));
  auto again = shm_segment::open(name.str(), file);
  EXPECT_EQ(again.user_header<std::uint64_t>(), 1234U);
  EXPECT_EQ(again.backend(), shm_backend::file);
  EXPECT_TRUE(shm_segment::remove(name.str(), shm_backend::file));
  EXPECT_FALSE(std::filesystem::exists(name.str()));
}

TEST(ShmSegment, AnAnonymousSegmentIsSharedWithAForkedChild) {
  auto segment = shm_segment::anonymous(segment_size, {.user_header_size = 8});
  EXPECT_EQ(segment.name(), "");
  EXPECT_EQ(segment.backend(), shm_backend::anonymous);
  segment.user_header<std::uint64_t>() = 1;
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    segment.user_header<std::uint64_t>() += 41;
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_EQ(segment.user_header<std::uint64_t>(), 42U);
  EXPECT_THROW((void)shm_segment::open("", {.backend = shm_backend::anonymous}),
               std::invalid_argument);
}

TEST(ShmSegment, MovingHandsTheMappingOver) {
  const segment_name name;
  auto a = shm_segment::create(name.str(), segment_size);
  std::byte* base = a.base();
  shm_segment b = std::move(a);
  EXPECT_EQ(b.base(), base);
  EXPECT_EQ(a.base(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
  a = std::move(b);
  EXPECT_EQ(a.base(), base);
  EXPECT_TRUE(a.contains(base + 10));
  EXPECT_FALSE(a.contains(base + segment_size));
}

TEST(ShmSegment, ErrorCodesHaveNames) {
  EXPECT_EQ(pmrkit::to_string(shm_errc::still_initialising), "still initialising");
  EXPECT_EQ(pmrkit::to_string(shm_errc::type_mismatch), "type mismatch");
  const shm_error e(shm_errc::no_space, "m", 28);
  EXPECT_EQ(e.system_errno(), 28);
  EXPECT_STREQ(e.what(), "m");
}

}  // namespace
