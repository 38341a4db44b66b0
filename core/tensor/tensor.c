/* Heap tensors and shape helpers. */
#include "bd/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest element count we accept: keeps numel * sizeof(float) * 4 (data,
 * grad and optimizer moments) far from size_t overflow. */
#define BD_MAX_NUMEL ((int64_t)1 << 40)

bd_status bd_shape_check(const char *what, int ndim, const int64_t *shape,
                         int64_t *numel)
{
    if (ndim < 1 || ndim > BD_MAX_DIMS)
        return bd_fail(BD_E_ARG, "%s: %d dims, expected 1 to %d", what, ndim,
                       BD_MAX_DIMS);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1)
            return bd_fail(BD_E_ARG, "%s: dim %d is %lld, expected >= 1", what,
                           i, (long long)shape[i]);
        if (shape[i] > BD_MAX_NUMEL / n)
            return bd_fail(BD_E_NOMEM, "%s: %lld elements at dim %d overflow the"
                           " limit of %lld", what, (long long)n, i,
                           (long long)BD_MAX_NUMEL);
        n *= shape[i];
    }
    *numel = n;
    return BD_OK;
}

static void *alloc_floats(int64_t n)
{
    void *p = NULL;
    size_t bytes = ((size_t)n * sizeof(float) + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, bytes) != 0)
        return NULL;
    memset(p, 0, bytes);
    return p;
}

/* n zero floats, 64-byte aligned, for a grad: from calloc, so a large
 * buffer is fresh pages that the kernel maps only when first written and
 * a grad never used (a model that only samples) takes no memory. calloc's
 * pointer is kept just before the buffer, for grad_free. */
static float *grad_alloc(int64_t n)
{
    unsigned char *raw = calloc(1, (size_t)n * sizeof(float) + 64 + sizeof(void *));
    if (!raw)
        return NULL;
    const uintptr_t at = ((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63;
    memcpy((void **)at - 1, &raw, sizeof raw);
    return (float *)at;
}

static void grad_free(float *g)
{
    if (!g)
        return;
    void *raw;
    memcpy(&raw, (void **)g - 1, sizeof raw);
    free(raw);
}

bd_tensor *bd_tensor_new(int ndim, const int64_t *shape, bool requires_grad)
{
    int64_t numel;
    if (bd_shape_check("tensor", ndim, shape, &numel) != BD_OK)
        return NULL;
    bd_tensor *t = calloc(1, sizeof *t);
    if (!t)
        goto nomem;
    t->data = alloc_floats(numel);
    if (!t->data)
        goto nomem;
    if (requires_grad) {
        t->grad = grad_alloc(numel);
        if (!t->grad)
            goto nomem;
        t->flags |= BD_TENSOR_REQUIRES_GRAD;
    }
    for (int i = 0; i < BD_MAX_DIMS; i++)
        t->shape[i] = i < ndim ? shape[i] : 1;
    t->ndim = ndim;
    t->numel = numel;
    t->flags |= BD_TENSOR_HEAP;
    return t;
nomem:
    bd_tensor_free(t);
    bd_fail(BD_E_NOMEM, "tensor: cannot allocate %lld floats", (long long)numel);
    return NULL;
}

bd_tensor *bd_tensor_new4(int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                          bool requires_grad)
{
    int64_t shape[BD_MAX_DIMS] = {d0, d1, d2, d3};
    int ndim = 0;
    while (ndim < BD_MAX_DIMS && shape[ndim] != 0)
        ndim++;
    return bd_tensor_new(ndim, shape, requires_grad);
}

void bd_tensor_free(bd_tensor *t)
{
    if (!t)
        return;
    if (t->flags & BD_TENSOR_HEAP) {
        free(t->data);
        grad_free(t->grad);
    }
    free(t);
}

bool bd_shape_equal(const bd_tensor *a, const bd_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

const char *bd_shape_str(const bd_tensor *t, char *buf, size_t len)
{
    size_t at = 0;
    at += (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < t->ndim && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, i ? ", %lld" : "%lld",
                               (long long)t->shape[i]);
    if (at < len)
        snprintf(buf + at, len - at, ")");
    return buf;
}

void bd_tensor_fill(bd_tensor *t, float v)
{
    for (int64_t i = 0; i < t->numel; i++)
        t->data[i] = v;
}

void bd_tensor_zero_grad(bd_tensor *t)
{
    if (t->grad)
        memset(t->grad, 0, (size_t)t->numel * sizeof(float));
}

int64_t bd_tensor_inner(const bd_tensor *t, int from)
{
    int64_t n = 1;
    for (int i = from; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}
