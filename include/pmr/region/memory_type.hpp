// memory_type and memory_flags: the vocabulary of typed memory (the Flight HAL
// memory interface): what a block is for, and what it must be.
//
// A `memory_type` names what memory is used for, so a program asks for "video
// memory" or "an audio buffer" and the deployment decides what backs it:
// `system` (general purpose), `video` (textures, frame buffers: large,
// GPU-bound), `audio` (fixed buffers a device reads by DMA), `network`
// (packet buffers), `shared` (visible to other processes), `temporary`
// (scratch freed in bulk). `memory_flags` says what a region or a request
// needs: `dma_capable` (locked in RAM), `zero_fill` (blocks read as zero),
// `huge_pages`, `critical` (may draw on the emergency reserve). Flags combine
// with `|` and are tested with `has_flag`.
//
// region_resource (one fixed region of a type) and memory_system (every
// region behind one facade) take these; `to_string` and the parse functions
// are what their tables and configuration files use.
//
// Thread safety: values and pure functions.
//
// Example:
//   using pmrkit::memory_flags;
//   const memory_flags flags = memory_flags::dma_capable | memory_flags::zero_fill;
//   assert(pmrkit::has_flag(flags, memory_flags::zero_fill));
//   assert(!pmrkit::has_flag(flags, memory_flags::critical));
//   assert(pmrkit::to_string(flags) == "dma_capable|zero_fill");
//   assert(pmrkit::to_string(pmrkit::memory_type::video) == "video");
//   assert(pmrkit::parse_memory_type("audio") == pmrkit::memory_type::audio);
//   assert(!pmrkit::parse_memory_type("vram").has_value());
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace pmrkit {

/// What memory is used for.
enum class memory_type : unsigned char { system, video, audio, network, shared, temporary };

/// Every memory_type, in declaration order.
inline constexpr std::array<memory_type, 6> all_memory_types{
    memory_type::system,  memory_type::video,  memory_type::audio,
    memory_type::network, memory_type::shared, memory_type::temporary};

/// The lower-case name of `type`, e.g. "video".
[[nodiscard]] std::string_view to_string(memory_type type) noexcept;
/// The type named `name` (as to_string writes it), or nullopt.
[[nodiscard]] std::optional<memory_type> parse_memory_type(std::string_view name) noexcept;

/// What a region or a request needs, as bits.
enum class memory_flags : unsigned {
  none = 0,
  dma_capable = 1U << 0,  ///< locked in RAM, so a device may read it by DMA
  zero_fill = 1U << 1,    ///< every block reads as zero when handed out
  huge_pages = 1U << 2,   ///< backed by huge pages where the OS has them
  critical = 1U << 3,     ///< may draw on the emergency reserve
};

[[nodiscard]] constexpr memory_flags operator|(memory_flags a, memory_flags b) noexcept {
  return static_cast<memory_flags>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}
[[nodiscard]] constexpr memory_flags operator&(memory_flags a, memory_flags b) noexcept {
  return static_cast<memory_flags>(static_cast<unsigned>(a) & static_cast<unsigned>(b));
}
constexpr memory_flags& operator|=(memory_flags& a, memory_flags b) noexcept {
  return a = a | b;
}
/// True when every bit of `flag` is set in `flags`.
[[nodiscard]] constexpr bool has_flag(memory_flags flags, memory_flags flag) noexcept {
  return (flags & flag) == flag;
}

/// The flags joined by '|', e.g. "dma_capable|zero_fill"; "none" for none.
[[nodiscard]] std::string to_string(memory_flags flags);
/// Flags written as to_string writes them ('|' or ',' between names, "none"
/// or empty for none), or nullopt when a name is unknown.
[[nodiscard]] std::optional<memory_flags> parse_memory_flags(std::string_view text) noexcept;

}  // namespace pmrkit
