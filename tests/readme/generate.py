#!/usr/bin/env python3
"""Turns every C++ snippet of README.md into a test.

Each fenced block opened with ```cpp (or ```c++) in README.md becomes one
generated source file, and a main.cpp runs them all in README order, printing
the README line of each; a snippet that does not compile breaks the build, one
whose harness asserts or whose program returns non-zero fails the test.

How a snippet is treated:

- A whole program (a line starting with `int main()`): copied as it is, with
  `main` renamed `readme_snippet_<n>`; main.cpp calls it and fails unless it
  returns 0.
- A fragment (anything else): pasted, as it is, into the body of a function
  `void readme_snippet_<n>()` of a harness, tests/readme/harness/<name>.cpp.in.
  The harness is `fragment` unless the README says otherwise (below): it
  includes <pmr/pmrkit.hpp>, the Boost bridge and the standard headers a
  fragment may use, and nothing else. In particular it does not say `using
  namespace pmrkit::literals;`: a fragment that writes `256_MiB` shows that
  line itself, so that it compiles as shown.
- A fragment that uses names the README leaves to the reader (the Boost.JSON
  loop's `documents` and `use`), or whose claim needs checking after it ran
  (that the Layering snippet's pool serves the map's nodes), names a harness
  of its own in an HTML comment on the line right before the fence, which
  Markdown does not render:

      <!-- readme-test: harness=boost_json -->

  That harness defines the missing names before the function, and its checks
  follow the snippet inside the function, in the snippet's scope (so they may
  use the snippet's variables). In a harness file `@FUNCTION@` stands for the
  function's name and a line `@SNIPPET@` for the snippet's lines (indented).
  A fragment cannot have `#include` lines (they would land in a function
  body): a snippet that shows its includes is a whole program.
- The same comment may say `file=<path>`: the snippet must then be the whole
  of that file of the repository, character for character (the README's quick
  start is examples/quick_start.cpp); a difference is an error.

There is no way to skip a snippet. README.md without a C++ snippet, an empty
snippet, an unknown directive or harness, and a program whose `main` takes
arguments are errors.

usage: generate.py README OUT_DIR           writes the sources into OUT_DIR
       generate.py --list README OUT_DIR    prints their paths, ';'-separated
"""
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
FENCE_OPEN = re.compile(r"^```(cpp|c\+\+)\s*$")
DIRECTIVE = re.compile(r"^<!--\s*readme-test:(.*)-->\s*$")
MAIN = re.compile(r"^int main\(\s*(void)?\s*\)")


class Snippet:
    def __init__(self, index: int, line: int, code: list[str], directives: dict[str, str]):
        self.index = index
        self.line = line  # of the first code line, 1-based
        self.code = code
        self.directives = directives
        self.function = f"readme_snippet_{index}"
        self.is_program = any(MAIN.match(text) for text in code)


def fail(readme: pathlib.Path, line: int, message: str) -> None:
    sys.exit(f"{readme}:{line}: {message}")


def parse_directives(readme: pathlib.Path, line: int, text: str) -> dict[str, str]:
    match = DIRECTIVE.match(text.strip())
    if not match:
        return {}
    directives = {}
    for word in match.group(1).split():
        key, sep, value = word.partition("=")
        if not sep or key not in ("harness", "file") or not value:
            fail(readme, line, f"unknown readme-test directive '{word}' (harness=NAME, file=PATH)")
        directives[key] = value
    return directives


def snippets_of(readme: pathlib.Path) -> list[Snippet]:
    lines = readme.read_text().splitlines()
    snippets = []
    index = 0
    while index < len(lines):
        if FENCE_OPEN.match(lines[index]):
            start = index
            directives = parse_directives(readme, start, lines[start - 1]) if start > 0 else {}
            index += 1
            code = []
            while index < len(lines) and lines[index].rstrip() != "```":
                code.append(lines[index])
                index += 1
            if index == len(lines):
                fail(readme, start + 1, "the ```cpp block is never closed")
            if not any(text.strip() for text in code):
                fail(readme, start + 1, "empty ```cpp block")
            snippets.append(Snippet(len(snippets) + 1, start + 2, code, directives))
        elif DIRECTIVE.match(lines[index].strip()) and (
                index + 1 == len(lines) or not FENCE_OPEN.match(lines[index + 1])):
            fail(readme, index + 1, "a readme-test comment must be right before a ```cpp fence")
        index += 1
    if not snippets:
        sys.exit(f"{readme}: no ```cpp snippet")
    return snippets


def source_of(readme: pathlib.Path, snippet: Snippet) -> str:
    origin = (f"// Generated from README.md line {snippet.line} by tests/readme/generate.py: "
              f"do not edit.\n")
    wanted = snippet.directives.get("file")
    if wanted is not None:
        path = readme.parent / wanted
        if not path.is_file():
            fail(readme, snippet.line - 1, f"file={wanted}: no such file")
        if path.read_text() != "\n".join(snippet.code) + "\n":
            fail(readme, snippet.line, f"the snippet differs from {wanted}, which it says it is")
    if snippet.is_program:
        if "harness" in snippet.directives:
            fail(readme, snippet.line, "a whole program takes no harness")
        code = [MAIN.sub(f"int {snippet.function}()", text) for text in snippet.code]
        if any(re.search(r"\bmain\s*\(", text) for text in code):
            fail(readme, snippet.line, "only `int main()` is supported in a whole program")
        return origin + "\n".join(code) + "\n"
    name = snippet.directives.get("harness", "fragment")
    harness_path = HERE / "harness" / f"{name}.cpp.in"
    if not harness_path.is_file():
        fail(readme, snippet.line - 1, f"no harness tests/readme/harness/{name}.cpp.in")
    harness = harness_path.read_text()
    if harness.count("@SNIPPET@") != 1 or "@FUNCTION@" not in harness:
        sys.exit(f"{harness_path}: needs one @SNIPPET@ line and @FUNCTION@")
    body = "\n".join("  " + text if text else "" for text in snippet.code)
    harness = re.sub(r"^[ \t]*@SNIPPET@[ \t]*$", lambda _: body, harness, flags=re.MULTILINE)
    harness = harness.replace("@FUNCTION@", snippet.function)
    return origin + f"// Harness: tests/readme/harness/{name}.cpp.in.\n" + harness


def main_of(snippets: list[Snippet]) -> str:
    declarations = "".join(
        f"{'int' if s.is_program else 'void'} {s.function}();\n" for s in snippets)
    calls = []
    for s in snippets:
        kind = "program" if s.is_program else f"fragment, harness {s.directives.get('harness', 'fragment')}"
        calls.append(f'  std::cout << "README.md:{s.line} ({kind})" << std::endl;\n')
        if s.is_program:
            calls.append(f"  if (const int rc = {s.function}(); rc != 0) {{\n"
                         f'    std::cerr << "README.md:{s.line}: the program returned " << rc << '
                         f"std::endl;\n    return 1;\n  }}\n")
        else:
            calls.append(f"  {s.function}();\n")
    return ("// Generated by tests/readme/generate.py: runs every C++ snippet of README.md.\n"
            f"#include <iostream>\n\n{declarations}\nint main() {{\n{''.join(calls)}"
            f'  std::cout << "{len(snippets)} README snippets ran" << std::endl;\n'
            "  return 0;\n}\n")


def write_if_changed(path: pathlib.Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def main() -> None:
    arguments = sys.argv[1:]
    listing = bool(arguments) and arguments[0] == "--list"
    if listing:
        arguments = arguments[1:]
    if len(arguments) != 2:
        sys.exit(__doc__.split("usage: ")[1])
    readme = pathlib.Path(arguments[0]).resolve()
    out_dir = pathlib.Path(arguments[1])
    snippets = snippets_of(readme)
    paths = [out_dir / f"{s.function}.cpp" for s in snippets] + [out_dir / "main.cpp"]
    if listing:
        print(";".join(str(path) for path in paths))
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    for snippet, path in zip(snippets, paths):
        write_if_changed(path, source_of(readme, snippet))
    write_if_changed(paths[-1], main_of(snippets))


if __name__ == "__main__":
    main()
