/* The group of one a process is when no MPI launcher started it: rank 0 of
 * 1, collectives that leave the data as it is, and the argument checks
 * every backend shares. tests/mpi.cmake runs two ranks under mpirun. */
#include "bd/dist.h"
#include "harness.h"

static void test_alone(void)
{
    CHECK(bd_dist_rank() == 0 && bd_dist_size() == 1, "rank %d of %d",
          bd_dist_rank(), bd_dist_size());
    CHECK(strcmp(bd_dist_backend(), "single") == 0, "backend %s",
          bd_dist_backend());
    float x[3] = {1.5f, -2.0f, 3.25f};
    CHECK_OK(bd_dist_allreduce_sum(x, 3));
    CHECK(x[0] == 1.5f && x[1] == -2.0f && x[2] == 3.25f,
          "the sum over one rank is the data: %g %g %g", x[0], x[1], x[2]);
    CHECK_OK(bd_dist_allreduce_sum(NULL, 0));
    int64_t step = 42;
    CHECK_OK(bd_dist_broadcast(&step, sizeof step));
    CHECK(step == 42, "broadcast from rank 0 to itself: %lld", (long long)step);
    CHECK_OK(bd_dist_broadcast(NULL, 0));
    CHECK_OK(bd_dist_barrier());
    bd_dist_alone();
    CHECK(bd_dist_rank() == 0 && bd_dist_size() == 1
          && strcmp(bd_dist_backend(), "single") == 0, "alone: rank 0 of 1");
}

static void test_errors(void)
{
    float x[2] = {0};
    CHECK_FAILS(bd_dist_allreduce_sum(x, -1), BD_E_ARG,
                "dist: allreduce_sum of -1 floats");
    CHECK_FAILS(bd_dist_allreduce_sum(NULL, 2), BD_E_ARG,
                "expected n >= 0 and a buffer");
    CHECK_FAILS(bd_dist_broadcast(NULL, 8), BD_E_ARG,
                "dist: broadcast of 8 bytes from NULL");
}

int main(void)
{
    RUN(test_alone);
    RUN(test_errors);
    return harness_summary();
}
