// A game-style frame loop over a memory_system: textures in the video region,
// audio buffers in the audio region (locked pages a sound card could read by
// DMA), per-frame temporaries in a stack over the temporary region, packets
// in the network region, and a pressure callback that drops textures from a
// cache when the budget runs short. It prints the region table at the end.
//
// The deployment may change the plan without a rebuild: PMRKIT_BUDGET=32MiB,
// PMRKIT_REGION_VIDEO="capacity=16MiB", or PMRKIT_CONFIG=game.conf.
#include <pmr/arena/stack_resource.hpp>
#include <pmr/core/literals.hpp>
#include <pmr/region/memory_system.hpp>

#include <cstdio>
#include <cstring>
#include <deque>
#include <iostream>
#include <memory_resource>
#include <vector>

namespace {

using namespace pmrkit::literals;
using pmrkit::memory_block;
using pmrkit::memory_type;

pmrkit::memory_system_config game_plan() {
  pmrkit::memory_system_config config;
  config.regions = {
      pmrkit::region_spec::for_type(memory_type::video, 48_MiB),
      pmrkit::region_spec::for_type(memory_type::audio, 1_MiB),      // 4 KiB buffers, locked
      pmrkit::region_spec::for_type(memory_type::network, 512_KiB),  // 2 KiB packet buffers
      pmrkit::region_spec::for_type(memory_type::temporary, 4_MiB),
      pmrkit::region_spec::for_type(memory_type::system, 8_MiB),
  };
  config.total_budget = 40_MiB;
  config.emergency_reserve = 1_MiB;
  // The environment (and a file it names) may change the plan.
  const pmrkit::memory_system_config overrides = pmrkit::memory_system_config::from_environment();
  if (overrides.total_budget != 0) config.total_budget = overrides.total_budget;
  for (const pmrkit::region_spec& region : overrides.regions) {
    for (pmrkit::region_spec& mine : config.regions) {
      if (mine.resolved().name == region.name) mine = region;
    }
  }
  return config;
}

}  // namespace

int main() {
  pmrkit::memory_system memory(game_plan());

  // Textures stay cached until pressure says otherwise: the oldest half goes at high pressure.
  std::deque<memory_block> texture_cache;
  std::size_t dropped = 0;
  pmrkit::pressure_subscription drop_textures =
      memory.on_pressure(pmrkit::pressure_level::high, [&](const pmrkit::pressure_event& event) {
        if (event.level < pmrkit::pressure_level::high) return;
        for (std::size_t n = (texture_cache.size() + 1) / 2; n != 0; --n) {
          memory.deallocate(texture_cache.front());
          texture_cache.pop_front();
          ++dropped;
        }
      });

  // Per-frame temporaries: a stack over the temporary region, rewound every frame.
  pmrkit::stack_resource frame_stack({.initial_chunk_size = 1_MiB, .max_chunk_size = 1_MiB},
                                     memory.resource(memory_type::temporary));
  std::pmr::memory_resource* audio = memory.resource(memory_type::audio);

  std::size_t packets_sent = 0;
  for (int frame = 0; frame < 120; ++frame) {
    const pmrkit::stack_scope scope(frame_stack);

    // Stream in a texture every few frames (1 to 4 MiB).
    if (frame % 3 == 0) {
      const std::size_t size = (1 + frame % 4) * 1_MiB;
      memory_block texture = memory.allocate({.size = size, .type = memory_type::video});
      std::memset(texture.pointer, frame, 4096);  // upload the first page, say
      texture_cache.push_back(texture);
    }

    // Mix a frame of audio into a locked 4 KiB buffer: 512 stereo float samples.
    std::pmr::vector<float> mix(1024, 0.0F, audio);
    for (std::size_t i = 0; i < mix.size(); ++i)
      mix[i] = static_cast<float>(i % 64) / 64.0F;

    // Visible objects this frame: scratch that dies with the frame (sized once: a stack frees
    // newest first, and a growing vector would free its old buffer after taking the new one).
    std::pmr::vector<int> visible(&frame_stack);
    visible.reserve(static_cast<std::size_t>(500 + frame));
    for (int object = 0; object < 500 + frame; ++object) {
      if (object % 7 != frame % 7) visible.push_back(object);
    }

    // A few packets out: 2 KiB buffers from the network pool.
    std::vector<memory_block> packets;
    for (int i = 0; i < 8; ++i) {
      packets.push_back(memory.allocate({.size = 1200, .type = memory_type::network}));
      std::memset(packets.back().pointer, i, 1200);
    }
    for (const memory_block& packet : packets)
      memory.deallocate(packet);
    packets_sent += packets.size();
  }

  std::printf("120 frames: %zu packets sent, %zu textures cached, %zu dropped under pressure\n\n",
              packets_sent, texture_cache.size(), dropped);
  std::cout << memory;
  for (const memory_block& texture : texture_cache)
    memory.deallocate(texture);
  texture_cache.clear();
  return dropped != 0 ? 0 : 1;  // the plan is sized so that pressure drops textures
}
