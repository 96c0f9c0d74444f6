// pmrkit_cuda_bench: the GPU figures of the CUDA page sources (issue 15's
// speed targets), one Google Benchmark binary, rows named <scenario>/<row>:
//
//   pinned_alloc/pmrkit_pool      allocate + free one 64 KiB block from a pool_resource over
//                                 cuda_pinned_resource (target: >= 1000x cheaper than ...)
//   pinned_alloc/pmrkit_region    ... from a video region_resource (buddy, 64 MiB) over
//                                 cuda_pinned_resource, taken once
//   pinned_alloc/cudaHostAlloc    ... cudaHostAlloc + cudaFreeHost of 64 KiB per request
//   h2d_copy_64MiB/pinned         cudaMemcpy host->device of 64 MiB from a video region_resource
//                                 over cuda_pinned_resource
//   h2d_copy_64MiB/registered     ... from cuda_registered_resource over page_resource
//   h2d_copy_64MiB/pageable       ... from malloc'd memory (target: pinned >= 3x this)
//   register_1GiB/touch_1         a 1 GiB cuda_registered_resource block, touched by 1 thread
//   register_1GiB/touch_all       ... by every hardware thread (counters touch_ms, register_ms)
//
// Without a CUDA device it prints why and exits 0 (scripts/gpu_bench.sh, bench/README.md).
#include <pmr/pool/pool_resource.hpp>
#include <pmr/region/cuda_pinned_resource.hpp>
#include <pmr/region/cuda_registered_resource.hpp>
#include <pmr/region/region_resource.hpp>
#if __has_include(<pmr/region/page_resource.hpp>)
#include <pmr/region/page_resource.hpp>
#define PMRKIT_CUDA_BENCH_PAGES 1
#endif

#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory_resource>
#include <string>
#include <thread>

namespace {

constexpr std::size_t kib = std::size_t{1} << 10;
constexpr std::size_t mib = std::size_t{1} << 20;
constexpr std::size_t block = 64 * kib;
constexpr std::size_t copy_bytes = 64 * mib;
constexpr std::size_t register_bytes = 1024 * mib;

/// The upstream of the registered rows: page_resource where it is built, else
/// the default resource.
std::pmr::memory_resource* page_upstream() {
#if defined(PMRKIT_CUDA_BENCH_PAGES)
  static pmrkit::page_resource pages;
  return &pages;
#else
  return std::pmr::get_default_resource();
#endif
}

void check(cudaError_t error, const char* what, benchmark::State& state) {
  if (error != cudaSuccess) {
    state.SkipWithError(
        (std::string(what) + ": " + cudaGetErrorName(error) + ": " + cudaGetErrorString(error))
            .c_str());
  }
}

void pinned_alloc_pool(benchmark::State& state) {
  pmrkit::cuda_pinned_resource pinned;
  pmrkit::pool_resource pool({.block_size = block}, &pinned);
  pool.deallocate(pool.allocate(block), block);  // the first chunk outside the timing
  for (auto _ : state) {
    void* p = pool.allocate(block);
    benchmark::DoNotOptimize(p);
    pool.deallocate(p, block);
  }
  state.counters["cuda_allocations"] = static_cast<double>(pinned.stats().allocations);
}

void pinned_alloc_region(benchmark::State& state) {
  pmrkit::cuda_pinned_resource pinned;
  pmrkit::region_resource video(
      {.capacity = std::size_t{64} << 20, .type = pmrkit::memory_type::video}, &pinned);
  for (auto _ : state) {
    void* p = video.allocate(block);
    benchmark::DoNotOptimize(p);
    video.deallocate(p, block);
  }
  state.counters["cuda_allocations"] = static_cast<double>(pinned.stats().allocations);
}

void pinned_alloc_cuda(benchmark::State& state) {
  for (auto _ : state) {
    void* p = nullptr;
    const cudaError_t error = cudaHostAlloc(&p, block, cudaHostAllocPortable | cudaHostAllocMapped);
    if (error != cudaSuccess) {
      check(error, "cudaHostAlloc", state);
      break;
    }
    benchmark::DoNotOptimize(p);
    cudaFreeHost(p);
  }
}

void copy_from(benchmark::State& state, void* host) {
  void* device = nullptr;
  check(cudaMalloc(&device, copy_bytes), "cudaMalloc", state);
  if (device == nullptr) return;
  std::memset(host, 1, copy_bytes);  // every page resident before timing
  check(cudaMemcpy(device, host, copy_bytes, cudaMemcpyHostToDevice), "warm-up copy", state);
  for (auto _ : state) {
    const cudaError_t error = cudaMemcpy(device, host, copy_bytes, cudaMemcpyHostToDevice);
    if (error != cudaSuccess) {
      check(error, "cudaMemcpy", state);
      break;
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * copy_bytes));
  cudaFree(device);
}

void h2d_pinned(benchmark::State& state) {
  // A texture in a video region backed by pinned memory, as a memory_system would place it.
  pmrkit::cuda_pinned_resource pinned;
  pmrkit::region_resource video({.capacity = 2 * copy_bytes, .type = pmrkit::memory_type::video},
                                &pinned);
  void* host = video.allocate(copy_bytes);
  copy_from(state, host);
  video.deallocate(host, copy_bytes);
}

void h2d_registered(benchmark::State& state) {
  pmrkit::cuda_registered_resource registered({}, page_upstream());
  void* host = registered.allocate(copy_bytes);
  copy_from(state, host);
  registered.deallocate(host, copy_bytes);
}

void h2d_pageable(benchmark::State& state) {
  void* host = std::malloc(copy_bytes);
  copy_from(state, host);
  std::free(host);
}

void register_1gib(benchmark::State& state) {
  const auto threads = static_cast<unsigned>(state.range(0));
  pmrkit::cuda_registered_resource registered({.touch_threads = threads}, page_upstream());
  double touch_ns = 0;
  double register_ns = 0;
  for (auto _ : state) {
    void* p = registered.allocate(register_bytes);
    const pmrkit::cuda_registered_stats s = registered.stats();
    touch_ns += static_cast<double>(s.last_touch_ns);
    register_ns += static_cast<double>(s.last_register_ns);
    state.PauseTiming();
    registered.deallocate(p, register_bytes);
    state.ResumeTiming();
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters["touch_ms"] = touch_ns / n / 1e6;
  state.counters["register_ms"] = register_ns / n / 1e6;
  state.counters["touch_threads"] = registered.stats().last_touch_threads;
}

}  // namespace

int main(int argc, char** argv) {
  if (pmrkit::cuda_device_count() == 0) {
    std::printf("pmrkit_cuda_bench: no CUDA device (%s); nothing measured\n",
                pmrkit::cuda_unavailable_reason().c_str());
    return 0;
  }
  cudaDeviceProp properties{};
  if (cudaGetDeviceProperties(&properties, 0) == cudaSuccess) {
    benchmark::AddCustomContext("cuda_device", properties.name);
  }
#if defined(PMRKIT_CUDA_BENCH_PAGES)
  benchmark::AddCustomContext("registered_upstream", "page_resource");
#else
  benchmark::AddCustomContext("registered_upstream", "default resource");
#endif
  benchmark::RegisterBenchmark("pinned_alloc/pmrkit_pool", pinned_alloc_pool);
  benchmark::RegisterBenchmark("pinned_alloc/pmrkit_region", pinned_alloc_region);
  benchmark::RegisterBenchmark("pinned_alloc/cudaHostAlloc", pinned_alloc_cuda);
  benchmark::RegisterBenchmark("h2d_copy_64MiB/pinned", h2d_pinned)->UseRealTime();
  benchmark::RegisterBenchmark("h2d_copy_64MiB/registered", h2d_registered)->UseRealTime();
  benchmark::RegisterBenchmark("h2d_copy_64MiB/pageable", h2d_pageable)->UseRealTime();
  const auto all = static_cast<std::int64_t>(std::max(1U, std::thread::hardware_concurrency()));
  benchmark::RegisterBenchmark("register_1GiB/touch_1", register_1gib)
      ->Arg(1)
      ->Iterations(3)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("register_1GiB/touch_all", register_1gib)
      ->Arg(all)
      ->Iterations(3)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
