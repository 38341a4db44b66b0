/* The in-memory checkpoint: sorted typed key/values and sorted tensors. */
#include "format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bd_ckpt *bd_ckpt_new(void)
{
    bd_ckpt *ck = calloc(1, sizeof *ck);
    if (!ck)
        bd_fail(BD_E_NOMEM, "ckpt: out of memory");
    return ck;
}

static void kv_clear(bd_ckpt_kv *kv)
{
    if (kv->type == BD_CKPT_STR || kv->type == BD_CKPT_ARR_I64
        || kv->type == BD_CKPT_ARR_F64)
        free((void *)kv->v.str);
}

void bd_ckpt_free(bd_ckpt *ck)
{
    if (!ck)
        return;
    for (size_t i = 0; i < ck->n_kv; i++) {
        kv_clear(&ck->kvs[i]);
        free((void *)ck->kvs[i].key);
    }
    for (size_t i = 0; i < ck->n_tensors; i++) {
        free((void *)ck->tensors[i].name);
        free((void *)ck->tensors[i].data);
    }
    free(ck->kvs);
    free(ck->tensors);
    free(ck);
}

/* ---- names, dtypes, sizes ------------------------------------------------ */

bool bdc_name_ok(const char *name, size_t len, char *why, size_t why_len)
{
    if (len == 0 || len > BD_CKPT_NAME_MAX) {
        snprintf(why, why_len, "length %zu, expected 1 to %d", len,
                 BD_CKPT_NAME_MAX);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        bool word = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')
                 || ch == '_';
        bool dot_ok = ch == '.' && i > 0 && i + 1 < len && name[i - 1] != '.';
        if (!word && !dot_ok) {
            snprintf(why, why_len, "byte 0x%02x at %zu, expected dot-separated"
                     " [a-z0-9_] segments", ch, i);
            return false;
        }
    }
    return true;
}

static bd_status check_name(const char *what, const char *name)
{
    char why[96];
    if (!name)
        return bd_fail(BD_E_ARG, "ckpt: %s name is NULL", what);
    size_t len = strnlen(name, BD_CKPT_NAME_MAX + 1);
    if (!bdc_name_ok(name, len, why, sizeof why))
        return bd_fail(BD_E_ARG, "ckpt: bad %s name '%.*s': %s", what,
                       BD_CKPT_NAME_MAX, name, why);
    return BD_OK;
}

size_t bdc_elem_size(int dtype)
{
    switch (dtype) {
    case BD_CKPT_F32: return 4;
    case BD_CKPT_U8:  return 1;
    default:          return 0;
    }
}

const char *bdc_dtype_name(int dtype)
{
    switch (dtype) {
    case BD_CKPT_F32: return "f32";
    case BD_CKPT_U8:  return "u8";
    default:          return "?";
    }
}

const char *bdc_dims_str(int ndim, const int64_t *dims, char *buf, size_t len)
{
    size_t at = (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < ndim && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, i ? ", %lld" : "%lld",
                               (long long)dims[i]);
    if (at < len)
        snprintf(buf + at, len - at, ")");
    return buf;
}

const char *bdc_type_name(int type)
{
    static const char *const names[] = {"?", "u64", "i64", "f64", "str",
                                        "i64[]", "f64[]"};
    return type >= 1 && type <= 6 ? names[type] : "?";
}

bool bdc_nbytes(bd_ckpt_dtype dtype, int ndim, const int64_t *dims,
                uint64_t *nbytes)
{
    uint64_t n = bdc_elem_size(dtype);
    for (int i = 0; i < ndim; i++)
        if (dims[i] < 0 || __builtin_mul_overflow(n, (uint64_t)dims[i], &n))
            return false;
    *nbytes = n;
    return true;
}

/* ---- sorted arrays ------------------------------------------------------- */

/* Index of the first element whose name is >= name (elements are `size`
 * bytes apart, each starting with its name pointer). */
static size_t lower_bound(const void *base, size_t n, size_t size,
                          const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *at = *(const char *const *)((const char *)base + mid * size);
        if (strcmp(at, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Open a slot at index i of a growable array. */
static bool insert_slot(void **base, size_t *n, size_t *cap, size_t size,
                        size_t i)
{
    if (*n == *cap) {
        size_t grown_cap = *cap ? 2 * *cap : 16;
        void *grown = realloc(*base, grown_cap * size);
        if (!grown)
            return false;
        *base = grown;
        *cap = grown_cap;
    }
    char *b = *base;
    memmove(b + (i + 1) * size, b + i * size, (*n - i) * size);
    memset(b + i * size, 0, size);
    (*n)++;
    return true;
}

/* ---- key/values ---------------------------------------------------------- */

const bd_ckpt_kv *bd_ckpt_kv_find(const bd_ckpt *ck, const char *key)
{
    size_t i = lower_bound(ck->kvs, ck->n_kv, sizeof *ck->kvs, key);
    return i < ck->n_kv && strcmp(ck->kvs[i].key, key) == 0 ? &ck->kvs[i] : NULL;
}

size_t bd_ckpt_kv_count(const bd_ckpt *ck) { return ck->n_kv; }

const bd_ckpt_kv *bd_ckpt_kv_at(const bd_ckpt *ck, size_t i)
{
    return i < ck->n_kv ? &ck->kvs[i] : NULL;
}

/* The entry for key, emptied (created if absent). */
static bd_status kv_slot(bd_ckpt *ck, const char *key, bd_ckpt_kv **out)
{
    BD_TRY(check_name("key", key));
    size_t i = lower_bound(ck->kvs, ck->n_kv, sizeof *ck->kvs, key);
    if (i < ck->n_kv && strcmp(ck->kvs[i].key, key) == 0) {
        kv_clear(&ck->kvs[i]);
        const char *keep = ck->kvs[i].key;
        memset(&ck->kvs[i], 0, sizeof ck->kvs[i]);
        ck->kvs[i].key = keep;
    } else {
        char *copy = strdup(key);
        if (!copy || !insert_slot((void **)&ck->kvs, &ck->n_kv, &ck->cap_kv,
                                  sizeof *ck->kvs, i)) {
            free(copy);
            return bd_fail(BD_E_NOMEM, "ckpt: out of memory adding key '%s'", key);
        }
        ck->kvs[i].key = copy;
    }
    *out = &ck->kvs[i];
    return BD_OK;
}

static bd_status set_scalar(bd_ckpt *ck, const char *key, bd_ckpt_type type,
                            bd_ckpt_kv value)
{
    bd_ckpt_kv *kv;
    BD_TRY(kv_slot(ck, key, &kv));
    kv->type = type;
    kv->n = 1;
    kv->v = value.v;
    return BD_OK;
}

bd_status bd_ckpt_set_u64(bd_ckpt *ck, const char *key, uint64_t v)
{
    return set_scalar(ck, key, BD_CKPT_U64, (bd_ckpt_kv){.v.u64 = v});
}

bd_status bd_ckpt_set_i64(bd_ckpt *ck, const char *key, int64_t v)
{
    return set_scalar(ck, key, BD_CKPT_I64, (bd_ckpt_kv){.v.i64 = v});
}

bd_status bd_ckpt_set_f64(bd_ckpt *ck, const char *key, double v)
{
    return set_scalar(ck, key, BD_CKPT_F64, (bd_ckpt_kv){.v.f64 = v});
}

bd_status bdc_set_block(bd_ckpt *ck, const char *key, bd_ckpt_type type,
                        const void *v, size_t n)
{
    if (type != BD_CKPT_STR && n > (SIZE_MAX - 1) / 8)
        return bd_fail(BD_E_NOMEM, "ckpt: array '%s' of %zu elements", key, n);
    size_t bytes = type == BD_CKPT_STR ? n : n * 8;
    if (!v && bytes)
        return bd_fail(BD_E_ARG, "ckpt: value of '%s' is NULL", key);
    char *copy = malloc(bytes + 1);
    if (!copy)
        return bd_fail(BD_E_NOMEM, "ckpt: cannot copy %zu bytes for '%s'",
                       bytes, key);
    if (bytes)
        memcpy(copy, v, bytes);
    copy[bytes] = '\0';
    bd_ckpt_kv *kv;
    bd_status s = kv_slot(ck, key, &kv);
    if (s != BD_OK) {
        free(copy);
        return s;
    }
    kv->type = type;
    kv->n = n;
    kv->v.str = copy;
    return BD_OK;
}

bd_status bd_ckpt_set_str(bd_ckpt *ck, const char *key, const char *v)
{
    if (!v)
        return bd_fail(BD_E_ARG, "ckpt: value of '%s' is NULL", key);
    return bdc_set_block(ck, key, BD_CKPT_STR, v, strlen(v));
}

bd_status bd_ckpt_set_i64s(bd_ckpt *ck, const char *key, const int64_t *v,
                           size_t n)
{
    return bdc_set_block(ck, key, BD_CKPT_ARR_I64, v, n);
}

bd_status bd_ckpt_set_f64s(bd_ckpt *ck, const char *key, const double *v,
                           size_t n)
{
    return bdc_set_block(ck, key, BD_CKPT_ARR_F64, v, n);
}

static bd_status get_typed(const bd_ckpt *ck, const char *key,
                           bd_ckpt_type type, const bd_ckpt_kv **out)
{
    const bd_ckpt_kv *kv = key ? bd_ckpt_kv_find(ck, key) : NULL;
    if (!kv)
        return bd_fail(BD_E_ARG, "ckpt: no key '%s'", key ? key : "(null)");
    if (kv->type != type)
        return bd_fail(BD_E_ARG, "ckpt: key '%s' is %s, expected %s", key,
                       bdc_type_name(kv->type), bdc_type_name(type));
    *out = kv;
    return BD_OK;
}

bd_status bd_ckpt_get_u64(const bd_ckpt *ck, const char *key, uint64_t *v)
{
    const bd_ckpt_kv *kv = NULL;
    BD_TRY(get_typed(ck, key, BD_CKPT_U64, &kv));
    *v = kv->v.u64;
    return BD_OK;
}

bd_status bd_ckpt_get_i64(const bd_ckpt *ck, const char *key, int64_t *v)
{
    const bd_ckpt_kv *kv = NULL;
    BD_TRY(get_typed(ck, key, BD_CKPT_I64, &kv));
    *v = kv->v.i64;
    return BD_OK;
}

bd_status bd_ckpt_get_f64(const bd_ckpt *ck, const char *key, double *v)
{
    const bd_ckpt_kv *kv = NULL;
    BD_TRY(get_typed(ck, key, BD_CKPT_F64, &kv));
    *v = kv->v.f64;
    return BD_OK;
}

bd_status bd_ckpt_get_str(const bd_ckpt *ck, const char *key, const char **v)
{
    const bd_ckpt_kv *kv = NULL;
    BD_TRY(get_typed(ck, key, BD_CKPT_STR, &kv));
    *v = kv->v.str;
    return BD_OK;
}

bd_status bd_ckpt_get_i64s(const bd_ckpt *ck, const char *key,
                           const int64_t **v, size_t *n)
{
    const bd_ckpt_kv *kv = NULL;
    BD_TRY(get_typed(ck, key, BD_CKPT_ARR_I64, &kv));
    *v = kv->v.i64s;
    *n = (size_t)kv->n;
    return BD_OK;
}

bd_status bd_ckpt_get_f64s(const bd_ckpt *ck, const char *key,
                           const double **v, size_t *n)
{
    const bd_ckpt_kv *kv = NULL;
    BD_TRY(get_typed(ck, key, BD_CKPT_ARR_F64, &kv));
    *v = kv->v.f64s;
    *n = (size_t)kv->n;
    return BD_OK;
}

/* ---- tensors ------------------------------------------------------------- */

size_t bd_ckpt_tensor_count(const bd_ckpt *ck) { return ck->n_tensors; }

const bd_ckpt_tensor *bd_ckpt_tensor_at(const bd_ckpt *ck, size_t i)
{
    return i < ck->n_tensors ? &ck->tensors[i] : NULL;
}

const bd_ckpt_tensor *bd_ckpt_tensor_find(const bd_ckpt *ck, const char *name)
{
    size_t i = lower_bound(ck->tensors, ck->n_tensors, sizeof *ck->tensors, name);
    return i < ck->n_tensors && strcmp(ck->tensors[i].name, name) == 0
         ? &ck->tensors[i] : NULL;
}

bd_status bdc_tensor_new(bd_ckpt *ck, const char *name, bd_ckpt_dtype dtype,
                         int ndim, const int64_t *dims, bd_ckpt_tensor **out)
{
    BD_TRY(check_name("tensor", name));
    if (!bdc_elem_size(dtype))
        return bd_fail(BD_E_ARG, "ckpt: tensor '%s' has dtype %d, expected f32"
                       " (%d) or u8 (%d)", name, (int)dtype, BD_CKPT_F32,
                       BD_CKPT_U8);
    if (ndim < 0 || ndim > BD_CKPT_MAX_DIMS)
        return bd_fail(BD_E_ARG, "ckpt: tensor '%s' has %d dims, expected 0 to"
                       " %d", name, ndim, BD_CKPT_MAX_DIMS);
    uint64_t nbytes;
    if (!bdc_nbytes(dtype, ndim, dims, &nbytes) || nbytes > BDC_RAW_MAX)
        return bd_fail(BD_E_ARG, "ckpt: tensor '%s' has negative dims or more"
                       " than %llu bytes", name, (unsigned long long)BDC_RAW_MAX);
    size_t i = lower_bound(ck->tensors, ck->n_tensors, sizeof *ck->tensors, name);
    if (i < ck->n_tensors && strcmp(ck->tensors[i].name, name) == 0)
        return bd_fail(BD_E_ARG, "ckpt: tensor '%s' added twice", name);
    char *copy = strdup(name);
    if (!copy || !insert_slot((void **)&ck->tensors, &ck->n_tensors,
                              &ck->cap_tensors, sizeof *ck->tensors, i)) {
        free(copy);
        return bd_fail(BD_E_NOMEM, "ckpt: out of memory adding tensor '%s'", name);
    }
    bd_ckpt_tensor *t = &ck->tensors[i];
    t->name = copy;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->dims[d] = dims[d];
    t->nbytes = nbytes;
    *out = t;
    return BD_OK;
}

/* Remove the entry named `name` (used to undo a failed add). */
static void tensor_remove(bd_ckpt *ck, const char *name)
{
    size_t i = lower_bound(ck->tensors, ck->n_tensors, sizeof *ck->tensors, name);
    free((void *)ck->tensors[i].name);
    free((void *)ck->tensors[i].data);
    memmove(&ck->tensors[i], &ck->tensors[i + 1],
            (ck->n_tensors - i - 1) * sizeof *ck->tensors);
    ck->n_tensors--;
}

bd_status bd_ckpt_add_array(bd_ckpt *ck, const char *name, bd_ckpt_dtype dtype,
                            int ndim, const int64_t *dims, const void *data)
{
    bd_ckpt_tensor *t;
    BD_TRY(bdc_tensor_new(ck, name, dtype, ndim, dims, &t));
    if (!data && t->nbytes) {
        tensor_remove(ck, name);
        return bd_fail(BD_E_ARG, "ckpt: tensor '%s' has NULL data", name);
    }
    void *copy = malloc(t->nbytes ? t->nbytes : 1);
    if (!copy) {
        tensor_remove(ck, name);
        return bd_fail(BD_E_NOMEM, "ckpt: cannot copy tensor '%s'", name);
    }
    if (t->nbytes)
        memcpy(copy, data, t->nbytes);
    t->data = copy;
    return BD_OK;
}

bd_status bd_ckpt_add_tensor(bd_ckpt *ck, const char *name, const bd_tensor *t)
{
    if (!t)
        return bd_fail(BD_E_ARG, "ckpt: tensor '%s' is NULL", name ? name : "");
    return bd_ckpt_add_array(ck, name, BD_CKPT_F32, t->ndim, t->shape, t->data);
}

bd_status bd_ckpt_add_bytes(bd_ckpt *ck, const char *name, const void *data,
                            size_t n)
{
    int64_t dims[1] = {(int64_t)n};
    return bd_ckpt_add_array(ck, name, BD_CKPT_U8, 1, dims, data);
}

/* The float32 tensor `name` with 1..4 dims, each >= 1. */
static bd_status find_f32(const bd_ckpt *ck, const char *name,
                          const bd_ckpt_tensor **out)
{
    const bd_ckpt_tensor *t = name ? bd_ckpt_tensor_find(ck, name) : NULL;
    if (!t)
        return bd_fail(BD_E_ARG, "ckpt: no tensor '%s'", name ? name : "(null)");
    if (t->dtype != BD_CKPT_F32)
        return bd_fail(BD_E_ARG, "ckpt: tensor '%s' is %s, expected f32", name,
                       bdc_dtype_name(t->dtype));
    if (t->ndim < 1 || t->ndim > BD_MAX_DIMS)
        return bd_fail(BD_E_ARG, "ckpt: tensor '%s' has %d dims, a bd_tensor"
                       " holds 1 to %d", name, t->ndim, BD_MAX_DIMS);
    *out = t;
    return BD_OK;
}

bd_status bd_ckpt_get_tensor(const bd_ckpt *ck, const char *name,
                             bd_tensor **out)
{
    const bd_ckpt_tensor *t = NULL;
    BD_TRY(find_f32(ck, name, &t));
    bd_tensor *x = bd_tensor_new(t->ndim, t->dims, false);
    if (!x)
        return bd_fail(BD_E_ARG, "ckpt: tensor '%s': %s", name, bd_last_error());
    memcpy(x->data, t->data, t->nbytes);
    *out = x;
    return BD_OK;
}

bd_status bd_ckpt_read_into(const bd_ckpt *ck, const char *name, bd_tensor *x)
{
    const bd_ckpt_tensor *t = NULL;
    BD_TRY(find_f32(ck, name, &t));
    bool same = t->ndim == x->ndim;
    for (int d = 0; same && d < t->ndim; d++)
        same = t->dims[d] == x->shape[d];
    if (!same) {
        char got[160], want[96];
        return bd_fail(BD_E_ARG, "ckpt: tensor '%s' has shape %s, expected %s",
                       name, bdc_dims_str(t->ndim, t->dims, got, sizeof got),
                       bd_shape_str(x, want, sizeof want));
    }
    memcpy(x->data, t->data, t->nbytes);
    return BD_OK;
}
