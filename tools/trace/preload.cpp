// libpmrkit_trace.so: records a whole program's allocations into a pmrkit trace
// (include/pmr/trace/trace_file.hpp, origin trace_origin::preload) under LD_PRELOAD.
//
// It defines malloc, calloc, realloc, reallocarray, free, aligned_alloc,
// posix_memalign, memalign, valloc, pvalloc and every form of the global
// operator new and delete (and _exit and _Exit, to flush: below). Each calls
// glibc's allocator through its __libc_* entries (no dlsym, so nothing to
// bootstrap) and records the call:
//
//   malloc, calloc, realloc  alignment alignof(max_align_t) (16); calloc's bytes
//                            n * size (SIZE_MAX when that overflows)
//   realloc(p, n)            a free of p's id and an allocation of n bytes under a
//                            new id; a realloc that fails records a failed
//                            allocation and leaves p live; realloc(p, 0), which
//                            frees p in glibc, only the free; realloc(NULL, n) is
//                            malloc(n)
//   memalign and friends     the alignment asked for (memalign's rounded up to a
//                            power of two, as glibc does; valloc's and pvalloc's
//                            the page size); bad alignments (EINVAL) are not
//                            recorded; aligned_alloc rejects an alignment that is
//                            not a power of two, as glibc 2.38 does
//   operator new             __STDCPP_DEFAULT_NEW_ALIGNMENT__, or the align_val_t
//   free, operator delete    bytes and alignment as the caller passed them (sized
//                            and aligned delete), else 0 and 1: "not said"
//   a null result            a failed allocation (each try of operator new's
//                            new_handler loop)
//
// malloc_usable_size, mallinfo, malloc_trim and the like are not defined:
// every block is glibc's own, so glibc's functions answer for it. A traced
// program runs on glibc's allocator even when it links another (jemalloc,
// tcmalloc); one that calls such an allocator's own API (sdallocx, …) cannot be
// traced.
//
// Output: the file named by PMRKIT_TRACE_FILE, created at startup (O_EXCL); when
// it is another process's trace already (a program that a traced program ran,
// LD_PRELOAD and the variable inherited), `<path>.<pid>`. A program that execs
// leaves its file to the program it exec'd (same pid: the file is taken over and
// starts again), so `env`, shells and wrapper scripts leave the trace of the
// program they end in. Without the variable nothing is recorded and every call
// goes straight to glibc. After fork() the child records on, into `<path>.<pid>`
// of its own with its own ids, from the fork on (the parent's live blocks are
// not in its table: their frees pass unrecorded); that file is created at the
// child's first flush.
//
// The header is written at startup, so the file is a trace from then on.
// Records go through trace_writer's 64 KiB buffer, written out when full, by a
// destructor function at exit, which stops recording (frees after it pass
// through unrecorded, as do frees of blocks allocated before recording
// started), and by _exit and _Exit, which are interposed for that alone (dash,
// for one, leaves with _exit). A process killed by a signal or replaced by exec
// loses what is still in its buffer (at most 2047 records; the file stays
// readable).
//
// Thread safety: one lean_mutex guards the table of live blocks (address_map),
// the writer and the ids; glibc's allocator is called outside it (a free is
// taken out of the table before glibc gets the block back, so an address is in
// the table only while its block is live). Records are timed under the lock, so
// the file is in time order. fork() takes the lock in a pthread_atfork handler,
// so the child never inherits it held.
//
// No recursion, no malloc: the recorder's state is static storage, the table
// takes OS pages, the writer writes with write(2), and a thread-local flag
// (initial-exec TLS: no __tls_get_addr, which may allocate) marks a thread that
// is inside the recorder; any allocation it makes meanwhile (a signal handler's,
// another atfork handler's) goes straight to glibc unrecorded.
#include <pmr/core/detail/lean_mutex.hpp>
#include <pmr/trace/trace_file.hpp>

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <new>

#include "../../src/os/pages.hpp"
#include "../../src/trace/address_map.hpp"
#include "../../src/trace/trace_writer.hpp"

// glibc's allocator under its own names (exported by libc.so.6, GLIBC_2.2.5).
extern "C" {
void* __libc_malloc(std::size_t bytes) noexcept;
void* __libc_calloc(std::size_t count, std::size_t size) noexcept;
void* __libc_realloc(void* p, std::size_t bytes) noexcept;
void __libc_free(void* p) noexcept;
void* __libc_memalign(std::size_t alignment, std::size_t bytes) noexcept;
void* __libc_valloc(std::size_t bytes) noexcept;
void* __libc_pvalloc(std::size_t bytes) noexcept;
}

#define PMRKIT_PRELOAD_EXPORT __attribute__((visibility("default")))

namespace {

using pmrkit::trace_action;
using pmrkit::detail::address_map;
using pmrkit::detail::trace_writer;

constexpr std::size_t malloc_alignment = alignof(std::max_align_t);
constexpr std::size_t new_alignment = __STDCPP_DEFAULT_NEW_ALIGNMENT__;

/// Everything the recorder changes, in static storage (constant-initialized,
/// never destroyed: threads may allocate while the process exits).
struct recorder_state {
  pmrkit::detail::lean_mutex mutex;
  std::atomic<bool> recording{false};  // written under the mutex, or before any thread reads it
  int fd = -1;                         // -1 in a forked child until its first flush
  std::uint64_t start = 0;             // trace_clock_nanoseconds() at the start
  std::uint64_t next_id = 1;
  std::uint64_t untracked = 0;  // allocations the table had no room for
  char path[4096] = {};         // PMRKIT_TRACE_FILE
  char file[4096 + 16] = {};    // the file written: path or path.<pid>
  alignas(address_map) unsigned char live_storage[sizeof(address_map)] = {};
  alignas(trace_writer) unsigned char writer_storage[sizeof(trace_writer)] = {};

  address_map& live() noexcept {
    return *std::launder(reinterpret_cast<address_map*>(live_storage));
  }
  trace_writer& writer() noexcept {
    return *std::launder(reinterpret_cast<trace_writer*>(writer_storage));
  }
};
constinit recorder_state state;

__attribute__((tls_model("initial-exec"))) constinit thread_local bool inside = false;

/// Marks this thread inside the recorder for its lifetime; true when the call
/// it guards is to be recorded (recording, and not a nested call).
class entry {
 public:
  entry() noexcept : record_(!inside && state.recording.load(std::memory_order_acquire)) {
    if (record_) inside = true;
  }
  entry(const entry&) = delete;
  entry& operator=(const entry&) = delete;
  ~entry() {
    if (record_) inside = false;
  }
  explicit operator bool() const noexcept { return record_; }

 private:
  bool record_;
};

// --- Messages and file names, without malloc or stdio ---------------------------------------

/// Writes "pmrkit_trace: " and `pieces` as one line to stderr.
void say(std::initializer_list<const char*> pieces) noexcept {
  char line[512] = "pmrkit_trace: ";
  for (const char* piece : pieces)
    std::strncat(line, piece, sizeof line - std::strlen(line) - 2);
  std::strcat(line, "\n");
  (void)!::write(2, line, std::strlen(line));
}

/// `value` in decimal into `out` (at least 21 bytes); returns `out`.
char* decimal(std::uint64_t value, char* out) noexcept {
  char digits[21];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  for (int i = 0; i < n; ++i)
    out[i] = digits[n - 1 - i];
  out[n] = '\0';
  return out;
}

/// Opens `name` for this process's trace: creates it (O_EXCL), or takes it over
/// when it holds the trace of an earlier image of this process (its header's pid
/// is ours: the program that exec'd this one, whose buffered records exec lost).
/// -1 and errno (EEXIST: another process's trace) otherwise.
int claim(const char* name) noexcept {
  int fd = ::open(name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
  if (fd >= 0 || errno != EEXIST) return fd;
  fd = ::open(name, O_RDWR | O_CLOEXEC);
  if (fd < 0) return -1;
  unsigned char header[pmrkit::trace_header_size];
  const auto pid = static_cast<std::uint32_t>(::getpid());
  if (::pread(fd, header, sizeof header, 0) == static_cast<ssize_t>(sizeof header) &&
      std::memcmp(header, pmrkit::trace_magic.data(), pmrkit::trace_magic.size()) == 0 &&
      (header[24] | header[25] << 8 | header[26] << 16 | std::uint32_t{header[27]} << 24) == pid &&
      ::ftruncate(fd, 0) == 0) {
    return fd;
  }
  ::close(fd);
  errno = EEXIST;
  return -1;
}

/// Sets state.file to "<path>.<pid>" and claims it.
int claim_per_process_file() noexcept {
  char pid[21];
  decimal(static_cast<std::uint64_t>(::getpid()), pid);
  std::strcpy(state.file, state.path);
  std::strcat(state.file, ".");
  std::strcat(state.file, pid);
  return claim(state.file);
}

/// The writer's sink: write(2) to state.fd, which a forked child opens here, at
/// its first flush.
bool file_sink(void*, const std::byte* data, std::size_t size) noexcept {
  if (state.fd < 0) {
    state.fd = claim_per_process_file();
    if (state.fd < 0) {
      say({"cannot create ", state.file, "; this process's allocations are not recorded"});
      return false;
    }
  }
  return pmrkit::detail::fd_sink(reinterpret_cast<void*>(static_cast<std::intptr_t>(state.fd)),
                                 data, size);
}

// --- Recording (under state.mutex) ----------------------------------------------------------

/// A fresh table and writer for this process (at startup, and in a forked child).
void begin_trace() noexcept {
  pmrkit::trace_header header;
  header.origin = pmrkit::trace_origin::preload;
  header.start_unix_nanoseconds = pmrkit::detail::trace_unix_nanoseconds();
  header.pid = static_cast<std::uint32_t>(::getpid());
  new (state.live_storage) address_map();
  new (state.writer_storage) trace_writer(file_sink, nullptr, header);
  state.start = pmrkit::detail::trace_clock_nanoseconds();
  state.next_id = 1;
  state.untracked = 0;
}

void append(trace_action action, std::uint64_t id, std::uint64_t bytes,
            std::uint64_t alignment) noexcept {
  pmrkit::trace_record record;
  record.action = action;
  record.thread = pmrkit::detail::trace_thread_number();
  record.id = id;
  record.bytes = bytes;
  record.alignment = alignment;
  const std::uint64_t now = pmrkit::detail::trace_clock_nanoseconds();
  record.nanoseconds = now > state.start ? now - state.start : 0;
  state.writer().append(record);
}

/// Records `p` (from glibc, or null: a failed allocation) as a new id.
void add_block(void* p, std::size_t bytes, std::size_t alignment) noexcept {
  const std::uint64_t id = state.next_id++;
  if (p == nullptr) {
    append(trace_action::failed_allocation, id, bytes, alignment);
    return;
  }
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  std::uint64_t stale = 0;
  // Still in the table: its free went by unrecorded (a nested call); record it now.
  if (state.live().take(address, stale)) append(trace_action::deallocate, stale, 0, 1);
  if (state.live().insert(address, id)) {
    append(trace_action::allocate, id, bytes, alignment);
  } else {
    ++state.untracked;  // its free will not find it either: neither is recorded
  }
}

/// The lock around the recording, errno kept (a flush may write).
class locked {
 public:
  locked() noexcept : errno_(errno) { state.mutex.lock(); }
  locked(const locked&) = delete;
  locked& operator=(const locked&) = delete;
  ~locked() {
    state.mutex.unlock();
    errno = errno_;
  }
  /// Recording has not stopped since the caller's entry looked.
  explicit operator bool() const noexcept {
    return state.recording.load(std::memory_order_relaxed);
  }

 private:
  int errno_;
};

// --- The traced calls -------------------------------------------------------------------------

/// Calls `real` (glibc) and records its block of `bytes` at `alignment`.
template <class Real>
void* allocate(std::size_t bytes, std::size_t alignment, Real real) noexcept {
  const entry record;
  void* p = real();
  if (record) {
    const locked lock;
    if (lock) add_block(p, bytes, alignment);
  }
  return p;
}

/// Records the free of `p` (when it was recorded), then gives it to glibc.
void deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept {
  if (p == nullptr) return;
  if (const entry record; record) {
    const locked lock;
    std::uint64_t id = 0;
    if (lock && state.live().take(reinterpret_cast<std::uintptr_t>(p), id))
      append(trace_action::deallocate, id, bytes, alignment);
  }
  __libc_free(p);
}

void* reallocate(void* p, std::size_t bytes) noexcept {
  if (p == nullptr) return allocate(bytes, malloc_alignment, [=] { return __libc_malloc(bytes); });
  const entry record;
  if (!record) return __libc_realloc(p, bytes);
  // Out of the table before glibc may give the address to another thread.
  std::uint64_t id = 0;
  bool tracked = false;
  if (const locked lock; lock) tracked = state.live().take(reinterpret_cast<std::uintptr_t>(p), id);
  void* q = __libc_realloc(p, bytes);
  const locked lock;
  if (!lock) return q;
  if (q == nullptr && bytes != 0) {  // failed: p is still live, under its id
    if (tracked) (void)state.live().insert(reinterpret_cast<std::uintptr_t>(p), id);
    add_block(nullptr, bytes, malloc_alignment);
    return q;
  }
  if (tracked) append(trace_action::deallocate, id, 0, 1);
  if (q != nullptr) add_block(q, bytes, malloc_alignment);
  return q;
}

void* aligned(std::size_t alignment, std::size_t bytes) noexcept {
  return allocate(bytes, alignment, [=] { return __libc_memalign(alignment, bytes); });
}

std::size_t page_size() noexcept {
  return pmrkit::detail::os::page_size();
}

/// operator new: glibc's block, or the new_handler's loop; null only for the
/// nothrow forms.
void* new_block(std::size_t bytes, std::size_t alignment, bool nothrow) {
  const std::size_t asked = bytes == 0 ? 1 : bytes;  // a unique pointer for 0, as libstdc++
  for (;;) {
    void* p = alignment <= new_alignment
                  ? allocate(bytes, alignment, [=] { return __libc_malloc(asked); })
                  : allocate(bytes, alignment, [=] { return __libc_memalign(alignment, asked); });
    if (p != nullptr) return p;
    const std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) {
      if (nothrow) return nullptr;
      throw std::bad_alloc();
    }
    if (!nothrow) {
      handler();
      continue;
    }
    try {
      handler();
    } catch (...) {  // as libstdc++'s nothrow forms
      return nullptr;
    }
  }
}

std::size_t alignment_of(std::align_val_t alignment) noexcept {
  return static_cast<std::size_t>(alignment);
}

// --- Start, exit, fork ------------------------------------------------------------------------

void before_fork() noexcept {
  inside = true;  // atfork handlers that run after this one allocate unrecorded
  state.mutex.lock();
}

void after_fork_in_parent() noexcept {
  state.mutex.unlock();
  inside = false;
}

void after_fork_in_child() noexcept {
  if (state.recording.load(std::memory_order_relaxed)) {
    if (state.fd >= 0) ::close(state.fd);  // the parent's file: its copy of the descriptor
    state.fd = -1;                         // <path>.<pid>, created at the first flush
    state.live().~address_map();           // the parent's table (this process's copy)
    begin_trace();
  }
  state.mutex.unlock();
  inside = false;
}

__attribute__((constructor)) void start_recording() noexcept {
  const char* path = ::getenv("PMRKIT_TRACE_FILE");
  if (path == nullptr || *path == '\0') return;
  if (std::strlen(path) >= sizeof state.path) {
    say({"PMRKIT_TRACE_FILE is too long; not recording"});
    return;
  }
  inside = true;
  std::strcpy(state.path, path);
  std::strcpy(state.file, path);
  state.fd = claim(state.file);
  if (state.fd < 0 && errno == EEXIST) state.fd = claim_per_process_file();
  if (state.fd < 0) {
    const char* error = ::strerrorname_np(errno);
    say({"cannot create ", state.file, ": ", error != nullptr ? error : "?", "; not recording"});
    inside = false;
    return;
  }
  begin_trace();
  if (::pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child) != 0) {
    say({"pthread_atfork failed; not recording"});
    ::close(state.fd);
    inside = false;
    return;
  }
  state.writer().flush();  // the header: the file is a trace from now on
  state.recording.store(true, std::memory_order_release);
  inside = false;
}

__attribute__((destructor)) void stop_recording() noexcept {
  if (inside) return;  // exit() from a signal handler that interrupted the recorder
  inside = true;
  const locked lock;
  if (!lock) return;
  state.recording.store(false, std::memory_order_relaxed);
  trace_writer& writer = state.writer();
  char count[21];
  if (!writer.flush()) {
    say({"writing ", state.file, " failed; records lost: ", decimal(writer.records_lost(), count)});
  }
  if (state.untracked != 0) {
    say({state.file, ": no memory for the table of live blocks; allocations not recorded: ",
         decimal(state.untracked, count)});
  }
  if (state.fd >= 0) ::close(state.fd);
  state.fd = -1;
}

/// _exit and _Exit: what is buffered, then the system call (recording goes on:
/// in a vfork child this memory is still the parent's).
[[noreturn]] void exit_now(int status) noexcept {
  if (!inside) {  // not from a signal handler that interrupted the recorder, which may hold the
                  // lock
    inside = true;
    const locked lock;
    if (lock) state.writer().flush();
  }
  for (;;)
    ::syscall(SYS_exit_group, status);
}

}  // namespace

// --- The interposed functions -----------------------------------------------------------------

extern "C" {

PMRKIT_PRELOAD_EXPORT void* malloc(std::size_t bytes) noexcept {
  return allocate(bytes, malloc_alignment, [=] { return __libc_malloc(bytes); });
}

PMRKIT_PRELOAD_EXPORT void* calloc(std::size_t count, std::size_t size) noexcept {
  std::size_t bytes = 0;
  if (__builtin_mul_overflow(count, size, &bytes)) bytes = SIZE_MAX;
  return allocate(bytes, malloc_alignment, [=] { return __libc_calloc(count, size); });
}

PMRKIT_PRELOAD_EXPORT void* realloc(void* p, std::size_t bytes) noexcept {
  return reallocate(p, bytes);
}

PMRKIT_PRELOAD_EXPORT void* reallocarray(void* p, std::size_t count, std::size_t size) noexcept {
  std::size_t bytes = 0;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return reallocate(p, bytes);
}

PMRKIT_PRELOAD_EXPORT void free(void* p) noexcept {
  deallocate(p, 0, 1);
}

PMRKIT_PRELOAD_EXPORT void* memalign(std::size_t alignment, std::size_t bytes) noexcept {
  if (alignment > (SIZE_MAX >> 1) + 1) return __libc_memalign(alignment, bytes);  // EINVAL
  return aligned(std::bit_ceil(alignment), bytes);
}

/// As glibc 2.38 (C17): an alignment that is not a power of two is EINVAL; the
/// size need not be a multiple of it.
PMRKIT_PRELOAD_EXPORT void* aligned_alloc(std::size_t alignment, std::size_t bytes) noexcept {
  if (!std::has_single_bit(alignment)) {
    errno = EINVAL;
    return nullptr;
  }
  return aligned(alignment, bytes);
}

/// POSIX: EINVAL for an alignment that is not a power of two times
/// sizeof(void*), ENOMEM when there is no memory; errno and *out untouched.
PMRKIT_PRELOAD_EXPORT int posix_memalign(void** out, std::size_t alignment,
                                         std::size_t bytes) noexcept {
  if (!std::has_single_bit(alignment) || alignment % sizeof(void*) != 0) return EINVAL;
  const int saved = errno;
  void* p = aligned(alignment, bytes);
  errno = saved;
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}

PMRKIT_PRELOAD_EXPORT void* valloc(std::size_t bytes) noexcept {
  return allocate(bytes, page_size(), [=] { return __libc_valloc(bytes); });
}

PMRKIT_PRELOAD_EXPORT void* pvalloc(std::size_t bytes) noexcept {
  return allocate(bytes, page_size(), [=] { return __libc_pvalloc(bytes); });
}

PMRKIT_PRELOAD_EXPORT void _exit(int status) {
  exit_now(status);
}

PMRKIT_PRELOAD_EXPORT void _Exit(int status) noexcept {
  exit_now(status);
}

}  // extern "C"

PMRKIT_PRELOAD_EXPORT void* operator new(std::size_t bytes) {
  return new_block(bytes, new_alignment, false);
}
PMRKIT_PRELOAD_EXPORT void* operator new[](std::size_t bytes) {
  return new_block(bytes, new_alignment, false);
}
PMRKIT_PRELOAD_EXPORT void* operator new(std::size_t bytes, const std::nothrow_t&) noexcept {
  return new_block(bytes, new_alignment, true);
}
PMRKIT_PRELOAD_EXPORT void* operator new[](std::size_t bytes, const std::nothrow_t&) noexcept {
  return new_block(bytes, new_alignment, true);
}
PMRKIT_PRELOAD_EXPORT void* operator new(std::size_t bytes, std::align_val_t alignment) {
  return new_block(bytes, alignment_of(alignment), false);
}
PMRKIT_PRELOAD_EXPORT void* operator new[](std::size_t bytes, std::align_val_t alignment) {
  return new_block(bytes, alignment_of(alignment), false);
}
PMRKIT_PRELOAD_EXPORT void* operator new(std::size_t bytes, std::align_val_t alignment,
                                         const std::nothrow_t&) noexcept {
  return new_block(bytes, alignment_of(alignment), true);
}
PMRKIT_PRELOAD_EXPORT void* operator new[](std::size_t bytes, std::align_val_t alignment,
                                           const std::nothrow_t&) noexcept {
  return new_block(bytes, alignment_of(alignment), true);
}

PMRKIT_PRELOAD_EXPORT void operator delete(void* p) noexcept {
  deallocate(p, 0, 1);
}
PMRKIT_PRELOAD_EXPORT void operator delete[](void* p) noexcept {
  deallocate(p, 0, 1);
}
PMRKIT_PRELOAD_EXPORT void operator delete(void* p, const std::nothrow_t&) noexcept {
  deallocate(p, 0, 1);
}
PMRKIT_PRELOAD_EXPORT void operator delete[](void* p, const std::nothrow_t&) noexcept {
  deallocate(p, 0, 1);
}
PMRKIT_PRELOAD_EXPORT void operator delete(void* p, std::size_t bytes) noexcept {
  deallocate(p, bytes, 1);
}
PMRKIT_PRELOAD_EXPORT void operator delete[](void* p, std::size_t bytes) noexcept {
  deallocate(p, bytes, 1);
}
PMRKIT_PRELOAD_EXPORT void operator delete(void* p, std::align_val_t alignment) noexcept {
  deallocate(p, 0, alignment_of(alignment));
}
PMRKIT_PRELOAD_EXPORT void operator delete[](void* p, std::align_val_t alignment) noexcept {
  deallocate(p, 0, alignment_of(alignment));
}
PMRKIT_PRELOAD_EXPORT void operator delete(void* p, std::align_val_t alignment,
                                           const std::nothrow_t&) noexcept {
  deallocate(p, 0, alignment_of(alignment));
}
PMRKIT_PRELOAD_EXPORT void operator delete[](void* p, std::align_val_t alignment,
                                             const std::nothrow_t&) noexcept {
  deallocate(p, 0, alignment_of(alignment));
}
PMRKIT_PRELOAD_EXPORT void operator delete(void* p, std::size_t bytes,
                                           std::align_val_t alignment) noexcept {
  deallocate(p, bytes, alignment_of(alignment));
}
PMRKIT_PRELOAD_EXPORT void operator delete[](void* p, std::size_t bytes,
                                             std::align_val_t alignment) noexcept {
  deallocate(p, bytes, alignment_of(alignment));
}
