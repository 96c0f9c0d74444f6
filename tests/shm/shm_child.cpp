// shm_child: the helper program shm_process_test starts with fork + exec, so
// that every child is a fresh process with its own address layout. Not a test
// by itself. Roles, chosen by argv[1]:
//
//   churn NAME INDEX ITERATIONS SEED READY_FD GO_FD [verify]
//     Opens the segment NAME, builds a shm_resource over it and, for
//     ITERATIONS steps chosen by a generator seeded with SEED, allocates
//     blocks of random sizes (16 B to 64 KiB, some above 8 KiB for the
//     buddy's path) and alignments (up to 4096), writes a pattern into each
//     (its size, alignment and a tag, then words derived from the tag), frees
//     some of its own after checking them, pushes some into the segment's
//     named offset_queue and pops others from it, checking and freeing
//     blocks other children allocated. Writes what it did into
//     reports[INDEX] (the segment's named array), its mapping's base
//     included. With "verify", calls verify() at the end, while the other
//     children may still run (shm_process_test's disabled test: verify() is
//     not exact while other processes use their caches). Exits 0, or 1 with a
//     message on stderr.
//
//   race NAME SIZE READY_FD GO_FD
//     shm_segment::open_or_create(NAME, SIZE), then a shm_resource over it
//     and find_or_construct of the named counter "joined", incremented.
//     Exits 10 when this process created the segment, 11 when it opened it,
//     1 on an error.
//
//   boost_containers NAME GENERATION
//     Maps the segment NAME (after a reservation, so at an address of its
//     own), finds the Boost.Container containers with a shm_allocator that
//     shm_allocator_test built there (shm_allocator_common.hpp), checks they
//     hold generation 0 and GENERATION rounds of changes, makes round
//     GENERATION (allocating, and freeing memory other processes allocated),
//     checks again and records its mapping's base in the named "bases" array.
//     Exits 0, or 1 with a message on stderr.
//
//   pmr_containers NAME
//     Maps the segment NAME with fixed_address (at its creator's address),
//     builds this process's resource at the agreed address below it, finds
//     the std::pmr map, vector and unordered_map shm_pmr_test built
//     (shm_pmr_common.hpp), checks them, adds to each and exits 0 (1 with a
//     message on stderr; 3 when the address is taken in this process).
//
// READY_FD and GO_FD make a start barrier: the child writes one byte to
// READY_FD, then blocks reading GO_FD until the parent closes its end, so
// that every child starts its work at the same moment.
#include <pmr/core/error.hpp>
#include <pmr/shm/shm_resource.hpp>
#include <pmr/shm/shm_segment.hpp>

#include "shm_allocator_common.hpp"
#include "shm_pmr_common.hpp"
#include "shm_process_common.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace shm_process;

struct failure {
  std::string what;
};

[[noreturn]] void fail(const std::string& what) {
  throw failure{what};
}

std::uint64_t number(const char* text, const char* what) {
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0') fail(std::string("bad ") + what + ": '" + text + "'");
  return value;
}

// Blocks until the parent says go (it closes its end of the go pipe).
void start_barrier(int ready_fd, int go_fd) {
  const char byte = 'r';
  if (::write(ready_fd, &byte, 1) != 1) fail("cannot write to the ready pipe");
  ::close(ready_fd);
  char ignored = 0;
  while (::read(go_fd, &ignored, 1) > 0) {
  }
  ::close(go_fd);
}

struct held_block {
  void* p;
  std::size_t size;
  std::size_t alignment;
};

int churn(char** argv) {
  const std::string name = argv[2];
  const std::uint64_t index = number(argv[3], "index");
  const std::uint64_t iterations = number(argv[4], "iterations");
  const std::uint64_t seed = number(argv[5], "seed");
  const auto ready_fd = static_cast<int>(number(argv[6], "ready fd"));
  const auto go_fd = static_cast<int>(number(argv[7], "go fd"));
  const bool verify_at_end = argv[8] != nullptr && std::string_view(argv[8]) == "verify";

  // exec already gives each child its own layout (ASLR); a reservation of a
  // size that depends on the index makes the segment's base differ even where
  // address randomisation is off.
  void* padding =
      ::mmap(nullptr, (index + 1) * 65536, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (padding == MAP_FAILED) fail("cannot reserve the padding");

  pmrkit::shm_segment segment = pmrkit::shm_segment::open(name);
  {
    pmrkit::shm_resource r(segment);
    offset_queue* queue = r.find<offset_queue>(queue_name);
    if (queue == nullptr) fail("no named queue in the segment");
    const std::span<child_report> reports = r.find_array<child_report>(reports_name);
    if (index >= reports.size()) fail("no report slot for index " + std::to_string(index));
    child_report& report = reports[index];
    report.base = reinterpret_cast<std::uintptr_t>(segment.base());

    start_barrier(ready_fd, go_fd);

    const std::uint64_t own_tag = (index + 1) << 56;
    std::uint64_t counter = 0;
    std::mt19937_64 rng(seed);
    std::vector<held_block> mine;
    constexpr std::size_t max_held = 48;

    // Checks a block (ours or another child's) and frees it with the size and
    // alignment its header records.
    const auto check_and_free = [&](void* p, const char* whose) {
      const block_info info = check_pattern(p);
      if (!info.error.empty()) {
        fail(std::string(whose) + " block at offset " + std::to_string(r.offset_of(p).value) +
             ": " + info.error);
      }
      r.deallocate(p, info.size, info.alignment);
      ++report.frees;
      return info;
    };
    const auto free_one_of_mine = [&] {
      const std::size_t at = rng() % mine.size();
      const held_block b = mine[at];
      mine[at] = mine.back();
      mine.pop_back();
      const block_info info = check_and_free(b.p, "own");
      if (info.size != b.size || info.alignment != b.alignment) {
        fail("own block's header says " + std::to_string(info.size) + " bytes at " +
             std::to_string(info.alignment) + ", allocated " + std::to_string(b.size) + " at " +
             std::to_string(b.alignment));
      }
    };

    for (std::uint64_t step = 0; step < iterations; ++step) {
      const std::uint64_t op = rng() % 8;
      if (op <= 2) {  // allocate
        if (mine.size() >= max_held) {
          free_one_of_mine();
          continue;
        }
        const std::uint64_t band = rng() % 100;
        std::size_t size = 0;
        if (band < 60) {
          size = min_block + rng() % (1024 - min_block + 1);
        } else if (band < 85) {
          size = 1025 + rng() % (8192 - 1024);
        } else {
          size = 8193 + rng() % (max_block - 8192);
        }
        const std::size_t alignment =
            rng() % 10 < 7 ? (rng() % 2 == 0 ? 8 : 16) : std::size_t{1} << (rng() % 13);
        void* p = nullptr;
        try {
          p = r.allocate(size, alignment);
        } catch (const pmrkit::allocation_error& e) {
          if (e.reason() != pmrkit::failure_reason::out_of_capacity) throw;
          ++report.out_of_capacity;
          if (!mine.empty()) free_one_of_mine();
          continue;
        }
        if (!segment.contains(p) || reinterpret_cast<std::uintptr_t>(p) % alignment != 0) {
          fail("allocate(" + std::to_string(size) + ", " + std::to_string(alignment) +
               ") gave a block outside the segment or misaligned");
        }
        write_pattern(p, size, alignment, own_tag | ++counter);
        mine.push_back({p, size, alignment});
        ++report.allocations;
        if (size > 8192) ++report.large_allocations;
      } else if (op <= 4) {  // free one of ours
        if (!mine.empty()) free_one_of_mine();
      } else if (op <= 6) {  // hand one over (the queue fills up: pushes outnumber pops)
        if (mine.empty()) continue;
        const std::size_t at = rng() % mine.size();
        if (queue->push(r.offset_of(mine[at].p))) {
          mine[at] = mine.back();
          mine.pop_back();
          ++report.pushed;
        }
      } else {  // receive one: most likely another child's
        const pmrkit::shm_offset offset = queue->pop();
        if (!offset) continue;
        void* p = r.at<void>(offset).get();
        const block_info info = check_and_free(p, "received");
        ++report.popped;
        if ((info.tag >> 56) != index + 1) ++report.foreign;
      }
    }
    while (!mine.empty())
      free_one_of_mine();
    if (verify_at_end) {
      if (std::string problem = r.verify(); !problem.empty()) fail("verify(): " + problem);
    }
    report.done = 1;
  }  // the resource gives its cache slot back here
  ::munmap(padding, (index + 1) * 65536);
  return 0;
}

int race(char** argv) {
  const std::string name = argv[2];
  const std::uint64_t size = number(argv[3], "size");
  const auto ready_fd = static_cast<int>(number(argv[4], "ready fd"));
  const auto go_fd = static_cast<int>(number(argv[5], "go fd"));
  start_barrier(ready_fd, go_fd);
  pmrkit::shm_segment segment = pmrkit::shm_segment::open_or_create(name, size);
  const bool created = segment.created();
  {
    pmrkit::shm_resource r(segment);
    auto& joined = r.find_or_construct<std::atomic<std::uint64_t>>(joined_name, std::uint64_t{0});
    joined.fetch_add(1);
  }
  return created ? 10 : 11;
}

int boost_containers(char** argv) {
  const std::string name = argv[2];
  const std::uint64_t generation = number(argv[3], "generation");
  if (generation >= shm_allocator_test::max_generations) fail("generation out of range");
  // As in churn: a reservation first, so that the segment lands elsewhere even without ASLR.
  const std::size_t padding_size = (generation + 1) * 65536;
  void* padding = ::mmap(nullptr, padding_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (padding == MAP_FAILED) fail("cannot reserve the padding");
  pmrkit::shm_segment segment = pmrkit::shm_segment::open(name);
  {
    pmrkit::shm_resource r(segment);
    const int g = static_cast<int>(generation);
    if (std::string problem = shm_allocator_test::check(r, g); !problem.empty()) {
      fail("before the changes: " + problem);
    }
    shm_allocator_test::add_generation(r, g);
    if (std::string problem = shm_allocator_test::check(r, g + 1); !problem.empty()) {
      fail("after the changes: " + problem);
    }
    const std::span<std::uint64_t> bases =
        r.find_array<std::uint64_t>(shm_allocator_test::bases_name);
    if (bases.size() <= generation) fail("no bases array");
    bases[generation] = reinterpret_cast<std::uintptr_t>(segment.base());
  }  // the resource gives its cache slot back here
  ::munmap(padding, padding_size);
  return 0;
}

}  // namespace

int pmr_containers(char** argv) {
  pmrkit::shm_segment segment = [&] {
    try {
      return pmrkit::shm_segment::open(argv[2], {.fixed_address = true});
    } catch (const pmrkit::shm_error& e) {
      if (e.code() == pmrkit::shm_errc::address_in_use) std::exit(3);
      throw;
    }
  }();
  pmrkit::shm_resource& r = pmrkit::shm_resource::at_fixed_address(segment);
  auto* map = r.find<shm_pmr::map_type>(shm_pmr::map_name);
  auto* strings = r.find<shm_pmr::strings_type>(shm_pmr::strings_name);
  auto* counts = r.find<shm_pmr::counts_type>(shm_pmr::counts_name);
  if (map == nullptr || strings == nullptr || counts == nullptr) {
    std::fprintf(stderr, "pmr_containers: a container is missing\n");
    return 1;
  }
  for (int i = 0; i < 100; ++i) {
    if (std::string_view(map->at(i)) != shm_pmr::text(i) ||
        std::string_view((*strings)[static_cast<std::size_t>(i)]) != shm_pmr::text(i) ||
        counts->at(i) != i) {
      std::fprintf(stderr, "pmr_containers: element %d differs\n", i);
      return 1;
    }
  }
  for (int i = 100; i < 200; ++i) {  // additions, allocated by this process
    map->emplace(i, shm_pmr::text(i));
    strings->emplace_back(shm_pmr::text(i));
    (*counts)[i] = i;
  }
  map->erase(0);  // a node the other process allocated, freed here
  return 0;
}

int main(int argc, char** argv) {
  const std::string_view role = argc > 1 ? argv[1] : "";
  try {
    if (role == "churn" && (argc == 8 || argc == 9)) return churn(argv);
    if (role == "race" && argc == 6) return race(argv);
    if (role == "boost_containers" && argc == 4) return boost_containers(argv);
    if (role == "pmr_containers" && argc == 3) return pmr_containers(argv);
    std::fprintf(stderr,
                 "usage: shm_child churn NAME INDEX ITERATIONS SEED READY_FD GO_FD [verify]\n"
                 "       shm_child race NAME SIZE READY_FD GO_FD\n"
                 "       shm_child boost_containers NAME GENERATION\n"
                 "       shm_child pmr_containers NAME\n");
    return 2;
  } catch (const failure& f) {
    std::fprintf(stderr, "shm_child %s (pid %d): %s\n", argv[1], static_cast<int>(::getpid()),
                 f.what.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shm_child %s (pid %d): exception: %s\n", argv[1],
                 static_cast<int>(::getpid()), e.what());
  }
  return 1;
}
