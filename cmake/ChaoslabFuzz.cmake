# The libFuzzer sub-builds seen from the main build (agents/sensor/fuzz, lab/fuzz): the option
# that builds them with clang, and one function per sub-build that builds it and registers a short
# fuzz pass per target with CTest. The sub-builds themselves share cmake/ChaoslabLibFuzzer.cmake.
option(CHAOSLAB_FUZZ "Build the libFuzzer targets with clang and run a short pass of each in ctest"
       ON)
set(CHAOSLAB_FUZZ_SECONDS 20 CACHE STRING "Seconds per target of the fuzz pass in ctest")
if(CHAOSLAB_FUZZ)
  find_program(CHAOSLAB_FUZZ_CXX NAMES clang++ clang++-14)
  if(NOT CHAOSLAB_FUZZ_CXX)
    message(FATAL_ERROR "CHAOSLAB_FUZZ needs clang++ with libFuzzer: apt-get install clang "
                        "libclang-rt-14-dev (make setup does), or configure with -DCHAOSLAB_FUZZ=OFF")
  endif()
endif()

# chaoslab_fuzz_subbuild(NAME SOURCE_DIR dir BINARY_DIR dir TARGETS target...)
# With CHAOSLAB_FUZZ: builds the sub-build in SOURCE_DIR with clang into BINARY_DIR as the
# external project NAME (its own dependency tracking: ~0 s when nothing changed, rebuilt when a
# source did), and runs each target for CHAOSLAB_FUZZ_SECONDS as the test "<target>_pass" (label
# "fuzz") through cmake/run_fuzzers.sh.
function(chaoslab_fuzz_subbuild name)
  if(NOT CHAOSLAB_FUZZ)
    return()
  endif()
  cmake_parse_arguments(F "" "SOURCE_DIR;BINARY_DIR" "TARGETS" ${ARGN})
  include(ExternalProject)
  ExternalProject_Add(${name}
    SOURCE_DIR ${F_SOURCE_DIR}
    BINARY_DIR ${F_BINARY_DIR}
    CMAKE_ARGS -DCMAKE_CXX_COMPILER=${CHAOSLAB_FUZZ_CXX} -DCMAKE_BUILD_TYPE=RelWithDebInfo
               -DCHAOSLAB_WERROR=${CHAOSLAB_WERROR}
               -DCMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER}
    INSTALL_COMMAND ""
    BUILD_ALWAYS ON)
  foreach(target ${F_TARGETS})
    add_test(NAME ${target}_pass
      COMMAND ${CMAKE_SOURCE_DIR}/cmake/run_fuzzers.sh --seconds ${CHAOSLAB_FUZZ_SECONDS}
              --work ${F_BINARY_DIR}/pass ${F_BINARY_DIR}/${target})
    set_tests_properties(${target}_pass PROPERTIES LABELS fuzz TIMEOUT 300)
  endforeach()
endfunction()
