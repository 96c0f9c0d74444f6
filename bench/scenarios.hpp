// The scenarios: one function template each, over any subject (see subject.hpp).
//
// One timed iteration is one batch; items processed count allocations (allocation scenarios) or
// elements (container workloads), so ns per item compares across subjects. Per-batch release()
// of subjects without individual frees is inside the timed region: it is what they cost.
// Blocks are not written to: this measures the allocator's bookkeeping, not first-touch faults.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <benchmark/benchmark.h>

#include "subject.hpp"
#include "upstream.hpp"
#include "workload.hpp"

namespace pmrkit::bench {

// --- Allocation scenarios ------------------------------------------------------------------------

enum class alloc_scenario { single, bulk, bulk_reversed, butterfly, churn, bump_release };

inline constexpr std::array<std::string_view, 6> alloc_scenario_names{
    "single", "bulk", "bulk_reversed", "butterfly", "churn", "bump_release"};

// Makes `p` observable, so an allocation cannot be optimised away. Only the input form of
// benchmark::DoNotOptimize (`const&`): GCC 12 miscompiles its in-out form ("+m,r") here. In the
// buddy row's churn it bound the operand to a stack copy and dropped the store of the new block
// to live[slot], so the slot kept its freed block and the next free of the slot freed that block
// a second time, with the wrong size. The input form leaves the store to the compiler.
inline void observe(void* const& p) {
  benchmark::DoNotOptimize(p);
}

template <allocating_subject S>
void end_batch(S& subject) {
  if constexpr (!S::caps.individual_free) subject.release();
}

template <allocating_subject S>
void allocate_batch(S& subject, std::span<const std::size_t> sizes, std::span<void*> blocks) {
  for (std::size_t i = 0; i < sizes.size(); ++i)
    blocks[i] = subject.allocate(sizes[i], alignment);
  benchmark::DoNotOptimize(blocks.data());
  benchmark::ClobberMemory();
}

// single: allocate and immediately free, one block at a time.
template <allocating_subject S>
void single(benchmark::State& state, std::span<const std::size_t> sizes) {
  const upstream_peak peak;
  S subject;
  for (auto _ : state) {
    for (std::size_t size : sizes) {
      void* p = subject.allocate(size, alignment);
      observe(p);
      subject.deallocate(p, size, alignment);
    }
    end_batch(subject);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * sizes.size()));
  peak.report(state);
}

// bulk, bulk_reversed, butterfly: a whole batch, then frees in the given order.
template <allocating_subject S>
void free_in_order(benchmark::State& state, std::span<const std::size_t> sizes,
                   std::span<const std::uint32_t> order) {
  const upstream_peak peak;
  S subject;
  std::vector<void*> blocks(sizes.size());
  for (auto _ : state) {
    allocate_batch(subject, sizes, blocks);
    for (std::uint32_t i : order)
      subject.deallocate(blocks[i], sizes[i], alignment);
    end_batch(subject);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * sizes.size()));
  peak.report(state);
}

// The size of the block that churn's step `step` allocates, for each step: `sizes` from
// `offset` on, shifted by half their count so the replacement size is uncorrelated with the
// initial fill of the slot. Drawn before the timed loop: a modulo in the loop is a 64-bit
// division whose 15-40 cycles every resource whose fast path reads the size as data (a
// multi-size pool picking its class) would wait for, one step after the other.
inline std::vector<std::size_t> churn_replacement_sizes(std::span<const std::size_t> sizes,
                                                        std::size_t steps, std::size_t offset) {
  std::vector<std::size_t> replacements(steps);
  for (std::size_t step = 0; step < steps; ++step)
    replacements[step] = sizes[(step + sizes.size() / 2 + offset) % sizes.size()];
  return replacements;
}

// churn: steady state with `live_blocks` live (churn_live_blocks, or
// uniform_churn_live_blocks for churn_uniform); each step frees a random live block and
// allocates its replacement. Filling and draining the live set is not timed.
template <allocating_subject S>
void churn(benchmark::State& state, std::span<const std::size_t> sizes,
           std::size_t live_blocks = churn_live_blocks) {
  const upstream_peak peak;
  S subject;
  const std::span<const std::uint32_t> victims = churn_victims(live_blocks);
  const std::vector<std::size_t> replacements = churn_replacement_sizes(sizes, victims.size(), 0);
  std::vector<void*> live(live_blocks);
  std::vector<std::size_t> live_sizes(live_blocks);
  for (std::size_t slot = 0; slot < live.size(); ++slot) {
    live_sizes[slot] = sizes[slot % sizes.size()];
    live[slot] = subject.allocate(live_sizes[slot], alignment);
  }
  for (auto _ : state) {
    for (std::size_t step = 0; step < victims.size(); ++step) {
      const std::uint32_t slot = victims[step];
      subject.deallocate(live[slot], live_sizes[slot], alignment);
      live_sizes[slot] = replacements[step];
      live[slot] = subject.allocate(live_sizes[slot], alignment);
      observe(live[slot]);
    }
  }
  for (std::size_t slot = 0; slot < live.size(); ++slot) {
    subject.deallocate(live[slot], live_sizes[slot], alignment);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * victims.size()));
  peak.report(state);
}

// churn_t<N>: churn with one subject shared by N threads (Google Benchmark's ->Threads(N), with
// ->UseRealTime(), so items per second is the throughput of all the threads together). Each
// thread keeps its own live set of churn_live_blocks blocks, filled and drained untimed, and
// does churn's steps: the same victims and sizes, the sizes offset by the thread's index so the
// threads do not request the same size in lockstep (with one thread it is exactly churn).
//
// The subject lives in shared_subject<S>, built by setup() and destroyed by teardown(), which
// Google Benchmark calls on the main thread before it starts a run's threads and after it has
// joined them: the threads only read the slot, and every run still gets a fresh subject. A
// subject that is not thread-safe (only in the shm scenarios) is not shared: each thread builds
// its own (thread_subject), and shared_subject<S> only holds the peak.
template <allocating_subject S>
struct shared_subject {
  static void setup(const benchmark::State&) {
    error.clear();
    peak.emplace();  // before the subject: the peak starts here
    // A subject that is not thread-safe: each thread builds its own (thread_subject).
    if constexpr (S::caps.thread_safe) {
      try {
        subject.emplace();
      } catch (const std::exception& e) {
        error = e.what();
      }
    }
  }
  static void teardown(const benchmark::State&) {
    subject.reset();
    peak.reset();
  }

  static inline std::optional<S> subject;
  static inline std::string error;  // what constructing the subject threw
  static inline std::optional<upstream_peak> peak;
};

// The subject a thread of a threaded scenario works on: the one shared_subject<S> holds, or, for
// a subject that is not thread-safe (only the shm scenarios' non-shared reference row, see
// shm.cpp), `own`, built here: one per thread. Throws what building the subject threw.
template <allocating_subject S>
S& thread_subject(std::optional<S>& own) {
  if constexpr (S::caps.thread_safe) {
    if (!shared_subject<S>::subject) throw std::runtime_error(shared_subject<S>::error);
    return *shared_subject<S>::subject;
  } else {
    return own.emplace();
  }
}

template <allocating_subject S>
void churn_threaded(benchmark::State& state, std::span<const std::size_t> sizes) {
  std::optional<S> own;
  S* subject = nullptr;
  const std::span<const std::uint32_t> victims = churn_victims();
  const std::size_t offset = static_cast<std::size_t>(state.thread_index()) * sizes.size() /
                             static_cast<std::size_t>(state.threads());
  const std::vector<std::size_t> replacements =
      churn_replacement_sizes(sizes, victims.size(), offset);
  std::vector<void*> live(churn_live_blocks);  // null: no block (after an error)
  std::vector<std::size_t> live_sizes(churn_live_blocks);
  // The threads meet at the start and the end of the timed loop, so a thread whose subject
  // throws still runs the loop (idle) and rethrows after it; leaving early would hang the others.
  std::exception_ptr error;
  try {
    subject = &thread_subject<S>(own);
    for (std::size_t slot = 0; slot < live.size(); ++slot) {
      live_sizes[slot] = sizes[(slot + offset) % sizes.size()];
      live[slot] = subject->allocate(live_sizes[slot], alignment);
    }
  } catch (...) {
    error = std::current_exception();
  }
  for (auto _ : state) {
    if (error) continue;
    std::size_t step = 0;
    try {
      for (; step < victims.size(); ++step) {
        const std::uint32_t slot = victims[step];
        subject->deallocate(live[slot], live_sizes[slot], alignment);
        live_sizes[slot] = replacements[step];
        live[slot] = subject->allocate(live_sizes[slot], alignment);
        observe(live[slot]);
      }
    } catch (...) {
      live[victims[step]] = nullptr;  // freed, not replaced
      error = std::current_exception();
    }
  }
  for (std::size_t slot = 0; slot < live.size(); ++slot) {
    if (live[slot] != nullptr) subject->deallocate(live[slot], live_sizes[slot], alignment);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * victims.size()));
  // Past the loop's end no thread allocates any more, so the peak is final; counters are summed
  // over the threads, so one reports it.
  if (state.thread_index() == 0) shared_subject<S>::peak->report(state);
  if (error) std::rethrow_exception(error);
}

// One batch of shm_message: message_rounds times, message_queue_length messages of message_size
// bytes allocated, then freed oldest first, as a producer/consumer queue does. Frees what it
// allocated before rethrowing a failure, so a threaded run can go on idle.
template <allocating_subject S>
void message_batch(S& subject, std::span<void*> queue) {
  for (std::size_t round = 0; round < message_rounds; ++round) {
    std::size_t sent = 0;
    try {
      for (; sent < queue.size(); ++sent)
        queue[sent] = subject.allocate(message_size, alignment);
    } catch (...) {
      for (std::size_t i = 0; i < sent; ++i)
        subject.deallocate(queue[i], message_size, alignment);
      throw;
    }
    benchmark::DoNotOptimize(queue.data());
    benchmark::ClobberMemory();
    for (void* message : queue)
      subject.deallocate(message, message_size, alignment);
  }
}

// shm_message: message_batch on one thread.
template <allocating_subject S>
void message(benchmark::State& state) {
  const upstream_peak peak;
  S subject;
  std::array<void*, message_queue_length> queue{};
  for (auto _ : state)
    message_batch(subject, queue);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch_size));
  peak.report(state);
}

// shm_message_t<N>: message_batch on N threads at once, each with its own queue, over the subject
// shared_subject<S> holds (a subject that is not thread-safe: one per thread). Timed as
// churn_threaded: wall time, all the threads' allocations counted.
template <allocating_subject S>
void message_threaded(benchmark::State& state) {
  std::optional<S> own;
  S* subject = nullptr;
  std::array<void*, message_queue_length> queue{};
  std::exception_ptr error;  // as in churn_threaded: the loop runs idle after a failure
  try {
    subject = &thread_subject<S>(own);
  } catch (...) {
    error = std::current_exception();
  }
  for (auto _ : state) {
    if (error) continue;
    try {
      message_batch(*subject, queue);
    } catch (...) {
      error = std::current_exception();
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch_size));
  if (state.thread_index() == 0) shared_subject<S>::peak->report(state);
  if (error) std::rethrow_exception(error);
}

// bump_release: a whole batch, then everything at once where the subject can (release(),
// unwind), otherwise one free per block in allocation order.
template <allocating_subject S>
void bump_release(benchmark::State& state, std::span<const std::size_t> sizes) {
  const upstream_peak peak;
  S subject;
  std::vector<void*> blocks(sizes.size());
  for (auto _ : state) {
    allocate_batch(subject, sizes, blocks);
    if constexpr (S::caps.release_all) {
      subject.release();
    } else {
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        subject.deallocate(blocks[i], sizes[i], alignment);
      }
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * sizes.size()));
  peak.report(state);
}

template <allocating_subject S>
constexpr bool applies(alloc_scenario scenario, const size_variant& variant) {
  if (S::caps.block_size != 0 && variant.max_size > S::caps.block_size) return false;
  return scenario != alloc_scenario::churn || S::caps.individual_free;
}

template <allocating_subject S>
void run_alloc_scenario(benchmark::State& state, alloc_scenario scenario,
                        std::span<const std::size_t> sizes) {
  switch (scenario) {
    case alloc_scenario::single:
      return single<S>(state, sizes);
    case alloc_scenario::bulk:
      return free_in_order<S>(state, sizes, forward_order());
    case alloc_scenario::bulk_reversed:
      return free_in_order<S>(state, sizes, reversed_order());
    case alloc_scenario::butterfly:
      return free_in_order<S>(state, sizes, shuffled_order());
    case alloc_scenario::churn:
      return churn<S>(state, sizes);
    case alloc_scenario::bump_release:
      return bump_release<S>(state, sizes);
  }
}

// --- Container workloads -------------------------------------------------------------------------
// Each builds a container with the given allocator (polymorphic_allocator for resources,
// std::allocator for std_map_default) and destroys it: one batch.

template <class Alloc, class T>
using rebind = typename std::allocator_traits<Alloc>::template rebind_alloc<T>;

// Keeps the container's contents observable so the work cannot be dropped.
template <class Container>
void keep(Container& container) {
  Container* const address = &container;
  benchmark::DoNotOptimize(address);
  benchmark::ClobberMemory();
}

struct map_insert {
  static constexpr std::string_view name = "map_insert";
  static constexpr std::size_t items = container_items;
  template <class Alloc>
  void operator()(const Alloc& alloc) const {
    std::map<int, int, std::less<int>, rebind<Alloc, std::pair<const int, int>>> map(alloc);
    for (int key : container_keys())
      map.emplace(key, key);
    keep(map);
  }
};

struct list_push_back {
  static constexpr std::string_view name = "list_push_back";
  static constexpr std::size_t items = container_items;
  template <class Alloc>
  void operator()(const Alloc& alloc) const {
    std::list<int, rebind<Alloc, int>> list(alloc);
    for (int key : container_keys())
      list.push_back(key);
    keep(list);
  }
};

struct unordered_map_insert {
  static constexpr std::string_view name = "unordered_map_insert";
  static constexpr std::size_t items = container_items;
  template <class Alloc>
  void operator()(const Alloc& alloc) const {
    std::unordered_map<int, int, std::hash<int>, std::equal_to<int>,
                       rebind<Alloc, std::pair<const int, int>>>
        map(alloc);
    for (int key : container_keys())
      map.emplace(key, key);
    keep(map);
  }
};

// std::pmr::vector<std::pmr::string> for resources: the vector's allocator reaches the strings by
// uses-allocator construction.
struct vector_string {
  static constexpr std::string_view name = "vector_string";
  static constexpr std::size_t items = string_items;
  template <class Alloc>
  void operator()(const Alloc& alloc) const {
    using string = std::basic_string<char, std::char_traits<char>, rebind<Alloc, char>>;
    static constexpr char text[] =
        "pmrkit benchmark text: strings of 16 to 79 characters, long enough to live outside "
        "the small-string buffer.";
    static_assert(sizeof(text) > 80);
    std::vector<string, rebind<Alloc, string>> strings(alloc);
    for (std::uint32_t length : string_lengths())
      strings.emplace_back(text, length);
    keep(strings);
  }
};

template <class... Workloads>
struct workload_list {};
using container_workloads =
    workload_list<map_insert, list_push_back, unordered_map_insert, vector_string>;

template <container_subject S, class Workload>
void run_container(benchmark::State& state) {
  const upstream_peak peak;
  S subject;
  const auto alloc = subject.container_allocator();
  for (auto _ : state) {
    Workload{}(alloc);
    if constexpr (!S::caps.individual_free) subject.release();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * Workload::items));
  peak.report(state);
}

// The largest request a workload makes, found by running it once over a recording resource.
// Decides whether a fixed-block-size subject can run it.
template <class Workload>
std::size_t largest_request() {
  class recorder final : public std::pmr::memory_resource {
   public:
    std::size_t largest = 0;

   private:
    void* do_allocate(std::size_t bytes, std::size_t alignment) override {
      largest = std::max(largest, std::max(bytes, alignment));
      return std::pmr::new_delete_resource()->allocate(bytes, alignment);
    }
    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
      std::pmr::new_delete_resource()->deallocate(p, bytes, alignment);
    }
    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
      return this == &other;
    }
  };
  static const std::size_t largest = [] {
    recorder resource;
    Workload{}(std::pmr::polymorphic_allocator<std::byte>(&resource));
    return resource.largest;
  }();
  return largest;
}

}  // namespace pmrkit::bench
