// Recording a workload with trace_resource, for pmrkit-replay to say which
// strategy fits it.
//
// A word index: a std::pmr::map from words to the lines they appear on, with
// std::pmr::string keys, built, queried, partly erased and rebuilt, as a
// program's index might be. Every allocation goes through a trace_resource
// that writes the trace file; then
//
//   pmrkit-replay word_index.trace
//
// replays it against every strategy. Usage: trace_map [OUT.trace]
// (default word_index.trace in the current directory).
#include <pmr/decorator/trace_resource.hpp>

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory_resource>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "word_index.trace";
  pmrkit::trace_resource traced({.path = path, .name = "word index"});
  {
    using lines = std::pmr::vector<int>;
    std::pmr::map<std::pmr::string, lines> index(&traced);
    std::uint32_t seed = 12345;
    const auto next = [&seed] {
      seed = seed * 1664525u + 1013904223u;
      return seed >> 8;
    };
    for (int round = 0; round < 3; ++round) {
      for (int line = 0; line < 4000; ++line) {
        for (int w = 0; w < 6; ++w) {
          // Words of 3 to 40 characters: short ones fit the string in place, long ones allocate.
          std::pmr::string word(&traced);
          const std::size_t length = 3 + next() % 38;
          for (std::size_t i = 0; i < length; ++i)
            word += static_cast<char>('a' + next() % 6);
          index.try_emplace(std::move(word), lines(&traced)).first->second.push_back(line);
        }
      }
      // Erase every other entry: nodes and strings go back in no particular order.
      bool erase = false;
      for (auto it = index.begin(); it != index.end();) {
        it = (erase = !erase) ? index.erase(it) : std::next(it);
      }
    }
  }
  traced.flush();
  const pmrkit::trace_stats s = traced.stats();
  std::printf("trace_map: %zu allocations, %zu frees recorded to %s (%zu bytes)\n", s.allocations,
              s.deallocations, path.c_str(), s.trace_bytes);
  return s.allocations > 0 && s.allocations == s.deallocations ? 0 : 1;
}
