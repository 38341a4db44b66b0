# Data-parallel training under mpirun (only when bd is built with MPI): two
# ranks train the tiny model and must match one process on the same global
# batch. Oversubscribed and unbound, one thread each, so it runs on any
# machine with any number of cores, as root too (containers, CI). A rank
# that fails aborts the job; the timeout catches a collective that hangs.
if(BD_MPI)
    set(BD_MPI_TEST_ENV OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
        ASAN_OPTIONS=detect_leaks=0
        OMPI_MCA_btl_vader_single_copy_mechanism=none)
    add_executable(dist_train ${CMAKE_CURRENT_SOURCE_DIR}/mpi/dist_train.c)
    target_link_libraries(dist_train PRIVATE bd)
    target_include_directories(dist_train PRIVATE ${CMAKE_SOURCE_DIR}/core)
    execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version
                    OUTPUT_VARIABLE BD_MPIEXEC_VERSION ERROR_QUIET)
    if(BD_MPIEXEC_VERSION MATCHES "OpenRTE|Open MPI")
        set(BD_MPIEXEC_OPEN_MPI_FLAGS --oversubscribe --allow-run-as-root
            --bind-to none)
    endif()
    add_test(NAME mpi_dist_train
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2
                     ${BD_MPIEXEC_OPEN_MPI_FLAGS} ${MPIEXEC_PREFLAGS}
                     $<TARGET_FILE:dist_train> ${MPIEXEC_POSTFLAGS}
             WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(mpi_dist_train PROPERTIES TIMEOUT 120 PROCESSORS 2
        LABELS mpi ENVIRONMENT "${BD_MPI_TEST_ENV}")
    # Every rank runs the script; rank 0 alone writes the run's files.
    if(TARGET bdrun)
        add_test(NAME mpi_rank0_writes
                 COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2
                         ${BD_MPIEXEC_OPEN_MPI_FLAGS} ${MPIEXEC_PREFLAGS}
                         $<TARGET_FILE:bdrun> ${MPIEXEC_POSTFLAGS}
                         ${CMAKE_CURRENT_SOURCE_DIR}/mpi/rank0_writes.lua
                 WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
        set_tests_properties(mpi_rank0_writes PROPERTIES TIMEOUT 120
            PROCESSORS 2 LABELS mpi ENVIRONMENT "${BD_MPI_TEST_ENV}")
    endif()
endif()
