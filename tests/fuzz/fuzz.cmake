# Included by the top-level CMakeLists.txt when DLC_FUZZ is on, before any target: every object
# gets libFuzzer's coverage instrumentation plus ASan and UBSan (docs/testing.md, "Fuzzers").
# Executables other than the fuzz targets link the sanitizers alone; the targets also link
# libFuzzer (tests/fuzz/CMakeLists.txt).
if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "DLC_FUZZ needs clang (libFuzzer): configure with -DCMAKE_C_COMPILER=clang-19 "
                      "-DCMAKE_CXX_COMPILER=clang++-19")
endif()
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                    -fno-sanitize-recover=undefined)
add_link_options(-fsanitize=address,undefined)
add_compile_definitions(DLC_FUZZING=1)
# Bison's generated parser counts errors in a variable it never reads, which clang (not GCC)
# reports; the generated file is not ours to change.
set_source_files_properties(${CMAKE_BINARY_DIR}/frontend/parser.c PROPERTIES
                            COMPILE_OPTIONS -Wno-unused-but-set-variable)
