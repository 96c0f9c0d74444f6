// A game-style frame loop on a stack_resource: each frame opens a scope,
// nested work takes checkpoints of its own, and everything a frame allocated
// is gone when its scope closes. Only the first frames take memory from the
// heap; after that every frame runs on cached chunks.
#include <pmr/arena/stack_resource.hpp>
#include <pmr/testing/test_resource.hpp>

#include <cstdio>
#include <memory_resource>
#include <numeric>
#include <vector>

namespace {

struct particle {
  float x, y, vx, vy;
};

// Simulation scratch: a buffer sized once per frame, never regrown.
float simulate(pmrkit::stack_resource& stack, int frame, std::size_t count) {
  std::pmr::vector<particle> particles(&stack);
  particles.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const auto f = static_cast<float>(i + static_cast<std::size_t>(frame));
    particles.push_back({f, -f, 1.0F, 0.5F});
  }
  float energy = 0;
  {
    // A nested pass with its own checkpoint: its buffer is gone at the brace.
    pmrkit::stack_scope pass(stack);
    std::pmr::vector<float> speeds(&stack);
    speeds.reserve(count);
    for (const particle& p : particles)
      speeds.push_back(p.vx * p.vx + p.vy * p.vy);
    energy = std::accumulate(speeds.begin(), speeds.end(), 0.0F);
  }
  return energy;
}

}  // namespace

int main() {
  pmrkit::test_resource heap("heap");
  pmrkit::stack_resource stack({.name = "frame stack"}, &heap);
  for (int frame = 0; frame < 8; ++frame) {
    pmrkit::stack_scope scope(stack);
    // Later frames simulate more particles; the stack grows only when a frame needs more.
    const std::size_t count = frame < 4 ? 200 : 1000;
    const float energy = simulate(stack, frame, count);
    std::printf(
        "frame %d: %4zu particles, energy %.1f, stack peak %5zu B, heap blocks so far %zu\n", frame,
        count, static_cast<double>(energy), stack.stats().peak_bytes_in_use,
        heap.stats().total_blocks);
  }
  const pmrkit::arena_stats stats = stack.stats();
  std::printf("after the loop: %zu B in use, %zu chunks cached, peak %zu B\n", stats.bytes_in_use,
              stats.chunk_count, stats.peak_bytes_in_use);
  // Two growth steps at most: frames 0 and 4. The rest ran on cached chunks.
  return stats.bytes_in_use == 0 && heap.stats().total_blocks <= 4 ? 0 : 1;
}
