/* A denoiser instance as the core sees it, whatever plugin made it, and the
 * taps through which a caller reads internal activations in the same pass. */
#ifndef BD_MODEL_H
#define BD_MODEL_H

#include "bd/config.h"
#include "bd/nn.h"
#include "bd/tape.h"

#define BD_MAX_TAPS 16

/* Requested activations. Before a forward pass the caller sets names[0..n);
 * during it the denoiser offers every activation it names and the ones
 * requested are kept in values[] (tensors on the tape: valid until reset). */
typedef struct bd_taps {
    int         n;
    const char *names[BD_MAX_TAPS];
    bd_tensor  *values[BD_MAX_TAPS];
} bd_taps;

/* Keep `value` if `name` was requested; a no-op when taps is NULL. */
void bd_taps_offer(bd_taps *taps, const char *name, bd_tensor *value);

typedef enum bd_prediction {
    BD_PREDICT_EPS, /* the noise */
    BD_PREDICT_X0,  /* the clean image */
    BD_PREDICT_V,   /* v = sqrt(abar) eps - sqrt(1 - abar) x0 */
} bd_prediction;

typedef struct bd_model {
    char           arch[64];   /* denoiser name, e.g. "unet" */
    bd_config     *config;     /* the keys it was made with (owned; NULL for
                                  a model not made by bd_model_create) */
    bd_params     *params;     /* owned */
    void          *state;      /* owned by the denoiser */
    int64_t        channels, size;  /* images: (N, channels, size, size) */
    /* x_t: (N, C, H, W), t: (N) timesteps as floats, cond: (N, 2) the (x, y)
     * label -> out: (N, C, H, W) */
    bd_status (*forward)(void *state, bd_tape *tp, bd_tensor *x_t, bd_tensor *t,
                         bd_tensor *cond, bd_taps *taps, bd_tensor **out);
    void      (*destroy)(void *state);
} bd_model;

/* Destroy the denoiser state and free the parameters and the model. */
void bd_model_free(bd_model *m);

#endif
