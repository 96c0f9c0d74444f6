// What shm_allocator_test and shm_child's boost_containers role share: the
// Boost.Container types with a shm_allocator (named objects are checked by
// type, so both sides must spell them the same), and the contents the
// containers hold after each generation of changes, built and checked the same
// way in the parent and in the exec'd children.
#pragma once

#include <pmr/shm/shm_allocator.hpp>
#include <pmr/shm/shm_resource.hpp>

#include <boost/container/deque.hpp>
#include <boost/container/flat_map.hpp>
#include <boost/container/map.hpp>
#include <boost/container/scoped_allocator.hpp>
#include <boost/container/string.hpp>
#include <boost/container/vector.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace shm_allocator_test {

template <class T>
using alloc = pmrkit::shm_allocator<T>;
using int_vector = boost::container::vector<int, alloc<int>>;
using int_deque = boost::container::deque<int, alloc<int>>;
using shm_string = boost::container::basic_string<char, std::char_traits<char>, alloc<char>>;
using int_map = boost::container::map<int, int, std::less<int>, alloc<std::pair<const int, int>>>;
using int_flat_map =
    boost::container::flat_map<int, int, std::less<int>, alloc<std::pair<int, int>>>;
// The inner strings and vectors get the map's segment through the adaptor.
using nested_map = boost::container::map<
    shm_string, int_vector, std::less<shm_string>,
    boost::container::scoped_allocator_adaptor<alloc<std::pair<const shm_string, int_vector>>>>;

// Boost's deque and basic_string initialise pointers from a literal 0 (`pointer reuse = 0;`,
// `m_map(0)`), which is ambiguous for an offset_ptr that has both an offset_ptr(std::nullptr_t)
// and an offset_ptr(T*) constructor. While offset_ptr has both, the deque, the string and the
// nested map (string keys) are left out (`more` below is not instantiated).
template <class Pointer>
concept from_literal_zero = requires {
  Pointer(0);
};
inline constexpr bool with_deque_and_string = from_literal_zero<pmrkit::offset_ptr<int>>;

// The named objects.
inline constexpr const char* vector_name = "v";
inline constexpr const char* deque_name = "d";
inline constexpr const char* string_name = "s";
inline constexpr const char* map_name = "m";
inline constexpr const char* flat_map_name = "fm";
inline constexpr const char* nested_name = "nested";
inline constexpr const char* bases_name =
    "bases";  // std::uint64_t per generation: the child's base
inline constexpr std::size_t max_generations = 4;

// The deque, the string and the nested map: a template, instantiated only when
// with_deque_and_string (their names are dependent, so nothing of them is
// compiled otherwise).
template <class Deque, class String, class Nested>
struct more {
  static void build(pmrkit::shm_resource& r) {
    auto& d = r.construct<Deque>(deque_name, r);
    for (int i = 0; i < 1000; ++i)
      d.push_back(i);
    auto& s = r.construct<String>(string_name, r);
    s = "hello shared memory";
    auto& nested = r.construct<Nested>(nested_name, r);
    const alloc<char> chars(r);
    nested[String("alpha", chars)] = {1, 2, 3};
    nested.try_emplace(String("beta", chars));
  }

  static void add_generation(pmrkit::shm_resource& r, int g) {
    auto& d = *r.template find<Deque>(deque_name);
    for (int i = 0; i < 300; ++i) {
      d.push_front(-(g + 1));
      d.push_back(5000 + g);
    }
    auto& s = *r.template find<String>(string_name);
    s += " child ";
    s += std::to_string(g).c_str();
    s.append(100, static_cast<char>('a' + g));
    auto& nested = *r.template find<Nested>(nested_name);
    const alloc<char> chars(r);
    const std::string key = "child-" + std::to_string(g);
    nested[String(key.c_str(), chars)] = {g, g, g};
    nested.at(String("alpha", chars)).push_back(g);
  }

  static std::string check(pmrkit::shm_resource& r, int generations) {
    const pmrkit::shm_segment& segment = r.segment();
    const auto* d = r.template find<Deque>(deque_name);
    const auto* s = r.template find<String>(string_name);
    auto* nested = r.template find<Nested>(nested_name);
    if (!d || !s || !nested) return "the deque, the string or the nested map is missing";

    if (d->size() != 1000 + 600 * static_cast<std::size_t>(generations)) {
      return "deque size " + std::to_string(d->size());
    }
    auto it = d->begin();
    for (int g = generations - 1; g >= 0; --g) {
      for (int i = 0; i < 300; ++i, ++it) {
        if (*it != -(g + 1)) return "deque front of generation " + std::to_string(g);
      }
    }
    for (int i = 0; i < 1000; ++i, ++it) {
      if (!segment.contains(&*it)) return "a deque element is outside the segment";
      if (*it != i) return "deque[" + std::to_string(i) + "]";
    }
    for (int g = 0; g < generations; ++g) {
      for (int i = 0; i < 300; ++i, ++it) {
        if (*it != 5000 + g) return "deque back of generation " + std::to_string(g);
      }
    }

    std::string expected_string = "hello shared memory";
    for (int g = 0; g < generations; ++g) {
      expected_string +=
          " child " + std::to_string(g) + std::string(100, static_cast<char>('a' + g));
    }
    if (std::string_view(s->data(), s->size()) != expected_string) {
      return "string '" + std::string(s->data(), s->size()) + "'";
    }
    if (generations > 0 && !segment.contains(s->data())) {
      return "the string's buffer is outside the segment";
    }

    if (nested->size() != 2 + static_cast<std::size_t>(generations)) {
      return "nested size " + std::to_string(nested->size());
    }
    const alloc<char> chars(r);
    const int_vector& alpha = nested->at(String("alpha", chars));
    if (alpha.size() != 3 + static_cast<std::size_t>(generations)) return "nested alpha size";
    if (!segment.contains(alpha.data())) return "nested alpha's buffer is outside the segment";
    if (alpha.get_allocator() != alloc<int>(r)) return "nested alpha's allocator differs";
    for (int i = 0; i < 3; ++i) {
      if (alpha[static_cast<std::size_t>(i)] != i + 1) {
        return "nested alpha[" + std::to_string(i) + "]";
      }
    }
    for (int g = 0; g < generations; ++g) {
      if (alpha[static_cast<std::size_t>(3 + g)] != g) return "nested alpha generation";
      const std::string key = "child-" + std::to_string(g);
      const auto found = nested->find(String(key.c_str(), chars));
      if (found == nested->end()) return "nested has no " + key;
      if (found->second.size() != 3 || found->second[0] != g || found->second[2] != g) {
        return "nested " + key + " contents";
      }
    }
    if (!nested->at(String("beta", chars)).empty()) return "nested beta is not empty";
    return "";
  }

  static void destroy(pmrkit::shm_resource& r) {
    r.template destroy<Deque>(deque_name);
    r.template destroy<String>(string_name);
    r.template destroy<Nested>(nested_name);
  }
};
// Named only when with_deque_and_string: a template argument the `if constexpr` makes dependent.
template <bool With>
using more_parts = more<std::conditional_t<With, int_deque, void>, shm_string, nested_map>;

/// Constructs the named containers with their initial contents (generation 0).
template <bool With = with_deque_and_string>
void build(pmrkit::shm_resource& r) {
  auto& v = r.construct<int_vector>(vector_name, r);
  for (int i = 0; i < 1000; ++i)
    v.push_back(i);
  auto& m = r.construct<int_map>(map_name, r);
  for (int i = 0; i < 500; ++i)
    m.emplace(i, i * i);
  auto& fm = r.construct<int_flat_map>(flat_map_name, r);
  for (int i = 99; i >= 0; --i)
    fm.emplace(i, 2 * i);
  r.construct_array<std::uint64_t>(bases_name, max_generations, std::uint64_t{0});
  if constexpr (With) more_parts<With>::build(r);
}

/// Generation `g`'s changes: every container grows (the vector and the string
/// past their capacity, so their buffers move), the map loses a node.
template <bool With = with_deque_and_string>
void add_generation(pmrkit::shm_resource& r, int g) {
  auto& v = *r.find<int_vector>(vector_name);
  for (int i = 0; i < 500; ++i)
    v.push_back(100000 + g);
  auto& m = *r.find<int_map>(map_name);
  for (int i = 0; i < 100; ++i)
    m.emplace(500 + 100 * g + i, -(500 + 100 * g + i));
  m.erase(g);
  auto& fm = *r.find<int_flat_map>(flat_map_name);
  fm.emplace(1000 + g, g);
  if constexpr (With) more_parts<With>::add_generation(r, g);
}

/// Checks the containers hold generation 0 plus `generations` rounds of
/// add_generation, and that every buffer lies in the segment; empty when so,
/// else the first difference.
template <bool With = with_deque_and_string>
std::string check(pmrkit::shm_resource& r, int generations) {
  const pmrkit::shm_segment& segment = r.segment();
  const auto* v = r.find<int_vector>(vector_name);
  const auto* m = r.find<int_map>(map_name);
  const auto* fm = r.find<int_flat_map>(flat_map_name);
  if (!v || !m || !fm) return "a named container is missing";
  if (v->get_allocator().segment_base() != segment.base()) {
    return "the vector's allocator does not point at this mapping";
  }

  if (v->size() != 1000 + 500 * static_cast<std::size_t>(generations)) {
    return "vector size " + std::to_string(v->size());
  }
  if (!segment.contains(v->data())) return "the vector's buffer is outside the segment";
  for (int i = 0; i < 1000; ++i) {
    if ((*v)[static_cast<std::size_t>(i)] != i) return "vector[" + std::to_string(i) + "]";
  }
  for (int g = 0; g < generations; ++g) {
    for (int i = 0; i < 500; ++i) {
      if ((*v)[static_cast<std::size_t>(1000 + 500 * g + i)] != 100000 + g) {
        return "vector generation " + std::to_string(g);
      }
    }
  }

  std::size_t expected_map_size = 500 + 100 * static_cast<std::size_t>(generations);
  expected_map_size -= static_cast<std::size_t>(generations);  // key g erased by generation g
  if (m->size() != expected_map_size) return "map size " + std::to_string(m->size());
  for (const auto& [key, value] : *m) {
    if (!segment.contains(&key)) return "a map node is outside the segment";
    if (key < generations) return "map key " + std::to_string(key) + " was not erased";
    const int expected = key < 500 ? key * key : -key;
    if (value != expected) return "map[" + std::to_string(key) + "]";
  }

  if (fm->size() != 100 + static_cast<std::size_t>(generations)) {
    return "flat_map size " + std::to_string(fm->size());
  }
  if (!segment.contains(&*fm->begin())) return "the flat_map's buffer is outside the segment";
  for (int i = 0; i < 100; ++i) {
    const auto found = fm->find(i);
    if (found == fm->end() || found->second != 2 * i) return "flat_map[" + std::to_string(i) + "]";
  }
  for (int g = 0; g < generations; ++g) {
    const auto found = fm->find(1000 + g);
    if (found == fm->end() || found->second != g) return "flat_map generation " + std::to_string(g);
  }
  if constexpr (With) return more_parts<With>::check(r, generations);
  return "";
}

/// Destroys the named containers (their memory goes back to the segment).
template <bool With = with_deque_and_string>
void destroy_all(pmrkit::shm_resource& r) {
  r.destroy<int_vector>(vector_name);
  r.destroy<int_map>(map_name);
  r.destroy<int_flat_map>(flat_map_name);
  r.destroy<std::uint64_t>(bases_name);
  if constexpr (With) more_parts<With>::destroy(r);
}

}  // namespace shm_allocator_test
