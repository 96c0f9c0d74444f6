# Builds and runs one consumer project outside the tree (cmake -P script).
#   MODE=find_package:           installs the pmrkit build at PMRKIT_BINARY_DIR into
#                                WORK_DIR/prefix, then finds it from there with a plain
#                                find_package(pmrkit CONFIG REQUIRED) and uses the arenas.
#   MODE=find_package.boost:     the same with COMPONENTS boost, using the bridge.
#   MODE=add_subdirectory:       adds the pmrkit source tree PMRKIT_SOURCE_DIR with
#                                PMRKIT_WITH_BOOST=OFF and uses the arenas.
#   MODE=add_subdirectory.boost: adds it with the bridge and uses pmrkit::boost.
#   MODE=pkg-config:             installs as find_package does, then compiles consumer.cpp
#                                with CXX and `pkg-config --cflags --libs pmrkit`, and
#                                consumer_boost.cpp with those of pmrkit-boost (PKG_CONFIG_PATH
#                                at the prefix), no CMake project; prints "consumer skipped:"
#                                and stops when pkg-config is missing.
#
# A consumer of the core alone (find_package, add_subdirectory, pmrkit.pc) must get no Boost:
#   - its CMake project is configured with CMAKE_DISABLE_FIND_PACKAGE_Boost=ON, so a
#     find_package(Boost) or find_dependency(Boost) anywhere (pmrkit-config.cmake, pmrkit's
#     CMakeLists.txt) fails the configuration;
#   - the project checks that pmrkit::pmrkit's INTERFACE_LINK_LIBRARIES names no Boost and
#     that no Boost target and no pmrkit::boost is defined (common/checks.cmake);
#   - `pkg-config --cflags --libs pmrkit` names no boost and pmrkit.pc requires nothing;
#   - the program's link command (Ninja) names no boost, and neither its dynamic section
#     (readelf -d: NEEDED) nor ldd (the libraries loaded, pmrkit's own needs included) names
#     a libboost library;
#   - consumer.cpp fails to compile if <pmr/pmrkit.hpp> brought a Boost header.
foreach(var MODE WORK_DIR PMRKIT_SOURCE_DIR GENERATOR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_consumer.cmake: ${var} is not set")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    string(REPLACE ";" " " command "${ARGN}")
    message(FATAL_ERROR "failed (${result}): ${command}")
  endif()
endfunction()

# run_output(<variable> <command...>): runs the command, its stdout stripped into <variable>.
function(run_output variable)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE output
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT result EQUAL 0)
    string(REPLACE ";" " " command "${ARGN}")
    message(FATAL_ERROR "failed (${result}): ${command}")
  endif()
  set(${variable} "${output}" PARENT_SCOPE)
endfunction()

# expect_no_boost(<what> <text>): fails when <text> mentions boost (any case).
function(expect_no_boost what text)
  string(TOLOWER "${text}" lower)
  if(lower MATCHES "boost")
    message(FATAL_ERROR "${what} names Boost, which a consumer of the core must not get:\n${text}")
  endif()
  message(STATUS "no Boost in ${what}")
endfunction()

# check_binary_links_no_boost(<binary>): neither the binary's NEEDED entries nor the
# libraries ldd resolves for it (pmrkit's own, when shared, included) are Boost's.
function(check_binary_links_no_boost binary)
  find_program(READELF readelf)
  find_program(LDD ldd)
  if(NOT READELF AND NOT LDD)
    message(FATAL_ERROR "neither readelf nor ldd found: cannot check what ${binary} links")
  endif()
  if(READELF)
    run_output(dynamic ${READELF} -d "${binary}")
    string(REGEX MATCHALL "\\(NEEDED\\)[^\n]*" needed "${dynamic}")
    message(STATUS "readelf -d ${binary}: ${needed}")
    expect_no_boost("readelf -d (NEEDED) of ${binary}" "${needed}")
  endif()
  if(LDD)
    run_output(loaded ${LDD} "${binary}")
    expect_no_boost("ldd ${binary}" "${loaded}")
  endif()
endfunction()

# check_commands_no_boost(<build dir> <target>): with Ninja, the commands that build the
# target (its compilations and its link, pmrkit's own with add_subdirectory) name no Boost
# (the work and source directories' own names left out).
function(check_commands_no_boost build_dir target)
  if(NOT GENERATOR MATCHES "Ninja")
    return()
  endif()
  file(STRINGS "${build_dir}/CMakeCache.txt" make_program REGEX "^CMAKE_MAKE_PROGRAM:")
  string(REGEX REPLACE "^[^=]*=" "" make_program "${make_program}")
  run_output(commands "${make_program}" -C "${build_dir}" -t commands ${target})
  string(REPLACE "${WORK_DIR}" "<work>" commands "${commands}")
  string(REPLACE "${PMRKIT_SOURCE_DIR}" "<pmrkit>" commands "${commands}")
  expect_no_boost("the commands that build ${target}" "${commands}")
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")

if(MODE STREQUAL "pkg-config")
  foreach(var CXX PMRKIT_VERSION)
    if(NOT DEFINED ${var})
      message(FATAL_ERROR "run_consumer.cmake: ${var} is not set")
    endif()
  endforeach()
  find_program(PKG_CONFIG_EXECUTABLE NAMES pkg-config pkgconf)
  if(NOT PKG_CONFIG_EXECUTABLE)
    message("consumer skipped: no pkg-config (Debian: apt-get install pkg-config)")
    return()
  endif()
  set(prefix "${WORK_DIR}/prefix")
  run(${CMAKE_COMMAND} --install "${PMRKIT_BINARY_DIR}" --prefix "${prefix}")
  file(GLOB_RECURSE pc_files "${prefix}/pmrkit.pc")
  list(LENGTH pc_files pc_count)
  if(NOT pc_count EQUAL 1)
    message(FATAL_ERROR "expected one installed pmrkit.pc under ${prefix}, found: ${pc_files}")
  endif()
  get_filename_component(pc_dir "${pc_files}" DIRECTORY)
  if(NOT EXISTS "${pc_dir}/pmrkit-boost.pc")
    message(FATAL_ERROR "no pmrkit-boost.pc next to ${pc_files}")
  endif()
  set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
  file(MAKE_DIRECTORY "${WORK_DIR}/build")

  # The core: pmrkit.pc, no Boost anywhere.
  foreach(package pmrkit pmrkit-boost)
    run_output(version ${PKG_CONFIG_EXECUTABLE} --modversion ${package})
    if(NOT version STREQUAL PMRKIT_VERSION)
      message(FATAL_ERROR "pkg-config --modversion ${package}: '${version}', expected ${PMRKIT_VERSION}")
    endif()
  endforeach()
  run_output(requires ${PKG_CONFIG_EXECUTABLE} --print-requires pmrkit)
  if(NOT requires STREQUAL "")
    message(FATAL_ERROR "pmrkit.pc requires something: ${requires}")
  endif()
  run_output(cflags ${PKG_CONFIG_EXECUTABLE} --cflags pmrkit)
  run_output(libs ${PKG_CONFIG_EXECUTABLE} --libs pmrkit)
  run_output(static_libs ${PKG_CONFIG_EXECUTABLE} --libs --static pmrkit)
  run_output(libdir ${PKG_CONFIG_EXECUTABLE} --variable=libdir pmrkit)
  message(STATUS "pkg-config --cflags --libs pmrkit: ${cflags} ${libs}")
  expect_no_boost("pkg-config --cflags --libs --static pmrkit" "${cflags} ${libs} ${static_libs}")
  separate_arguments(cflags UNIX_COMMAND "${cflags}")
  separate_arguments(libs UNIX_COMMAND "${libs}")
  run(${CXX} -std=c++20 ${cflags} "${PMRKIT_SOURCE_DIR}/tests/consumer/consumer.cpp" ${libs} -o
      "${WORK_DIR}/build/consumer")
  # A shared pmrkit (BUILD_SHARED_LIBS) is found at run time from the prefix.
  set(ENV{LD_LIBRARY_PATH} "${libdir}")
  check_binary_links_no_boost("${WORK_DIR}/build/consumer")
  run("${WORK_DIR}/build/consumer")

  # The bridge: pmrkit-boost.pc requires pmrkit and adds the bridge and Boost.Container.
  run_output(requires ${PKG_CONFIG_EXECUTABLE} --print-requires pmrkit-boost)
  if(NOT requires MATCHES "^pmrkit( |$)")
    message(FATAL_ERROR "pmrkit-boost.pc must require pmrkit, requires: '${requires}'")
  endif()
  run_output(cflags ${PKG_CONFIG_EXECUTABLE} --cflags pmrkit-boost)
  run_output(libs ${PKG_CONFIG_EXECUTABLE} --libs pmrkit-boost)
  message(STATUS "pkg-config --cflags --libs pmrkit-boost: ${cflags} ${libs}")
  foreach(lib -lpmrkit_boost -lboost_container -lpmrkit)
    string(FIND " ${libs} " " ${lib} " at)
    if(at EQUAL -1)
      message(FATAL_ERROR "pkg-config --libs pmrkit-boost has no ${lib}: ${libs}")
    endif()
  endforeach()
  separate_arguments(cflags UNIX_COMMAND "${cflags}")
  separate_arguments(libs UNIX_COMMAND "${libs}")
  run(${CXX} -std=c++20 ${cflags} "${PMRKIT_SOURCE_DIR}/tests/consumer/consumer_boost.cpp"
      ${libs} -o "${WORK_DIR}/build/consumer_boost")
  run("${WORK_DIR}/build/consumer_boost")
  return()
endif()

string(REGEX MATCH "^[a-z_]+" project "${MODE}")
set(consumer_args -S "${PMRKIT_SOURCE_DIR}/tests/consumer/${project}" -B "${WORK_DIR}/build"
                  -G "${GENERATOR}" -DCMAKE_BUILD_TYPE=Release)
if(MODE MATCHES "\\.boost$")
  set(boost ON)
  list(APPEND consumer_args -DPMRKIT_CONSUMER_BOOST=ON)
else()
  set(boost OFF)
  # Anything that looks for Boost now fails the configuration.
  list(APPEND consumer_args -DPMRKIT_CONSUMER_BOOST=OFF -DCMAKE_DISABLE_FIND_PACKAGE_Boost=ON)
endif()
if(project STREQUAL "find_package" AND MODE MATCHES "^find_package(\\.boost)?$")
  run(${CMAKE_COMMAND} --install "${PMRKIT_BINARY_DIR}" --prefix "${WORK_DIR}/prefix")
  list(APPEND consumer_args "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix")
elseif(project STREQUAL "add_subdirectory" AND MODE MATCHES "^add_subdirectory(\\.boost)?$")
  list(APPEND consumer_args "-DPMRKIT_SOURCE_DIR=${PMRKIT_SOURCE_DIR}" -DPMRKIT_WITH_BOOST=${boost})
else()
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE '${MODE}'")
endif()
run(${CMAKE_COMMAND} ${consumer_args})
run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
if(NOT boost)
  check_commands_no_boost("${WORK_DIR}/build" consumer)
  # A shared pmrkit (BUILD_SHARED_LIBS) is found by ldd from the prefix.
  file(GLOB_RECURSE pmrkit_libraries "${WORK_DIR}/prefix/libpmrkit.*")
  if(pmrkit_libraries)
    list(GET pmrkit_libraries 0 pmrkit_library)
    get_filename_component(pmrkit_libdir "${pmrkit_library}" DIRECTORY)
    set(ENV{LD_LIBRARY_PATH} "${pmrkit_libdir}")
  endif()
  check_binary_links_no_boost("${WORK_DIR}/build/consumer")
endif()
run("${WORK_DIR}/build/consumer")
