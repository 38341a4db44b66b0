# Sweeps (scripts/lib/sweep.lua): shards run at once and a killed shard
# restarted give the runs and results of one process. The driver runs the
# bdrun it is given on tests/fixtures/tiny_sweep.lua.
if(TARGET bdrun)
    add_test(NAME lua_sweep
             COMMAND bdrun ${CMAKE_CURRENT_SOURCE_DIR}/lua/sweep_shards.lua
                     bdrun=$<TARGET_FILE:bdrun>
             WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
    set_tests_properties(lua_sweep PROPERTIES LABELS lua TIMEOUT 300
        ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")
endif()
