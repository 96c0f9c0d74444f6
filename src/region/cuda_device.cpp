#include <pmr/region/cuda_device.hpp>

#include "cuda_common.hpp"

#include <cuda_runtime_api.h>

namespace pmrkit {

int cuda_device_count() noexcept {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

std::string cuda_unavailable_reason() {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    (void)cudaGetLastError();
    const detail::cuda::error_text text("", error);
    return std::string(text.text + 2);  // without the empty call's ": "
  }
  if (count == 0) return "cudaGetDeviceCount: the CUDA runtime sees no device";
  return {};
}

}  // namespace pmrkit
