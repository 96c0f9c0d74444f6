// Compiler attributes that not every compiler spells the same way, as macros.
//
// pmrkit's headers are compiled by GCC and Clang (Linux, mingw-w64) and are meant to compile
// with MSVC: GNU `__attribute__` goes through these macros, which expand to nothing where the
// compiler has no equivalent.
//
// Thread safety: preprocessor macros.
//
// Example:
//   // At namespace scope: void log_line(const char* format, ...) PMRKIT_PRINTF_FORMAT(1, 2);
//   pmrkit::chunked_arena_resource arena;
//   // format_string is declared with PMRKIT_PRINTF_FORMAT: a wrong argument type is a warning.
//   std::string_view line = pmrkit::format_string(arena, "%zu pages", std::size_t{4});
//   assert(line == "4 pages");
#pragma once

/// Checks the arguments of a printf-style function against its format string: `format_index`
/// and `first_argument` count parameters from 1 (`this` counts in members). GCC and Clang only.
/// mingw-w64 checks the GNU dialect (gnu_printf): pmrkit formats with libstdc++'s vsnprintf,
/// which is mingw's C99 one there (__USE_MINGW_ANSI_STDIO), not the Microsoft runtime's.
#if defined(__MINGW32__) && defined(__GNUC__)
#define PMRKIT_PRINTF_FORMAT(format_index, first_argument) \
  __attribute__((format(gnu_printf, format_index, first_argument)))
#elif defined(__GNUC__) || defined(__clang__)
#define PMRKIT_PRINTF_FORMAT(format_index, first_argument) \
  __attribute__((format(printf, format_index, first_argument)))
#else
#define PMRKIT_PRINTF_FORMAT(format_index, first_argument)
#endif

/// On a thread_local variable of a header's fast path: the initial-exec TLS model, so that code
/// compiled for a shared library (-fPIC) reads it at a fixed offset from the thread pointer, as
/// an executable does, instead of calling __tls_get_addr (a call through the PLT and the spills
/// around it: 2-3 ns per access on the development machine). The variable then takes static TLS
/// space, which glibc keeps a surplus of for libraries opened later with dlopen; pmrkit's are a
/// few words. ELF targets with GCC or Clang only (mingw-w64 emulates TLS, MSVC has no models).
/// A program that opens pmrkit with dlopen late, after other libraries used up that surplus
/// ("cannot allocate memory in static TLS block"), builds everything with
/// -DPMRKIT_TLS_INITIAL_EXEC= (empty) to keep the default model.
#if defined(PMRKIT_TLS_INITIAL_EXEC)
// The build chose.
#elif defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
#define PMRKIT_TLS_INITIAL_EXEC __attribute__((tls_model("initial-exec")))
#else
#define PMRKIT_TLS_INITIAL_EXEC
#endif

/// Tells the optimizer that `condition` holds (undefined behaviour if it does not), so that a
/// caller's check of it folds away: a fast path returning a pointer its contract says is never
/// null. GCC and Clang; nothing elsewhere.
#if defined(__GNUC__) || defined(__clang__)
#define PMRKIT_ASSUME(condition)               \
  do {                                         \
    if (!(condition)) __builtin_unreachable(); \
  } while (false)
#else
#define PMRKIT_ASSUME(condition) \
  do {                           \
  } while (false)
#endif
