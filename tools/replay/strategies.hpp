// The strategies pmrkit-replay replays a trace against: each a fresh
// resource over a given upstream, with settings from the command line
// (`--set multipool.max_blocks_per_chunk=256`), and a rule saying when it
// cannot serve a trace at all (a pool of one size, mixed sizes; a stack,
// frees out of order).
//
// Thread safety: the table is immutable.
#pragma once

#include "profile.hpp"

#include <map>
#include <memory>
#include <memory_resource>
#include <string>
#include <string_view>
#include <vector>

namespace pmrkit::replay {

/// One strategy's settings: field -> value ("64K", "1M" and "2G" allowed).
using settings = std::map<std::string, std::string, std::less<>>;

struct strategy {
  std::string_view name;
  std::string_view summary;  ///< one line: what it is
  /// The fields --set may give it.
  std::vector<std::string_view> fields;
  /// An arena's note on what it frees ("it never frees"), after its row and in the
  /// recommendation; empty for a strategy that frees every block.
  std::string_view frees_note;
  /// May be called from several threads at once (else --threads puts a lock in front).
  bool thread_safe = false;
  /// The system heap itself: what it holds from the OS is not visible, so no peak.
  bool is_system_heap = false;
  /// Why it cannot serve a trace with this profile; empty when it can.
  std::string (*refuses)(const trace_profile& profile, const settings& s) = nullptr;
  /// A fresh instance over `upstream`. Throws std::invalid_argument for a bad setting.
  std::unique_ptr<std::pmr::memory_resource> (*make)(std::pmr::memory_resource* upstream,
                                                     const settings& s,
                                                     const trace_profile& profile) = nullptr;
};

/// Every strategy, in the order the table prints them.
[[nodiscard]] const std::vector<strategy>& strategies();

/// The strategy called `name`, or nullptr.
[[nodiscard]] const strategy* find_strategy(std::string_view name);

/// A byte count with an optional K, M, G (or KiB, MiB, GiB) suffix. Throws
/// std::invalid_argument naming `field`.
[[nodiscard]] std::size_t parse_size(std::string_view text, std::string_view field);

}  // namespace pmrkit::replay
