# Lua tests: every tests/lua/test_*.lua runs as `bdrun <file> [args]` from the
# build's tests folder. Arguments a test needs go in BD_LUA_TEST_ARGS_<name>.
if(TARGET bdrun)
    set(BD_LUA_TEST_ARGS_test_config epochs=7 lr=1e-3 name=12 ema=false size=2e1 step=2)
    set(BD_LUA_TEST_ARGS_test_errors bdrun=$<TARGET_FILE:bdrun>)
    set(BD_LUA_TEST_ARGS_test_ckpt_archive bdrun=$<TARGET_FILE:bdrun>)
    set(BD_LUA_TEST_ARGS_test_readme bdrun=$<TARGET_FILE:bdrun>
        readme=${CMAKE_SOURCE_DIR}/README.md)
    set(BD_LUA_TEST_ARGS_test_plugin_errors bdrun=$<TARGET_FILE:bdrun>
        fixtures=${CMAKE_BINARY_DIR}/tests/fixtures/plugins
        plugins=${CMAKE_BINARY_DIR}/plugins)
    set(BD_LUA_TEST_ARGS_test_kill_loop bdrun=$<TARGET_FILE:bdrun>)
    set(BD_LUA_TEST_ARGS_test_ckpt_model bdrun=$<TARGET_FILE:bdrun>)
    set(BD_LUA_TEST_ARGS_test_interop bdrun=$<TARGET_FILE:bdrun>)
    set(BD_LUA_TEST_ARGS_test_imbalance_smoke bdrun=$<TARGET_FILE:bdrun>)
    set(BD_LUA_TEST_ARGS_test_phases_smoke bdrun=$<TARGET_FILE:bdrun>)
    set(BD_LUA_TEST_ARGS_test_compositional_smoke bdrun=$<TARGET_FILE:bdrun>)
    set(BD_LUA_TEST_ARGS_test_factorization_smoke bdrun=$<TARGET_FILE:bdrun>)
    set(BD_LUA_TEST_ARGS_test_percolation_smoke bdrun=$<TARGET_FILE:bdrun>)
    set(BD_LUA_TEST_ARGS_test_efficiency_smoke bdrun=$<TARGET_FILE:bdrun>)
    set(BD_LUA_TEST_ARGS_test_torus_smoke bdrun=$<TARGET_FILE:bdrun>)
    set(BD_LUA_TEST_ARGS_test_stats_reference
        reference=${CMAKE_SOURCE_DIR}/tests/reference/stats_scipy.lua)
    file(GLOB BD_LUA_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/lua/test_*.lua)
    foreach(script ${BD_LUA_TESTS})
        get_filename_component(name ${script} NAME_WE)
        add_test(NAME lua_${name}
                 COMMAND bdrun ${script} ${BD_LUA_TEST_ARGS_${name}}
                 WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
        set_tests_properties(lua_${name} PROPERTIES LABELS lua)
    endforeach()
    # The experiments' smoke tests train whole sweeps: label slow, which
    # `setup.sh test` leaves out of its sanitizer pass (-LE slow).
    foreach(name imbalance phases compositional factorization percolation
                 efficiency torus)
        if(TEST lua_test_${name}_smoke)
            set_tests_properties(lua_test_${name}_smoke PROPERTIES
                                 LABELS "lua;slow")
        endif()
    endforeach()
    # The README's bd module script trains a unet: 19 s in Release, about
    # 10 min under the sanitizers.
    set_tests_properties(lua_test_readme PROPERTIES LABELS "lua;slow")
endif()
