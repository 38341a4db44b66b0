/* libFuzzer target over the safetensors reader. A file that loads must
 * encode and load back with the same tensors and keys. The seeds in
 * corpus_safetensors/ were written by tests/reference/bd_torch.py's
 * save_safetensors (small.safetensors) and by hand (spaced.safetensors: other
 * spacing, field order, escapes, a U8 scalar, an empty tensor). */
#include <stdlib.h>

#include "bd/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bd_ckpt *ck, *back;
    uint8_t *bytes;
    size_t len;
    if (bd_safetensors_load_mem(data, size, "fuzz", &ck) != BD_OK)
        return 0;
    if (bd_safetensors_encode(ck, &bytes, &len) != BD_OK)
        abort();  /* strings only: every loaded file encodes */
    if (bd_safetensors_load_mem(bytes, len, "fuzz:again", &back) != BD_OK
        || bd_ckpt_tensor_count(back) != bd_ckpt_tensor_count(ck)
        || bd_ckpt_kv_count(back) != bd_ckpt_kv_count(ck))
        abort();  /* what we wrote we must read */
    bd_ckpt_free(back);
    bd_ckpt_free(ck);
    free(bytes);
    return 0;
}
