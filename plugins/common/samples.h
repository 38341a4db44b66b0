/* Activations and labels collected over batches, for the metrics that look
 * at representations (manifold, factorization). A plugin-side helper:
 * static functions over the host table, included as "common/samples.h"
 * (plugins/CMakeLists.txt puts plugins/ on every plugin's include path).
 *
 * The activations of a batch are the tap named `tap` when the batch carries
 * taps, else the batch's images themselves, so both of
 *     m(images, labels, { layer4 = t })   and   m(t, labels)
 * measure the tap t. A metric configured with `tap` explicitly needs that
 * tap: a batch without taps is refused rather than measured as pixels.
 * Each sample's activation is flattened to d values. */
#ifndef BD_PLUGIN_COMMON_SAMPLES_H
#define BD_PLUGIN_COMMON_SAMPLES_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bd/plugin.h"

typedef struct samples {
    const char *owner;   /* the metric's name, for messages */
    char        tap[64];
    bool        tap_required; /* `tap` was configured: the batch must have it */
    float      *x;       /* (n, d) */
    float      *labels;  /* (n, 2) */
    int64_t     n, d, cap;
} samples;

static inline void samples_free(samples *s)
{
    free(s->x);
    free(s->labels);
    s->x = s->labels = NULL;
}

/* Read the config key "tap" (default "layer4"). */
static inline bd_status samples_init(samples *s, const bd_host *h,
                                     bd_config *cfg, const char *owner)
{
    const char *tap;
    memset(s, 0, sizeof *s);
    s->owner = owner;
    BD_TRY(h->config_str(cfg, "tap", NULL, &tap));
    s->tap_required = tap != NULL;
    if (!tap)
        tap = "layer4";
    if (strlen(tap) == 0 || strlen(tap) >= sizeof s->tap)
        return h->fail(BD_E_ARG, "%s: tap = '%s', expected a name of 1 to %d"
                       " characters", owner, tap, (int)sizeof s->tap - 1);
    strcpy(s->tap, tap);
    return BD_OK;
}

/* Append the batch's activations and labels. */
static inline bd_status samples_add(samples *s, const bd_host *h,
                                    const bd_metric_batch *b)
{
    bd_tensor *act = b->images;
    if (!b->taps && s->tap_required)
        return h->fail(BD_E_ARG, "%s: tap = '%s', but the batch has no taps"
                       " (pass bd.sample's result made with taps = {'%s'}, or"
                       " the taps as the third argument; without tap = ...,"
                       " the first argument itself is measured)", s->owner,
                       s->tap, s->tap);
    if (b->taps && !(act = h->taps_get(b->taps, s->tap)))
        return h->fail(BD_E_ARG, "%s: the batch has no tap '%s' (set tap = the"
                       " name of one it has)", s->owner, s->tap);
    int64_t n = h->tensor_dim(act, 0), d = h->tensor_numel(act) / (n ? n : 1);
    if (n != h->tensor_dim(b->labels, 0))
        return h->fail(BD_E_ARG, "%s: tap '%s' has %lld samples for %lld"
                       " labels", s->owner, s->tap, (long long)n,
                       (long long)h->tensor_dim(b->labels, 0));
    if (s->n > 0 && d != s->d)
        return h->fail(BD_E_ARG, "%s: activations of %lld values per sample,"
                       " earlier batches had %lld", s->owner, (long long)d,
                       (long long)s->d);
    if (s->n + n > s->cap) {
        int64_t cap = s->cap ? s->cap : 256;
        while (cap < s->n + n)
            cap *= 2;
        float *x = realloc(s->x, (size_t)(cap * d) * sizeof *x);
        if (x)
            s->x = x;
        float *l = realloc(s->labels, (size_t)(cap * 2) * sizeof *l);
        if (l)
            s->labels = l;
        if (!x || !l)
            return h->fail(BD_E_NOMEM, "%s: out of memory for %lld samples of"
                           " %lld values", s->owner, (long long)cap, (long long)d);
        s->cap = cap;
    }
    memcpy(s->x + s->n * d, h->tensor_data(act), (size_t)(n * d) * sizeof(float));
    memcpy(s->labels + s->n * 2, h->tensor_data(b->labels),
           (size_t)(n * 2) * sizeof(float));
    s->d = d;
    s->n += n;
    return BD_OK;
}

#endif
