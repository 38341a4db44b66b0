# Swapping a metric at run time: a second "bump" plugin
# (tests/fixtures/metric_swap/bump_v2.c) built as bd_bump.so into a folder
# of its own, the same with a taken denoiser name, and a folder whose
# bd_bump.so is not a shared object. tests/test_plugin_swap.c swaps between
# them and the build's plugins; tests/lua/test_metric_swap.lua finds the
# first at fixtures/metric_swap from the build's tests folder.
set(BD_SWAP_DIR ${CMAKE_BINARY_DIR}/tests/fixtures/metric_swap)
set(BD_SWAP_SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/metric_swap/bump_v2.c)

bd_add_plugin(swap_bump ${BD_SWAP_SOURCE})
set_target_properties(bd_swap_bump PROPERTIES OUTPUT_NAME bd_bump
    LIBRARY_OUTPUT_DIRECTORY ${BD_SWAP_DIR})
bd_add_plugin(swap_taken ${BD_SWAP_SOURCE})
target_compile_definitions(bd_swap_taken PRIVATE SWAP_DENOISER)
set_target_properties(bd_swap_taken PROPERTIES OUTPUT_NAME bd_bump
    LIBRARY_OUTPUT_DIRECTORY ${BD_SWAP_DIR}_taken)
file(WRITE ${BD_SWAP_DIR}_broken/bd_bump.so "this text is not a shared object\n")

if(TARGET test_plugin_swap)
    add_dependencies(test_plugin_swap bd_swap_bump bd_swap_taken)
    foreach(plugin bump percolation mlp)
        if(TARGET bd_${plugin})
            add_dependencies(test_plugin_swap bd_${plugin})
        endif()
    endforeach()
    target_compile_definitions(test_plugin_swap PRIVATE
        BD_SWAP_DIR="${BD_SWAP_DIR}")
endif()
