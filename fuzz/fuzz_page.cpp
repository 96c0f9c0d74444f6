// Fuzzes page_resource against the model (fuzz_harness.hpp): blocks mapped
// from the OS (the strict upstream is not used and must stay empty), release.
#include "fuzz_harness.hpp"

#include <pmr/region/page_resource.hpp>

namespace {

struct page_subject {
  static constexpr bool lifo = false;
  pmrkit::page_resource pages;

  static pmrkit::page_options options(pmrkit::fuzz::fuzz_input& in) {
    pmrkit::page_options o;
    o.prefault = (in.u8() & 1) != 0;
    return o;
  }
  page_subject(pmrkit::fuzz::fuzz_input& in, std::pmr::memory_resource* /*upstream*/)
      : pages(options(in)) {}
  std::pmr::memory_resource& resource() { return pages; }
  [[nodiscard]] std::size_t least_alignment() const { return 1; }
  void release() { pages.release(); }
};

}  // namespace

PMRKIT_FUZZ_SUBJECT(page_subject)
