// The Conan package's consumer of the component cuda (pmrkit::cuda, built with
// -o with_cuda=True): a pool over cuda_pinned_resource where a GPU is found;
// without one the allocation must fail with a pmrkit::allocation_error that
// quotes the CUDA runtime's error. Exits non-zero on any wrong result.
#include <pmr/pool/pool_resource.hpp>
#include <pmr/region/cuda_pinned_resource.hpp>

#include <cstdio>
#include <string>

int main() {
  pmrkit::cuda_pinned_resource pinned;
  bool ok = pinned.properties().device_accessible;
  if (pmrkit::cuda_device_count() > 0) {
    pmrkit::pool_resource pool({.block_size = 64 * 1024}, &pinned);
    void* p = pool.allocate(64 * 1024);
    pool.deallocate(p, 64 * 1024);
    ok = ok && pinned.stats().blocks_in_use == 1;
  } else {
    std::string what;
    try {
      (void)pinned.allocate(4096);
    } catch (const pmrkit::allocation_error& e) {
      what = e.what();
    }
    std::printf("no CUDA device (%s): %s\n", pmrkit::cuda_unavailable_reason().c_str(),
                what.c_str());
    ok = ok && what.find("cudaHostAlloc: cudaError") != std::string::npos;
  }
  std::printf("pmrkit %s test_package_cuda: %s\n", PMRKIT_VERSION_STRING, ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
