// Fuzzes stack_resource against the model (fuzz_harness.hpp): LIFO frees of
// the newest block only, stack scopes, checkpoint/rewind, reset, release,
// shrink, option values from the input (an initial buffer of 0 to 4 KiB at
// any offset from a 64-byte boundary among them).
#include "fuzz_harness.hpp"

#include <pmr/arena/stack_resource.hpp>

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

namespace {

// The initial buffers' memory: one input runs at a time, and the stack gives
// the buffer back unpoisoned when it is destroyed.
alignas(64) std::byte buffer_storage[4096 + 64];

struct stack_subject {
  static constexpr bool lifo = true;
  pmrkit::stack_resource stack;
  std::vector<std::unique_ptr<pmrkit::stack_scope>> scopes;

  static pmrkit::stack_options options(pmrkit::fuzz::fuzz_input& in) {
    pmrkit::stack_options o;
    pmrkit::fuzz::draw_chain_options(in, o, 14);
    if ((in.u8() & 1) != 0) {
      const std::size_t offset = in.range(0, 63);
      o.initial_buffer = std::span(buffer_storage).subspan(offset, in.range(0, 4096));
    }
    return o;
  }
  stack_subject(pmrkit::fuzz::fuzz_input& in, std::pmr::memory_resource* upstream)
      : stack(options(in), upstream) {}
  std::pmr::memory_resource& resource() { return stack; }
  [[nodiscard]] std::size_t least_alignment() const { return stack.options().alignment; }
  void close_all_scopes() {
    while (!scopes.empty())
      scopes.pop_back();  // innermost first
  }
  void reset() {
    close_all_scopes();
    stack.reset();
  }
  void release() {
    close_all_scopes();
    stack.release();
  }
  std::size_t shrink() { return stack.shrink(); }
  pmrkit::arena_checkpoint checkpoint() { return stack.checkpoint(); }
  void rewind(const pmrkit::arena_checkpoint& marker) { stack.rewind(marker); }
  void open_scope() { scopes.push_back(std::make_unique<pmrkit::stack_scope>(stack)); }
  void close_scope() { scopes.pop_back(); }
};

}  // namespace

PMRKIT_FUZZ_SUBJECT(stack_subject)
