// chunks_shrunk(resource): shrink(), checked. shrink() returns the bytes it
// gave back upstream, which must be what bytes_from_upstream dropped by; the
// result is how many chunks (regions) went back. Shared by the pool and buddy
// tests.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>

template <class Resource>
std::size_t chunks_shrunk(Resource& resource) {
  const auto before = resource.stats();
  const std::size_t bytes = resource.shrink();
  const auto after = resource.stats();
  EXPECT_EQ(bytes, before.bytes_from_upstream - after.bytes_from_upstream);
  return before.chunk_count - after.chunk_count;
}
