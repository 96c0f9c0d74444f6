// offset_ptr (shm): the self-relative pointer. Byte copies of the memory that holds one keep it
// pointing inside the copy; copies of the object recompute it; it is a complete fancy pointer
// (std::pointer_traits, iterators, Boost.Container's allocators).
#include <pmr/shm/offset_ptr.hpp>

#include <pmr/testing/test_resource.hpp>

#include <gtest/gtest.h>
#include <boost/container/list.hpp>
#include <boost/container/vector.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <memory_resource>
#include <new>
#include <numeric>
#include <random>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using pmrkit::offset_ptr;

// What the tests rely on, and what the header promises.
static_assert(!std::is_trivially_copyable_v<offset_ptr<int>>);
static_assert(sizeof(offset_ptr<int>) == sizeof(std::ptrdiff_t));
static_assert(std::is_nothrow_copy_constructible_v<offset_ptr<int>>);
static_assert(std::is_nothrow_copy_assignable_v<offset_ptr<int>>);
static_assert(std::is_nothrow_move_constructible_v<offset_ptr<int>>);
static_assert(std::contiguous_iterator<offset_ptr<int>>);
static_assert(std::contiguous_iterator<offset_ptr<const int>>);
static_assert(std::is_same_v<std::iterator_traits<offset_ptr<int>>::iterator_category,
                             std::random_access_iterator_tag>);
static_assert(std::is_same_v<std::iter_value_t<offset_ptr<const int>>, int>);
static_assert(std::is_same_v<std::iter_reference_t<offset_ptr<const int>>, const int&>);
// Implicit conversions: to const, to void, to const void, from raw; not the other way.
static_assert(std::is_convertible_v<offset_ptr<int>, offset_ptr<const int>>);
static_assert(std::is_convertible_v<offset_ptr<int>, offset_ptr<void>>);
static_assert(std::is_convertible_v<offset_ptr<const int>, offset_ptr<const void>>);
static_assert(std::is_convertible_v<int*, offset_ptr<int>>);
static_assert(!std::is_convertible_v<offset_ptr<const int>, offset_ptr<int>>);
static_assert(!std::is_convertible_v<offset_ptr<void>, offset_ptr<int>>);
static_assert(!std::is_convertible_v<offset_ptr<const void>, offset_ptr<void>>);
static_assert(!std::is_convertible_v<offset_ptr<int>, int*>);
static_assert(!std::is_convertible_v<offset_ptr<int>, bool>);  // explicit
static_assert(std::is_constructible_v<bool, offset_ptr<int>>);

// void: no dereference, no subscript, no arithmetic.
template <class P>
concept dereferenceable = requires(P p) {
  *p;
};
template <class P>
concept subscriptable = requires(P p) {
  p[0];
};
template <class P>
concept incrementable = requires(P p) {
  ++p;
  p + 1;
};
static_assert(dereferenceable<offset_ptr<int>> && subscriptable<offset_ptr<int>> &&
              incrementable<offset_ptr<int>>);
static_assert(!dereferenceable<offset_ptr<void>> && !subscriptable<offset_ptr<void>> &&
              !incrementable<offset_ptr<void>>);
static_assert(!dereferenceable<offset_ptr<const void>> && !incrementable<offset_ptr<const void>>);

// std::pointer_traits.
using int_traits = std::pointer_traits<offset_ptr<int>>;
static_assert(std::is_same_v<int_traits::element_type, int>);
static_assert(std::is_same_v<int_traits::difference_type, std::ptrdiff_t>);
static_assert(std::is_same_v<int_traits::rebind<double>, offset_ptr<double>>);
static_assert(std::is_same_v<int_traits::rebind<void>, offset_ptr<void>>);
static_assert(std::is_same_v<std::pointer_traits<offset_ptr<void>>::rebind<const char>,
                             offset_ptr<const char>>);
static_assert(
    std::is_same_v<std::pointer_traits<offset_ptr<const void>>::element_type, const void>);

// A buffer the size of a small segment, aligned as a mapping would be.
struct alignas(64) buffer {
  std::byte bytes[4096];
};

// A node of a singly linked list that lives entirely inside one buffer.
struct node {
  offset_ptr<node> next;
  offset_ptr<int> payload;  // into the buffer's int array
  int value = 0;
};

TEST(OffsetPtr, ABufferCopiedElsewhereKeepsItsPointersInsideTheCopy) {
  auto first = std::make_unique<buffer>();
  auto second = std::make_unique<buffer>();
  // Layout: 8 nodes at the start, then 32 ints; node i points at node i + 1 (the last one at
  // node 0: a cycle, so backward offsets are covered) and at int 31 - i.
  constexpr int node_count = 8;
  constexpr int int_count = 32;
  auto* nodes = reinterpret_cast<node*>(first->bytes);
  auto* ints = reinterpret_cast<int*>(first->bytes + sizeof(node) * node_count);
  for (int i = 0; i < node_count; ++i)
    ::new (static_cast<void*>(nodes + i)) node;
  for (int i = 0; i < int_count; ++i)
    ::new (static_cast<void*>(ints + i)) int(100 + i);
  for (int i = 0; i < node_count; ++i) {
    nodes[i].next = &nodes[(i + 1) % node_count];
    nodes[i].payload = &ints[int_count - 1 - i];
    nodes[i].value = i;
  }
  EXPECT_LT(nodes[node_count - 1].next.offset(), 0);  // back to the start
  EXPECT_GT(nodes[0].next.offset(), 0);

  std::memcpy(second->bytes, first->bytes, sizeof(buffer));  // "mapped at another address"
  ASSERT_NE(static_cast<void*>(first.get()), static_cast<void*>(second.get()));
  auto* copied_nodes = std::launder(reinterpret_cast<node*>(second->bytes));
  auto* copied_ints =
      std::launder(reinterpret_cast<int*>(second->bytes + sizeof(node) * node_count));

  const node* at = copied_nodes;
  for (int i = 0; i < node_count; ++i) {
    EXPECT_EQ(at, &copied_nodes[i]);
    EXPECT_EQ(at->value, i);
    EXPECT_EQ(at->payload.get(), &copied_ints[int_count - 1 - i]);
    EXPECT_EQ(*at->payload, 100 + int_count - 1 - i);
    at = at->next.get();
  }
  EXPECT_EQ(at, copied_nodes);  // the cycle closes in the copy

  // The copy is independent: writing through it does not reach the first buffer.
  *copied_nodes[0].payload = -1;
  EXPECT_EQ(copied_ints[int_count - 1], -1);
  EXPECT_EQ(ints[int_count - 1], 100 + int_count - 1);
}

TEST(OffsetPtr, NullSurvivesAByteCopyAndIsStoredAsOne) {
  alignas(offset_ptr<int>) std::byte first[sizeof(offset_ptr<int>)];
  alignas(offset_ptr<int>) std::byte second[sizeof(offset_ptr<int>)];
  auto* p = ::new (static_cast<void*>(first)) offset_ptr<int>;
  EXPECT_EQ(p->offset(), 1);
  EXPECT_EQ(p->get(), nullptr);
  std::memcpy(second, first, sizeof first);
  const auto* q = std::launder(reinterpret_cast<offset_ptr<int>*>(second));
  EXPECT_FALSE(*q);
  EXPECT_EQ(q->get(), nullptr);
  EXPECT_EQ(*q, nullptr);

  int x = 0;
  offset_ptr<int> r = &x;
  r = nullptr;
  EXPECT_EQ(r.offset(), 1);
  EXPECT_FALSE(r);
  const offset_ptr<int> from_null(nullptr);
  const offset_ptr<int> from_null_raw(static_cast<int*>(nullptr));
  EXPECT_FALSE(from_null);
  EXPECT_FALSE(from_null_raw);
  EXPECT_EQ(from_null, from_null_raw);
}

TEST(OffsetPtr, PointingAtItselfIsOffsetZeroAndNotNull) {
  // The empty head of a circular list points at itself: offset 0 is a valid target.
  struct head {
    offset_ptr<head> next;
  };
  head h;
  h.next = &h;
  EXPECT_EQ(h.next.offset(), 0);
  EXPECT_TRUE(h.next);
  EXPECT_EQ(h.next.get(), &h);
  offset_ptr<void> self;
  self = &self;
  EXPECT_EQ(self.offset(), 0);
  EXPECT_EQ(self.get(), static_cast<void*>(&self));
}

TEST(OffsetPtr, CopiesAndAssignmentsElsewhereKeepTheTarget) {
  int values[4] = {1, 2, 3, 4};
  const offset_ptr<int> original = &values[2];
  const offset_ptr<int> copy(original);  // another address, so another offset
  EXPECT_EQ(copy.get(), &values[2]);
  EXPECT_NE(copy.offset(), original.offset());
  offset_ptr<int> assigned;
  assigned = original;
  EXPECT_EQ(assigned.get(), &values[2]);
  offset_ptr<int> moved(std::move(assigned));
  EXPECT_EQ(moved.get(), &values[2]);

  // A heap block of them, relocated many times by a growing vector.
  std::vector<offset_ptr<int>> pointers;
  for (int i = 0; i < 1000; ++i)
    pointers.emplace_back(&values[i % 4]);
  for (int i = 0; i < 1000; ++i)
    EXPECT_EQ(pointers[static_cast<std::size_t>(i)], &values[i % 4]);

  // Placement-copied into a buffer (a copy constructor, not a byte copy).
  alignas(offset_ptr<int>) std::byte storage[sizeof(offset_ptr<int>)];
  const auto* placed = ::new (static_cast<void*>(storage)) offset_ptr<int>(original);
  EXPECT_EQ(placed->get(), &values[2]);

  // swap, both the hidden friend and std::swap.
  offset_ptr<int> a = &values[0];
  offset_ptr<int> b = &values[3];
  swap(a, b);
  EXPECT_EQ(a.get(), &values[3]);
  EXPECT_EQ(b.get(), &values[0]);
  std::swap(a, b);
  EXPECT_EQ(a.get(), &values[0]);
  EXPECT_EQ(b.get(), &values[3]);
  offset_ptr<int> null;
  swap(a, null);
  EXPECT_FALSE(a);
  EXPECT_EQ(null.get(), &values[0]);
}

TEST(OffsetPtr, ArithmeticMovesByElements) {
  std::int64_t array[10];
  std::iota(std::begin(array), std::end(array), 0);
  offset_ptr<std::int64_t> p = array;
  EXPECT_EQ(*p, 0);
  EXPECT_EQ(p[7], 7);
  p[7] = 70;
  EXPECT_EQ(array[7], 70);
  EXPECT_EQ(*++p, 1);
  EXPECT_EQ(*p++, 1);
  EXPECT_EQ(*p, 2);
  EXPECT_EQ(*--p, 1);
  EXPECT_EQ(*p--, 1);
  EXPECT_EQ(p.get(), array);
  p += 5;
  EXPECT_EQ(p.get(), array + 5);
  p -= 2;
  EXPECT_EQ(p.get(), array + 3);
  EXPECT_EQ((p + 4).get(), array + 7);
  EXPECT_EQ((4 + p).get(), array + 7);
  EXPECT_EQ((p - 3).get(), array);
  const offset_ptr<std::int64_t> end = array + 10;
  EXPECT_EQ(end - p, 7);
  EXPECT_EQ(p - end, -7);
  const offset_ptr<const std::int64_t> const_begin = array;
  EXPECT_EQ(end - const_begin, 10);      // mixed cv
  EXPECT_EQ(p.operator->(), array + 3);  // operator-> gives the raw pointer

  // As an iterator of standard algorithms.
  std::int64_t sum = 0;
  for (offset_ptr<const std::int64_t> it = array; it != array + 10; ++it)
    sum += *it;
  EXPECT_EQ(sum, 45 - 7 + 70);
  std::reverse(offset_ptr<std::int64_t>(array), offset_ptr<std::int64_t>(array + 10));
  EXPECT_EQ(array[0], 9);
  EXPECT_EQ(std::ranges::distance(offset_ptr<int>(), offset_ptr<int>()), 0);
}

TEST(OffsetPtr, ComparesByTargetAddress) {
  int array[3] = {};
  const offset_ptr<int> a = &array[0];
  const offset_ptr<int> b = &array[1];
  const offset_ptr<int> b_again = &array[1];
  const offset_ptr<int> null;
  EXPECT_TRUE(b == b_again);
  EXPECT_FALSE(b != b_again);
  EXPECT_TRUE(a != b);
  EXPECT_TRUE(a < b && a <= b && b > a && b >= a);
  EXPECT_EQ(a <=> b, std::strong_ordering::less);
  EXPECT_EQ(b <=> b_again, std::strong_ordering::equal);
  // With raw pointers, either side.
  EXPECT_TRUE(a == &array[0]);
  EXPECT_TRUE(&array[0] == a);
  EXPECT_TRUE(a < &array[2]);
  EXPECT_TRUE(&array[2] > a);
  // With nullptr, either side.
  EXPECT_TRUE(null == nullptr);
  EXPECT_TRUE(nullptr == null);
  EXPECT_TRUE(a != nullptr);
  EXPECT_EQ(null <=> nullptr, std::strong_ordering::equal);
  EXPECT_EQ(nullptr <=> a, std::strong_ordering::less);
  EXPECT_TRUE(null < a);
  // Across cv and void.
  const offset_ptr<const int> const_b = b;
  const offset_ptr<void> void_b = b;
  const offset_ptr<const void> const_void_a = a;
  EXPECT_TRUE(b == const_b);
  EXPECT_TRUE(const_b == b);
  EXPECT_TRUE(void_b == b);
  EXPECT_TRUE(const_void_a < void_b);
  EXPECT_TRUE(const_void_a == static_cast<const void*>(&array[0]));
  EXPECT_TRUE(void_b != nullptr);
  EXPECT_TRUE(!null);
  EXPECT_TRUE(static_cast<bool>(a));
}

#ifndef NDEBUG
TEST(OffsetPtrDeathTest, CannotPointAtItsOwnSecondByte) {
  // The one address null's encoding (1) takes away; a debug build asserts.
  offset_ptr<char> p;
  char* const second_byte = reinterpret_cast<char*>(&p) + 1;
  EXPECT_DEATH(p = second_byte, "second byte");
}
#endif

struct base_one {
  virtual ~base_one() = default;
  int one = 1;
};
struct base_two {
  virtual ~base_two() = default;
  int two = 2;
};
struct derived : base_one, base_two {
  int three = 3;
};

TEST(OffsetPtr, ConvertsToConstAndVoidAndCastsBack) {
  int x = 5;
  const offset_ptr<int> p = &x;
  const offset_ptr<const int> to_const = p;
  const offset_ptr<void> to_void = p;
  const offset_ptr<const void> to_const_void = to_const;
  offset_ptr<const void> assigned;
  assigned = p;
  EXPECT_EQ(to_const.get(), &x);
  EXPECT_EQ(to_void.get(), static_cast<void*>(&x));
  EXPECT_EQ(to_const_void.get(), static_cast<const void*>(&x));
  EXPECT_EQ(assigned, to_const_void);

  const offset_ptr<int> from_void = pmrkit::static_pointer_cast<int>(to_void);
  EXPECT_EQ(from_void.get(), &x);
  const offset_ptr<const int> from_const_void = static_pointer_cast<const int>(to_const_void);
  EXPECT_EQ(*from_const_void, 5);
  const offset_ptr<int> unconst = const_pointer_cast<int>(to_const);
  *unconst = 6;
  EXPECT_EQ(x, 6);
  const offset_ptr<const unsigned char> bytes =
      reinterpret_pointer_cast<const unsigned char>(to_const);
  EXPECT_EQ(static_cast<const void*>(bytes.get()), static_cast<const void*>(&x));
  EXPECT_FALSE(static_pointer_cast<int>(offset_ptr<void>()));

  // Derived to base (the address moves for the second base), and dynamic casts back.
  derived d;
  const offset_ptr<derived> pd = &d;
  const offset_ptr<base_two> p2 = pd;
  EXPECT_EQ(p2.get(), static_cast<base_two*>(&d));
  EXPECT_EQ(p2->two, 2);
  EXPECT_EQ(dynamic_pointer_cast<derived>(p2), pd);
  EXPECT_EQ(static_pointer_cast<derived>(p2), pd);
  base_two lone;
  EXPECT_FALSE(dynamic_pointer_cast<derived>(offset_ptr<base_two>(&lone)));
  EXPECT_EQ(dynamic_pointer_cast<base_one>(p2).get(), static_cast<base_one*>(&d));
}

TEST(OffsetPtr, PointerTraitsAndToAddress) {
  double d = 1.5;
  const offset_ptr<double> p = std::pointer_traits<offset_ptr<double>>::pointer_to(d);
  EXPECT_EQ(p.get(), &d);
  EXPECT_EQ(offset_ptr<double>::pointer_to(d), &d);
  const offset_ptr<const double> pc = std::pointer_traits<offset_ptr<const double>>::pointer_to(d);
  EXPECT_EQ(pc.get(), &d);
  EXPECT_EQ(std::to_address(p), &d);
  EXPECT_EQ(to_address(p), &d);  // pmrkit::to_address, by ADL
  EXPECT_EQ(pmrkit::to_address(offset_ptr<const double>()), nullptr);
  const offset_ptr<void> v = p;
  EXPECT_EQ(std::to_address(v), static_cast<void*>(&d));
  EXPECT_EQ(to_address(v), static_cast<void*>(&d));
  using std::to_address;
  EXPECT_EQ(to_address(pc), &d);  // pmrkit's is more specialised than std's
}

// A minimal allocator whose pointer is offset_ptr, over a memory resource.
template <class T>
struct offset_allocator {
  using value_type = T;
  using pointer = offset_ptr<T>;
  using const_pointer = offset_ptr<const T>;
  using void_pointer = offset_ptr<void>;
  using const_void_pointer = offset_ptr<const void>;
  using size_type = std::size_t;
  using difference_type = std::ptrdiff_t;
  template <class U>
  struct rebind {
    using other = offset_allocator<U>;
  };

  explicit offset_allocator(std::pmr::memory_resource* r) noexcept : resource(r) {}
  template <class U>
  offset_allocator(const offset_allocator<U>& other) noexcept : resource(other.resource) {}

  pointer allocate(std::size_t n) {
    return pointer(static_cast<T*>(resource->allocate(n * sizeof(T), alignof(T))));
  }
  void deallocate(pointer p, std::size_t n) noexcept {
    resource->deallocate(p.get(), n * sizeof(T), alignof(T));
  }
  template <class U>
  bool operator==(const offset_allocator<U>& other) const noexcept {
    return resource == other.resource;
  }

  std::pmr::memory_resource* resource;
};

TEST(OffsetPtr, BoostContainerVectorAcceptsItAsTheAllocatorsPointer) {
  pmrkit::test_resource upstream("offset_ptr vector");
  {
    using vector = boost::container::vector<int, offset_allocator<int>>;
    static_assert(std::is_same_v<vector::pointer, offset_ptr<int>>);
    vector numbers{offset_allocator<int>(&upstream)};
    std::vector<int> expected;
    for (int i = 0; i < 1000; ++i) {
      numbers.push_back((i * 7919) % 1000);
      expected.push_back((i * 7919) % 1000);
    }
    EXPECT_GT(upstream.blocks_in_use(), 0U);
    EXPECT_TRUE(std::equal(numbers.begin(), numbers.end(), expected.begin(), expected.end()));
    EXPECT_EQ(numbers.data(), &numbers[0]);

    numbers.erase(numbers.begin() + 10, numbers.begin() + 110);
    expected.erase(expected.begin() + 10, expected.begin() + 110);
    numbers.erase(numbers.begin());
    expected.erase(expected.begin());
    numbers.insert(numbers.begin() + 500, 5, -1);
    expected.insert(expected.begin() + 500, 5, -1);
    numbers.insert(numbers.begin(), expected.begin(), expected.begin() + 50);  // may reallocate
    expected.insert(expected.begin(), expected.begin(), expected.begin() + 50);
    ASSERT_EQ(numbers.size(), expected.size());
    EXPECT_TRUE(std::equal(numbers.begin(), numbers.end(), expected.begin()));

    std::sort(numbers.begin(), numbers.end());
    std::sort(expected.begin(), expected.end());
    EXPECT_TRUE(std::equal(numbers.begin(), numbers.end(), expected.begin()));
    EXPECT_TRUE(std::is_sorted(numbers.cbegin(), numbers.cend()));

    vector copy(numbers);  // the copy's elements elsewhere, same values
    EXPECT_NE(copy.data(), numbers.data());
    EXPECT_TRUE(copy == numbers);
    numbers.clear();
    numbers.shrink_to_fit();
    EXPECT_TRUE(numbers.empty());
  }
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

TEST(OffsetPtr, BoostContainerListLinksItsNodesWithIt) {
  // A list's nodes hold offset_ptr links (rebind to its node type, through void pointers).
  pmrkit::test_resource upstream("offset_ptr list");
  {
    boost::container::list<int, offset_allocator<int>> numbers{offset_allocator<int>(&upstream)};
    for (int i = 0; i < 100; ++i)
      numbers.push_back(i);
    numbers.remove_if([](int i) { return i % 3 == 0; });
    numbers.reverse();
    numbers.sort();
    EXPECT_EQ(numbers.size(), 66U);
    EXPECT_EQ(numbers.front(), 1);
    EXPECT_EQ(numbers.back(), 98);
    EXPECT_EQ(upstream.blocks_in_use(), 66U);
  }
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

}  // namespace
