/* The group of an MPI job: MPI_COMM_WORLD. Built only with BD_MPI
 * (cmake/bdMPI.cmake); dist.c joins it when a launcher started us.
 *
 * Errors come back as statuses (MPI_ERRORS_RETURN) naming the call. MPI
 * counts are ints, so longer buffers go in chunks of at most INT_MAX. */
#include "../group.h"

#include <limits.h>
#include <stdlib.h>

#include <mpi.h>

static bd_status mpi_fail(const char *call, int64_t count, int err)
{
    char why[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(err, why, &len) != MPI_SUCCESS)
        len = 0;
    why[len] = '\0';
    return bd_fail(BD_E_IO, "dist: %s of %lld elements failed: %s", call,
                   (long long)count, why);
}

static int chunk(int64_t left) { return left < INT_MAX ? (int)left : INT_MAX; }

static bd_status mpi_allreduce_sum(float *x, int64_t n)
{
    for (int64_t done = 0; done < n;) {
        const int count = chunk(n - done);
        int err = MPI_Allreduce(MPI_IN_PLACE, x + done, count, MPI_FLOAT,
                                MPI_SUM, MPI_COMM_WORLD);
        if (err != MPI_SUCCESS)
            return mpi_fail("MPI_Allreduce", n, err);
        done += count;
    }
    return BD_OK;
}

static bd_status mpi_broadcast(void *data, size_t bytes)
{
    char *p = data;
    for (size_t done = 0; done < bytes;) {
        const int count = chunk((int64_t)(bytes - done));
        int err = MPI_Bcast(p + done, count, MPI_BYTE, 0, MPI_COMM_WORLD);
        if (err != MPI_SUCCESS)
            return mpi_fail("MPI_Bcast", (int64_t)bytes, err);
        done += (size_t)count;
    }
    return BD_OK;
}

static bd_status mpi_barrier(void)
{
    int err = MPI_Barrier(MPI_COMM_WORLD);
    return err == MPI_SUCCESS ? BD_OK : mpi_fail("MPI_Barrier", 0, err);
}

/* At exit: finalize after a success; after a failure abort the job, whose
 * other ranks may be waiting in a collective this one will never join. */
static void leave(int status, void *arg)
{
    (void)arg;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized)
        return;
    if (status == 0)
        MPI_Finalize();
    else
        MPI_Abort(MPI_COMM_WORLD, status);
}

void bd_dist_mpi_join(bd_dist_group *g)
{
    int provided = 0;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g->size);
    g->backend = "mpi";
    g->allreduce_sum = mpi_allreduce_sum;
    g->broadcast = mpi_broadcast;
    g->barrier = mpi_barrier;
    on_exit(leave, NULL);
}
