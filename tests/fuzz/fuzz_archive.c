/* libFuzzer target over the .bda reader: the input is written to a file,
 * opened, every step extracted and an EMA read alone from it (the seeds
 * have "ema.net.w"); then the same with the index CRC recomputed, so that
 * mutations of the header and index reach the parser. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bd/ckpt.h"
#include "ckpt/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void open_and_extract(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    size_t written = fwrite(data, 1, size, f);
    if (fclose(f) != 0 || written != size)
        return;
    bd_archive *a;
    if (bd_archive_open(path, &a) != BD_OK)
        return;
    for (size_t i = 0; i < bd_archive_count(a) && i < 64; i++) {
        uint8_t *bytes;
        size_t len;
        if (bd_archive_extract_mem(a, bd_archive_entry_at(a, i).step, &bytes,
                                   &len) == BD_OK)
            free(bytes);
    }
    for (size_t i = 0; i < bd_archive_count(a) && i < 8; i++) {
        bd_tensor *t;
        if (bd_archive_read_tensor(path, bd_archive_entry_at(a, i).step,
                                   "ema.net.w", &t) == BD_OK)
            bd_tensor_free(t);
    }
    bd_archive_close(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[256];
    if (!path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/bd_fuzz_archive_%ld.bda",
                 dir ? dir : "/tmp", (long)getpid());
    }
    open_and_extract(path, data, size);
    uint64_t index = size >= 64 ? bd_le64(data + 32) : 0;
    uint8_t *copy = index >= 64 && index <= size ? malloc(size) : NULL;
    if (copy) {
        memcpy(copy, data, size);
        memset(copy + 56, 0, 4);
        uint32_t crc = bd_crc32c(0, copy, 64);
        bd_put_le32(copy + 56, bd_crc32c(crc, copy + index, size - index));
        open_and_extract(path, copy, size);
        free(copy);
    }
    unlink(path);
    return 0;
}
