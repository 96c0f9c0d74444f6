#include <pmr/region/memory_system.hpp>

#include <pmr/core/align.hpp>
#include <pmr/core/error.hpp>
#include <pmr/core/options.hpp>
#include <pmr/core/upstream.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>

#ifdef _WIN32
#include <stdlib.h>  // _environ
#else
#include <unistd.h>  // environ
#endif

namespace pmrkit {

namespace {

constexpr std::string_view class_name = "memory_system";
constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

// Sources of a block that are not regions (regions are 0 .. count - 1).
constexpr std::uint32_t source_small = 0x10000;
constexpr std::uint32_t source_arena = 0x10001;
constexpr std::uint32_t source_pages = 0x10002;
constexpr std::uint32_t source_reserve = 0x10003;
constexpr std::uint32_t source_locked_pages = 0x10004;

std::size_t arena_chunk(std::size_t large_threshold) {
  // A chunk holds a few of the largest arena requests; 64 KiB at least, 4 MiB at most.
  return std::clamp<std::size_t>(large_threshold * 4, 65536, std::size_t{4} << 20);
}

}  // namespace

// --- Configuration ------------------------------------------------------------------------------

namespace {

[[noreturn]] void bad_value(std::string_view where, std::string_view value, std::string_view rule) {
  throw std::invalid_argument("pmrkit::memory_system: " + std::string(where) + ": '" +
                              std::string(value) + "' " + std::string(rule));
}

std::string_view trim(std::string_view text) noexcept {
  const std::size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return {};
  const std::size_t end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

std::size_t parse_size(std::string_view text, std::string_view where) {
  constexpr std::string_view rule =
      "is not a size (a number with an optional suffix K, KiB, M, MiB, G or GiB)";
  const std::string_view value = trim(text);
  std::size_t digits = 0;
  std::size_t number = 0;
  while (digits < value.size() && value[digits] >= '0' && value[digits] <= '9') {
    const auto digit = static_cast<std::size_t>(value[digits] - '0');
    if (number > (unlimited - digit) / 10) bad_value(where, text, "overflows std::size_t");
    number = number * 10 + digit;
    ++digits;
  }
  if (digits == 0) bad_value(where, text, rule);
  const std::string_view suffix = trim(value.substr(digits));
  unsigned shift = 0;
  if (suffix.empty() || suffix == "B") {
    shift = 0;
  } else if (suffix == "K" || suffix == "KiB") {
    shift = 10;
  } else if (suffix == "M" || suffix == "MiB") {
    shift = 20;
  } else if (suffix == "G" || suffix == "GiB") {
    shift = 30;
  } else {
    bad_value(where, text, rule);
  }
  if (number > (unlimited >> shift)) bad_value(where, text, "overflows std::size_t");
  return number << shift;
}

double parse_percent(std::string_view text, std::string_view where) {
  const std::string value(trim(text));
  char* end = nullptr;
  const double percent = std::strtod(value.c_str(), &end);
  if (value.empty() || end != value.c_str() + value.size() || !(percent > 0) || percent > 100) {
    bad_value(where, text, "is not a percentage (a number above 0, at most 100)");
  }
  return percent;
}

// "type=video capacity=64MiB ..." into a spec for the region `name`.
region_spec parse_region(std::string_view name, std::string_view words, std::string_view where) {
  region_spec spec;
  spec.name = std::string(name);
  if (const auto type = parse_memory_type(name)) spec.type = *type;
  bool has_capacity = false;
  std::string_view rest = words;
  while (!(rest = trim(rest)).empty()) {
    const std::size_t end = rest.find_first_of(" \t");
    const std::string_view word = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
    const std::size_t equals = word.find('=');
    if (equals == std::string_view::npos) {
      bad_value(where, word, "is not a key=value word");
    }
    const std::string_view key = word.substr(0, equals);
    const std::string_view value = word.substr(equals + 1);
    const std::string field = std::string(where) + " " + std::string(key);
    if (key == "type") {
      const auto type = parse_memory_type(value);
      if (!type) {
        bad_value(field, value,
                  "is not a memory type (system, video, audio, network, shared, temporary)");
      }
      spec.type = *type;
    } else if (key == "capacity") {
      spec.capacity = parse_size(value, field);
      has_capacity = true;
    } else if (key == "alignment") {
      spec.alignment = parse_size(value, field);
    } else if (key == "block_size") {
      spec.block_size = parse_size(value, field);
    } else if (key == "strategy") {
      const auto strategy = parse_region_strategy(value);
      if (!strategy)
        bad_value(field, value, "is not a strategy (buddy, pool, arena, shared_segment)");
      spec.strategy = *strategy;
    } else if (key == "backing") {
      spec.backing = std::string(value);
    } else if (key == "flags") {
      const auto flags = parse_memory_flags(value);
      if (!flags) {
        bad_value(field, value,
                  "is not a set of flags (dma_capable|zero_fill|huge_pages|critical)");
      }
      spec.flags = *flags;
    } else if (key == "segment") {
      spec.segment_name = std::string(value);
    } else {
      bad_value(where, key,
                "is not a region key (type, capacity, alignment, block_size, strategy, backing, "
                "flags, segment)");
    }
  }
  if (!has_capacity) bad_value(where, words, "has no capacity=<size>");
  return spec;
}

}  // namespace

void memory_system_config::apply(std::string_view key, std::string_view value,
                                 std::string_view where) {
  if (key == "budget") {
    total_budget = parse_size(value, where);
  } else if (key == "emergency_reserve") {
    emergency_reserve = parse_size(value, where);
  } else if (key == "small_threshold") {
    small_threshold = parse_size(value, where);
  } else if (key == "large_threshold") {
    large_threshold = parse_size(value, where);
  } else if (key == "pressure") {
    std::array<double, 4> percents{};
    std::string_view rest = value;
    for (std::size_t i = 0; i < percents.size(); ++i) {
      const std::size_t comma = rest.find(',');
      if ((comma == std::string_view::npos) != (i == percents.size() - 1)) {
        bad_value(where, value, "is not four percentages low,medium,high,critical");
      }
      percents[i] = parse_percent(rest.substr(0, comma), where);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
    low_percent = percents[0];
    medium_percent = percents[1];
    high_percent = percents[2];
    critical_percent = percents[3];
  } else if (key.starts_with("region.") && key.size() > 7) {
    region_spec spec = parse_region(key.substr(7), value, where);
    const auto same = std::find_if(regions.begin(), regions.end(),
                                   [&](const region_spec& r) { return r.name == spec.name; });
    if (same != regions.end()) {
      *same = std::move(spec);
    } else {
      regions.push_back(std::move(spec));
    }
  } else {
    bad_value(where, key,
              "is not a setting (budget, emergency_reserve, small_threshold, large_threshold, "
              "pressure, region.NAME)");
  }
}

memory_system_config memory_system_config::parse(std::string_view text, std::string_view source) {
  memory_system_config config;
  std::size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    line = trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    const std::string where = std::string(source) + ":" + std::to_string(line_number);
    const std::size_t equals = line.find('=');
    if (equals == std::string_view::npos) bad_value(where, line, "is not a key = value line");
    const std::string_view key = trim(line.substr(0, equals));
    config.apply(key, trim(line.substr(equals + 1)), where + ": " + std::string(key));
  }
  return config;
}

memory_system_config memory_system_config::from_file(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    throw std::invalid_argument("pmrkit::memory_system: cannot read the config file '" + path +
                                "': " + std::strerror(errno));
  }
  std::string text;
  char buffer[4096];
  std::size_t read = 0;
  while ((read = std::fread(buffer, 1, sizeof buffer, file)) != 0)
    text.append(buffer, read);
  std::fclose(file);
  return parse(text, path);
}

memory_system_config memory_system_config::from_environment() {
  memory_system_config config;
  if (const char* path = std::getenv("PMRKIT_CONFIG"); path != nullptr && *path != '\0') {
    config = from_file(path);
  }
  constexpr std::array<std::pair<std::string_view, const char*>, 5> settings{{
      {"budget", "PMRKIT_BUDGET"},
      {"emergency_reserve", "PMRKIT_EMERGENCY_RESERVE"},
      {"small_threshold", "PMRKIT_SMALL_THRESHOLD"},
      {"large_threshold", "PMRKIT_LARGE_THRESHOLD"},
      {"pressure", "PMRKIT_PRESSURE"},
  }};
  for (const auto& [key, variable] : settings) {
    if (const char* value = std::getenv(variable)) config.apply(key, value, variable);
  }
  // PMRKIT_REGION_<NAME>: the region named <name> in lower case.
  constexpr std::string_view prefix = "PMRKIT_REGION_";
#ifdef _WIN32
  char** const environment = _environ;  // the CRT's narrow copy of the environment
#else
  char** const environment = ::environ;
#endif
  for (char** entry = environment; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view variable(*entry);
    if (!variable.starts_with(prefix)) continue;
    const std::size_t equals = variable.find('=');
    if (equals == std::string_view::npos || equals == prefix.size()) continue;
    std::string name(variable.substr(prefix.size(), equals - prefix.size()));
    std::transform(name.begin(), name.end(), name.begin(), [](char c) {
      return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    });
    config.apply("region." + name, variable.substr(equals + 1), variable.substr(0, equals));
  }
  return config;
}

// --- The system ----------------------------------------------------------------------------------

struct memory_system::region_entry {
  region_entry(region_spec spec, std::pmr::memory_resource* source)
      : region(std::move(spec), source), lock({.name = region.name()}, &region) {}

  region_resource region;
  synchronized_resource lock;  // every call to the region goes through it
  std::unique_ptr<port> typed_port;
};

// resource(type) and resource(): allocate and deallocate as memory_system does, without
// fallback, so a block's place is known from its pointer (typed) or its size (untyped).
class memory_system::port final : public std::pmr::memory_resource {
 public:
  port(memory_system& system, std::optional<memory_type> type) noexcept
      : system_(&system), type_(type) {}
  port(port&) = delete;
  port& operator=(const port&) = delete;

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    return system_
        ->allocate({.size = bytes, .alignment = alignment, .type = type_, .allow_fallback = false})
        .pointer;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    memory_block block{.pointer = p, .size = bytes, .alignment = alignment};
    if (type_) {
      block.type = *type_;
      for (std::uint32_t i = 0; i < system_->regions_.size(); ++i) {
        if (system_->regions_[i]->region.owns(p)) block.source = i;
      }
    } else {
      block.source = system_->untyped_source(bytes);
    }
    system_->deallocate(block);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  memory_system* system_;
  std::optional<memory_type> type_;
};

memory_system::memory_system(memory_system_config config)
    : config_(std::move(config)),
      pages_(page_options{.name = "pages"}),
      huge_pages_(page_options{.huge_pages = huge_page_mode::transparent, .name = "huge_pages"}),
      locked_pages_(locked_page_options{.name = "locked_pages"}, &pages_),
      locked_huge_pages_(locked_page_options{.name = "locked_huge_pages"}, &huge_pages_),
      budget_total_({.limit = config_.total_budget != 0 ? config_.total_budget : unlimited,
                     .name = config_.name},
                    &ledger_),
      budget_normal_({.limit = config_.total_budget != 0
                                   ? config_.total_budget -
                                         std::min(config_.total_budget, config_.emergency_reserve)
                                   : unlimited,
                      .name = config_.name},
                     &budget_total_),
      router_(budget_normal_, budget_total_),
      pressure_(
          [&] {
            std::size_t capacity = config_.total_budget;
            if (capacity == 0) {
              for (const region_spec& spec : config_.regions)
                capacity += spec.capacity;
            }
            return pressure_options{.capacity = std::max<std::size_t>(capacity, 1),
                                    .low_percent = config_.low_percent,
                                    .medium_percent = config_.medium_percent,
                                    .high_percent = config_.high_percent,
                                    .critical_percent = config_.critical_percent,
                                    .name = config_.name};
          }(),
          &router_),
      small_tier_(concurrent_pool_options{.largest_required_pool_block =
                                              std::max<std::size_t>(config_.small_threshold, 8),
                                          .name = "small tier"},
                  &pages_),
      arena_tier_(chunked_arena_options{.initial_chunk_size = arena_chunk(config_.large_threshold),
                                        .max_chunk_size = arena_chunk(config_.large_threshold),
                                        .growth_factor = 1,
                                        .name = "arena tier"},
                  &pages_),
      arena_lock_({.name = "arena tier"}, &arena_tier_) {
  require_option(config_.total_budget == 0 || config_.emergency_reserve < config_.total_budget,
                 class_name, "emergency_reserve", "must be below total_budget");
  require_option(config_.small_threshold <= config_.large_threshold, class_name, "small_threshold",
                 "must not exceed large_threshold");
  regions_.reserve(config_.regions.size());
  for (std::size_t i = 0; i < config_.regions.size(); ++i) {
    const region_spec spec = config_.regions[i].resolved();
    const std::string field = "regions[" + std::to_string(i) + "]";
    for (std::size_t j = 0; j < i; ++j) {
      if (regions_[j]->region.name() == spec.name) {
        throw_invalid_option(class_name, field + ".name", "must differ from the other regions'");
      }
    }
    std::pmr::memory_resource* source = page_source_named(spec.backing, field + ".backing");
    try {
      regions_.push_back(std::make_unique<region_entry>(spec, source));
    } catch (const std::invalid_argument& e) {
      // Say which region: "pmrkit::region_resource: capacity must not be 0" gains its place.
      throw std::invalid_argument(std::string(e.what()) + " (" + field + ", '" + spec.name + "')");
    }
    auto& entry = *regions_.back();
    entry.typed_port = std::make_unique<port>(*this, spec.type);
  }
  if (config_.emergency_reserve != 0) {
    reserve_ = std::make_unique<region_entry>(region_spec{.capacity = config_.emergency_reserve,
                                                          .type = memory_type::system,
                                                          .strategy = region_strategy::buddy,
                                                          .name = "emergency reserve"},
                                              &pages_);
  }
  untyped_port_ = std::make_unique<port>(*this, std::nullopt);
}

memory_system::~memory_system() = default;

std::pmr::memory_resource* memory_system::page_source_named(std::string_view backing,
                                                            std::string_view field) {
  if (const auto found = config_.page_sources.find(backing); found != config_.page_sources.end()) {
    require_option(found->second != nullptr, class_name, field, "names a null page source");
    return found->second;
  }
  if (backing == "pages" || backing == "shared_memory") return &pages_;
  if (backing == "huge_pages") return &huge_pages_;
  if (backing == "locked_pages") return &locked_pages_;
  if (backing == "locked_huge_pages") return &locked_huge_pages_;
  throw_invalid_option(class_name, field,
                       "must be pages, huge_pages, locked_pages, locked_huge_pages, "
                       "shared_memory or a name in page_sources ('" +
                           std::string(backing) + "' is none)");
}

namespace {

// Whether the request the calling thread is metering is critical (meter_router reads it).
thread_local bool metering_critical = false;

// Sets metering_critical for one call into the meter and restores it after: a pressure callback
// may free (or allocate) through the system while an outer request is being metered.
class critical_scope {
 public:
  explicit critical_scope(bool critical) noexcept : saved_(metering_critical) {
    metering_critical = critical;
  }
  ~critical_scope() { metering_critical = saved_; }
  critical_scope(const critical_scope&) = delete;
  critical_scope& operator=(const critical_scope&) = delete;

 private:
  bool saved_;
};

}  // namespace

void* memory_system::meter_router::do_allocate(std::size_t bytes, std::size_t alignment) {
  return (metering_critical ? total_ : normal_)->allocate(bytes, alignment);
}

void memory_system::meter_router::do_deallocate(void* p, std::size_t bytes, std::size_t alignment) {
  (metering_critical ? total_ : normal_)->deallocate(p, bytes, alignment);
}

void memory_system::meter_allocate(const memory_request& request) {
  // The alignment is the block's business; the meter counts bytes.
  const critical_scope scope(has_flag(request.flags, memory_flags::critical));
  (void)pressure_.allocate(request.size, 1);
}

void memory_system::meter_deallocate(std::size_t size, memory_flags flags) noexcept {
  const critical_scope scope(has_flag(flags, memory_flags::critical));
  pressure_.deallocate(&ledger_, size, 1);
}

std::uint32_t memory_system::untyped_source(std::size_t size) const noexcept {
  if (size < config_.small_threshold) return source_small;
  if (size <= config_.large_threshold) return source_arena;
  for (std::uint32_t i = 0; i < regions_.size(); ++i) {
    if (regions_[i]->region.type() == memory_type::system) return i;
  }
  return source_pages;
}

void* memory_system::allocate_from(std::uint32_t source, std::size_t size, std::size_t alignment) {
  switch (source) {
    case source_small:
      return small_tier_.allocate(size, alignment);
    case source_arena:
      return arena_lock_.allocate(size, alignment);
    case source_pages:
      return pages_.allocate(size, alignment);
    case source_locked_pages:
      return locked_pages_.allocate(size, alignment);
    case source_reserve:
      return reserve_->lock.allocate(size, alignment);
    default:
      return regions_[source]->lock.allocate(size, alignment);
  }
}

void memory_system::free_to(std::uint32_t source, void* p, std::size_t size,
                            std::size_t alignment) noexcept {
  switch (source) {
    case source_small:
      small_tier_.deallocate(p, size, alignment);
      return;
    case source_arena:
      arena_lock_.deallocate(p, size, alignment);
      return;
    case source_pages:
      pages_.deallocate(p, size, alignment);
      return;
    case source_locked_pages:
      locked_pages_.deallocate(p, size, alignment);
      return;
    case source_reserve:
      reserve_->lock.deallocate(p, size, alignment);
      return;
    default:
      regions_[source]->lock.deallocate(p, size, alignment);
  }
}

bool memory_system::try_region(memory_type type, const memory_request& request,
                               std::size_t alignment, memory_block& block) {
  const bool dma = has_flag(request.flags, memory_flags::dma_capable);
  for (std::uint32_t i = 0; i < regions_.size(); ++i) {
    if (regions_[i]->region.type() != type) continue;
    if (dma && !regions_[i]->region.locked()) continue;  // only locked pages serve DMA
    try {
      block.pointer = regions_[i]->lock.allocate(request.size, alignment);
    } catch (const allocation_error& e) {
      if (e.reason() != failure_reason::out_of_capacity) throw;
      continue;  // full: the next region of the type
    }
    block.source = i;
    block.type = type;
    return true;
  }
  return false;
}

memory_block memory_system::serve(const memory_request& request, std::size_t alignment) {
  memory_block block{.size = request.size, .alignment = request.alignment, .flags = request.flags};
  const bool critical = has_flag(request.flags, memory_flags::critical);
  const bool dma = has_flag(request.flags, memory_flags::dma_capable);
  // System pages for a request no region takes: locked ones for DMA.
  const auto from_pages = [&] {
    block.source = dma ? source_locked_pages : source_pages;
    block.pointer = allocate_from(block.source, request.size, alignment);
    block.type = memory_type::system;
    return block;
  };
  if (request.type) {
    const memory_type type = *request.type;
    if (try_region(type, request, alignment, block)) return block;
    if (request.allow_fallback && type != memory_type::system) {
      if (try_region(memory_type::system, request, alignment, block)) {
        fallbacks_.fetch_add(1, std::memory_order_relaxed);
        return block;
      }
      const bool has_system = std::any_of(regions_.begin(), regions_.end(), [&](const auto& r) {
        return r->region.type() == memory_type::system && (!dma || r->region.locked());
      });
      if (!has_system) {
        fallbacks_.fetch_add(1, std::memory_order_relaxed);
        return from_pages();
      }
    }
    if (!critical || dma || reserve_ == nullptr) {
      const bool has_type = std::any_of(regions_.begin(), regions_.end(), [&](const auto& r) {
        return r->region.type() == type && (!dma || r->region.locked());
      });
      const std::string kind =
          std::string(dma ? "dma_capable " : "") + std::string(to_string(type));
      throw allocation_error(
          failure_reason::out_of_capacity, request.size, request.alignment, config_.name,
          has_type ? "every " + kind + " region is full" : "no " + kind + " region is configured");
    }
  } else {
    if (dma) return from_pages();  // the tiers are not locked
    const std::uint32_t source = untyped_source(request.size);
    try {
      block.pointer = allocate_from(source, request.size, alignment);
      block.source = source;
      return block;
    } catch (const allocation_error& e) {
      if (!critical || reserve_ == nullptr || e.reason() != failure_reason::out_of_capacity) throw;
    }
  }
  block.pointer = reserve_->lock.allocate(request.size, alignment);
  block.source = source_reserve;
  block.type = memory_type::system;
  reserve_allocations_.fetch_add(1, std::memory_order_relaxed);
  return block;
}

memory_block memory_system::allocate(const memory_request& request) {
  check_request(request.size, request.alignment, config_.name);
  try {
    meter_allocate(request);
  } catch (...) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    throw;
  }
  try {
    memory_block block = serve(request, request.alignment);
    if (has_flag(request.flags, memory_flags::zero_fill) && request.size != 0) {
      std::memset(block.pointer, 0, request.size);
    }
    allocations_.fetch_add(1, std::memory_order_relaxed);
    return block;
  } catch (...) {
    meter_deallocate(request.size, request.flags);
    failures_.fetch_add(1, std::memory_order_relaxed);
    rethrow_upstream_failure(config_.name, request.size, request.alignment);
  }
}

void memory_system::deallocate(const memory_block& block) noexcept {
  free_to(block.source, block.pointer, block.size, block.alignment);
  meter_deallocate(block.size, block.flags);
  deallocations_.fetch_add(1, std::memory_order_relaxed);
}

std::pmr::memory_resource* memory_system::resource(memory_type type) {
  for (const auto& entry : regions_) {
    if (entry->region.type() == type) return entry->typed_port.get();
  }
  throw std::invalid_argument("pmrkit::memory_system: '" + config_.name + "' has no " +
                              std::string(to_string(type)) + " region");
}

std::pmr::memory_resource* memory_system::resource() noexcept {
  return untyped_port_.get();
}

void memory_system::reset_arena() {
  arena_lock_.locked([&] { arena_tier_.reset(); });
}

void memory_system::reset(memory_type type) {
  for (const auto& entry : regions_) {
    if (entry->region.type() == type) entry->lock.locked([&] { entry->region.reset(); });
  }
}

pressure_subscription memory_system::on_pressure(pressure_level threshold,
                                                 pressure_callback callback) {
  return pressure_.on_pressure(threshold, std::move(callback));
}

namespace {

memory_region_info info_of(const region_resource& region, const region_stats& s) {
  return {.name = std::string(region.name()),
          .type = region.type(),
          .strategy = region.strategy(),
          .capacity = s.capacity,
          .used = s.bytes_in_use,
          .free = s.bytes_free,
          .largest_free = s.largest_free_block,
          .fragmentation_percent = s.fragmentation_percent,
          .blocks_in_use = s.blocks_in_use,
          .failures = s.failures,
          .backing = std::string(region.backing())};
}

}  // namespace

std::vector<memory_region_info> memory_system::regions() const {
  std::vector<memory_region_info> result;
  const auto add = [&](region_entry& entry) {
    const region_stats s = entry.lock.locked([&] { return entry.region.stats(); });
    result.push_back(info_of(entry.region, s));
  };
  for (const auto& entry : regions_)
    add(*entry);
  if (reserve_ != nullptr) add(*reserve_);
  return result;
}

memory_system_stats memory_system::stats() const {
  const pressure_stats pressure = pressure_.stats();
  memory_system_stats s{
      .bytes_in_use = pressure.bytes_in_use,
      .peak_bytes_in_use = pressure.peak_bytes_in_use,
      .total_budget = config_.total_budget,
      .emergency_reserve = config_.emergency_reserve,
      .level = pressure.level,
      .allocations = allocations_.load(std::memory_order_relaxed),
      .deallocations = deallocations_.load(std::memory_order_relaxed),
      .failures = failures_.load(std::memory_order_relaxed),
      .fallbacks = fallbacks_.load(std::memory_order_relaxed),
      .reserve_allocations = reserve_allocations_.load(std::memory_order_relaxed),
      .small_tier_bytes = small_tier_.stats().bytes_in_use,
      .arena_tier_bytes = arena_lock_.locked([&] { return arena_tier_.stats().bytes_in_use; })};
  for (const auto& entry : regions_) {
    s.capacity += entry->lock.locked([&] { return entry->region.stats().capacity; });
  }
  return s;
}

namespace {

std::string human(std::size_t bytes) {
  constexpr std::array<std::string_view, 4> units{"B", "KiB", "MiB", "GiB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < units.size()) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  if (unit == 0) {
    std::snprintf(text, sizeof text, "%zu B", bytes);
  } else {
    std::snprintf(text, sizeof text, "%.1f %s", value, units[unit].data());
  }
  return text;
}

}  // namespace

std::string memory_system::format() const {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-18s %-9s %-14s %10s %10s %10s %10s %6s  %s\n", "region",
                "type", "strategy", "capacity", "used", "free", "largest", "frag%", "backing");
  out += line;
  for (const memory_region_info& r : regions()) {
    std::snprintf(line, sizeof line, "%-18s %-9s %-14s %10s %10s %10s %10s %6.1f  %s\n",
                  r.name.c_str(), std::string(to_string(r.type)).c_str(),
                  std::string(to_string(r.strategy)).c_str(), human(r.capacity).c_str(),
                  human(r.used).c_str(), human(r.free).c_str(), human(r.largest_free).c_str(),
                  r.fragmentation_percent, r.backing.c_str());
    out += line;
  }
  const memory_system_stats s = stats();
  std::snprintf(line, sizeof line,
                "%s: %s in use (peak %s) of budget %s, reserve %s, level %s; %zu allocations, "
                "%zu refused, %zu fallbacks, %zu from the reserve\n",
                config_.name.c_str(), human(s.bytes_in_use).c_str(),
                human(s.peak_bytes_in_use).c_str(),
                s.total_budget != 0 ? human(s.total_budget).c_str() : "none",
                human(s.emergency_reserve).c_str(), std::string(to_string(s.level)).c_str(),
                s.allocations, s.failures, s.fallbacks, s.reserve_allocations);
  out += line;
  return out;
}

std::ostream& operator<<(std::ostream& out, const memory_system& memory) {
  return out << memory.format();
}

}  // namespace pmrkit
