#include <pmr/pool/multipool_resource.hpp>

#include <pmr/core/error.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/core/violation.hpp>

#include <algorithm>
#include <new>

namespace pmrkit {

namespace classes = detail::size_classes;

multipool_resource::multipool_resource(multipool_options options,
                                       std::pmr::memory_resource* upstream)
    : name_(options.name),
      upstream_(require_upstream(upstream, "pmrkit::multipool_resource")),
      effective_(classes::effective_options(options.max_blocks_per_chunk,
                                            options.largest_required_pool_block)),
      class_count_(classes::count_for(effective_.largest_required_pool_block)),
      largest_(effective_.largest_required_pool_block) {}

multipool_resource::~multipool_resource() {
  release();
}

void multipool_resource::create_pools() {
  pools_ = static_cast<detail::block_pool*>(
      allocate_from_upstream(upstream_, table_bytes(), alignof(detail::block_pool), name_));
  took(table_bytes());
  for (std::size_t i = 0; i < class_count_; ++i)
    new (pools_ + i)
        detail::block_pool(classes::layout_of(i, effective_.max_blocks_per_chunk), upstream_);
}

void multipool_resource::destroy_pools() noexcept {
  if (pools_ == nullptr) return;
  for (std::size_t i = 0; i < class_count_; ++i)
    pools_[i].~block_pool();  // gives its chunks back
  upstream_->deallocate(pools_, table_bytes(), alignof(detail::block_pool));
  pools_ = nullptr;
}

void* multipool_resource::allocate_from_new_chunk(detail::block_pool& pool) {
  const std::size_t before = pool.bytes_from_upstream();
  void* p = pool.allocate_from_new_chunk(name_);
  took(pool.bytes_from_upstream() - before);  // 0 when a chunk kept since the pool emptied serves
  return p;
}

void* multipool_resource::allocate_uncommon(std::size_t bytes, std::size_t alignment) {
  check_request(bytes, alignment, name_);
  const std::size_t index = classes::index_of(bytes, alignment, class_count_);
  if (index == class_count_) {
    const std::size_t before = large_.bytes_from_upstream();
    void* p = large_.allocate(upstream_, bytes, alignment, name_);
    took(large_.bytes_from_upstream() - before);
    return p;
  }
  if (pools_ == nullptr) create_pools();
  detail::block_pool& pool = pools_[index];
  if (void* p = pool.try_allocate()) return p;
  return allocate_from_new_chunk(pool);
}

void multipool_resource::deallocate_uncommon(void* p, std::size_t bytes, std::size_t alignment) {
  const std::size_t index = classes::index_of(bytes, alignment, class_count_);
  if (index == class_count_) {
    const std::size_t before = large_.bytes_from_upstream();
    large_.deallocate(upstream_, p, bytes, alignment, name_);
    gave_back(before - large_.bytes_from_upstream());
  } else {
    deallocate_pooled(p, bytes, alignment, index);
  }
}

#if PMRKIT_CHECKED
bool multipool_resource::check_deallocate(void* p, std::size_t bytes, std::size_t alignment,
                                          std::size_t index) const {
  if (pools_ == nullptr) {
    report_violation({violation_kind::foreign_pointer, name_, p, bytes, alignment});
    return false;
  }
  if (!pools_[index].owns(p)) {
    for (std::size_t other = 0; other < class_count_; ++other) {
      if (pools_[other].owns(p)) {
        report_violation({violation_kind::size_mismatch, name_, p, bytes, alignment,
                          classes::class_size(other), classes::class_alignment(other)});
        return false;
      }
    }
  }
  return pools_[index].check_deallocate(p, name_, bytes, alignment);
}
#endif

void multipool_resource::release() noexcept {
  destroy_pools();
  large_.release(upstream_);
  from_upstream_ = 0;
}

std::size_t multipool_resource::shrink() noexcept {
  std::size_t returned = 0;
  if (pools_ == nullptr) return 0;
  for (std::size_t i = 0; i < class_count_; ++i)
    returned += pools_[i].shrink();
  gave_back(returned);
  return returned;
}

multipool_class_stats multipool_resource::class_stats(std::size_t index) const noexcept {
  if (pools_ == nullptr) return {.block_size = classes::class_size(index)};
  const detail::block_pool_counts counts = pools_[index].counts();
  const std::size_t block_size = pools_[index].layout().block_size;
  return {.bytes_in_use = counts.blocks_in_use * block_size,
          .peak_bytes_in_use = counts.peak_blocks_in_use * block_size,
          .blocks_in_use = counts.blocks_in_use,
          .peak_blocks_in_use = counts.peak_blocks_in_use,
          .bytes_from_upstream = counts.bytes_from_upstream,
          .chunk_count = counts.chunks,
          .capacity_blocks = counts.capacity_blocks,
          .block_size = block_size};
}

multipool_stats multipool_resource::stats() const noexcept {
  multipool_stats totals{.bytes_from_upstream = from_upstream_,
                         .peak_bytes_from_upstream = peak_from_upstream_,
                         .large_blocks_in_use = large_.count(),
                         .large_bytes_in_use = large_.bytes()};
  for (std::size_t i = 0; i < class_count_; ++i) {
    const multipool_class_stats one = class_stats(i);
    totals.blocks_in_use += one.blocks_in_use;
    totals.bytes_in_use += one.bytes_in_use;
    totals.chunk_count += one.chunk_count;
  }
  return totals;
}

bool multipool_resource::owns(const void* p) const noexcept {
  if (pools_ == nullptr) return false;
  for (std::size_t i = 0; i < class_count_; ++i) {
    if (pools_[i].owns(p)) return true;
  }
  return false;
}

}  // namespace pmrkit
