/* A named set of trainable parameters, in the order they were added. */
#include "bd/nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bd_params {
    char      **names;
    bd_tensor **tensors;
    int         n, cap;
};

bd_params *bd_params_new(void)
{
    bd_params *p = calloc(1, sizeof *p);
    if (!p)
        bd_fail(BD_E_NOMEM, "params: out of memory");
    return p;
}

void bd_params_free(bd_params *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++) {
        free(p->names[i]);
        bd_tensor_free(p->tensors[i]);
    }
    free(p->names);
    free(p->tensors);
    free(p);
}

static bool name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
}

/* Dotted path of non-empty components of [a-z0-9_], 1 to BD_PARAM_NAME_MAX
 * characters. */
static bd_status check_name(const char *name)
{
    if (!name)
        return bd_fail(BD_E_ARG, "params: name is NULL");
    size_t len = strlen(name);
    if (len == 0 || len > BD_PARAM_NAME_MAX)
        return bd_fail(BD_E_ARG, "params: name \"%.40s\" has %zu characters,"
                       " expected 1 to %d", name, len, BD_PARAM_NAME_MAX);
    for (size_t i = 0; i < len; i++)
        if (!name_char_ok(name[i]))
            return bd_fail(BD_E_ARG, "params: name \"%s\" has '%c' at %zu,"
                           " expected only [a-z0-9_.]", name, name[i], i);
    if (name[0] == '.' || name[len - 1] == '.')
        return bd_fail(BD_E_ARG, "params: name \"%s\" %s with a dot, expected"
                       " a dotted path like \"down1.conv.weight\"", name,
                       name[0] == '.' ? "starts" : "ends");
    if (strstr(name, ".."))
        return bd_fail(BD_E_ARG, "params: name \"%s\" has a double dot (an empty"
                       " component)", name);
    return BD_OK;
}

static bd_status grow(bd_params *p)
{
    if (p->n < p->cap)
        return BD_OK;
    int cap = p->cap ? 2 * p->cap : 16;
    char **names = realloc(p->names, (size_t)cap * sizeof *names);
    if (!names)
        return bd_fail(BD_E_NOMEM, "params: out of memory for %d parameters", cap);
    p->names = names;
    bd_tensor **tensors = realloc(p->tensors, (size_t)cap * sizeof *tensors);
    if (!tensors)
        return bd_fail(BD_E_NOMEM, "params: out of memory for %d parameters", cap);
    p->tensors = tensors;
    p->cap = cap;
    return BD_OK;
}

bd_status bd_params_add(bd_params *p, const char *name, int ndim,
                        const int64_t *shape, bd_tensor **out)
{
    if (!p)
        return bd_fail(BD_E_ARG, "params: set is NULL");
    BD_TRY(check_name(name));
    if (bd_params_find(p, name))
        return bd_fail(BD_E_ARG, "params: duplicate name \"%s\"", name);
    char what[BD_PARAM_NAME_MAX + 16];
    snprintf(what, sizeof what, "params: %s", name);
    int64_t numel;
    BD_TRY(bd_shape_check(what, ndim, shape, &numel));
    BD_TRY(grow(p));
    char *copy = malloc(strlen(name) + 1);
    bd_tensor *t = copy ? bd_tensor_new(ndim, shape, true) : NULL;
    if (!t) {
        free(copy);
        return bd_fail(BD_E_NOMEM, "params: out of memory for \"%s\" (%lld"
                       " floats)", name, (long long)numel);
    }
    strcpy(copy, name);
    p->names[p->n] = copy;
    p->tensors[p->n] = t;
    p->n++;
    if (out)
        *out = t;
    return BD_OK;
}

int bd_params_count(const bd_params *p) { return p->n; }

bd_tensor *bd_params_at(const bd_params *p, int i)
{
    return i >= 0 && i < p->n ? p->tensors[i] : NULL;
}

const char *bd_params_name(const bd_params *p, int i)
{
    return i >= 0 && i < p->n ? p->names[i] : NULL;
}

bd_tensor *bd_params_find(const bd_params *p, const char *name)
{
    if (!name)
        return NULL;
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->names[i], name) == 0)
            return p->tensors[i];
    return NULL;
}

int64_t bd_params_numel(const bd_params *p)
{
    int64_t n = 0;
    for (int i = 0; i < p->n; i++)
        n += p->tensors[i]->numel;
    return n;
}

void bd_params_zero_grad(bd_params *p)
{
    for (int i = 0; i < p->n; i++)
        bd_tensor_zero_grad(p->tensors[i]);
}

double bd_params_grad_norm(const bd_params *p)
{
    double acc = 0.0;
    for (int i = 0; i < p->n; i++) {
        const bd_tensor *t = p->tensors[i];
        for (int64_t j = 0; j < t->numel; j++)
            acc += (double)t->grad[j] * t->grad[j];
    }
    return sqrt(acc);
}
