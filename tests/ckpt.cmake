# Checkpoint fuzzing. The seed corpora in tests/fuzz/ replay through both
# fuzz targets under the normal build (any compiler); where clang with
# libFuzzer is present, the targets are also built as fuzzers (clang called
# directly, with ASan and UBSan) and run briefly from the seeds.
set(BD_FUZZ_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
set(BD_FUZZ_TARGETS ckpt archive safetensors)

add_executable(fuzz_make_corpus ${BD_FUZZ_DIR}/make_corpus.c)
target_link_libraries(fuzz_make_corpus PRIVATE bd)
target_include_directories(fuzz_make_corpus PRIVATE ${CMAKE_SOURCE_DIR}/core)

foreach(target ${BD_FUZZ_TARGETS})
    add_executable(fuzz_${target}_replay ${BD_FUZZ_DIR}/replay.c
                   ${BD_FUZZ_DIR}/fuzz_${target}.c)
    target_link_libraries(fuzz_${target}_replay PRIVATE bd)
    target_include_directories(fuzz_${target}_replay PRIVATE ${CMAKE_SOURCE_DIR}/core)
    add_test(NAME fuzz_${target}_replay
             COMMAND fuzz_${target}_replay ${BD_FUZZ_DIR}/corpus_${target})
    set_tests_properties(fuzz_${target}_replay PROPERTIES LABELS "format")
endforeach()

find_program(BD_CLANG NAMES clang clang-18 clang-17 clang-16 clang-15 clang-14)
if(BD_CLANG AND NOT DEFINED BD_CLANG_HAS_LIBFUZZER)
    file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/fuzz_probe.c
         "#include <stddef.h>\n#include <stdint.h>\n"
         "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)"
         " { (void)d; (void)n; return 0; }\n")
    execute_process(COMMAND ${BD_CLANG} -fsanitize=fuzzer
                            ${CMAKE_CURRENT_BINARY_DIR}/fuzz_probe.c
                            -o ${CMAKE_CURRENT_BINARY_DIR}/fuzz_probe
                    RESULT_VARIABLE probe OUTPUT_QUIET ERROR_QUIET)
    if(probe EQUAL 0)
        set(BD_CLANG_HAS_LIBFUZZER ON CACHE INTERNAL "")
    else()
        set(BD_CLANG_HAS_LIBFUZZER OFF CACHE INTERNAL "")
    endif()
endif()

if(BD_CLANG_HAS_LIBFUZZER)
    file(GLOB BD_FUZZ_CORE CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/core/ckpt/*.c)
    list(APPEND BD_FUZZ_CORE ${CMAKE_SOURCE_DIR}/core/util/status.c
                             ${CMAKE_SOURCE_DIR}/core/tensor/tensor.c)
    foreach(target ${BD_FUZZ_TARGETS})
        set(exe ${CMAKE_CURRENT_BINARY_DIR}/fuzz_${target})
        add_custom_command(OUTPUT ${exe}
            COMMAND ${BD_CLANG} -std=gnu11 -g -O1
                    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
                    -I${CMAKE_SOURCE_DIR}/include -I${CMAKE_SOURCE_DIR}/core
                    ${ZSTD_CFLAGS} ${BD_FUZZ_DIR}/fuzz_${target}.c ${BD_FUZZ_CORE}
                    ${ZSTD_LDFLAGS} -lm -o ${exe}
            DEPENDS ${BD_FUZZ_DIR}/fuzz_${target}.c ${BD_FUZZ_CORE}
                    ${CMAKE_SOURCE_DIR}/include/bd/ckpt.h
                    ${CMAKE_SOURCE_DIR}/include/bd/safetensors.h
                    ${CMAKE_SOURCE_DIR}/core/ckpt/format.h
            COMMENT "Building the libFuzzer target fuzz_${target} with clang"
            VERBATIM)
        add_custom_target(fuzz_${target} ALL DEPENDS ${exe})
        # New inputs go to a scratch folder in the build, never the sources.
        file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/fuzz_${target}_found)
        add_test(NAME fuzz_${target}
                 COMMAND ${exe} -max_total_time=5 -rss_limit_mb=2048
                         -timeout=10 -print_final_stats=1
                         -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz_${target}_
                         ${CMAKE_CURRENT_BINARY_DIR}/fuzz_${target}_found
                         ${BD_FUZZ_DIR}/corpus_${target})
        set_tests_properties(fuzz_${target} PROPERTIES LABELS "format;fuzz")
    endforeach()
endif()
