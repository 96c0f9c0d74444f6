# Builds and runs one consumer project outside the tree (cmake -P script).
#   MODE=find_package:     installs the pmrkit build at PMRKIT_BINARY_DIR into
#                          WORK_DIR/prefix, then finds it from there.
#   MODE=add_subdirectory: adds the pmrkit source tree PMRKIT_SOURCE_DIR.
#   MODE=pkg-config:       installs as find_package does, then compiles
#                          consumer.cpp with CXX and the flags of
#                          `pkg-config --cflags --libs pmrkit` (PKG_CONFIG_PATH
#                          at the prefix), no CMake project; prints
#                          "consumer skipped:" and stops when pkg-config is missing.
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
  set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
  run_output(version ${PKG_CONFIG_EXECUTABLE} --modversion pmrkit)
  if(NOT version STREQUAL PMRKIT_VERSION)
    message(FATAL_ERROR "pkg-config --modversion pmrkit: '${version}', expected ${PMRKIT_VERSION}")
  endif()
  run_output(cflags ${PKG_CONFIG_EXECUTABLE} --cflags pmrkit)
  run_output(libs ${PKG_CONFIG_EXECUTABLE} --libs pmrkit)
  run_output(libdir ${PKG_CONFIG_EXECUTABLE} --variable=libdir pmrkit)
  message(STATUS "pkg-config --cflags --libs pmrkit: ${cflags} ${libs}")
  separate_arguments(cflags UNIX_COMMAND "${cflags}")
  separate_arguments(libs UNIX_COMMAND "${libs}")
  file(MAKE_DIRECTORY "${WORK_DIR}/build")
  run(${CXX} -std=c++20 ${cflags} "${PMRKIT_SOURCE_DIR}/tests/consumer/consumer.cpp" ${libs} -o
      "${WORK_DIR}/build/consumer")
  # A shared pmrkit (BUILD_SHARED_LIBS) is found at run time from the prefix.
  set(ENV{LD_LIBRARY_PATH} "${libdir}")
  run("${WORK_DIR}/build/consumer")
  return()
endif()

set(consumer_args -S "${PMRKIT_SOURCE_DIR}/tests/consumer/${MODE}" -B "${WORK_DIR}/build"
                  -G "${GENERATOR}" -DCMAKE_BUILD_TYPE=Release)
if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} --install "${PMRKIT_BINARY_DIR}" --prefix "${WORK_DIR}/prefix")
  list(APPEND consumer_args "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix")
elseif(MODE STREQUAL "add_subdirectory")
  list(APPEND consumer_args "-DPMRKIT_SOURCE_DIR=${PMRKIT_SOURCE_DIR}")
else()
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE '${MODE}'")
endif()
run(${CMAKE_COMMAND} ${consumer_args})
run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run("${WORK_DIR}/build/consumer")
