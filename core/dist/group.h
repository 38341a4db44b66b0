/* The group behind bd/dist.h as a backend fills it in: this process's
 * place in it and the collectives, which dist.c calls once their arguments
 * are checked. */
#ifndef BD_DIST_GROUP_H
#define BD_DIST_GROUP_H

#include "bd/dist.h"

typedef struct bd_dist_group {
    const char *backend;
    int         rank, size;
    bd_status (*allreduce_sum)(float *x, int64_t n);
    bd_status (*broadcast)(void *data, size_t bytes);
    bd_status (*barrier)(void);
} bd_dist_group;

/* Join the MPI job this process was launched in, and leave it at exit
 * (core/dist/mpi/mpi.c, built with BD_MPI). */
void bd_dist_mpi_join(bd_dist_group *g);

#endif
