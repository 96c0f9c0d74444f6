# Builds and runs one consumer project outside the tree (cmake -P script).
#   MODE=find_package:     installs the pmrkit build at PMRKIT_BINARY_DIR into
#                          WORK_DIR/prefix, then finds it from there.
#   MODE=add_subdirectory: adds the pmrkit source tree PMRKIT_SOURCE_DIR.
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

file(REMOVE_RECURSE "${WORK_DIR}")
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
