// capped_resource: a test double for the decorator tests, an upstream that
// refuses a request taking its bytes in use past a limit that can move, with
// a plain std::bad_alloc as std::pmr resources do (budget_resource would
// throw pmrkit's budget_exceeded instead, which the decorators pass through
// unchanged, so it cannot test how they handle a foreign bad_alloc).
#pragma once

#include <cstddef>
#include <memory_resource>
#include <new>

namespace pmrkit::testing_support {

class capped_resource final : public std::pmr::memory_resource {
 public:
  explicit capped_resource(std::size_t limit,
                           std::pmr::memory_resource* upstream = std::pmr::new_delete_resource())
      : limit_(limit), upstream_(upstream) {}
  void set_limit(std::size_t limit) { limit_ = limit; }
  [[nodiscard]] std::size_t bytes_in_use() const { return in_use_; }
  [[nodiscard]] std::size_t refusals() const { return refusals_; }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (bytes > limit_ || in_use_ > limit_ - bytes) {
      ++refusals_;
      throw std::bad_alloc();
    }
    void* p = upstream_->allocate(bytes, alignment);
    in_use_ += bytes;
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    upstream_->deallocate(p, bytes, alignment);
    in_use_ -= bytes;
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  std::size_t limit_;
  std::size_t in_use_ = 0;
  std::size_t refusals_ = 0;
  std::pmr::memory_resource* upstream_;
};

}  // namespace pmrkit::testing_support
