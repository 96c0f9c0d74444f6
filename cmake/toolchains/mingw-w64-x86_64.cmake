# Cross-building pmrkit for 64-bit Windows with Debian's mingw-w64 (the POSIX-threads variant,
# package g++-mingw-w64-x86-64-posix, for std::thread and std::mutex):
#   cmake -S . -B build-mingw -G Ninja --toolchain cmake/toolchains/mingw-w64-x86_64.cmake \
#     -DPMRKIT_BUILD_TESTS=OFF -DPMRKIT_BUILD_BENCH=OFF -DPMRKIT_BUILD_EXAMPLES=OFF \
#     -DPMRKIT_WITH_BOOST=OFF
# The executables link libgcc, libstdc++ and winpthread statically, so they run under Wine (or on
# Windows) without the mingw DLLs next to them.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(pmrkit_mingw_triple x86_64-w64-mingw32)
find_program(CMAKE_C_COMPILER NAMES ${pmrkit_mingw_triple}-gcc-posix ${pmrkit_mingw_triple}-gcc
             REQUIRED)
find_program(CMAKE_CXX_COMPILER NAMES ${pmrkit_mingw_triple}-g++-posix ${pmrkit_mingw_triple}-g++
             REQUIRED)
find_program(CMAKE_RC_COMPILER NAMES ${pmrkit_mingw_triple}-windres)

set(CMAKE_FIND_ROOT_PATH /usr/${pmrkit_mingw_triple})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static-libgcc -static-libstdc++")

# ctest runs the Windows programs under Wine where it is installed (Debian's wine64 puts its
# loader in /usr/lib/wine; the wine package adds /usr/bin/wine).
if(NOT CMAKE_CROSSCOMPILING_EMULATOR)
  find_program(pmrkit_wine NAMES wine64 wine PATHS /usr/lib/wine NO_CACHE)
  if(pmrkit_wine)
    set(CMAKE_CROSSCOMPILING_EMULATOR "${pmrkit_wine}")
  endif()
endif()
