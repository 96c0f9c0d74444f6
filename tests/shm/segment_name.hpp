// A segment name of this test process's own, removed when the object dies
// (also when an assertion fails), so no test leaves anything in /dev/shm.
// POSIX names are /pmrkit-test-<pid>-<n>-<what>, the shape shm.no_leftovers
// checks; file-backed ones are in the temporary directory.
#pragma once

#include <pmr/shm/shm_segment.hpp>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <string_view>

namespace shm_test {

class segment_name {
 public:
  explicit segment_name(std::string_view what = "seg",
                        pmrkit::shm_backend backend = pmrkit::shm_backend::posix)
      : backend_(backend) {
    static std::atomic<unsigned> counter{0};
    const std::string stem = "pmrkit-test-" + std::to_string(::getpid()) + "-" +
                             std::to_string(counter.fetch_add(1)) + "-" + std::string(what);
    name_ = backend == pmrkit::shm_backend::file
                ? (std::filesystem::temp_directory_path() / stem).string()
                : "/" + stem;
  }
  segment_name(const segment_name&) = delete;
  segment_name& operator=(const segment_name&) = delete;
  ~segment_name() {
    try {
      (void)pmrkit::shm_segment::remove(name_, backend_);
    } catch (...) {
    }
  }
  [[nodiscard]] const std::string& str() const noexcept { return name_; }

 private:
  pmrkit::shm_backend backend_;
  std::string name_;
};

}  // namespace shm_test
