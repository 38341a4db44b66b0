# MPI for libbd (include/bd/dist.h): data-parallel training when a launcher
# such as mpirun starts bdrun. BD_MPI is on when an MPI C library is found
# (Debian: libopenmpi-dev openmpi-bin); without it every process trains alone.
# Only the core links MPI: plugins never do.
find_package(MPI COMPONENTS C QUIET)
option(BD_MPI "Build the MPI communicator: data-parallel training under mpirun"
       ${MPI_C_FOUND})
if(BD_MPI)
    if(NOT MPI_C_FOUND)
        message(FATAL_ERROR "BD_MPI is ON but no MPI C library was found"
                " (Debian: apt-get install libopenmpi-dev openmpi-bin)")
    endif()
    target_sources(bd PRIVATE ${CMAKE_SOURCE_DIR}/core/dist/mpi/dist_mpi.c)
    target_compile_definitions(bd PRIVATE BD_HAVE_MPI)
    target_link_libraries(bd PUBLIC MPI::MPI_C)
endif()
message(STATUS "bd: MPI ${BD_MPI} (launcher: ${MPIEXEC_EXECUTABLE})")
