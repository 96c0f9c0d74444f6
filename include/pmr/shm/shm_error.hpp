// shm_error: what the shared-memory family throws when a segment cannot be
// created, opened or used, with a code a program can branch on.
//
// Every failure of shm_segment and of the named objects of shm_resource is a
// `shm_error`: its `code()` says which case it is, `system_errno()` the errno
// the OS gave (0 when the failure is pmrkit's own finding, a wrong magic
// for instance), and `what()` says in one line which segment, what was
// expected and what was found. An allocation the segment has no room for is
// not a shm_error but an `allocation_error` (out of capacity, naming the
// segment), as for every other resource.
//
// Thread safety: immutable values.
//
// Example:
//   try {
//     (void)pmrkit::shm_segment::open("/pmrkit-doc-example-missing");
//   } catch (const pmrkit::shm_error& e) {
//     assert(e.code() == pmrkit::shm_errc::not_found);
//     assert(pmrkit::to_string(e.code()) == "not found");
//   }
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace pmrkit {

/// Which shared-memory failure happened.
enum class shm_errc : unsigned char {
  name_in_use = 1,     ///< create: a segment of that name exists
  not_found,           ///< open: no segment of that name
  permission_denied,   ///< the OS refused access to the name or the file
  no_space,            ///< the backing store (/dev/shm, the file system) lacks the space asked
  bad_magic,           ///< the first bytes are not a pmrkit segment's
  bad_version,         ///< a pmrkit segment of another layout version
  bad_size,            ///< the header's size disagrees with the object's size, or is impossible
  truncated,           ///< the object is smaller than its header says (or than a header)
  still_initialising,  ///< its creator did not finish within the wait (it may have died)
  corrupted,           ///< the segment is marked corrupted, or its allocator state is invalid
  owner_died,          ///< the process holding the segment's lock died while holding it
  address_in_use,      ///< fixed_address: the segment's address is taken in this process
  object_exists,       ///< construct: a named object of that name exists
  object_not_found,    ///< destroy: no named object of that name
  type_mismatch,       ///< a named object found with another size, alignment or type tag
  system_error,        ///< another OS failure (see system_errno())
};

/// The lower-case name of `code`, e.g. "not found".
[[nodiscard]] std::string_view to_string(shm_errc code) noexcept;

/// The exception of the shared-memory family.
class shm_error : public std::runtime_error {
 public:
  /// `message` is the whole line what() returns; `system_errno` the OS's errno (0: none).
  shm_error(shm_errc code, const std::string& message, int system_errno = 0)
      : std::runtime_error(message), code_(code), errno_(system_errno) {}

  [[nodiscard]] shm_errc code() const noexcept { return code_; }
  [[nodiscard]] int system_errno() const noexcept { return errno_; }

 private:
  shm_errc code_;
  int errno_;
};

}  // namespace pmrkit
