#include <pmr/pool/pool_resource.hpp>

#include <pmr/core/error.hpp>
#include <pmr/core/violation.hpp>

namespace pmrkit {

pool_resource::pool_resource(pool_resource_options options, std::pmr::memory_resource* upstream)
    : options_(options),
      name_(options.name),
      block_size_(options.block_size),
      block_alignment_(options.block_alignment),
      blocks_(detail::validated_layout("pool_resource",
                                       {.block_size = options.block_size,
                                        .block_alignment = options.block_alignment,
                                        .initial_blocks = options.initial_blocks,
                                        .max_blocks = options.max_blocks_per_chunk,
                                        .growth_factor = options.growth_factor},
                                       upstream),
              upstream) {
  options_.name = name_;
}

void* pool_resource::allocate_mismatched(std::size_t bytes, std::size_t alignment) {
  check_request(bytes, alignment, name_);
  if (options_.on_mismatch == pool_mismatch::reject) {
    throw_allocation_error(failure_reason::out_of_capacity, bytes, alignment, name_);
  }
  return forwarded_.allocate(blocks_.upstream(), bytes, alignment, name_);
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
  return {.blocks_in_use = counts.blocks_in_use,
          .peak_blocks_in_use = counts.peak_blocks_in_use,
          .capacity_blocks = counts.capacity_blocks,
          .chunk_count = counts.chunks,
          .bytes_from_upstream = counts.bytes_from_upstream + forwarded_.bytes_from_upstream(),
          .block_size = blocks_.layout().block_size,
          .forwarded_in_use = forwarded_.count()};
}

}  // namespace pmrkit
