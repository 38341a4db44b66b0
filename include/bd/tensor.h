/* Tensors: float32, 1 to 4 dims, contiguous, row-major (NCHW for images).
 *
 * Two lifetimes:
 *   heap tensors  (bd_tensor_new)  parameters, optimizer state, datasets;
 *                                  freed with bd_tensor_free.
 *   arena tensors (bd_tape_tensor) per-step temporaries; they vanish when
 *                                  the tape is reset, so a warm training
 *                                  step allocates nothing.
 */
#ifndef BD_TENSOR_H
#define BD_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bd/status.h"

#define BD_MAX_DIMS 4

enum {
    BD_TENSOR_REQUIRES_GRAD = 1u << 0, /* backward accumulates into grad */
    BD_TENSOR_HEAP          = 1u << 1, /* data (and grad) owned by the tensor */
    BD_TENSOR_ARENA         = 1u << 2, /* one tape chunk with its data (bd_tape_tensor) */
    BD_TENSOR_KEPT          = 1u << 3, /* a tap holds it: bd_tape_release leaves it */
    BD_TENSOR_GRAD_UNSET    = 1u << 4, /* grad not written yet: holds garbage */
    BD_TENSOR_VIEW          = 1u << 5, /* data is a tape tensor's (bd_tape_view) */
    BD_TENSOR_PLANNED       = 1u << 6, /* the backward has planned its release */
};

typedef struct bd_tensor {
    float   *data;               /* numel floats */
    float   *grad;               /* numel floats, or NULL if none yet */
    int64_t  shape[BD_MAX_DIMS]; /* unused trailing dims are 1 */
    int64_t  numel;
    int      ndim;
    uint32_t flags;
} bd_tensor;

/* Check a shape (1..4 dims, each >= 1, product fits in memory) and return
 * its element count in *numel. Names `what` in the error. */
bd_status bd_shape_check(const char *what, int ndim, const int64_t *shape,
                         int64_t *numel);

/* Heap tensor filled with zeros. With requires_grad, a zeroed grad buffer is
 * allocated too. Returns NULL (and sets the error) on bad shape or no memory. */
bd_tensor *bd_tensor_new(int ndim, const int64_t *shape, bool requires_grad);
void bd_tensor_free(bd_tensor *t);

/* Convenience: bd_tensor_new with the dims spelt out (trailing zeros end the
 * list), e.g. bd_tensor_new4(64, 3, 32, 32, false) or bd_tensor_new4(10, 0, 0, 0, true). */
bd_tensor *bd_tensor_new4(int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                          bool requires_grad);

/* True when both tensors have the same ndim and dims. */
bool bd_shape_equal(const bd_tensor *a, const bd_tensor *b);

/* "(64, 3, 32, 32)" into buf; returns buf. */
const char *bd_shape_str(const bd_tensor *t, char *buf, size_t len);

void bd_tensor_fill(bd_tensor *t, float v);
void bd_tensor_zero_grad(bd_tensor *t);

/* Number of elements of dims [from, ndim). */
int64_t bd_tensor_inner(const bd_tensor *t, int from);

#endif
