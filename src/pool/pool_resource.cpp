#include <pmr/pool/pool_resource.hpp>

#include <pmr/core/error.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/core/violation.hpp>

namespace pmrkit {

pool_resource::pool_resource(pool_options options, std::pmr::memory_resource* upstream)
    : options_(options),
      name_(options.name),
      block_size_(options.block_size),
      block_alignment_(options.block_alignment),
      blocks_(
          detail::validated_layout("pool_resource", {.block_size = options.block_size,
                                                     .block_alignment = options.block_alignment,
                                                     .growth = {.initial = options.initial_blocks,
                                                                .max = options.max_blocks_per_chunk,
                                                                .factor = options.growth_factor}}),
          require_upstream(upstream, "pmrkit::pool_resource")) {
  options_.name = name_;
}

std::size_t pool_resource::blocks_fitting(std::size_t bytes, const pool_options& options) {
  const detail::block_pool_layout layout =
      detail::validated_layout("pool_resource", {.block_size = options.block_size,
                                                 .block_alignment = options.block_alignment,
                                                 .growth = {.initial = 1, .max = 1, .factor = 1}});
  return detail::blocks_fitting(layout, bytes);
}

void* pool_resource::allocate_from_new_chunk() {
  void* p = blocks_.allocate_from_new_chunk(name_);
  raise_peak();
  return p;
}

void* pool_resource::allocate_mismatched(std::size_t bytes, std::size_t alignment) {
  check_request(bytes, alignment, name_);
  if (options_.on_mismatch == pool_mismatch::reject) {
    throw_allocation_error(failure_reason::out_of_capacity, bytes, alignment, name_);
  }
  void* p = forwarded_.allocate(blocks_.upstream(), bytes, alignment, name_);
  raise_peak();
  return p;
}

void pool_resource::deallocate_mismatched(void* p, std::size_t bytes, std::size_t alignment) {
#if PMRKIT_CHECKED
  // One of its own blocks freed with a size or alignment that does not fit a block.
  if (blocks_.owns(p)) {
    report_violation(
        {violation_kind::size_mismatch, name_, p, bytes, alignment, block_size_, block_alignment_});
    return;
  }
#endif
  forwarded_.deallocate(blocks_.upstream(), p, bytes, alignment, name_);
}

void pool_resource::release() noexcept {
  blocks_.release();
  forwarded_.release(blocks_.upstream());
}

pool_stats pool_resource::stats() const noexcept {
  const detail::block_pool_counts counts = blocks_.counts();
  const std::size_t block_size = blocks_.layout().block_size;
  return {.bytes_in_use = counts.blocks_in_use * block_size,
          .peak_bytes_in_use = counts.peak_blocks_in_use * block_size,
          .blocks_in_use = counts.blocks_in_use,
          .peak_blocks_in_use = counts.peak_blocks_in_use,
          .bytes_from_upstream = bytes_from_upstream(),
          .peak_bytes_from_upstream = peak_from_upstream_,
          .chunk_count = counts.chunks,
          .large_blocks_in_use = forwarded_.count(),
          .large_bytes_in_use = forwarded_.bytes(),
          .capacity_blocks = counts.capacity_blocks,
          .block_size = block_size};
}

}  // namespace pmrkit
