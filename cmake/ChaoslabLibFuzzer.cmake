# What every libFuzzer sub-build shares (agents/sensor/fuzz/libfuzzer, lab/fuzz/libfuzzer): a
# project of its own because it needs clang (libFuzzer, ASan, UBSan) while the main build may use
# g++. Included after project(); sets the language level and the flags, checks that clang can link
# a fuzzer, and defines chaoslab_libfuzzer_target. `make fuzz` configures the sub-builds in
# build-fuzz; the main build builds them as external projects (chaoslab_fuzz_subbuild,
# cmake/ChaoslabFuzz.cmake).
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "the fuzzers need clang (libFuzzer): configure with "
                      "-DCMAKE_CXX_COMPILER=clang++ (Debian: clang, libclang-rt-14-dev)")
endif()
set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
if(NOT CMAKE_BUILD_TYPE)
  set(CMAKE_BUILD_TYPE RelWithDebInfo)
endif()
option(CHAOSLAB_WERROR "Treat warnings as errors (CI)" OFF)

# Every source compiled here gets coverage instrumentation and both sanitizers (libraries linked
# from the system are not instrumented). UB stops the run (no recovery), so libFuzzer keeps the
# input.
set(chaoslab_fuzz_flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
                        -fno-omit-frame-pointer)
include(CheckCXXSourceCompiles)
set(CMAKE_REQUIRED_FLAGS "-fsanitize=fuzzer,address,undefined")
set(CMAKE_REQUIRED_LINK_OPTIONS -fsanitize=fuzzer,address,undefined)
check_cxx_source_compiles([[
#include <cstddef>
#include <cstdint>
extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }
]] CHAOSLAB_HAVE_LIBFUZZER)
if(NOT CHAOSLAB_HAVE_LIBFUZZER)
  message(FATAL_ERROR "clang cannot link a libFuzzer target: install libclang-rt-14-dev")
endif()
unset(CMAKE_REQUIRED_FLAGS)
unset(CMAKE_REQUIRED_LINK_OPTIONS)

add_compile_options(-Wall -Wextra -Wpedantic -Wno-missing-field-initializers
                    ${chaoslab_fuzz_flags})
add_link_options(${chaoslab_fuzz_flags})
if(CHAOSLAB_WERROR)
  add_compile_options(-Werror)
endif()

# chaoslab_libfuzzer_target(NAME SOURCES a.cc... [DEFINITIONS D=v...] [LIBS lib...]
#                           [SEEDS dir...] [DICTS file...] [OPTIONS -flag=v...] [ENV NAME=v...]
#                           STATS word [REQUIRE regex why...])
# One fuzzer executable, and beside it NAME.fuzz: how cmake/run_fuzzers.sh runs it. SEEDS are
# read-only seed corpora, DICTS dictionaries, OPTIONS further libFuzzer options, ENV its
# environment; STATS is the first word of the counts line its harness prints at exit; REQUIRE
# holds pairs of a regular expression (no spaces) that the counts line must match and what it
# means when it does not.
function(chaoslab_libfuzzer_target name)
  cmake_parse_arguments(F "" "STATS" "SOURCES;DEFINITIONS;LIBS;SEEDS;DICTS;OPTIONS;ENV;REQUIRE"
                        ${ARGN})
  if(NOT F_STATS)
    message(FATAL_ERROR "chaoslab_libfuzzer_target(${name}): STATS is required")
  endif()
  add_executable(${name} ${F_SOURCES})
  target_compile_definitions(${name} PRIVATE ${F_DEFINITIONS})
  target_link_libraries(${name} PRIVATE ${F_LIBS})

  set(run "# how cmake/run_fuzzers.sh runs ${name} (written by chaoslab_libfuzzer_target)\n")
  foreach(key SEEDS DICTS OPTIONS ENV)  # a line each: "seed DIR", "dict FILE", ...
    string(REGEX REPLACE "S$" "" word "${key}")
    string(TOLOWER "${word}" word)
    foreach(value ${F_${key}})
      string(APPEND run "${word} ${value}\n")
    endforeach()
  endforeach()
  string(APPEND run "stats ${F_STATS}\n")
  list(LENGTH F_REQUIRE count)
  math(EXPR odd "${count} % 2")
  if(odd)
    message(FATAL_ERROR "chaoslab_libfuzzer_target(${name}): REQUIRE takes pairs (regex why)")
  endif()
  while(F_REQUIRE)
    list(POP_FRONT F_REQUIRE regex why)
    string(APPEND run "require ${regex} ${why}\n")
  endwhile()
  file(GENERATE OUTPUT $<TARGET_FILE:${name}>.fuzz CONTENT "${run}")
endfunction()
