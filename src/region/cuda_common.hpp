// What the CUDA page sources share (internal to pmrkit_cuda, not installed):
// turning a CUDA error into an allocation_error, the host page size, and the
// table of live blocks that finds a block's base and reports misuse on
// deallocation.
//
// Thread safety: the functions may be called from any thread; a block_table
// is guarded by its owner's lock.
#pragma once

#include <pmr/core/error.hpp>

#include <cuda_runtime_api.h>

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>
#include <unordered_map>

namespace pmrkit::detail::cuda {

/// The host's page size (sysconf; GetSystemInfo on Windows).
[[nodiscard]] std::size_t host_page_size() noexcept;

/// "<call>: <error name>: <error string>", in a fixed buffer (no allocation).
struct error_text {
  char text[200];
  error_text(std::string_view call, cudaError_t error) noexcept;
};

/// Clears the runtime's last (non-sticky) error and throws allocation_error:
/// out_of_capacity for cudaErrorMemoryAllocation, upstream_failed for any
/// other error, with error_text(call, error) as its detail.
[[noreturn]] void throw_cuda_error(std::string_view call, cudaError_t error, std::size_t bytes,
                                   std::size_t alignment, std::string_view resource_name);

/// One block handed out: what the caller asked and what backs it.
struct block {
  void* base = nullptr;                ///< what cudaHostAlloc or the upstream returned
  std::size_t extent = 0;              ///< bytes at base (pinned, or taken from the upstream)
  std::size_t bytes = 0;               ///< the caller's size
  std::size_t alignment = 0;           ///< the caller's alignment
  std::size_t upstream_alignment = 0;  ///< the alignment asked of the upstream
};

/// The live blocks by the pointer handed out, and the last freed ones (to
/// tell a double free from a foreign pointer). Not locked.
class block_table {
 public:
  /// Makes room for one more block, so that insert() cannot throw. May throw std::bad_alloc.
  void reserve_one() { blocks_.reserve(blocks_.size() + 1); }
  void insert(void* p, const block& b);
  /// Takes the block of `p` out of the table when the call is right. Otherwise, in checked
  /// builds, reports the violation (foreign pointer, double free, size or alignment
  /// mismatch) and returns nullopt, leaving the table as it was; unchecked builds free a
  /// mismatched block anyway and ignore an unknown pointer.
  [[nodiscard]] std::optional<block> take(void* p, std::size_t bytes, std::size_t alignment,
                                          std::string_view resource_name);
  /// Empties the table, calling f(pointer, block) for each block.
  template <class F>
  void drain(F&& f) {
    for (const auto& [p, b] : blocks_)
      f(p, b);
    blocks_.clear();
    recently_freed_.fill(nullptr);
  }
  [[nodiscard]] std::size_t size() const noexcept { return blocks_.size(); }

 private:
  void remember_freed(void* p) noexcept;
  [[nodiscard]] bool recently_freed(const void* p) const noexcept;

  std::unordered_map<void*, block> blocks_;
  std::array<void*, 256> recently_freed_{};
  std::size_t next_freed_ = 0;
};

}  // namespace pmrkit::detail::cuda
