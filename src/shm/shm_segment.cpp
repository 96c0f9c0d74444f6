#include <pmr/shm/shm_segment.hpp>

#include <pmr/shm/shm_resource.hpp>

#include "../os/pages.hpp"
#include "heap_format.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <utility>

namespace pmrkit {

namespace {

constexpr std::uint64_t segment_magic = 0x314D48534B524D50ULL;  // "PMRKSHM1" in memory order
constexpr std::uint32_t layout_version = 1;
constexpr std::size_t user_header_alignment = 64;

enum state_word : std::uint32_t { uninitialised = 0, initialising = 1, ready = 2, corrupted = 3 };

// The header page at offset 0. Every position is an offset from the segment's start.
struct segment_header {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t header_size;
  std::uint64_t size;
  std::uint64_t preferred_base;
  std::atomic<std::uint32_t> state;
  std::atomic<std::uint32_t> creator_pid;  // 0 until the creator wrote it
  std::uint64_t user_header_offset;
  std::uint64_t user_header_size;
  std::uint64_t allocator_offset;
  std::uint64_t allocator_size;
  std::uint64_t fixed;  // 1: its creator mapped it with fixed_address
};
static_assert(sizeof(segment_header) <= shm_segment::header_size);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

segment_header& header_of(std::byte* base) noexcept {
  return *std::launder(reinterpret_cast<segment_header*>(base));
}

std::size_t round_up(std::size_t n, std::size_t to) noexcept {
  return (n + to - 1) / to * to;
}

std::string quoted(std::string_view name) {
  std::string result(1, '\'');  // appended, not "'" + string: GCC 12 warns falsely there
  result.append(name).push_back('\'');
  return result;
}

[[noreturn]] void throw_os(shm_errc fallback, std::string_view name, const char* doing, int err) {
  shm_errc code = fallback;
  if (err == EACCES || err == EPERM) code = shm_errc::permission_denied;
  if (err == ENOENT) code = shm_errc::not_found;
  if (err == EEXIST) code = shm_errc::name_in_use;
  if (err == ENOSPC) code = shm_errc::no_space;
  throw shm_error(code,
                  "pmrkit: shm segment " + quoted(name) + ": " + doing + ": " +
                      std::string(to_string(code)) + " (" + std::strerror(err) + ")",
                  err);
}

// An open descriptor, closed on scope exit.
struct descriptor {
  int fd = -1;
  descriptor() = default;
  explicit descriptor(int f) noexcept : fd(f) {}
  descriptor(const descriptor&) = delete;
  descriptor& operator=(const descriptor&) = delete;
  ~descriptor() {
    if (fd >= 0) ::close(fd);
  }
};

int open_name(std::string_view name, shm_backend backend, int flags, unsigned permissions) {
  const std::string path(name);
  if (backend == shm_backend::posix) {
    return ::shm_open(path.c_str(), flags, static_cast<mode_t>(permissions));
  }
  return ::open(path.c_str(), flags | O_CLOEXEC, static_cast<mode_t>(permissions));
}

int unlink_name(std::string_view name, shm_backend backend) {
  const std::string path(name);
  return backend == shm_backend::posix ? ::shm_unlink(path.c_str()) : ::unlink(path.c_str());
}

std::string normalized(std::string_view name, shm_backend backend) {
  if (backend == shm_backend::file) {
    if (name.empty())
      throw std::invalid_argument("pmrkit::shm_segment: name: a file path must not be empty");
    if (name.find('\0') != std::string_view::npos) {
      throw std::invalid_argument("pmrkit::shm_segment: name: a file path must not contain NUL");
    }
    return std::string(name);
  }
  shm_segment::validate_name(name);
  std::string result;
  if (name.front() != '/') result.push_back('/');
  return result.append(name);
}

// Reserves `size` bytes for the object behind `fd`: first compares with the space
// free (so an impossible size fails at once, with both figures), then posix_fallocate, so
// a full store fails here and never with SIGBUS when a page is first touched.
void reserve_space(int fd, std::size_t size, std::string_view name) {
  struct statvfs fs {};
  if (::fstatvfs(fd, &fs) == 0) {
    const auto available = static_cast<unsigned long long>(fs.f_bavail) * fs.f_frsize;
    if (available < size) {
      throw shm_error(shm_errc::no_space,
                      "pmrkit: shm segment " + quoted(name) + ": no space: asked " +
                          std::to_string(size) + " bytes, " + std::to_string(available) + " free",
                      ENOSPC);
    }
  }
  const int err = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
  if (err == 0) return;
  if (err == ENOSPC) {
    unsigned long long available = 0;
    if (::fstatvfs(fd, &fs) == 0)
      available = static_cast<unsigned long long>(fs.f_bavail) * fs.f_frsize;
    throw shm_error(shm_errc::no_space,
                    "pmrkit: shm segment " + quoted(name) + ": no space: asked " +
                        std::to_string(size) + " bytes, " + std::to_string(available) + " free",
                    ENOSPC);
  }
  if (err == EOPNOTSUPP || err == EINVAL) {  // a store without fallocate: size it, unreserved
    if (::ftruncate(fd, static_cast<off_t>(size)) == 0) return;
    throw_os(shm_errc::system_error, name, "sizing", errno);
  }
  throw_os(shm_errc::system_error, name, "reserving space", err);
}

void sleep_a_little() {
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

}  // namespace

std::string_view to_string(shm_errc code) noexcept {
  switch (code) {
    case shm_errc::name_in_use:
      return "name in use";
    case shm_errc::not_found:
      return "not found";
    case shm_errc::permission_denied:
      return "permission denied";
    case shm_errc::no_space:
      return "no space";
    case shm_errc::bad_magic:
      return "bad magic";
    case shm_errc::bad_version:
      return "bad version";
    case shm_errc::bad_size:
      return "bad size";
    case shm_errc::truncated:
      return "truncated";
    case shm_errc::still_initialising:
      return "still initialising";
    case shm_errc::corrupted:
      return "corrupted";
    case shm_errc::owner_died:
      return "owner died";
    case shm_errc::address_in_use:
      return "address in use";
    case shm_errc::object_exists:
      return "object exists";
    case shm_errc::object_not_found:
      return "object not found";
    case shm_errc::type_mismatch:
      return "type mismatch";
    case shm_errc::system_error:
      return "system error";
  }
  return "unknown";
}

void shm_segment::validate_name(std::string_view name) {
  const auto bad = [&](const char* why) {
    std::string shown;  // a NUL would end what() early
    for (const char c : name.substr(0, 64))
      shown += c == '\0' ? std::string("\\0") : std::string(1, c);
    if (name.size() > 64) shown += "...";
    throw std::invalid_argument("pmrkit::shm_segment: name '" + shown + "' " + why);
  };
  const std::string_view bare = !name.empty() && name.front() == '/' ? name.substr(1) : name;
  if (bare.empty()) bad("is empty (a POSIX shared memory name is \"/\" and 1 to 255 characters)");
  if (bare.size() > 255) bad("is longer than 255 characters after the leading slash");
  if (bare.find('/') != std::string_view::npos) bad("has a slash after the first character");
  if (bare == "." || bare == "..") bad("is \".\" or \"..\"");
  if (bare.find('\0') != std::string_view::npos) bad("contains a NUL character");
}

// Construction.

namespace {

// Lays out and formats the segment at `base` of `size` bytes, whose state word this process
// holds as "initialising", then publishes it ready.
void build_segment(std::byte* base, std::size_t size, const shm_segment_options& options) {
  segment_header& h = header_of(base);
  h.creator_pid.store(static_cast<std::uint32_t>(::getpid()), std::memory_order_relaxed);
  h.magic = segment_magic;
  h.version = layout_version;
  h.header_size = static_cast<std::uint32_t>(shm_segment::header_size);
  h.size = size;
  h.preferred_base = reinterpret_cast<std::uintptr_t>(base);
  h.fixed = options.fixed_address ? 1 : 0;
  h.user_header_offset = shm_segment::header_size;
  h.user_header_size = options.user_header_size;
  h.allocator_offset =
      round_up(shm_segment::header_size + options.user_header_size, detail::os::page_size());
  h.allocator_size = size - h.allocator_offset;
  try {
    detail::shm::format_heap(base, {base + h.allocator_offset, h.allocator_size});
  } catch (...) {
    h.state.store(corrupted, std::memory_order_release);
    throw;
  }
  h.state.store(ready, std::memory_order_release);
}

// Claims the state word of a new segment and builds it.
void format_segment(std::byte* base, std::size_t size, const shm_segment_options& options,
                    std::string_view name) {
  segment_header& h = header_of(base);
  std::uint32_t expected = uninitialised;
  if (!h.state.compare_exchange_strong(expected, initialising, std::memory_order_acq_rel)) {
    throw shm_error(shm_errc::name_in_use, "pmrkit: shm segment " + quoted(name) +
                                               ": name in use (another process is "
                                               "building it)");
  }
  build_segment(base, size, options);
}

bool process_gone(std::uint32_t pid) noexcept {
  return pid == 0 || (::kill(static_cast<pid_t>(pid), 0) == -1 && errno == ESRCH);
}

std::size_t checked_size(std::size_t size, const shm_segment_options& options) {
  if (options.user_header_size > (std::size_t{1} << 30)) {
    throw std::invalid_argument("pmrkit::shm_segment: user_header_size must be at most 1 GiB");
  }
  const std::size_t page = detail::os::page_size();
  const std::size_t overhead = round_up(shm_segment::header_size + options.user_header_size, page);
  const std::size_t least = overhead + detail::shm::min_heap_bytes();
  if (size < least || size < shm_segment::min_size) {
    throw std::invalid_argument("pmrkit::shm_segment: size must be at least " +
                                std::to_string(std::max(least, shm_segment::min_size)) +
                                " bytes (asked " + std::to_string(size) + ")");
  }
  if (size > (std::size_t{1} << 46)) {
    throw std::invalid_argument("pmrkit::shm_segment: size must be at most 64 TiB (asked " +
                                std::to_string(size) + ")");
  }
  return round_up(size, page);
}

}  // namespace

shm_segment shm_segment::create(std::string_view name, std::size_t size,
                                shm_segment_options options) {
  if (options.backend == shm_backend::anonymous) return anonymous(size, options);
  const std::string path = normalized(name, options.backend);
  size = checked_size(size, options);
  descriptor fd(open_name(path, options.backend, O_RDWR | O_CREAT | O_EXCL, options.permissions));
  if (fd.fd < 0) throw_os(shm_errc::system_error, path, "creating", errno);
  shm_segment segment;
  segment.name_ = path;
  segment.backend_ = options.backend;
  try {
    reserve_space(fd.fd, size, path);
    if (options.fixed_address) {
      segment.map_fixed_new(fd.fd, size, options.address_hint, path);
    } else {
      void* p = detail::os::map_shared(fd.fd, size);
      if (p == nullptr) throw_os(shm_errc::system_error, path, "mapping", errno);
      segment.base_ = static_cast<std::byte*>(p);
      segment.size_ = size;
    }
    format_segment(segment.base_, size, options, path);
  } catch (...) {
    (void)unlink_name(path, options.backend);
    throw;
  }
  segment.created_ = true;
  return segment;
}

shm_segment shm_segment::anonymous(std::size_t size, shm_segment_options options) {
  if (options.fixed_address) {
    throw std::invalid_argument(
        "pmrkit::shm_segment: fixed_address: an anonymous segment is at the same address in the "
        "children it is shared with already; fixed_address is for named segments");
  }
  size = checked_size(size, options);
  void* p = detail::os::map_shared(-1, size);
  if (p == nullptr) throw_os(shm_errc::no_space, "(anonymous)", "mapping", errno);
  shm_segment segment;
  segment.backend_ = shm_backend::anonymous;
  segment.base_ = static_cast<std::byte*>(p);
  segment.size_ = size;
  segment.created_ = true;
  format_segment(segment.base_, size, options, "(anonymous)");
  return segment;
}

shm_segment shm_segment::open(std::string_view name, shm_segment_options options) {
  return open_impl(name, options, false);
}

shm_segment shm_segment::open_impl(std::string_view name, shm_segment_options options,
                                   bool rebuild_abandoned) {
  if (options.backend == shm_backend::anonymous) {
    throw std::invalid_argument("pmrkit::shm_segment: an anonymous segment has no name to open");
  }
  const std::string path = normalized(name, options.backend);
  descriptor fd(open_name(path, options.backend, O_RDWR, 0));
  if (fd.fd < 0) throw_os(shm_errc::system_error, path, "opening", errno);
  const auto deadline = std::chrono::steady_clock::now() + options.wait;
  const auto fail = [&](shm_errc code, const std::string& what) {
    throw shm_error(code, "pmrkit: shm segment " + quoted(path) + ": " +
                              std::string(to_string(code)) + ": " + what);
  };
  // Wait for a creator to size the object and publish its header.
  std::size_t object_size = 0;
  for (;;) {
    struct stat st {};
    if (::fstat(fd.fd, &st) != 0) throw_os(shm_errc::system_error, path, "reading its size", errno);
    object_size = static_cast<std::size_t>(st.st_size);
    if (object_size >= header_size) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      fail(shm_errc::truncated, std::to_string(object_size) + " bytes, shorter than a " +
                                    std::to_string(header_size) + "-byte header");
    }
    sleep_a_little();
  }
  void* head = detail::os::map_shared(fd.fd, header_size);
  if (head == nullptr) throw_os(shm_errc::system_error, path, "mapping its header", errno);
  auto* h = &header_of(static_cast<std::byte*>(head));
  std::uint32_t state = h->state.load(std::memory_order_acquire);
  auto give_up_at = deadline;
  while (state == uninitialised || state == initialising) {
    if (h->magic != 0 && h->magic != segment_magic) break;  // not a pmrkit segment at all
    if (std::chrono::steady_clock::now() >= give_up_at) {
      const std::uint32_t creator = h->creator_pid.load(std::memory_order_relaxed);
      const bool gone = state == initialising && process_gone(creator);
      if (rebuild_abandoned && gone) {
        // Its creator died building it: whoever takes over the creator's pid rebuilds it.
        std::uint32_t seen = creator;
        if (h->creator_pid.compare_exchange_strong(seen, static_cast<std::uint32_t>(::getpid()))) {
          detail::os::release(head, header_size);
          object_size = object_size / detail::os::page_size() * detail::os::page_size();
          if (object_size < min_size) {
            fail(shm_errc::truncated, std::to_string(object_size) +
                                          " bytes left by a creator that died: too small to "
                                          "rebuild");
          }
          shm_segment segment;
          segment.name_ = path;
          segment.backend_ = options.backend;
          void* p = detail::os::map_shared(fd.fd, object_size);
          if (p == nullptr) throw_os(shm_errc::system_error, path, "mapping", errno);
          segment.base_ = static_cast<std::byte*>(p);
          segment.size_ = object_size;
          build_segment(segment.base_, object_size, options);
          segment.created_ = true;
          return segment;
        }
        give_up_at = std::chrono::steady_clock::now() + options.wait;  // another rebuilds it
      } else {
        detail::os::release(head, header_size);
        fail(shm_errc::still_initialising,
             "its creator (pid " + std::to_string(creator) + (gone ? ", gone" : ", alive") +
                 ") did not finish within " + std::to_string(options.wait.count()) + " ms" +
                 (gone ? "; open_or_create rebuilds it, or remove it and create it again" : ""));
      }
    }
    sleep_a_little();
    state = h->state.load(std::memory_order_acquire);
  }
  const segment_header copy{.magic = h->magic,
                            .version = h->version,
                            .header_size = h->header_size,
                            .size = h->size,
                            .preferred_base = h->preferred_base,
                            .state = {state},
                            .creator_pid = {h->creator_pid.load()},
                            .user_header_offset = h->user_header_offset,
                            .user_header_size = h->user_header_size,
                            .allocator_offset = h->allocator_offset,
                            .allocator_size = h->allocator_size,
                            .fixed = h->fixed};
  detail::os::release(head, header_size);
  if (copy.magic != segment_magic) fail(shm_errc::bad_magic, "not a pmrkit segment");
  if (copy.version != layout_version) {
    fail(shm_errc::bad_version, "layout version " + std::to_string(copy.version) +
                                    ", this pmrkit reads version " +
                                    std::to_string(layout_version));
  }
  if (state == corrupted) fail(shm_errc::corrupted, "the segment is marked corrupted");
  if (state != ready) fail(shm_errc::corrupted, "unknown state " + std::to_string(state));
  const std::size_t page = detail::os::page_size();
  if (copy.header_size != header_size || copy.size < min_size || copy.size % page != 0 ||
      copy.user_header_offset != header_size ||
      copy.allocator_offset != round_up(header_size + copy.user_header_size, page) ||
      copy.allocator_offset >= copy.size ||
      copy.allocator_size != copy.size - copy.allocator_offset) {
    fail(shm_errc::bad_size,
         "the header's sizes are inconsistent (size " + std::to_string(copy.size) + ")");
  }
  if (object_size < copy.size) {
    fail(shm_errc::truncated,
         std::to_string(object_size) + " bytes, its header says " + std::to_string(copy.size));
  }
  if (object_size > copy.size) {
    fail(shm_errc::bad_size,
         std::to_string(object_size) + " bytes, its header says " + std::to_string(copy.size));
  }
  shm_segment segment;
  segment.name_ = path;
  segment.backend_ = options.backend;
  if (options.fixed_address) {
    segment.map_fixed_at(fd.fd, copy.size, copy.preferred_base, path);
  } else {
    void* p = detail::os::map_shared(fd.fd, copy.size);
    if (p == nullptr) throw_os(shm_errc::system_error, path, "mapping", errno);
    segment.base_ = static_cast<std::byte*>(p);
    segment.size_ = copy.size;
  }
  const std::span<const std::byte> area(segment.base_ + copy.allocator_offset, copy.allocator_size);
  if (const char* problem = detail::shm::check_heap(segment.base_, area)) {
    fail(shm_errc::corrupted, std::string("its allocator state is invalid: ") + problem);
  }
  return segment;
}

shm_segment shm_segment::open_or_create(std::string_view name, std::size_t size,
                                        shm_segment_options options) {
  if (options.backend == shm_backend::anonymous) return anonymous(size, options);
  for (int attempt = 0;; ++attempt) {
    try {
      return create(name, size, options);
    } catch (const shm_error& e) {
      if (e.code() != shm_errc::name_in_use) throw;
    }
    try {
      return open_impl(name, options, true);
    } catch (const shm_error& e) {
      // Removed between our create and open: try again, a few times.
      if (e.code() != shm_errc::not_found || attempt == 8) throw;
    }
  }
}

bool shm_segment::remove(std::string_view name, shm_backend backend) {
  if (backend == shm_backend::anonymous) return false;
  const std::string path = normalized(name, backend);
  if (unlink_name(path, backend) == 0) return true;
  if (errno == ENOENT) return false;
  throw_os(shm_errc::system_error, path, "removing", errno);
}

// The object.

shm_segment::shm_segment(shm_segment&& other) noexcept
    : name_(std::move(other.name_)),
      backend_(other.backend_),
      base_(std::exchange(other.base_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      created_(other.created_),
      fixed_(std::exchange(other.fixed_, false)),
      fixed_resource_(std::exchange(other.fixed_resource_, nullptr)) {
  if (fixed_resource_ != nullptr) fixed_resource_->segment_ = this;
}

shm_segment& shm_segment::operator=(shm_segment&& other) noexcept {
  if (this != &other) {
    unmap();
    name_ = std::move(other.name_);
    backend_ = other.backend_;
    base_ = std::exchange(other.base_, nullptr);
    size_ = std::exchange(other.size_, 0);
    created_ = other.created_;
    fixed_ = std::exchange(other.fixed_, false);
    fixed_resource_ = std::exchange(other.fixed_resource_, nullptr);
    if (fixed_resource_ != nullptr) fixed_resource_->segment_ = this;
  }
  return *this;
}

shm_segment::~shm_segment() {
  unmap();
}

void shm_segment::unmap() noexcept {
  if (fixed_resource_ != nullptr) std::exchange(fixed_resource_, nullptr)->~shm_resource();
  if (base_ != nullptr) {
    const std::size_t below = fixed_ ? detail::os::page_size() : 0;
    detail::os::release(base_ - below, size_ + below);
  }
  base_ = nullptr;
  size_ = 0;
  fixed_ = false;
}

void* shm_segment::resource_page() const noexcept {
  return fixed_ ? base_ - detail::os::page_size() : nullptr;
}

namespace {
// Where a creator asks for a fixed segment: 32 TiB plus 4 GiB steps chosen by the name, far
// above the heap and below where Linux puts libraries and stacks (near 128 TiB).
std::uintptr_t default_hint(std::string_view name) noexcept {
  const std::uint64_t hash = detail::fnv1a(name);
  return (std::uintptr_t{1} << 45) +
         static_cast<std::uintptr_t>(hash % 4096) * (std::uintptr_t{1} << 32);
}
}  // namespace

void shm_segment::map_fixed_new(int fd, std::size_t size, std::uintptr_t hint,
                                std::string_view path) {
  const std::size_t page = detail::os::page_size();
  void* want = reinterpret_cast<void*>(hint != 0 ? hint : default_hint(path));
  auto* reservation = static_cast<std::byte*>(detail::os::reserve_near(want, size + page));
  if (reservation == nullptr) {
    throw_os(shm_errc::system_error, path, "reserving its address", errno);
  }
  if (!detail::os::map_at(reservation + page, size, fd, true) ||
      !detail::os::map_at(reservation, page, -1, true)) {
    const int err = errno;
    detail::os::release(reservation, size + page);
    throw_os(shm_errc::system_error, path, "mapping", err);
  }
  base_ = reservation + page;
  size_ = size;
  fixed_ = true;
}

void shm_segment::map_fixed_at(int fd, std::size_t size, std::uintptr_t address,
                               std::string_view path) {
  const std::size_t page = detail::os::page_size();
  auto* base = reinterpret_cast<std::byte*>(address);
  const auto taken = [&](const char* what) {
    throw shm_error(shm_errc::address_in_use,
                    "pmrkit: shm segment " + quoted(path) + ": address in use: " + what +
                        " at its creator's address " + std::to_string(address) +
                        " is taken in this process (fixed_address never maps elsewhere)",
                    EEXIST);
  };
  if (address < page || address % page != 0) taken("the header's address");
  if (!detail::os::map_at(base - page, page, -1, false)) taken("the resource page");
  if (!detail::os::map_at(base, size, fd, false)) {
    detail::os::release(base - page, page);
    taken("the segment");
  }
  base_ = base;
  size_ = size;
  fixed_ = true;
}

std::uintptr_t shm_segment::preferred_base() const noexcept {
  return static_cast<std::uintptr_t>(header_of(base_).preferred_base);
}

std::span<std::byte> shm_segment::user_header_area() const noexcept {
  const segment_header& h = header_of(base_);
  return {base_ + h.user_header_offset, static_cast<std::size_t>(h.user_header_size)};
}

std::span<std::byte> shm_segment::allocator_area() const noexcept {
  const segment_header& h = header_of(base_);
  return {base_ + h.allocator_offset, static_cast<std::size_t>(h.allocator_size)};
}

void shm_segment::check_user_header(std::size_t size, std::size_t alignment) const {
  const std::size_t have = user_header_area().size();
  if (size > have) {
    throw std::invalid_argument("pmrkit::shm_segment: user_header: the type needs " +
                                std::to_string(size) + " bytes, the segment's user header has " +
                                std::to_string(have) + " (options.user_header_size)");
  }
  if (alignment > user_header_alignment) {
    throw std::invalid_argument("pmrkit::shm_segment: user_header: alignment above 64");
  }
}

void shm_segment::mark_corrupted() noexcept {
  header_of(base_).state.store(corrupted, std::memory_order_release);
}

}  // namespace pmrkit
