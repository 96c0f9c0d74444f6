// Scratch arenas made and dropped per call: small_scratch (a function that builds a short vector
// of short strings over an arena on a stack buffer, and returns) and arena_per_request (an arena
// made for a request, 65536 blocks of 32 bytes through std::pmr::memory_resource&, then
// destroyed), with arena_reuse_request, the same loop over one arena reset per request. Each
// against std::pmr::monotonic_buffer_resource doing the same.
#include <array>
#include <cstddef>
#include <memory_resource>
#include <string_view>
#include <vector>

#include <benchmark/benchmark.h>

#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/arena/local_arena.hpp>

#include "registry.hpp"

namespace pmrkit::bench {
namespace {

// --- small_scratch ---------------------------------------------------------------------------

constexpr std::size_t scratch_buffer = 2048;
constexpr std::size_t scratch_words = 12;

// Lengths 5 to 40: a third beyond libstdc++'s 15-character small-string buffer.
constexpr std::array<std::size_t, scratch_words> word_lengths{5,  12, 24, 7,  33, 9,
                                                              16, 3,  40, 11, 20, 6};
constexpr std::string_view text = "scratch words: short strings built and dropped per call";

// What the called function does with its scratch resource: builds the words, uses them, returns.
[[gnu::noinline]] std::size_t build_words(std::pmr::memory_resource& scratch) {
  std::pmr::vector<std::pmr::string> words(&scratch);
  words.reserve(scratch_words);
  for (std::size_t length : word_lengths)
    words.emplace_back(text.substr(0, length));
  std::size_t total = 0;
  for (const std::pmr::string& word : words)
    total += word.size();
  benchmark::DoNotOptimize(words.data());
  return total;
}

template <class MakeAndRun>
void scratch_loop(benchmark::State& state, MakeAndRun run) {
  for (auto _ : state)
    benchmark::DoNotOptimize(run());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * scratch_words));
}

// --- arena_per_request, arena_reuse_request ----------------------------------------------------

constexpr std::size_t request_blocks = 65536;
constexpr std::size_t request_block_size = 32;

// A request's allocations, through the base class as a caller that takes any resource makes them.
[[gnu::noinline]] void serve_request(std::pmr::memory_resource& resource) {
  for (std::size_t i = 0; i < request_blocks; ++i) {
    void* p = resource.allocate(request_block_size, alignof(std::max_align_t));
    benchmark::DoNotOptimize(p);
  }
}

template <class Run>
void request_loop(benchmark::State& state, Run run) {
  for (auto _ : state)
    run();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * request_blocks));
}

}  // namespace

void add_scratch_rows(registry& rows) {
  std::pmr::memory_resource* const heap = std::pmr::new_delete_resource();
  rows.add_custom("small_scratch", "pmrkit_local_arena", [heap](benchmark::State& state) {
    scratch_loop(state, [heap] {
      pmrkit::local_arena<scratch_buffer> scratch(heap);
      return build_words(scratch);
    });
  });
  rows.add_custom("small_scratch", "pmrkit_chunked_arena_buffer", [heap](benchmark::State& state) {
    scratch_loop(state, [heap] {
      alignas(std::max_align_t) std::byte buffer[scratch_buffer];
      pmrkit::chunked_arena_resource scratch(buffer, sizeof buffer, heap);
      return build_words(scratch);
    });
  });
  rows.add_custom("small_scratch", "std_monotonic_buffer", [heap](benchmark::State& state) {
    scratch_loop(state, [heap] {
      alignas(std::max_align_t) std::byte buffer[scratch_buffer];
      std::pmr::monotonic_buffer_resource scratch(buffer, sizeof buffer, heap);
      return build_words(scratch);
    });
  });
  rows.add_custom("small_scratch", "new_delete", [heap](benchmark::State& state) {
    scratch_loop(state, [heap] { return build_words(*heap); });
  });

  rows.add_custom("arena_per_request", "pmrkit_chunked_arena", [heap](benchmark::State& state) {
    request_loop(state, [heap] {
      pmrkit::chunked_arena_resource arena(heap);
      serve_request(arena);
    });
  });
  rows.add_custom("arena_per_request", "std_monotonic", [heap](benchmark::State& state) {
    request_loop(state, [heap] {
      std::pmr::monotonic_buffer_resource arena(heap);
      serve_request(arena);
    });
  });
  rows.add_custom("arena_reuse_request", "pmrkit_chunked_arena", [heap](benchmark::State& state) {
    pmrkit::chunked_arena_resource arena({}, heap);
    request_loop(state, [&arena] {
      serve_request(arena);
      arena.reset();
    });
  });
  rows.add_custom("arena_reuse_request", "std_monotonic", [heap](benchmark::State& state) {
    std::pmr::monotonic_buffer_resource arena(heap);
    request_loop(state, [&arena] {
      serve_request(arena);
      arena.release();
    });
  });
}

}  // namespace pmrkit::bench
