/* Argument checks and output bookkeeping shared by the ops. */
#include "op.h"

#include <stdio.h>

bd_status bd_op_check_ndim(const char *op, const char *arg, const bd_tensor *t,
                           int lo, int hi)
{
    if (!t)
        return bd_fail(BD_E_ARG, "%s: %s is NULL", op, arg);
    if (t->ndim < lo || t->ndim > hi) {
        char s[64];
        if (lo == hi)
            return bd_fail(BD_E_ARG, "%s: %s has shape %s, expected %d dims",
                           op, arg, bd_shape_str(t, s, sizeof s), lo);
        return bd_fail(BD_E_ARG, "%s: %s has shape %s, expected %d to %d dims",
                       op, arg, bd_shape_str(t, s, sizeof s), lo, hi);
    }
    return BD_OK;
}

bd_status bd_op_check_dim(const char *op, const char *arg, const bd_tensor *t,
                          int dim, int64_t want)
{
    if (t->shape[dim] != want) {
        char s[64];
        return bd_fail(BD_E_ARG, "%s: %s has shape %s, expected dim %d = %lld",
                       op, arg, bd_shape_str(t, s, sizeof s), dim,
                       (long long)want);
    }
    return BD_OK;
}

bd_status bd_op_check_same(const char *op, const char *arg_a, const bd_tensor *a,
                           const char *arg_b, const bd_tensor *b)
{
    if (!bd_shape_equal(a, b)) {
        char sa[64], sb[64];
        return bd_fail(BD_E_ARG, "%s: %s has shape %s but %s has shape %s,"
                       " expected equal shapes", op, arg_b,
                       bd_shape_str(b, sb, sizeof sb), arg_a,
                       bd_shape_str(a, sa, sizeof sa));
    }
    return BD_OK;
}

bd_status bd_op_output(bd_tape *tp, int ndim, const int64_t *shape,
                       bd_tensor **y)
{
    bd_tensor *t = bd_tape_tensor(tp, ndim, shape);
    if (!t)
        return BD_E_NOMEM;
    *y = t;
    return BD_OK;
}

bd_status bd_op_finish(bd_tape *tp, bd_backward_fn backward, bd_tensor *y,
                       bd_tensor *const *in, int n_in, void *ctx)
{
    bd_tape_op_done(tp);
    if (!bd_tape_needs_node(tp, in, n_in))
        return BD_OK;
    return bd_tape_record(tp, backward, y, in, n_in, ctx);
}
