/* libFuzzer target over the .bdc reader. Each input is read as it is, then
 * again with its index CRC recomputed so that mutations of the header and
 * index reach the parser instead of stopping at the CRC. A checkpoint that
 * loads must encode and load back to the same contents. */
#include <stdlib.h>
#include <string.h>

#include "bd/ckpt.h"
#include "ckpt/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Re-encode a loaded checkpoint and read it back: it must load. */
static void round_trip(const bd_ckpt *ck)
{
    uint8_t *bytes;
    size_t len;
    bd_ckpt *back;
    bd_ckpt_save_opts raw = {.level = 0};
    if (bd_ckpt_encode(ck, &raw, &bytes, &len) != BD_OK)
        return;
    if (bd_ckpt_load_mem(bytes, len, "fuzz:again", &back) != BD_OK)
        abort();  /* what we wrote we must read */
    if (bd_ckpt_tensor_count(back) != bd_ckpt_tensor_count(ck)
        || bd_ckpt_kv_count(back) != bd_ckpt_kv_count(ck))
        abort();
    bd_ckpt_free(back);
    free(bytes);
}

static void load(const uint8_t *data, size_t size)
{
    bd_ckpt *ck;
    if (bd_ckpt_load_mem(data, size, "fuzz", &ck) == BD_OK) {
        round_trip(ck);
        bd_ckpt_free(ck);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load(data, size);
    if (size < BDC_HEADER_SIZE || bd_le64(data + 40) > size
        || bd_le64(data + 40) < BDC_HEADER_SIZE)
        return 0;
    uint8_t *copy = malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    bd_put_le32(copy + 56, bdc_meta_crc(copy, bd_le64(copy + 40)));
    load(copy, size);
    free(copy);
    return 0;
}
