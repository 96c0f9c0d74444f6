/* The C program that preload_test.cpp runs under libpmrkit_trace.so: a known
 * sequence of malloc-family calls, each block tagged with an unusual size so the
 * test can tell it from the C runtime's own blocks. Exits 0 when every call
 * returned what the C standard and POSIX say, 1 otherwise.
 *
 *   workload            malloc, calloc, realloc (growing, and to 0), reallocarray,
 *                       posix_memalign, aligned_alloc, memalign, valloc, malloc(0),
 *                       a failed malloc, rejected alignments, a thread that
 *                       mallocs and frees, a forked child that mallocs and frees
 *                       (and frees a block of its parent's)
 *   workload threads    4 threads, each 20000 x (malloc 1000 + t, realloc to
 *                       2000 + t, free)
 *
 * Thread safety: its threads share nothing. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures = 0;

static void check(int ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "workload: %s\n", what);
    ++failures;
  }
}

/* Keeps the compiler from dropping an allocation that is only freed. */
static void* volatile sink;
static void* keep(void* p) {
  sink = p;
  return p;
}

static void* worker(void* unused) {
  (void)unused;
  void* p = keep(malloc(9999));
  free(p);
  return NULL;
}

enum { threads = 4, rounds = 20000 };

static void* churn(void* arg) {
  const size_t t = (size_t)(uintptr_t)arg;
  for (int i = 0; i < rounds; ++i) {
    void* p = keep(malloc(1000 + t));
    p = keep(realloc(p, 2000 + t));
    free(p);
  }
  return NULL;
}

static int run_threads(void) {
  pthread_t id[threads];
  for (size_t t = 0; t < threads; ++t)
    check(pthread_create(&id[t], NULL, churn, (void*)(uintptr_t)t) == 0, "pthread_create");
  for (size_t t = 0; t < threads; ++t)
    pthread_join(id[t], NULL);
  return failures == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "threads") == 0) return run_threads();

  void* a = keep(malloc(12345));
  unsigned char* b = keep(calloc(777, 3)); /* 2331 bytes */
  check(b != NULL && b[0] == 0 && b[2330] == 0, "calloc");
  void* c = keep(malloc(4321));
  c = keep(realloc(c, 43210)); /* grows: a free of 4321's id, an allocation of 43210 */
  void* d = NULL;
  check(posix_memalign(&d, 64, 6464) == 0 && ((uintptr_t)d & 63) == 0, "posix_memalign 64");
  void* e = keep(aligned_alloc(256, 2560));
  check(e != NULL && ((uintptr_t)e & 255) == 0, "aligned_alloc 256");
  void* f = keep(memalign(128, 1280));
  check(f != NULL && ((uintptr_t)f & 127) == 0, "memalign 128");
  void* g = keep(reallocarray(NULL, 101, 11)); /* 1111 bytes */
  void* h = keep(valloc(3333));
  check(h != NULL && ((uintptr_t)h & 4095) == 0, "valloc");
  void* zero = keep(malloc(0));
  check(zero != NULL, "malloc(0) is a unique pointer in glibc");
  check(a && c && g, "malloc, realloc, reallocarray");

  void* freed_by_realloc = keep(malloc(5555));
  errno = 0;
  check(realloc(freed_by_realloc, 0) == NULL, "realloc(p, 0) frees p"); /* glibc */

  volatile size_t huge = SIZE_MAX - 99999;
  errno = 0;
  check(malloc(huge) == NULL && errno == ENOMEM, "a failed malloc");
  void* rejected = NULL;
  check(posix_memalign(&rejected, 24, 24242) == EINVAL && rejected == NULL,
        "posix_memalign rejects 24");
  errno = 0;
  volatile size_t not_a_power_of_two = 48;
  check(aligned_alloc(not_a_power_of_two, 48484) == NULL && errno == EINVAL,
        "aligned_alloc rejects 48");
  errno = 0;
  check(reallocarray(NULL, huge, 3) == NULL && errno == ENOMEM, "reallocarray overflows");

  pthread_t thread;
  check(pthread_create(&thread, NULL, worker, NULL) == 0, "pthread_create");
  pthread_join(thread, NULL);

  /* A child records into <trace>.<pid>: its own block, and a free of its
   * parent's block, which its trace never saw allocated. */
  void* parents = keep(malloc(2468));
  const pid_t child = fork();
  if (child == 0) {
    void* p = keep(malloc(31337));
    free(p);
    free(parents);
    exit(0);
  }
  int status = 0;
  check(child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0,
        "the child");
  free(parents);

  free(a);
  free(b);
  free(c);
  free(d);
  free(e);
  free(f);
  free(g);
  free(h);
  free(zero);
  return failures == 0 ? 0 : 1;
}
