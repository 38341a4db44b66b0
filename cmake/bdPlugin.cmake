# bd_add_plugin(<name> <source>...): build the plugin bd_<name>.so.
#
# A plugin is a MODULE library that sees the bd headers (target bd::plugin)
# and never links libbd: it reaches the core through the host table of
# bd/plugin.h. Symbols are hidden except bd_plugin_init, and on ELF
# platforms the link fails on any undefined symbol, so a call to a bd_*
# function instead of the host table is caught when building, not loading.
# Used in the bd tree (plugins/CMakeLists.txt) and by out-of-tree plugins
# after find_package(bd).
function(bd_add_plugin name)
    add_library(bd_${name} MODULE ${ARGN})
    set_target_properties(bd_${name} PROPERTIES
        PREFIX "" SUFFIX ".so" OUTPUT_NAME bd_${name}
        C_STANDARD 11 C_VISIBILITY_PRESET hidden)
    target_link_libraries(bd_${name} PRIVATE bd::plugin m)
    if(CMAKE_SYSTEM_NAME STREQUAL "Linux" AND NOT BD_SANITIZE)
        target_link_options(bd_${name} PRIVATE -Wl,--no-undefined)
    endif()
endfunction()
