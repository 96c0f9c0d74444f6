// pmrkit_bench: every pmrkit strategy against the peers, same binary, same workloads.
// See bench/README.md for running it and reading the tables.
#include <memory_resource>

#include <benchmark/benchmark.h>

#include <pmr/pmrkit.hpp>

#include "registry.hpp"

namespace pmrkit::bench {
namespace {

// The pmrkit rows: one line per strategy, named pmrkit_*, added before the peers so they lead
// every table. The capabilities (subject.hpp: general, releasable, monotonic, or
// capabilities{.block_size = N}) pick the scenarios that apply. For example:
//
//   rows.add_resource<capabilities{.block_size = 32}>("pmrkit_pool", [] {
//     return pmrkit::pool_resource({.block_size = 32}, std::pmr::new_delete_resource()); });
//   rows.add_resource<releasable>("pmrkit_multipool", [] {
//     return pmrkit::multipool_resource({}, std::pmr::new_delete_resource()); });
//   rows.add_resource<monotonic>("pmrkit_chunked_arena", [] {
//     return pmrkit::chunked_arena_resource({}, std::pmr::new_delete_resource()); },
//     [](auto& arena) { arena.reset(); });  // release-all that keeps the chunks
void add_pmrkit_rows(registry& rows) {
  // reset() frees everything and keeps the chunks: what a per-batch arena does.
  rows.add_resource<monotonic>(
      "pmrkit_chunked_arena",
      [] { return pmrkit::chunked_arena_resource({}, std::pmr::new_delete_resource()); },
      [](pmrkit::chunked_arena_resource& arena) { arena.reset(); });
  // Retaining what a batch commits keeps reset free of system calls, as a hot loop would.
  rows.add_resource<monotonic>(
      "pmrkit_vmem_arena",
      [] {
        return pmrkit::vmem_arena_resource(
            {.reserve = std::size_t{1} << 32, .retain_on_reset = std::size_t{64} << 20},
            std::pmr::new_delete_resource());
      },
      [](pmrkit::vmem_arena_resource& arena) { arena.reset(); });
  // Frees pop only the newest block; a batch ends with a rewind to the start.
  rows.add_resource<monotonic>(
      "pmrkit_stack",
      [] {
        // Chunks as foonathan_stack's blocks (peers.cpp): 64 KiB first, doubling without a cap.
        return pmrkit::stack_resource(
            {.initial_chunk_size = std::size_t{64} << 10, .max_chunk_size = std::size_t{1} << 30},
            std::pmr::new_delete_resource());
      },
      [](pmrkit::stack_resource& stack) { stack.reset(); });
  // One block size: the fixed-size scenarios and the containers whose requests all fit.
  rows.add_resource<capabilities{.block_size = 32, .release_all = true}>("pmrkit_pool", [] {
    return pmrkit::pool_resource({.block_size = 32}, std::pmr::new_delete_resource());
  });
  rows.add_resource<releasable>("pmrkit_multipool", [] {
    return pmrkit::multipool_resource(std::pmr::new_delete_resource());
  });
}

}  // namespace
}  // namespace pmrkit::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  pmrkit::bench::registry rows;
  pmrkit::bench::add_pmrkit_rows(rows);
  pmrkit::bench::add_peer_rows(rows);
  rows.register_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return rows.any_failed() ? 1 : 0;
}
