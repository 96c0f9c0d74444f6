// Two processes exchange messages through a queue in shared memory.
//
// The producer creates a segment, puts a shm_resource over it and constructs
// the named object "messages" (a ring of offsets). It then starts itself again
// as the consumer (fork + exec: a fresh process that maps the segment at an
// address of its own), allocates messages of varying sizes in the segment and
// passes each as a shm_offset, never a pointer. The consumer opens the segment
// by name, finds the queue with find<>, checks every message and frees it
// (blocks the other process allocated). At the end the producer checks that
// the segment is back to holding the queue alone, and removes it.
#include <pmr/shm/shm_resource.hpp>
#include <pmr/shm/shm_segment.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <thread>

namespace {

constexpr std::size_t message_count = 2000;
constexpr std::size_t segment_bytes = std::size_t{4} << 20;

// A single-producer single-consumer ring of segment offsets, plus what the
// consumer reports back. Only lock-free atomics: both processes use it in place.
struct message_queue {
  static constexpr std::size_t capacity = 64;
  std::atomic<std::uint64_t> head{0};          // the next to read (the consumer's)
  std::atomic<std::uint64_t> tail{0};          // the next to write (the producer's)
  std::atomic<std::uint64_t> slots[capacity];  // zero (C++20's value-initialising atomics)
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> received_bytes{0};

  bool push(pmrkit::shm_offset message) noexcept {
    const std::uint64_t t = tail.load(std::memory_order_relaxed);
    if (t - head.load(std::memory_order_acquire) == capacity) return false;
    slots[t % capacity].store(message.value, std::memory_order_relaxed);
    tail.store(t + 1, std::memory_order_release);
    return true;
  }
  pmrkit::shm_offset pop() noexcept {
    const std::uint64_t h = head.load(std::memory_order_relaxed);
    if (h == tail.load(std::memory_order_acquire)) return pmrkit::shm_offset::null();
    const pmrkit::shm_offset message{slots[h % capacity].load(std::memory_order_relaxed)};
    head.store(h + 1, std::memory_order_release);
    return message;
  }
};

// A message: this header, then `length` bytes of text derived from `sequence`.
struct message {
  std::uint64_t sequence;
  std::uint64_t length;
  std::uint64_t checksum;
  char* text() noexcept { return reinterpret_cast<char*>(this + 1); }
};

std::size_t length_of(std::uint64_t sequence) {
  return 8 + sequence * 7919 % 20000;  // 8 B to 20 KiB: small classes and the buddy
}

std::uint64_t checksum(const char* text, std::size_t length) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < length; ++i)
    hash = (hash ^ static_cast<unsigned char>(text[i])) * 0x100000001b3ULL;
  return hash;
}

int consumer(const std::string& name) {
  pmrkit::shm_segment segment = pmrkit::shm_segment::open(name);
  pmrkit::shm_resource shm(segment);
  auto* queue = shm.find<message_queue>("messages");
  if (queue == nullptr) {
    std::fprintf(stderr, "consumer: no 'messages' in %s\n", name.c_str());
    return 1;
  }
  std::printf("consumer: opened %s at %p, found 'messages'\n", name.c_str(),
              static_cast<void*>(segment.base()));
  std::uint64_t bytes = 0;
  for (std::uint64_t expected = 0; expected < message_count;) {
    const pmrkit::shm_offset offset = queue->pop();
    if (!offset) {
      if (::getppid() == 1) return 1;  // the producer is gone
      std::this_thread::yield();
      continue;
    }
    message* m = shm.at<message>(offset).get();
    if (m->sequence != expected || m->length != length_of(expected) ||
        m->checksum != checksum(m->text(), m->length)) {
      std::fprintf(stderr, "consumer: message %llu is damaged\n",
                   static_cast<unsigned long long>(expected));
      return 1;
    }
    bytes += m->length;
    shm.deallocate(m, sizeof(message) + m->length, alignof(message));  // another process's block
    ++expected;
    queue->received.store(expected, std::memory_order_relaxed);
  }
  queue->received_bytes.store(bytes, std::memory_order_relaxed);
  std::printf("consumer: received, checked and freed %zu messages (%llu bytes of text)\n",
              message_count, static_cast<unsigned long long>(bytes));
  return 0;
}  // the resource gives its thread cache back to the segment here

// Removes the segment's name however the producer leaves.
struct remove_on_exit {
  std::string name;
  ~remove_on_exit() {
    try {
      pmrkit::shm_segment::remove(name);
    } catch (const std::exception&) {
    }
  }
};

int producer(const char* self) {
  const std::string name = "/pmrkit-example-shm-queue-" + std::to_string(::getpid());
  pmrkit::shm_segment segment = pmrkit::shm_segment::create(name, segment_bytes);
  const remove_on_exit remover{name};
  pmrkit::shm_resource shm(segment);
  auto& queue = shm.construct<message_queue>("messages");
  const std::size_t queue_bytes = shm.stats().bytes_in_use;  // the queue and its name
  std::printf("producer: created %s (%zu KiB) at %p with 'messages' in it\n", name.c_str(),
              segment.size() >> 10, static_cast<void*>(segment.base()));
  std::fflush(stdout);

  const pid_t child = ::fork();
  if (child < 0) return 1;
  if (child == 0) {
    char* argv[] = {const_cast<char*>(self), const_cast<char*>("consumer"),
                    const_cast<char*>(name.c_str()), nullptr};
    ::execv(self, argv);
    ::_exit(127);
  }

  std::uint64_t bytes = 0;
  bool consumer_gone = false;
  for (std::uint64_t sequence = 0; sequence < message_count && !consumer_gone; ++sequence) {
    const std::size_t length = length_of(sequence);
    auto* m = static_cast<message*>(shm.allocate(sizeof(message) + length, alignof(message)));
    m->sequence = sequence;
    m->length = length;
    for (std::size_t i = 0; i < length; ++i)
      m->text()[i] = static_cast<char>('a' + (sequence + i) % 26);
    m->checksum = checksum(m->text(), length);
    bytes += length;
    while (!queue.push(shm.offset_of(m))) {  // full: wait for the consumer
      if (::waitpid(child, nullptr, WNOHANG) == child) {
        consumer_gone = true;
        break;
      }
      std::this_thread::yield();
    }
  }
  int status = 0;
  if (!consumer_gone) ::waitpid(child, &status, 0);
  if (consumer_gone || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "producer: the consumer failed\n");
    return 1;
  }
  std::printf("producer: sent %zu messages (%llu bytes of text); the consumer received %llu\n",
              message_count, static_cast<unsigned long long>(bytes),
              static_cast<unsigned long long>(queue.received.load()));

  // Every message is back: the segment holds the queue alone.
  const std::string problem = shm.verify();
  const pmrkit::shm_stats stats = shm.stats();
  if (!problem.empty() || stats.bytes_in_use != queue_bytes || queue.received != message_count ||
      queue.received_bytes != bytes) {
    std::fprintf(stderr, "producer: the segment is not back to empty: %s, %zu bytes in use\n",
                 problem.c_str(), stats.bytes_in_use);
    return 1;
  }
  std::printf("producer: verify() is clean, %zu bytes in use (the queue alone); removing %s\n",
              stats.bytes_in_use, name.c_str());
  shm.destroy<message_queue>("messages");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 3 && std::strcmp(argv[1], "consumer") == 0) return consumer(argv[2]);
    // Start the consumer from this very program (Linux: /proc/self/exe; elsewhere argv[0]).
    const char* self = ::access("/proc/self/exe", X_OK) == 0 ? "/proc/self/exe" : argv[0];
    return producer(self);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shm_queue: %s\n", e.what());
    return 1;
  }
}
