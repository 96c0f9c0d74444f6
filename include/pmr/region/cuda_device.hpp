// cuda_device: whether the CUDA runtime has a device to work with, and if not,
// why not — the question to ask before relying on the CUDA page sources
// (cuda_pinned_resource, cuda_registered_resource).
//
// `cuda_device_count()` is the number of CUDA devices the runtime sees: 0 when
// it reports no device, no driver or a driver too old for it (it never
// throws). `cuda_unavailable_reason()` says why that count is 0 in the CUDA
// runtime's own words, "<error name>: <error string>", e.g.
// "cudaErrorNoDevice: no CUDA-capable device is detected", or "" when a
// device is there. Tests use it to skip with a message; programs to log why
// they fall back to ordinary memory.
//
// Part of the component pmrkit::cuda (the library pmrkit_cuda, built with
// PMRKIT_WITH_CUDA=ON or AUTO and the CUDA toolkit); the core library pmrkit
// needs no CUDA. This header includes no CUDA header.
//
// Thread safety: both functions may be called from any thread (the CUDA
// runtime is thread-safe); neither changes the runtime's error state.
//
// Example:
//   if (pmrkit::cuda_device_count() == 0) {
//     const std::string why = pmrkit::cuda_unavailable_reason();
//     assert(!why.empty());  // e.g. "cudaErrorNoDevice: no CUDA-capable device is detected"
//     std::clog << "no GPU: " << why << '\n';
//   } else {
//     assert(pmrkit::cuda_unavailable_reason().empty());
//   }
#pragma once

#include <string>

namespace pmrkit {

/// The number of CUDA devices the runtime sees; 0 when there is none, no
/// driver, or any other error of cudaGetDeviceCount.
[[nodiscard]] int cuda_device_count() noexcept;

/// Why cuda_device_count() is 0: "<cudaError name>: <its string>" from the
/// CUDA runtime, or "" when there is a device.
[[nodiscard]] std::string cuda_unavailable_reason();

}  // namespace pmrkit
