#include <pmr/testing/exception_test.hpp>
#include <pmr/testing/test_resource.hpp>

#include <pmr/core/align.hpp>
#include <pmr/core/error.hpp>
#include <pmr/core/options.hpp>
#include <pmr/core/upstream.hpp>

#include <algorithm>
#include <cstring>

namespace pmrkit {

namespace {
constexpr std::size_t max_guard_bytes = 4096;
// Beyond this many remembered frees the oldest knowledge is dropped: a double
// free of a long-gone block is then reported as a foreign pointer.
constexpr std::size_t max_remembered_frees = std::size_t{1} << 20;

bool all_bytes_are(const std::byte* first, std::size_t count, unsigned char value) {
  return std::all_of(first, first + count,
                     [value](std::byte b) { return b == static_cast<std::byte>(value); });
}
}  // namespace

test_resource::test_resource(test_options options, std::pmr::memory_resource* upstream)
    : name_(options.name),
      guard_bytes_(options.guard_bytes),
      fill_(options.fill),
      upstream_(require_upstream(upstream, "pmrkit::test_resource")) {
  require_option(options.guard_bytes <= max_guard_bytes, "test_resource", "guard_bytes",
                 "must be at most 4096");
}

test_resource::~test_resource() {
  if (has_leaks()) {
    const std::vector<block_info> leaked = leaks();
    std::size_t leaked_bytes = 0;
    for (const block_info& block : leaked)
      leaked_bytes += block.size;
    report({violation_kind::leak, name_, leaked.front().pointer, leaked_bytes, 0, 0, 0});
  }
  const std::lock_guard lock(mutex_);
  for (const auto& [pointer, record] : blocks_) {
    upstream_->deallocate(record.base, record.total, record.upstream_alignment);
  }
}

void test_resource::set_allocation_limit(long long limit) noexcept {
  const std::lock_guard lock(mutex_);
  allocation_limit_ = limit < 0 ? -1 : limit;
}

long long test_resource::allocation_limit() const noexcept {
  const std::lock_guard lock(mutex_);
  return allocation_limit_;
}

test_stats test_resource::stats() const noexcept {
  const std::lock_guard lock(mutex_);
  return stats_;
}

std::size_t test_resource::blocks_in_use() const noexcept {
  const std::lock_guard lock(mutex_);
  return stats_.blocks_in_use;
}

std::size_t test_resource::bytes_in_use() const noexcept {
  const std::lock_guard lock(mutex_);
  return stats_.bytes_in_use;
}

std::vector<block_info> test_resource::leaks() const {
  std::vector<block_info> result;
  {
    const std::lock_guard lock(mutex_);
    result.reserve(blocks_.size());
    for (const auto& [pointer, record] : blocks_) {
      result.push_back({pointer, record.size, record.alignment, record.sequence});
    }
  }
  std::sort(result.begin(), result.end(),
            [](const block_info& a, const block_info& b) { return a.sequence < b.sequence; });
  return result;
}

bool test_resource::owns(const void* pointer) const {
  const std::lock_guard lock(mutex_);
  return blocks_.contains(pointer);
}

std::vector<violation> test_resource::errors() const {
  const std::lock_guard lock(mutex_);
  return errors_;
}

std::size_t test_resource::error_count() const {
  const std::lock_guard lock(mutex_);
  return errors_.size();
}

void test_resource::clear_errors() {
  const std::lock_guard lock(mutex_);
  errors_.clear();
}

bool test_resource::check_guards() {
  found_violations found;
  bool intact = true;
  {
    const std::lock_guard lock(mutex_);
    for (const auto& [pointer, record] : blocks_)
      intact = check_guards_locked(pointer, record, found) && intact;
  }
  report_unlocked(found);
  return intact;
}

void test_resource::report(const violation& v) {
  found_violations found;
  {
    const std::lock_guard lock(mutex_);
    record_locked(v, found);
  }
  report_unlocked(found);
}

void test_resource::record_locked(const violation& v, found_violations& found) {
  violation own = v;
  own.resource_name = name_;
  found.push_back(own);
  errors_.push_back(own);
}

void test_resource::report_unlocked(const found_violations& found) const {
  // Outside the lock: a handler may call this resource (errors(), stats()).
  for (const violation& v : found)
    report_violation(v);
}

bool test_resource::check_guards_locked(const void* pointer, const block_record& record,
                                        found_violations& found) {
  bool intact = true;
  if (!all_bytes_are(record.base, record.front, guard_fill)) {
    record_locked({violation_kind::buffer_underrun, name_, pointer, record.size, record.alignment,
                   record.size, record.alignment},
                  found);
    intact = false;
  }
  const std::byte* tail = record.base + record.front + record.size;
  if (!all_bytes_are(tail, guard_bytes_, guard_fill)) {
    record_locked({violation_kind::buffer_overrun, name_, pointer, record.size, record.alignment,
                   record.size, record.alignment},
                  found);
    intact = false;
  }
  return intact;
}

void* test_resource::do_allocate(std::size_t bytes, std::size_t alignment) {
  const std::lock_guard lock(mutex_);
  if (!is_power_of_two(alignment)) {
    ++stats_.failed_allocations;
    throw_allocation_error(failure_reason::bad_alignment, bytes, alignment, name_);
  }
  if (allocation_limit_ >= 0 && allocation_limit_-- == 0) {
    ++stats_.failed_allocations;
    ++stats_.injected_failures;
    throw_allocation_error(failure_reason::injected_failure, bytes, alignment, name_);
  }

  // Layout from the upstream's block: [front guard][user block][back guard].
  // The front guard is a multiple of the alignment so the user block keeps it.
  const std::size_t upstream_alignment = std::max(alignment, alignof(std::max_align_t));
  std::size_t front = 0;
  std::size_t total = 0;
  if ((guard_bytes_ != 0 && !checked_align_up(guard_bytes_, alignment, front)) ||
      !checked_add(front, bytes, total) || !checked_add(total, guard_bytes_, total)) {
    ++stats_.failed_allocations;
    throw_allocation_error(failure_reason::size_overflow, bytes, alignment, name_);
  }

  std::byte* base = nullptr;
  try {
    base = static_cast<std::byte*>(
        allocate_from_upstream(upstream_, total, upstream_alignment, name_, bytes, alignment));
  } catch (...) {
    ++stats_.failed_allocations;
    throw;
  }

  std::byte* user = base + front;
  std::memset(base, guard_fill, front);
  std::memset(user + bytes, guard_fill, guard_bytes_);
  if (fill_) std::memset(user, allocated_fill, bytes);

  try {
    blocks_.emplace(user, block_record{base, bytes, alignment, front, total, upstream_alignment,
                                       stats_.total_blocks});
    freed_.erase(user);
  } catch (...) {
    upstream_->deallocate(base, total, upstream_alignment);
    ++stats_.failed_allocations;
    throw_allocation_error(failure_reason::out_of_capacity, bytes, alignment, name_);
  }

  ++stats_.allocations;
  ++stats_.total_blocks;
  stats_.total_bytes += bytes;
  ++stats_.blocks_in_use;
  stats_.bytes_in_use += bytes;
  stats_.peak_blocks_in_use = std::max(stats_.peak_blocks_in_use, stats_.blocks_in_use);
  stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
  return user;
}

void test_resource::do_deallocate(void* pointer, std::size_t bytes, std::size_t alignment) {
  found_violations found;
  {
    const std::lock_guard lock(mutex_);
    ++stats_.deallocations;
    const auto block = blocks_.find(pointer);
    if (block == blocks_.end()) {
      const violation_kind kind =
          freed_.contains(pointer) ? violation_kind::double_free : violation_kind::foreign_pointer;
      record_locked({kind, name_, pointer, bytes, alignment, 0, 0}, found);
    } else {
      const block_record record = block->second;
      if (bytes != record.size) {
        record_locked({violation_kind::size_mismatch, name_, pointer, bytes, alignment, record.size,
                       record.alignment},
                      found);
      }
      if (alignment != record.alignment) {
        record_locked({violation_kind::alignment_mismatch, name_, pointer, bytes, alignment,
                       record.size, record.alignment},
                      found);
      }
      check_guards_locked(pointer, record, found);
      free_block_locked(pointer, record);
    }
  }
  report_unlocked(found);
}

void test_resource::free_block_locked(const void* pointer, const block_record& record) {
  if (fill_) std::memset(record.base + record.front, freed_fill, record.size);
  blocks_.erase(pointer);
  --stats_.blocks_in_use;
  stats_.bytes_in_use -= record.size;
  if (freed_.size() >= max_remembered_frees) freed_.clear();
  try {
    freed_.insert(pointer);
  } catch (const std::bad_alloc&) {
    freed_.clear();  // only double-free detection for this block is lost
  }
  upstream_->deallocate(record.base, record.total, record.upstream_alignment);
}

namespace detail {
bool check_no_leak_since(test_resource& resource, std::uint64_t first_sequence) {
  std::size_t leaked_bytes = 0;
  const void* first_block = nullptr;
  for (const block_info& block : resource.leaks()) {
    if (block.sequence < first_sequence) continue;
    if (first_block == nullptr) first_block = block.pointer;
    leaked_bytes += block.size;
  }
  if (first_block == nullptr) return true;
  resource.report({violation_kind::leak, resource.name(), first_block, leaked_bytes, 0, 0, 0});
  return false;
}
}  // namespace detail

}  // namespace pmrkit
