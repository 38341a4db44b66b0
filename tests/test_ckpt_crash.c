/* Crash safety: a child process saves checkpoints in a loop and is killed
 * with SIGKILL at random moments, over and over. After every kill the
 * latest checkpoint must load, pass every check and hold a consistent
 * state no older than the one seen before. (A kill is not a power cut: this
 * tests the temp-file-and-rename protocol, not the disk's own ordering.) */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "test_ckpt_util.h"

#define KILLS 120
#define N_FLOATS (48 * 1024)

static float value(uint64_t step, int64_t i)
{
    return (float)((step * 2654435761u + (uint64_t)i * 40503u) % 65536) / 65536.0f;
}

static bd_ckpt *state_at(uint64_t step)
{
    bd_ckpt *ck = bd_ckpt_new();
    int64_t dims[1] = {N_FLOATS};
    float *x = malloc(N_FLOATS * sizeof *x);
    for (int64_t i = 0; i < N_FLOATS; i++)
        x[i] = value(step, i);
    bd_ckpt_set_u64(ck, "bd.step", step);
    bd_ckpt_add_array(ck, "w", BD_CKPT_F32, 1, dims, x);
    free(x);
    return ck;
}

/* The child: resume from the latest checkpoint, then save step after step,
 * writing one byte to `done_fd` after each save. */
static void writer(const char *path, int done_fd)
{
    uint64_t step = 0;
    bd_ckpt *ck;
    if (bd_ckpt_load(path, &ck) == BD_OK) {
        bd_ckpt_get_u64(ck, "bd.step", &step);
        bd_ckpt_free(ck);
    }
    for (;;) {
        ck = state_at(++step);
        bd_ckpt_save_opts opts = {.level = step % 2 ? 1 : 0};
        bd_ckpt_save(ck, path, &opts);
        bd_ckpt_free(ck);
        if (write(done_fd, "s", 1) != 1)
            _exit(1);
    }
}

/* Load, verify and check that the tensor is the one of the recorded step. */
static bool consistent(const char *path, uint64_t *step)
{
    bd_ckpt *ck = NULL;
    if (bd_ckpt_load(path, &ck) != BD_OK) {
        printf("   %s\n", bd_last_error());
        return false;
    }
    bool ok = bd_ckpt_get_u64(ck, "bd.step", step) == BD_OK;
    const bd_ckpt_tensor *t = bd_ckpt_tensor_find(ck, "w");
    ok = ok && t && t->nbytes == N_FLOATS * sizeof(float);
    for (int64_t i = 0; ok && i < N_FLOATS; i++)
        ok = ((const float *)t->data)[i] == value(*step, i);
    bd_ckpt_free(ck);
    return ok;
}

/* Remove the temporary files killed writers left; returns how many. */
static int remove_temps(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];
    int n = 0;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp-")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            n += unlink(path) == 0;
        }
    if (d)
        closedir(d);
    return n;
}

static void test_kill_during_saves(void)
{
    char *dir = tmp_mkdir(), path[600];
    snprintf(path, sizeof path, "%s/latest.bdc", dir);
    bd_ckpt *ck = state_at(0);
    CHECK_OK(bd_ckpt_save(ck, path, NULL));
    bd_ckpt_free(ck);
    uint64_t seen = 0;
    int good = 0, torn = 0;
    for (int k = 0; k < KILLS; k++) {
        int done[2];
        if (pipe(done) != 0)
            break;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            close(done[0]);
            writer(path, done[1]);
            _exit(0);
        }
        close(done[1]);
        /* Every other round, let one save finish first: progress does not
         * depend on how fast the machine is; the other rounds kill at once. */
        char byte;
        if (k % 2 == 0 && read(done[0], &byte, 1) != 1)
            printf("   kill %d: the writer died before saving\n", k);
        struct timespec wait = {0, (long)(harness_uniform() * 60e6)};
        nanosleep(&wait, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(done[0]);
        torn += remove_temps(dir) > 0;
        uint64_t step = 0;
        bool ok = consistent(path, &step) && step >= seen;
        good += ok;
        if (!ok)
            printf("   kill %d: step %llu after %llu\n", k,
                   (unsigned long long)step, (unsigned long long)seen);
        seen = step;
    }
    printf("   %d kills, the latest checkpoint was whole after %d; %d kills hit a"
           " save in progress; reached step %llu\n", KILLS, good, torn,
           (unsigned long long)seen);
    CHECK(good == KILLS, "latest checkpoint whole after every kill");
    CHECK(seen > 0, "the writers completed saves between kills");
    CHECK_OK(bd_ckpt_verify(path));
    tmp_rmdir(dir);
}

int main(void)
{
    RUN(test_kill_during_saves);
    return harness_summary();
}
