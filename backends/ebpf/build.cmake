# backends/ebpf: the eBPF backend, built into weft_backends when this
# machine can build it: x86_64, the kernel's BTF (/sys/kernel/btf/vmlinux,
# from which vmlinux.h is generated), clang with the bpf target, bpftool
# (vmlinux.h and the skeleton) and libbpf. Otherwise stub.c stands in and
# its preflight names what was missing.
#
# The BPF object is built by a custom command with its own flags: never
# with the tree's sanitizer or warning options.
set(WEFT_EBPF_DIR ${CMAKE_CURRENT_SOURCE_DIR}/ebpf)
set(WEFT_EBPF_BIN ${CMAKE_CURRENT_BINARY_DIR}/ebpf)
set(WEFT_VMLINUX_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH
    "kernel BTF that vmlinux.h is generated from")

set(missing "")
find_program(WEFT_BPFTOOL bpftool PATHS /usr/sbin /sbin)
find_program(WEFT_BPF_CLANG NAMES clang clang-14 clang-15 clang-16)
pkg_check_modules(LIBBPF IMPORTED_TARGET libbpf)
if(NOT CMAKE_SYSTEM_PROCESSOR STREQUAL "x86_64")
  set(missing "architecture ${CMAKE_SYSTEM_PROCESSOR} (x86_64 only)")
elseif(NOT EXISTS ${WEFT_VMLINUX_BTF})
  set(missing "no kernel BTF at ${WEFT_VMLINUX_BTF} on the build machine")
elseif(NOT WEFT_BPFTOOL)
  set(missing "bpftool not found at build time")
elseif(NOT WEFT_BPF_CLANG)
  set(missing "clang not found at build time")
elseif(NOT LIBBPF_FOUND)
  set(missing "libbpf (libbpf-dev) not found at build time")
else()
  execute_process(COMMAND ${WEFT_BPF_CLANG} -target bpf -x c -c /dev/null
                          -o /dev/null
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
  if(NOT rc EQUAL 0)
    set(missing "${WEFT_BPF_CLANG} has no bpf target")
  endif()
endif()

if(missing)
  message(STATUS "eBPF backend not built: ${missing}")
  target_sources(weft_backends PRIVATE ${WEFT_EBPF_DIR}/stub.c)
  set_source_files_properties(${WEFT_EBPF_DIR}/stub.c PROPERTIES
                              COMPILE_DEFINITIONS "WEFT_EBPF_MISSING=\"${missing}\"")
  target_include_directories(weft_backends PRIVATE ${WEFT_EBPF_DIR})
    return()
endif()

file(MAKE_DIRECTORY ${WEFT_EBPF_BIN})
add_custom_command(
  OUTPUT ${WEFT_EBPF_BIN}/vmlinux.h
  COMMAND sh -c "${WEFT_BPFTOOL} btf dump file ${WEFT_VMLINUX_BTF} format c > vmlinux.h.tmp && mv vmlinux.h.tmp vmlinux.h"
  WORKING_DIRECTORY ${WEFT_EBPF_BIN}
  COMMENT "Generating vmlinux.h from ${WEFT_VMLINUX_BTF}" VERBATIM)
add_custom_command(
  OUTPUT ${WEFT_EBPF_BIN}/weft.bpf.o
  COMMAND ${WEFT_BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_x86
          -I${WEFT_EBPF_BIN} -I${WEFT_EBPF_DIR}
          -c ${WEFT_EBPF_DIR}/weft.bpf.c -o weft.bpf.o
  DEPENDS ${WEFT_EBPF_DIR}/weft.bpf.c ${WEFT_EBPF_DIR}/weft_ebpf.h
          ${WEFT_EBPF_BIN}/vmlinux.h
  WORKING_DIRECTORY ${WEFT_EBPF_BIN}
  COMMENT "Building the BPF object weft.bpf.o" VERBATIM)
add_custom_command(
  OUTPUT ${WEFT_EBPF_BIN}/weft.skel.h
  COMMAND sh -c "${WEFT_BPFTOOL} gen skeleton weft.bpf.o name weft_bpf > weft.skel.h.tmp && mv weft.skel.h.tmp weft.skel.h"
  DEPENDS ${WEFT_EBPF_BIN}/weft.bpf.o
  WORKING_DIRECTORY ${WEFT_EBPF_BIN}
  COMMENT "Generating the BPF skeleton weft.skel.h" VERBATIM)
add_custom_target(weft_ebpf_skel DEPENDS ${WEFT_EBPF_BIN}/weft.skel.h)

file(GLOB ebpf_srcs CONFIGURE_DEPENDS ${WEFT_EBPF_DIR}/*.c)
list(FILTER ebpf_srcs EXCLUDE REGEX "(_test|stub|\\.bpf)\\.c$")
target_sources(weft_backends PRIVATE ${ebpf_srcs})
add_dependencies(weft_backends weft_ebpf_skel)
target_include_directories(weft_backends PRIVATE ${WEFT_EBPF_DIR})
target_include_directories(weft_backends PRIVATE ${WEFT_EBPF_BIN})
target_link_libraries(weft_backends PUBLIC PkgConfig::LIBBPF)
set_property(GLOBAL PROPERTY WEFT_EBPF_BUILT ON) # tests/ registers its suites
weft_unit_tests(weft_backends ${WEFT_EBPF_DIR})

# The record decoder takes bytes from the agent's socket: a libFuzzer
# target (built with record.c instrumented), run by ctest like the rest.
if(WEFT_FUZZ)
  add_executable(fuzz_ebpf_record ${WEFT_EBPF_DIR}/fuzz/fuzz_ebpf_record.c
                 ${WEFT_EBPF_DIR}/record.c)
  target_include_directories(fuzz_ebpf_record PRIVATE ${WEFT_EBPF_DIR}
                             ${CMAKE_CURRENT_SOURCE_DIR}/common)
  target_compile_options(fuzz_ebpf_record PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_ebpf_record PRIVATE -fsanitize=fuzzer)
  target_link_libraries(fuzz_ebpf_record PRIVATE weft_schema)
  set(corpus ${CMAKE_CURRENT_BINARY_DIR}/corpus_fuzz_ebpf_record)
  add_test(NAME fuzz.fuzz_ebpf_record
           COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=1
                   sh -c "mkdir -p '${corpus}' && exec $<TARGET_FILE:fuzz_ebpf_record> -runs=200000 -max_len=65536 -seed=1 '${corpus}' ${WEFT_EBPF_DIR}/fuzz/corpus/fuzz_ebpf_record")
endif()
