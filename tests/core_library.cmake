# The core library for the standalone test projects (tests/stdlib, tests/windows): pmrkit's
# source tree as a subdirectory, checked (Debug by default: asserts on), without its tests,
# benchmarks, examples, Boost bridge or install rules. include() it after project().
if(NOT CMAKE_BUILD_TYPE)
  set(CMAKE_BUILD_TYPE Debug CACHE STRING "Build type" FORCE)
endif()
foreach(option BUILD_TESTS BUILD_BENCH BUILD_EXAMPLES WITH_BOOST INSTALL)
  set(PMRKIT_${option} OFF CACHE BOOL "" FORCE)
endforeach()
set(PMRKIT_CHECKED ON CACHE BOOL "" FORCE)
get_filename_component(pmrkit_root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
add_subdirectory("${pmrkit_root}" pmrkit)
