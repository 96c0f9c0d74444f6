// Deterministic inputs shared by every subject: request sizes, free orders, container keys.
//
// Everything is computed once from fixed seeds with a portable generator, so each subject sees
// exactly the same sequence and runs are comparable across machines and standard libraries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace pmrkit::bench {

// Blocks per timed batch in the allocation scenarios; small enough that the mixed variant stays
// around 3 MiB live.
inline constexpr std::size_t batch_size = 4096;
// Live blocks kept by the churn scenario.
inline constexpr std::size_t churn_live_blocks = 4096;
// Live blocks kept by churn_uniform: uniform sizes average 2 KiB, so about 4 MiB live.
inline constexpr std::size_t uniform_churn_live_blocks = 2048;
// What allocate(n) asks for by default.
inline constexpr std::size_t alignment = alignof(std::max_align_t);

inline constexpr std::size_t fixed_size = 32;
inline constexpr std::size_t min_mixed_size = 16;
inline constexpr std::size_t max_mixed_size = 4096;

// The shm scenarios (shm.cpp): shm_message allocates message_queue_length messages of
// message_size bytes, then frees them oldest first, message_rounds times per batch (batch_size
// allocations in all).
inline constexpr std::size_t message_size = 256;
inline constexpr std::size_t message_queue_length = 64;
inline constexpr std::size_t message_rounds = batch_size / message_queue_length;

// Elements per batch in the container workloads.
inline constexpr std::size_t container_items = 65536;
inline constexpr std::size_t string_items = 16384;

// One request-size sequence of batch_size entries; its suffix ends the scenario name.
struct size_variant {
  std::string_view suffix;
  std::span<const std::size_t> sizes;
  std::size_t max_size;
};

// "32": every request is fixed_size bytes. "mixed": log-uniform over
// [min_mixed_size, max_mixed_size] (each power-of-two octave equally likely), so small requests
// dominate by count as in real programs.
std::span<const size_variant> size_variants();

// batch_size sizes uniform over [min_mixed_size, max_mixed_size]: every size equally likely, so
// large requests dominate by bytes (2 KiB on average), and most sizes are not near a power of
// two. churn_uniform and the shm scenarios use it.
std::span<const std::size_t> uniform_sizes();

// Permutations of [0, batch_size) giving the order in which a batch is freed.
std::span<const std::uint32_t> forward_order();
std::span<const std::uint32_t> reversed_order();
std::span<const std::uint32_t> shuffled_order();

// batch_size slot indices in [0, live_blocks): which live block each churn step replaces;
// live_blocks is churn_live_blocks or uniform_churn_live_blocks.
std::span<const std::uint32_t> churn_victims(std::size_t live_blocks = churn_live_blocks);

// container_items pseudo-random keys (duplicates possible, the same for every subject).
std::span<const int> container_keys();
// string_items lengths in [16, 80): longer than any small-string buffer, so each string
// allocates.
std::span<const std::uint32_t> string_lengths();

// Bytes of the json_parse document.
inline constexpr std::size_t json_document_size = std::size_t{4} << 20;
// A JSON document of about json_document_size bytes, built once: an array of json_records
// records, each an object with strings (names and notes longer than Boost.JSON's small-string
// buffer, short tags), integers, a decimal, a bool, a nested object and nested arrays of numbers,
// strings and objects.
std::string_view json_document();
// How many records json_document() holds.
std::size_t json_records();

}  // namespace pmrkit::bench
