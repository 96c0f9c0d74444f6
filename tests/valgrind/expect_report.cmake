# Runs one case of the misuse program (tests/valgrind/misuse.cpp) under Valgrind's memcheck and
# checks memcheck's verdict (cmake -P script, one ctest test per case: valgrind.<case>).
#   VALGRIND: the valgrind executable, or empty/NOTFOUND (the test is skipped then)
#   PROGRAM:  the misuse program
#   CASE:     the case to run
#   EXPECT:   a regular expression memcheck's report must match, and memcheck must count errors;
#             empty: the case must run with no error at all
# Prints "valgrind skipped: <why>" (the test's SKIP_REGULAR_EXPRESSION) when there is no
# Valgrind, when the program was built without memcheck's client requests (PMRKIT_HAS_MEMCHECK
# is 0: an unchecked build, or <valgrind/memcheck.h> missing), or under AddressSanitizer.
foreach(var PROGRAM CASE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "expect_report.cmake: ${var} is not set")
  endif()
endforeach()

if(NOT VALGRIND)
  message("valgrind skipped: no valgrind executable found")
  return()
endif()
execute_process(COMMAND "${PROGRAM}" has_asan OUTPUT_VARIABLE has_asan
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(has_asan STREQUAL "1")
  message("valgrind skipped: built with AddressSanitizer, which Valgrind cannot run")
  return()
endif()
execute_process(COMMAND "${PROGRAM}" has_memcheck OUTPUT_VARIABLE has_memcheck
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT has_memcheck STREQUAL "1")
  message("valgrind skipped: built without memcheck's client requests (PMRKIT_HAS_MEMCHECK 0)")
  return()
endif()

# 99: memcheck found errors (a distinct code, so a crash or the program's own failure differs).
execute_process(
  COMMAND "${VALGRIND}" --tool=memcheck --error-exitcode=99 --leak-check=full
          --errors-for-leak-kinds=definite,indirect "${PROGRAM}" ${CASE}
  RESULT_VARIABLE result
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output)
message("${output}")
if(EXPECT STREQUAL "")
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "valgrind.${CASE}: expected no memcheck error, got exit code ${result}")
  endif()
  return()
endif()
if(NOT result EQUAL 99)
  message(FATAL_ERROR "valgrind.${CASE}: expected memcheck to report an error (exit code 99), "
                      "got ${result}: are the client requests of core/poison.hpp gone?")
endif()
if(NOT output MATCHES "${EXPECT}")
  message(FATAL_ERROR "valgrind.${CASE}: memcheck's report does not match '${EXPECT}'")
endif()
message("valgrind.${CASE}: memcheck reported it, as expected")
