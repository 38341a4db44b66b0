/* The group of processes (bd/dist.h): chosen on first use, a group of one
 * unless an MPI launcher started this process and bd has MPI. */
#include "group.h"

#include <stdbool.h>
#include <stdlib.h>

#include "bd/log.h"

/* ---- a group of one: every collective leaves the data as it is ----------- */

static bd_status single_allreduce_sum(float *x, int64_t n)
{
    (void)x;
    (void)n;
    return BD_OK;
}

static bd_status single_broadcast(void *data, size_t bytes)
{
    (void)data;
    (void)bytes;
    return BD_OK;
}

static bd_status single_barrier(void) { return BD_OK; }

static const bd_dist_group single = {
    .backend = "single", .rank = 0, .size = 1,
    .allreduce_sum = single_allreduce_sum, .broadcast = single_broadcast,
    .barrier = single_barrier,
};

/* ---- choosing the group --------------------------------------------------- */

static bd_dist_group group;
static bool chosen;

/* Processes in the job an MPI launcher started this one in; 0: none. */
static int launched_size(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 0)
            return atoi(v);
    }
    return getenv("PMIX_RANK") ? 1 : 0;
}

#ifdef BD_HAVE_MPI
/* This process's rank in the job an MPI launcher started it in; 0: none. */
static int launched_rank(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK",
                                       "PMIX_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v)
            return atoi(v);
    }
    return 0;
}
#endif

static const bd_dist_group *current(void)
{
    if (chosen)
        return &group;
    chosen = true;
    group = single;
    int launched = launched_size();
#ifdef BD_HAVE_MPI
    if (launched > 0)
        bd_dist_mpi_join(&group);
#else
    if (launched > 1)
        bd_log_warn("dist: started as one of %d processes, but bd was built"
                    " without MPI: each trains alone (rebuild with"
                    " -DBD_MPI=ON)", launched);
#endif
    return &group;
}

void bd_dist_alone(void)
{
    chosen = true;
    group = single;
}

int         bd_dist_rank(void) { return current()->rank; }
int         bd_dist_size(void) { return current()->size; }
const char *bd_dist_backend(void) { return current()->backend; }

bool bd_dist_is_writer(void)
{
    if (chosen)
        return group.rank == 0;
#ifdef BD_HAVE_MPI
    return launched_rank() == 0;
#else
    return true;
#endif
}

bd_status bd_dist_allreduce_sum(float *x, int64_t n)
{
    if (n < 0 || (n > 0 && !x))
        return bd_fail(BD_E_ARG, "dist: allreduce_sum of %lld floats at %p,"
                       " expected n >= 0 and a buffer", (long long)n,
                       (void *)x);
    return current()->allreduce_sum(x, n);
}

bd_status bd_dist_broadcast(void *data, size_t bytes)
{
    if (bytes > 0 && !data)
        return bd_fail(BD_E_ARG, "dist: broadcast of %zu bytes from NULL",
                       bytes);
    return current()->broadcast(data, bytes);
}

bd_status bd_dist_barrier(void) { return current()->barrier(); }

bd_status bd_dist_count_failed(bd_status s, int *failed)
{
    float n = s != BD_OK;
    if (bd_dist_size() > 1)
        BD_TRY(bd_dist_allreduce_sum(&n, 1));
    *failed = (int)n;
    return BD_OK;
}
