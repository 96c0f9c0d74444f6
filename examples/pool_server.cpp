// A server-style workload on pools: each connection is an object from an
// object_pool, and the messages it receives live in buffers from one
// multipool_resource shared by all connections. Connections open and close
// all the time, messages of every size come and go, and after warm-up the
// heap sees only the odd new chunk: closed connections and freed buffers are
// reused. A test_resource under everything proves that nothing
// leaks when the server shuts down.
#include <pmr/pool/multipool_resource.hpp>
#include <pmr/pool/object_pool.hpp>
#include <pmr/testing/test_resource.hpp>

#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <memory_resource>
#include <string>
#include <vector>

namespace {

// One client connection: its pending messages and the headers of the last one.
class connection {
 public:
  connection(std::uint32_t id, std::pmr::memory_resource* buffers)
      : id_(id), inbox_(buffers), headers_(buffers) {}

  void receive(std::pmr::string message) { inbox_.push_back(std::move(message)); }

  // Parses "key=value;key=value;..." messages; returns the bytes handled.
  std::size_t process() {
    std::size_t bytes = 0;
    while (!inbox_.empty()) {
      const std::pmr::string& message = inbox_.front();
      bytes += message.size();
      headers_.clear();
      std::size_t start = 0;
      while (start < message.size()) {
        std::size_t end = message.find(';', start);
        if (end == std::pmr::string::npos) end = message.size();
        const std::size_t equals = message.find('=', start);
        if (equals < end) {
          headers_.emplace(message.substr(start, equals - start),
                           message.substr(equals + 1, end - equals - 1));
        }
        start = end + 1;
      }
      inbox_.pop_front();
    }
    return bytes;
  }

  [[nodiscard]] std::uint32_t id() const { return id_; }

 private:
  std::uint32_t id_;
  std::pmr::deque<std::pmr::string> inbox_;
  std::pmr::map<std::pmr::string, std::pmr::string> headers_;
};

// A deterministic stream of events: which connection, and how long a message.
class traffic {
 public:
  std::uint32_t next(std::uint32_t bound) {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::uint32_t>(state_ >> 33) % bound;
  }

 private:
  std::uint64_t state_ = 2026;
};

std::pmr::string make_message(traffic& t, std::pmr::memory_resource* buffers) {
  std::pmr::string message(buffers);
  const std::uint32_t fields = 1 + t.next(40);  // 1 to 40 headers: 20 B to about 2 KB
  for (std::uint32_t f = 0; f < fields; ++f) {
    message += "header";
    message += std::to_string(f);
    message += '=';
    message.append(1 + t.next(60), static_cast<char>('a' + f % 26));
    message += ';';
  }
  return message;
}

}  // namespace

int main() {
  pmrkit::test_resource heap("heap");
  std::size_t heap_blocks_after_warm_up = 0;
  std::size_t handled = 0;
  {
    pmrkit::multipool_resource buffers(pmrkit::multipool_options{.name = "buffers"}, &heap);
    pmrkit::object_pool<connection> connections({.initial_blocks = 64, .name = "connections"},
                                                &heap);
    std::vector<pmrkit::object_pool<connection>::handle> open;
    traffic t;
    std::uint32_t next_id = 0;
    for (int tick = 0; tick < 20000; ++tick) {
      const std::uint32_t event = t.next(10);
      if (event == 0 || open.empty()) {  // a client connects
        open.push_back(connections.make(next_id++, &buffers));
      } else if (event == 1) {  // a client disconnects: its buffers go back to the pools
        open.erase(open.begin() + t.next(static_cast<std::uint32_t>(open.size())));
      } else {  // a message arrives and is handled
        connection& c = *open[t.next(static_cast<std::uint32_t>(open.size()))];
        c.receive(make_message(t, &buffers));
        handled += c.process();
      }
      if (tick == 10000) heap_blocks_after_warm_up = heap.stats().total_blocks;
    }
    const pmrkit::multipool_stats b = buffers.stats();
    std::printf("connections: %zu open, %u opened in all, %zu chunk(s)\n", connections.live(),
                next_id, connections.stats().chunk_count);
    std::printf("buffers: %zu blocks in use (%zu bytes), %zu chunks, %zu bytes from the heap\n",
                b.blocks_in_use, b.bytes_in_use, b.chunk_count, b.bytes_from_upstream);
    std::printf("heap allocations: %zu after warm-up, %zu at the end\n", heap_blocks_after_warm_up,
                heap.stats().total_blocks);
    open.clear();  // every connection closes before the pools go away
  }
  std::printf("handled %zu message bytes; heap blocks still in use: %zu\n", handled,
              heap.stats().blocks_in_use);
  return heap.stats().blocks_in_use == 0 && heap.errors().empty() ? 0 : 1;
}
