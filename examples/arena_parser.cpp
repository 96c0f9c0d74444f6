// A parser that keeps its tokens and their text in a chunked arena and resets
// it per input: after the first input, parsing takes nothing from the heap.
#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/arena/strings.hpp>
#include <pmr/testing/test_resource.hpp>

#include <cctype>
#include <cstdio>
#include <memory_resource>
#include <string_view>
#include <vector>

namespace {

enum class token_kind { word, number, symbol };

struct token {
  token_kind kind;
  std::string_view text;  // a NUL-terminated copy in the arena
};

// Splits `input` into tokens whose vector and text live in `arena`.
std::pmr::vector<token> tokenize(std::string_view input, std::pmr::memory_resource& arena) {
  std::pmr::vector<token> tokens(&arena);
  std::size_t i = 0;
  while (i < input.size()) {
    const auto c = static_cast<unsigned char>(input[i]);
    if (std::isspace(c) != 0) {
      ++i;
      continue;
    }
    std::size_t end = i + 1;
    token_kind kind = token_kind::symbol;
    if (std::isalpha(c) != 0) {
      kind = token_kind::word;
      while (end < input.size() && std::isalnum(static_cast<unsigned char>(input[end])) != 0)
        ++end;
    } else if (std::isdigit(c) != 0) {
      kind = token_kind::number;
      while (end < input.size() && std::isdigit(static_cast<unsigned char>(input[end])) != 0)
        ++end;
    }
    tokens.push_back({kind, pmrkit::copy_string(arena, input.substr(i, end - i))});
    i = end;
  }
  return tokens;
}

}  // namespace

int main() {
  // The test_resource upstream counts what the arena takes from the heap.
  pmrkit::test_resource heap("heap");
  pmrkit::chunked_arena_resource arena({.name = "parser"}, &heap);
  const std::string_view inputs[] = {
      "let total = price * 3 + tax",
      "if (count > 10) { warn(count) }",
      "let total = price * 3 + tax",
  };
  for (std::string_view input : inputs) {
    std::size_t words = 0;
    std::size_t numbers = 0;
    std::size_t symbols = 0;
    {
      const std::pmr::vector<token> tokens = tokenize(input, arena);
      for (const token& t : tokens) {
        words += t.kind == token_kind::word ? 1 : 0;
        numbers += t.kind == token_kind::number ? 1 : 0;
        symbols += t.kind == token_kind::symbol ? 1 : 0;
      }
    }
    const pmrkit::arena_stats stats = arena.stats();
    std::printf("%-34.*s %zu words, %zu numbers, %zu symbols; arena used %zu B, heap blocks %zu\n",
                static_cast<int>(input.size()), input.data(), words, numbers, symbols,
                stats.bytes_in_use, heap.stats().total_blocks);
    arena.reset();  // every token of this input is gone; the chunks stay
  }
  return heap.stats().total_blocks == 1 ? 0 : 1;  // one chunk served all three inputs
}
