#include "trace_pairing.hpp"

namespace pmrkit::detail {

void trace_pairing::fail(std::uint64_t record, std::uint64_t offset, std::uint64_t line,
                         const std::string& problem) const {
  std::string where =
      line != 0 ? "line " + std::to_string(line) : "record " + std::to_string(record);
  throw trace_error(
      std::string(source_) + ": " + where + " (byte " + std::to_string(offset) + "): " + problem,
      offset, record);
}

void trace_pairing::add(std::vector<trace_record>& records, std::uint64_t offset,
                        std::uint64_t line) {
  const std::uint64_t index = records.size() - 1;
  trace_record& record = records.back();
  switch (record.action) {
    case trace_action::allocate: {
      const auto [it, inserted] = live_.try_emplace(record.id, index);
      if (!inserted) {
        fail(index, offset, line,
             "id " + std::to_string(record.id) +
                 " allocated again while live (allocated by record " + std::to_string(it->second) +
                 ")");
      }
      break;
    }
    case trace_action::deallocate: {
      const auto it = live_.find(record.id);
      if (it == live_.end()) {
        fail(index, offset, line,
             "deallocate of id " + std::to_string(record.id) +
                 ", which is not live (never allocated, or freed already)");
      }
      trace_record& allocation = records[it->second];
      if (record.bytes != 0 && record.bytes != allocation.bytes) {
        fail(index, offset, line,
             "deallocate of id " + std::to_string(record.id) + " with " +
                 std::to_string(record.bytes) + " bytes; it was allocated with " +
                 std::to_string(allocation.bytes) + " (record " + std::to_string(it->second) + ")");
      }
      if (record.alignment != 1 && record.alignment != allocation.alignment) {
        fail(index, offset, line,
             "deallocate of id " + std::to_string(record.id) + " with alignment " +
                 std::to_string(record.alignment) + "; it was allocated with " +
                 std::to_string(allocation.alignment) + " (record " + std::to_string(it->second) +
                 ")");
      }
      allocation.partner = index;
      record.partner = it->second;
      live_.erase(it);
      break;
    }
    case trace_action::failed_allocation:
      break;
  }
}

}  // namespace pmrkit::detail
