/* Joining two datasets split by split. */
#include "bd/data.h"

#include <stdlib.h>
#include <string.h>

/* t: rows of a, then rows of b (either may be NULL).  -> (na + nb, ...) */
static bd_status join(const bd_tensor *a, const bd_tensor *b, bd_tensor **out)
{
    const bd_tensor *like = a ? a : b;
    if (!like)
        return BD_OK;
    int64_t shape[BD_MAX_DIMS];
    memcpy(shape, like->shape, sizeof shape);
    shape[0] = (a ? a->shape[0] : 0) + (b ? b->shape[0] : 0);
    bd_tensor *t = bd_tensor_new(like->ndim, shape, false);
    if (!t)
        return BD_E_NOMEM;
    size_t na = a ? (size_t)a->numel : 0;
    if (a)
        memcpy(t->data, a->data, na * sizeof(float));
    if (b)
        memcpy(t->data + na, b->data, (size_t)b->numel * sizeof(float));
    *out = t;
    return BD_OK;
}

static bd_status join_split(const bd_split *a, const bd_split *b, bd_split *out)
{
    out->n = a->n + b->n;
    BD_TRY(join(a->images, b->images, &out->images));
    return join(a->labels, b->labels, &out->labels);
}

bd_status bd_dataset_concat(const bd_dataset *a, const bd_dataset *b,
                            bd_dataset **out)
{
    if (!a || !b)
        return bd_fail(BD_E_ARG, "dataset concat: a dataset is NULL");
    if (a->spec.size != b->spec.size)
        return bd_fail(BD_E_ARG, "dataset concat: images of %lldx%lld and"
                       " %lldx%lld, expected the same size",
                       (long long)a->spec.size, (long long)a->spec.size,
                       (long long)b->spec.size, (long long)b->spec.size);
    bd_dataset *d = calloc(1, sizeof *d);
    if (!d)
        return bd_fail(BD_E_NOMEM, "dataset concat: out of memory");
    d->spec = a->spec;
    bd_status st = join_split(&a->train, &b->train, &d->train);
    if (st == BD_OK)
        st = join_split(&a->held, &b->held, &d->held);
    if (st != BD_OK) {
        bd_dataset_free(d);
        return st;
    }
    *out = d;
    return BD_OK;
}
