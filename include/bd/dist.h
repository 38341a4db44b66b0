/* Processes that work together: the group a data-parallel training run is
 * spread over (llm.c's recipe on CPUs, see bd/train.h).
 *
 * A process started by an MPI launcher (mpirun or mpiexec of Open MPI or
 * MPICH, or srun with PMI/PMIx: told apart by OMPI_COMM_WORLD_SIZE, PMI_SIZE
 * or PMIX_RANK) joins its job's world on the first call to any function
 * here, when bd was built with MPI (cmake -DBD_MPI=ON, the default when MPI
 * is found). Any other process is a group of one and never touches MPI: a
 * single process needs no mpirun.
 *
 * Every rank runs the same program; rank 0 alone writes logs, checkpoints
 * and reports. Collectives block, and every rank must call them in the same
 * order, as in MPI.
 *
 * A process that joined MPI leaves it when it exits: with status 0 it
 * finalizes (waiting for the others), with any other status it aborts the
 * whole job, so a rank that failed never leaves the others waiting forever
 * in a collective. */
#ifndef BD_DIST_H
#define BD_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bd/status.h"

int         bd_dist_rank(void);    /* 0 .. size - 1 */
int         bd_dist_size(void);    /* processes in the group; 1: alone */
const char *bd_dist_backend(void); /* "mpi" or "single" */

/* Whether this process writes logs, checkpoints and reports: rank 0 does,
 * the others do not. Never joins a group itself: before one is chosen it
 * goes by the launcher's rank (so a process that later goes alone, or a
 * build without MPI, writes as it always did). */
bool        bd_dist_is_writer(void);

/* x[i] = the sum over ranks of x[i], on every rank.   x: (n), n >= 0 */
bd_status bd_dist_allreduce_sum(float *x, int64_t n);
/* Every rank calls it with its own status: *failed = how many ranks hold a
 * status other than BD_OK (0 alone). Fails only if the reduction does. */
bd_status bd_dist_count_failed(bd_status s, int *failed);

/* Rank 0's `bytes` bytes at data, copied to data on every other rank. */
bd_status bd_dist_broadcast(void *data, size_t bytes);

bd_status bd_dist_barrier(void);

/* From now on this process works alone (rank 0 of 1) even if an MPI
 * launcher started it: what each task of a sweep does when the job's
 * processes share out the sweep's runs. Called before any other function
 * here, it keeps the process out of MPI altogether. */
void bd_dist_alone(void);

#endif
