/* NumPy .npy writer (format 1.0; see bd/npy.h). */
#include "bd/npy.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "format.h"

#define NPY_PREAMBLE 10  /* magic, version, header length */
#define NPY_ALIGN    64

/* "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" into dict;
 * a 1-dim shape is "(n,)" as in Python. */
static int header_dict(bd_ckpt_dtype dtype, int ndim, const int64_t *dims,
                       char *dict, size_t len)
{
    int at = snprintf(dict, len, "{'descr': '%s', 'fortran_order': False,"
                      " 'shape': (", dtype == BD_CKPT_F32 ? "<f4" : "|u1");
    for (int d = 0; d < ndim; d++)
        at += snprintf(dict + at, len - (size_t)at, "%" PRId64 "%s", dims[d],
                       ndim == 1 ? "," : d + 1 < ndim ? ", " : "");
    return at + snprintf(dict + at, len - (size_t)at, "), }");
}

bd_status bd_npy_encode(bd_ckpt_dtype dtype, int ndim, const int64_t *dims,
                        const void *data, uint8_t **bytes, size_t *len)
{
    uint64_t nbytes;
    if (!bdc_elem_size(dtype) || ndim < 0 || ndim > BD_CKPT_MAX_DIMS
        || !bdc_nbytes(dtype, ndim, dims, &nbytes) || (nbytes && !data))
        return bd_fail(BD_E_ARG, "npy: dtype %d with %d dims, expected f32 or u8"
                       " with 0 to %d dims >= 0 and data", (int)dtype, ndim,
                       BD_CKPT_MAX_DIMS);
    char dict[512];
    const int n = header_dict(dtype, ndim, dims, dict, sizeof dict);
    /* the dict, spaces and '\n' fill the header to a multiple of 64 */
    const size_t header = ((size_t)n + NPY_PREAMBLE + 1 + NPY_ALIGN - 1) / NPY_ALIGN
                        * NPY_ALIGN - NPY_PREAMBLE;
    bd_buf b = {0};
    bd_buf_put(&b, "\x93NUMPY\x01\x00", 8);
    bd_buf_u16(&b, (uint16_t)header);
    bd_buf_put(&b, dict, (size_t)n);
    while (b.len < NPY_PREAMBLE + header - 1)
        bd_buf_u8(&b, ' ');
    bd_buf_u8(&b, '\n');
    bd_buf_put(&b, data, (size_t)nbytes);
    if (b.failed) {
        bd_buf_free(&b);
        return bd_fail(BD_E_NOMEM, "npy: out of memory for %" PRIu64 " bytes",
                       nbytes);
    }
    *bytes = b.data;
    *len = b.len;
    return BD_OK;
}

bd_status bd_npy_save(const char *path, bd_ckpt_dtype dtype, int ndim,
                      const int64_t *dims, const void *data)
{
    uint8_t *bytes;
    size_t len;
    BD_TRY(bd_npy_encode(dtype, ndim, dims, data, &bytes, &len));
    bd_status s = bd_write_file_atomic(path, bytes, len);
    free(bytes);
    return s;
}
