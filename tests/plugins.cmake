# Plugin tests: fixture plugins (one per loader failure), a probe that loads
# a plugin file and runs a denoiser from it, and the out-of-tree build of a
# plugin against an installed bd.
set(BD_FIXTURE_DIR ${CMAKE_BINARY_DIR}/tests/fixtures/plugins)
set(BD_FIXTURES good no_entry newer_major newer_minor older_minor wrong_sizes
    small_info init_error no_forward duplicate no_info no_size shadow)
foreach(fx ${BD_FIXTURES})
    bd_add_plugin(fx_${fx} ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/plugins/fixture.c)
    string(TOUPPER ${fx} FX)
    target_compile_definitions(bd_fx_${fx} PRIVATE FIXTURE="${fx}" FIXTURE_${FX})
    set_target_properties(bd_fx_${fx} PROPERTIES
        LIBRARY_OUTPUT_DIRECTORY ${BD_FIXTURE_DIR})
    add_dependencies(test_plugin_loader bd_fx_${fx})
endforeach()
file(WRITE ${BD_FIXTURE_DIR}/bd_fx_not_elf.so
     "this text file is not a shared object\n")
target_compile_definitions(test_plugin_loader PRIVATE
    BD_FIXTURE_DIR="${BD_FIXTURE_DIR}")

# Plugins the tests create by name are in the build's plugin folder.
foreach(test test_unet test_plugin_loader test_plugin_mlp)
    if(TARGET ${test})
        add_dependencies(${test} bd_unet bd_mlp)
    endif()
endforeach()

add_executable(bd_plugin_probe ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/plugins/probe.c)
target_link_libraries(bd_plugin_probe PRIVATE bd)

add_test(NAME plugin_out_of_tree COMMAND ${CMAKE_COMMAND}
    -D BD_BUILD=${CMAKE_BINARY_DIR}
    -D WORK=${CMAKE_BINARY_DIR}/tests/out_of_tree
    -D SOURCE=${CMAKE_CURRENT_SOURCE_DIR}/out_of_tree
    -D PROBE=$<TARGET_FILE:bd_plugin_probe>
    -D CC=${CMAKE_C_COMPILER}
    -P ${CMAKE_CURRENT_SOURCE_DIR}/out_of_tree/check.cmake)
