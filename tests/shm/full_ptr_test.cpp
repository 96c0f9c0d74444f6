// full_ptr and shm_offset (shm): a block as an offset every process understands and as a
// pointer in this process; the same offset maps to a different pointer in each mapping.
#include <pmr/shm/full_ptr.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <unordered_set>

namespace {

using pmrkit::full_ptr;
using pmrkit::shm_offset;

static_assert(std::is_trivially_copyable_v<shm_offset>);
static_assert(std::is_standard_layout_v<shm_offset>);
static_assert(sizeof(shm_offset) == 8);
static_assert(shm_offset::null().value == 0);
static_assert(!shm_offset::null());
static_assert(shm_offset{16});
static_assert(shm_offset{16} == shm_offset{16} && shm_offset{16} != shm_offset{32});
static_assert(shm_offset{16} < shm_offset{32});
static_assert(!std::is_convertible_v<shm_offset, bool>);  // explicit
static_assert(!std::is_convertible_v<full_ptr<int>, bool>);
static_assert(std::is_convertible_v<full_ptr<int>, full_ptr<const int>>);
static_assert(std::is_convertible_v<full_ptr<int>, full_ptr<void>>);
static_assert(std::is_convertible_v<full_ptr<const int>, full_ptr<const void>>);
static_assert(!std::is_convertible_v<full_ptr<const int>, full_ptr<int>>);
static_assert(!std::is_convertible_v<full_ptr<void>, full_ptr<int>>);

template <class P>
concept dereferenceable = requires(P p) {
  *p;
};
static_assert(dereferenceable<full_ptr<int>> && !dereferenceable<full_ptr<void>> &&
              !dereferenceable<full_ptr<const void>>);

// Two "mappings" of one segment: the second a byte copy of the first, at another address.
struct alignas(64) mapping {
  std::byte bytes[1024]{};
};

struct message {
  std::uint32_t id;
  double weight;
};

TEST(FullPtr, TheSameOffsetMapsToEachMappingsOwnPointer) {
  auto first = std::make_unique<mapping>();
  auto second = std::make_unique<mapping>();
  auto* original = ::new (static_cast<void*>(first->bytes + 128)) message{7, 2.5};

  const full_ptr<message> here(first->bytes, original);
  EXPECT_EQ(here.get(), original);
  EXPECT_EQ(here.offset(), shm_offset{128});
  EXPECT_EQ(here->id, 7U);
  EXPECT_EQ((*here).weight, 2.5);
  EXPECT_TRUE(here);
  EXPECT_FALSE(here.is_null());

  std::memcpy(second->bytes, first->bytes, sizeof(mapping));
  // The offset is what travels between processes: as bytes, through a message.
  const shm_offset sent = here.offset();
  std::byte wire[sizeof(shm_offset)];
  std::memcpy(wire, &sent, sizeof wire);
  shm_offset received;
  std::memcpy(&received, wire, sizeof wire);

  const full_ptr<message> there(second->bytes, received);
  EXPECT_EQ(there.offset(), here.offset());
  EXPECT_EQ(static_cast<void*>(there.get()), static_cast<void*>(second->bytes + 128));
  EXPECT_NE(there.get(), here.get());
  EXPECT_FALSE(there == here);  // the same block, another mapping
  EXPECT_EQ(std::launder(there.get())->id, 7U);

  // Back again: pointer -> offset in the second mapping, offset -> pointer in the first.
  const full_ptr<message> again(second->bytes, there.get());
  EXPECT_EQ(again, there);
  EXPECT_EQ(full_ptr<message>(first->bytes, again.offset()), here);

  // Offsets far into a mapping, of every alignment.
  for (std::uint64_t at = 1; at < sizeof(mapping); at += 37) {
    auto* byte = first->bytes + at;
    const full_ptr<std::byte> p(first->bytes, byte);
    EXPECT_EQ(p.offset().value, at);
    EXPECT_EQ(full_ptr<std::byte>(second->bytes, p.offset()).get(), second->bytes + at);
  }
}

TEST(FullPtr, NullBothWays) {
  auto segment = std::make_unique<mapping>();
  const full_ptr<int> empty;
  EXPECT_EQ(empty.get(), nullptr);
  EXPECT_EQ(empty.offset(), shm_offset::null());
  EXPECT_TRUE(empty.is_null());
  EXPECT_FALSE(empty);

  const full_ptr<int> from_nullptr(segment->bytes, static_cast<int*>(nullptr));
  EXPECT_EQ(from_nullptr.offset(), shm_offset::null());
  EXPECT_TRUE(from_nullptr.is_null());
  const full_ptr<int> from_null_offset(segment->bytes, shm_offset::null());
  EXPECT_EQ(from_null_offset.get(), nullptr);
  EXPECT_FALSE(from_null_offset);
  EXPECT_EQ(from_nullptr, empty);
  EXPECT_EQ(from_null_offset, empty);
  EXPECT_TRUE(empty.cast<const void>().is_null());
  EXPECT_EQ(empty.cast<double>().offset(), shm_offset::null());
}

TEST(FullPtr, CastKeepsTheOffsetAndConvertsThePointer) {
  auto segment = std::make_unique<mapping>();
  auto* number = ::new (static_cast<void*>(segment->bytes + 256)) std::uint64_t(0x0102030405060708);
  const full_ptr<std::uint64_t> p(segment->bytes, number);

  const full_ptr<void> erased = p.cast<void>();
  EXPECT_EQ(erased.get(), static_cast<void*>(number));
  EXPECT_EQ(erased.offset(), p.offset());
  const full_ptr<std::uint64_t> back = erased.cast<std::uint64_t>();
  EXPECT_EQ(back, p);
  EXPECT_EQ(*back, 0x0102030405060708U);

  const full_ptr<const unsigned char> bytes = p.cast<const unsigned char>();
  EXPECT_EQ(static_cast<const void*>(bytes.get()), static_cast<const void*>(number));
  EXPECT_EQ(bytes.offset().value, 256U);
  const full_ptr<const void> const_erased = bytes.cast<const void>();
  EXPECT_EQ(const_erased.cast<const std::uint64_t>().get(), number);

  // Implicit conversions to const and void keep both halves.
  const full_ptr<const std::uint64_t> to_const = p;
  const full_ptr<void> to_void = p;
  const full_ptr<const void> to_const_void = to_const;
  EXPECT_EQ(to_const.get(), number);
  EXPECT_EQ(to_void, erased);
  EXPECT_EQ(to_const_void.offset(), p.offset());
}

TEST(FullPtr, OffsetsHashAndOrder) {
  std::unordered_set<shm_offset> seen;
  for (std::uint64_t value = 64; value < 64 * 101; value += 64)
    seen.insert(shm_offset{value});
  seen.insert(shm_offset{64});  // already there
  EXPECT_EQ(seen.size(), 100U);
  EXPECT_TRUE(seen.contains(shm_offset{640}));
  EXPECT_FALSE(seen.contains(shm_offset{65}));
  EXPECT_FALSE(seen.contains(shm_offset::null()));
  EXPECT_EQ(std::hash<shm_offset>{}(shm_offset{640}), std::hash<shm_offset>{}(shm_offset{640}));
  EXPECT_EQ(shm_offset{1} <=> shm_offset{2}, std::strong_ordering::less);
  EXPECT_TRUE(shm_offset{2} > shm_offset::null());

  // Trivially copyable for real: a byte copy is a copy.
  const shm_offset original{0xfeedface};
  shm_offset copy;
  std::memcpy(&copy, &original, sizeof copy);
  EXPECT_EQ(copy, original);
}

}  // namespace
