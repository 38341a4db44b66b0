/* safetensors files (Hugging Face's format, the one PyTorch users load with
 * safetensors.torch.load_file) and the names of the unet's parameters in
 * the PyTorch recipe (tests/bench/unet_torch.py).
 *
 * A file is an 8-byte little-endian length N, N bytes of JSON
 *   {"__metadata__": {"key": "value", ...},
 *    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...}
 * (padded with spaces), then the tensors' bytes, row-major, little-endian.
 * Offsets count from the end of the JSON; the tensors tile the data exactly:
 * no overlap, no gap, nothing after the last.
 *
 * In bd such a file is a bd_ckpt: its tensors (F32 and U8; other dtypes are
 * refused) and its metadata as string keys. Names follow the checkpoint's
 * rules (bd/ckpt.h), which the recipe's names do.
 *
 * Errors: a file that fails a check gives BD_E_FORMAT with a message
 * "safetensors '<path>': <check> (found X, expected Y)". */
#ifndef BD_SAFETENSORS_H
#define BD_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bd/ckpt.h"

/* Headers longer than this are refused (as the reference implementation). */
#define BD_SAFETENSORS_HEADER_MAX (100u << 20)

/* Read and validate a file; nothing is returned unless every check passes. */
bd_status bd_safetensors_load(const char *path, bd_ckpt **out);
/* The same from memory; `name` stands for the path in messages. */
bd_status bd_safetensors_load_mem(const void *bytes, size_t len,
                                  const char *name, bd_ckpt **out);

/* ck's tensors in name order, and its keys as __metadata__ strings
 * (integers in decimal, doubles as %.17g; an array key is refused). The JSON
 * is padded so that the data starts on an 8-byte boundary. */
bd_status bd_safetensors_encode(const bd_ckpt *ck, uint8_t **bytes, size_t *len);
/* Written atomically, as bd_ckpt_save. */
bd_status bd_safetensors_save(const bd_ckpt *ck, const char *path);

/* ---- the unet's names in the PyTorch recipe ------------------------------ */

/* The recipe's name of a unet parameter ("down1.attn.qkv.weight" ->
 * "down.0.attn.mha.in_proj_weight"), or with to_torch false the reverse.
 * False if `name` is not a parameter name of the other side or out is
 * too short. */
bool bd_unet_torch_name(const char *name, bool to_torch, char *out, size_t len);

/* A unet checkpoint's weights (with ema, its EMA weights) under the
 * recipe's names, and as metadata bd.arch, bd.arch.config.* (width, size,
 * emb, ...), bd.step, bd.diffusion.*, bd.weights ("ema" or "weights") and
 * format = "pt": what `bdrun ckpt export CKPT OUT.safetensors` writes. */
bd_status bd_unet_to_torch(const bd_ckpt *ck, bool ema, bd_ckpt **out);
/* The reverse, from a file of the recipe's names (an export, or a PyTorch
 * state_dict): bd names, bd.arch = "unet", bd.step and bd.diffusion.* typed
 * back from their strings, bd.arch.config.* as numbers where they read as
 * one (then bd.kind = "model": bd.ckpt.load_model rebuilds it). The
 * recipe's "freq" buffer is checked against the frequencies bd computes
 * and dropped; any other name is refused. */
bd_status bd_unet_from_torch(const bd_ckpt *st, bd_ckpt **out);

#endif
