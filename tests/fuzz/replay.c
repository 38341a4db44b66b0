/* Replays a fuzz target's corpus without libFuzzer (any compiler): every
 * file of every folder given is passed to LLVMFuzzerTestOneInput once.
 * Prints how many inputs ran; a crash or sanitizer report fails the test. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        printf("cannot open corpus '%s'\n", dir);
        return -1;
    }
    int n = 0;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        uint8_t *bytes;
        size_t len;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (bd_read_file(path, &bytes, &len) != BD_OK)
            continue;
        LLVMFuzzerTestOneInput(bytes, len);
        free(bytes);
        n++;
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    int total = 0;
    for (int i = 1; i < argc; i++) {
        int n = replay_dir(argv[i]);
        if (n < 0)
            return 1;
        total += n;
    }
    printf("%d inputs replayed\n", total);
    return total > 0 ? 0 : 1;
}
