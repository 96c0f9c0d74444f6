// The C++ program that preload_test.cpp runs under libpmrkit_trace.so: every
// form of the global operator new and delete once, each block tagged with an
// unusual size so the test can tell it from the runtime's own blocks, and two
// failing requests. Exits 0 when every call behaved as the standard says.
//
// Thread safety: one thread.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <new>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "workload: %s\n", what);
    ++failures;
  }
}

/// Keeps the compiler from eliding an allocation.
void* volatile sink;
void* kept(void* p) {
  sink = p;
  return sink;
}

bool aligned_to(void* p, std::size_t alignment) {
  return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

struct alignas(512) big {
  char bytes[1536];
};

}  // namespace

int main() {
  void* a = kept(::operator new(2345));
  ::operator delete(a, 2345);  // sized

  void* b = kept(::operator new[](3456));
  ::operator delete[](b);

  void* c = kept(::operator new (6789, std::align_val_t{64}));
  check(aligned_to(c, 64), "new aligned 64");
  ::operator delete (c, 6789, std::align_val_t{64});

  void* d = kept(::operator new[](7890, std::align_val_t{128}));
  check(aligned_to(d, 128), "new[] aligned 128");
  ::operator delete[](d, std::align_val_t{128});

  void* e = kept(::operator new(4567, std::nothrow));
  check(e != nullptr, "new nothrow");
  ::operator delete(e, std::nothrow);

  void* f = kept(::operator new (5678, std::align_val_t{256}, std::nothrow));
  check(f != nullptr && aligned_to(f, 256), "new aligned nothrow");
  ::operator delete (f, std::align_val_t{256}, std::nothrow);

  void* g = kept(::operator new[](2222, std::nothrow));
  ::operator delete[](g, 2222);  // sized array

  void* h = kept(::operator new[](3333, std::align_val_t{32}, std::nothrow));
  ::operator delete[](h, 3333, std::align_val_t{32});  // sized aligned array

  big* i = new big;  // new(1536, align_val_t{512}); delete(p, 1536, align_val_t{512})
  kept(i);
  check(aligned_to(i, 512), "new big");
  delete i;

  void* zero = kept(::operator new(0));
  check(zero != nullptr, "new(0)");
  ::operator delete(zero);

  volatile std::size_t huge = SIZE_MAX / 2 - 13;
  bool threw = false;
  try {
    kept(::operator new(huge));
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  check(threw, "new throws bad_alloc");
  check(::operator new(huge + 4, std::nothrow) == nullptr, "new nothrow returns null");
  return failures == 0 ? 0 : 1;
}
