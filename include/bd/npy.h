/* NumPy .npy files (format 1.0), as numpy.load reads them: a float32 or
 * byte array, row-major, little-endian.
 *
 *   bd_npy_save("layer4.npy", BD_CKPT_F32, t->ndim, t->shape, t->data);
 *   >>> numpy.load("layer4.npy").shape      # (N, C, H, W)
 *
 * The header is the magic "\x93NUMPY", version 1.0, its length (u16), and
 * a Python dict {'descr': '<f4' or '|u1', 'fortran_order': False,
 * 'shape': (...), } padded with spaces and a newline so that the data
 * starts on a 64-byte boundary. */
#ifndef BD_NPY_H
#define BD_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "bd/ckpt.h"

/* The file image in a malloc'd buffer. dims: ndim (0 to 8) values >= 0. */
bd_status bd_npy_encode(bd_ckpt_dtype dtype, int ndim, const int64_t *dims,
                        const void *data, uint8_t **bytes, size_t *len);
/* Written atomically, as bd_ckpt_save. */
bd_status bd_npy_save(const char *path, bd_ckpt_dtype dtype, int ndim,
                      const int64_t *dims, const void *data);

#endif
