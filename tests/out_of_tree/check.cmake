# Builds the sample plugin of this folder against an installed bd, twice:
# with find_package(bd) and with pkg-config, and loads each with the probe.
# Run by CTest (tests/plugins.cmake) as:
#   cmake -D BD_BUILD=<bd build> -D WORK=<scratch> -D SOURCE=<this folder>
#         -D PROBE=<bd_plugin_probe> -D CC=<C compiler> -P check.cmake
function(run what)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                    ERROR_VARIABLE out)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "${what} failed (${rc}):\n${out}")
    endif()
    message(STATUS "${what}: ok")
    set(run_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK})
set(prefix ${WORK}/prefix)
run("install bd" ${CMAKE_COMMAND} --install ${BD_BUILD} --prefix ${prefix})

# find_package(bd)
run("configure with find_package(bd)" ${CMAKE_COMMAND} -S ${SOURCE}
    -B ${WORK}/build -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_C_COMPILER=${CC})
run("build" ${CMAKE_COMMAND} --build ${WORK}/build)
run("load the find_package build" ${PROBE} ${WORK}/build/bd_tinyconv.so tinyconv)
message(STATUS "${run_output}")

# pkg-config
file(GLOB_RECURSE pc_files ${prefix}/*/bd.pc)
list(GET pc_files 0 pc_file)
get_filename_component(pc_dir ${pc_file} DIRECTORY)
set(ENV{PKG_CONFIG_PATH} ${pc_dir})
run("pkg-config --cflags bd" pkg-config --cflags bd)
string(STRIP "${run_output}" cflags)
separate_arguments(cflags UNIX_COMMAND "${cflags}")
file(MAKE_DIRECTORY ${WORK}/pc)
run("build with pkg-config" ${CC} -std=c11 -shared -fPIC -fvisibility=hidden
    ${cflags} ${SOURCE}/tinyconv.c -o ${WORK}/pc/bd_tinyconv.so -lm
    -Wl,--no-undefined)
run("load the pkg-config build" ${PROBE} ${WORK}/pc/bd_tinyconv.so tinyconv)
message(STATUS "${run_output}")

# The README's walkthrough goes on with the installed bdrun, from a folder
# outside the repository: it lists the plugin (with its description) and a
# script asks for it by name, also through {from = folder}.
set(ENV{BD_PLUGIN_PATH} ${WORK}/build)
run("installed bdrun plugins" ${prefix}/bin/bdrun plugins)
if(NOT run_output MATCHES "denoiser tinyconv +two 3x3 convs" OR run_output MATCHES "\\(null\\)")
    message(FATAL_ERROR "bdrun plugins does not list tinyconv with its description:\n${run_output}")
endif()
file(WRITE ${WORK}/use.lua "
local m = bd.model('tinyconv', { size = 8 })
local s = bd.sample(m, bd.data.grid{ size = 8, step = 4 }, { steps = 2 })
print(m.arch, m.channels, m.size, s.images:shape()[1])
local again = bd.model('tinyconv', { size = 8 }, { from = '${WORK}/build' })
print(again.arch)
")
execute_process(COMMAND ${prefix}/bin/bdrun use.lua WORKING_DIRECTORY ${WORK}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0 OR NOT out MATCHES "tinyconv\t1\t8\t4\ntinyconv\n")
    message(FATAL_ERROR "the installed bdrun cannot use the plugin (${rc}):\n${out}")
endif()
message(STATUS "installed bdrun uses the plugin: ok")
