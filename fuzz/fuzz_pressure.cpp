// Fuzzes pressure_resource against the model (fuzz_harness.hpp): capacity,
// thresholds (in order or not: the constructor rejects those out of order)
// and emergency reserve from the input, with a subscriber at a level the
// input picks, so every transition runs its callbacks; own usage only (the
// system source reads the machine's memory, which no input controls).
#include "fuzz_harness.hpp"

#include <pmr/decorator/pressure_resource.hpp>

#include <optional>

namespace {

struct pressure_subject {
  static constexpr bool lifo = false;
  pmrkit::pressure_resource pressure;
  std::size_t calls = 0;
  std::optional<pmrkit::pressure_subscription> subscription;

  static pmrkit::pressure_options options(pmrkit::fuzz::fuzz_input& in) {
    pmrkit::pressure_options o;
    o.capacity = in.range(0, std::size_t{16} << 20);  // 0: rejected
    o.low_percent = static_cast<double>(in.range(0, 100));
    o.medium_percent = o.low_percent + static_cast<double>(in.range(0, 40)) - 2;
    o.high_percent = o.medium_percent + static_cast<double>(in.range(0, 40)) - 2;
    o.critical_percent = o.high_percent + static_cast<double>(in.range(0, 40)) - 2;
    o.emergency_reserve = (in.u8() & 1) != 0 ? in.range(0, o.capacity) : 0;
    return o;
  }
  pressure_subject(pmrkit::fuzz::fuzz_input& in, std::pmr::memory_resource* upstream)
      : pressure(options(in), upstream) {
    static constexpr pmrkit::pressure_level levels[] = {
        pmrkit::pressure_level::low, pmrkit::pressure_level::medium, pmrkit::pressure_level::high,
        pmrkit::pressure_level::critical};
    subscription.emplace(pressure.on_pressure(levels[in.u8() % std::size(levels)],
                                              [this](const pmrkit::pressure_event&) { ++calls; }));
  }
  std::pmr::memory_resource& resource() { return pressure; }
  [[nodiscard]] std::size_t least_alignment() const { return 1; }
  void check_everything_back() {
    if (pressure.bytes_in_use() != 0) {
      pmrkit::fuzz::fail("pressure_resource counts " + std::to_string(pressure.bytes_in_use()) +
                         " bytes in use with every block freed");
    }
  }
};

}  // namespace

PMRKIT_FUZZ_SUBJECT(pressure_subject)
