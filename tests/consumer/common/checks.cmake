# Included by the consumer projects after pmrkit has been found or added.
#
# pmrkit_consumer_check_core(): the core target reaches the consumer without Boost: no Boost
# in pmrkit::pmrkit's link interface, and no Boost or pmrkit::boost target defined (nothing
# looked for Boost: run_consumer.cmake also configures the core consumers with
# CMAKE_DISABLE_FIND_PACKAGE_Boost, so that a find_package(Boost) anywhere would fail).
function(pmrkit_consumer_check_core)
  get_target_property(libs pmrkit::pmrkit INTERFACE_LINK_LIBRARIES)
  message(STATUS "pmrkit::pmrkit INTERFACE_LINK_LIBRARIES: ${libs}")
  string(TOLOWER "${libs}" lower)
  if(lower MATCHES "boost")
    message(FATAL_ERROR "pmrkit::pmrkit links Boost: ${libs}")
  endif()
  foreach(target Boost::container Boost::headers pmrkit::boost)
    if(TARGET ${target})
      message(FATAL_ERROR "${target} is defined: a consumer of the core was given Boost")
    endif()
  endforeach()
endfunction()

# pmrkit_consumer_check_boost(): pmrkit::boost is there and brings Boost.Container.
function(pmrkit_consumer_check_boost)
  if(NOT TARGET pmrkit::boost)
    message(FATAL_ERROR "no pmrkit::boost target")
  endif()
  get_target_property(libs pmrkit::boost INTERFACE_LINK_LIBRARIES)
  message(STATUS "pmrkit::boost INTERFACE_LINK_LIBRARIES: ${libs}")
  # pmrkit::pmrkit when imported, pmrkit in the build tree (add_subdirectory).
  if(NOT "Boost::container" IN_LIST libs OR NOT libs MATCHES "(^|;)pmrkit(::pmrkit)?(;|$)")
    message(FATAL_ERROR "pmrkit::boost must link pmrkit::pmrkit and Boost::container: ${libs}")
  endif()
endfunction()
