/* Shared helpers for op implementations (not a public header). */
#ifndef BD_CORE_OP_H
#define BD_CORE_OP_H

#include "bd/ops.h"

/* Fails unless t is non-NULL with lo..hi dims; names op and argument. */
bd_status bd_op_check_ndim(const char *op, const char *arg, const bd_tensor *t,
                           int lo, int hi);

/* Fails unless dim `dim` of t equals `want`. */
bd_status bd_op_check_dim(const char *op, const char *arg, const bd_tensor *t,
                          int dim, int64_t want);

/* Fails unless a and b have the same shape. */
bd_status bd_op_check_same(const char *op, const char *arg_a, const bd_tensor *a,
                           const char *arg_b, const bd_tensor *b);

/* Allocate the output and, when needed, record its node: the tail of every
 * op's forward (with grad off, the op's bd_tape_alloc memory ends there).
 * *y is set only on success. */
bd_status bd_op_output(bd_tape *tp, int ndim, const int64_t *shape,
                       bd_tensor **y);
bd_status bd_op_finish(bd_tape *tp, bd_backward_fn backward, bd_tensor *y,
                       bd_tensor *const *in, int n_in, void *ctx);

#endif
