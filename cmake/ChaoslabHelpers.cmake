# chaoslab_test(NAME SOURCES a.cc b.cc LIBS x y [LABELS vm] [TIMEOUT s])
# One GoogleTest executable registered with CTest. Label "vm" marks tests that boot real guests.
function(chaoslab_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main Threads::Threads)
  add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "CHAOSLAB_SOURCE_DIR=${CMAKE_SOURCE_DIR};CHAOSLAB_BUILD_DIR=${CMAKE_BINARY_DIR}")
  chaoslab_gtest_skips_are_skips(${name})
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()

# CTest counts a GoogleTest binary as passed even when some of its tests called GTEST_SKIP. This
# makes such a run "Skipped" in CTest's eyes, so `make test` (tests/no_skips.sh) can refuse it.
function(chaoslab_gtest_skips_are_skips test_name)
  set_tests_properties(${test_name} PROPERTIES SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
endfunction()

# chaoslab_missing_prerequisite(NAME WHY): what the tests need is missing, so the tests that would
# use it cannot even be registered. A test that says so and is skipped takes their place,
# and `make test`, which installs every prerequisite, fails on it instead of passing without them.
function(chaoslab_missing_prerequisite name why)
  add_test(NAME prerequisite_${name}
    COMMAND ${CMAKE_COMMAND} -E echo "SKIPPED: ${why}")
  # `cmake -E echo` exits 0; its message is the skip, matched like GoogleTest's.
  set_tests_properties(prerequisite_${name} PROPERTIES SKIP_REGULAR_EXPRESSION "^SKIPPED: ")
endfunction()
