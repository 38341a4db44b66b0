/* The tape: nodes recorded in forward order, replayed in reverse. */
#include "bd/tape.h"

#include <stdlib.h>
#include <string.h>

/* A piece of an op's saved state: bd_tape_alloc with grad on. */
typedef struct saved_chunk {
    void  *p;
    size_t bytes;
} saved_chunk;

/* A tensor chunk the backward hands back once node `node` has run. */
typedef struct planned_release {
    size_t     node;
    bd_tensor *chunk;
} planned_release;

struct bd_tape {
    bd_arena  arena;     /* tensors, grads, and with grad on the ops' saved state */
    bd_arena  scratch;   /* with grad off: the running op's state, emptied as it ends */
    bd_node  *nodes;     /* heap array; grows while warming up, then reused */
    size_t   *saved_end; /* per node: saved[] below this was allocated before it */
    size_t    n_nodes;
    size_t    cap_nodes;
    saved_chunk *saved;  /* with grad on, every bd_tape_alloc since the reset */
    size_t    n_saved, cap_saved;
    planned_release *plan; /* in node order: the backward pops from the end */
    size_t    n_plan, cap_plan;
    bool      grad_enabled;
    bool      keep;      /* the backward hands nothing back */
    bool      consumed;  /* backward ran since the last reset */
};

bd_tape *bd_tape_new(void)
{
    bd_tape *tp = calloc(1, sizeof *tp);
    if (!tp)
        return bd_fail(BD_E_NOMEM, "tape: out of memory"), NULL;
    bd_arena_init(&tp->arena);
    bd_arena_init(&tp->scratch);
    tp->grad_enabled = true;
    return tp;
}

void bd_tape_free(bd_tape *tp)
{
    if (!tp)
        return;
    bd_arena_free(&tp->arena);
    bd_arena_free(&tp->scratch);
    free(tp->nodes);
    free(tp->saved_end);
    free(tp->saved);
    free(tp->plan);
    free(tp);
}

void bd_tape_reset(bd_tape *tp)
{
    bd_arena_reset(&tp->arena);
    bd_arena_reset(&tp->scratch);
    tp->n_nodes = 0;
    tp->n_saved = 0;
    tp->n_plan = 0;
    tp->consumed = false;
}

bool bd_tape_set_grad(bd_tape *tp, bool enabled)
{
    bool was = tp->grad_enabled;
    tp->grad_enabled = enabled;
    return was;
}

bool bd_tape_grad_enabled(const bd_tape *tp) { return tp->grad_enabled; }

bool bd_tape_set_keep(bd_tape *tp, bool keep)
{
    bool was = tp->keep;
    tp->keep = keep;
    return was;
}

size_t bd_tape_arena_used(const bd_tape *tp) { return tp->arena.used; }
size_t bd_tape_arena_peak(const bd_tape *tp)
{
    return tp->arena.peak + tp->scratch.peak;
}

/* Double *cap (256 at first) and realloc *array to hold that many items
 * of `size` bytes; *array is left as it was on failure. */
static bd_status grow(void **array, size_t *cap, size_t size, const char *what)
{
    const size_t n = *cap ? *cap * 2 : 256;
    void *grown = realloc(*array, n * size);
    if (!grown)
        return bd_fail(BD_E_NOMEM, "tape: cannot grow to %zu %s", n, what);
    *array = grown;
    *cap = n;
    return BD_OK;
}

void *bd_tape_alloc(bd_tape *tp, size_t bytes)
{
    if (!tp->grad_enabled)
        return bd_arena_alloc(&tp->scratch, bytes);
    if (tp->n_saved == tp->cap_saved
        && grow((void **)&tp->saved, &tp->cap_saved, sizeof *tp->saved,
                "pieces of saved state") != BD_OK)
        return NULL;
    void *p = bd_arena_alloc(&tp->arena, bytes);
    if (p)
        tp->saved[tp->n_saved++] = (saved_chunk){p, bytes};
    return p;
}

void bd_tape_op_done(bd_tape *tp)
{
    if (!tp->grad_enabled)
        bd_arena_reset(&tp->scratch);
}

/* A tape tensor is one arena chunk: the header, then its data (aligned). */
enum { TENSOR_HEAD = 64 };
_Static_assert(sizeof(bd_tensor) <= TENSOR_HEAD, "bd_tensor outgrew its chunk head");

static size_t tensor_chunk(int64_t numel)
{
    return TENSOR_HEAD + (size_t)numel * sizeof(float);
}

bd_tensor *bd_tape_tensor(bd_tape *tp, int ndim, const int64_t *shape)
{
    int64_t numel;
    if (bd_shape_check("tensor", ndim, shape, &numel) != BD_OK)
        return NULL;
    unsigned char *chunk = bd_arena_alloc(&tp->arena, tensor_chunk(numel));
    if (!chunk)
        return NULL;
    bd_tensor *t = (bd_tensor *)chunk;
    memset(t, 0, sizeof *t);
    for (int i = 0; i < BD_MAX_DIMS; i++)
        t->shape[i] = i < ndim ? shape[i] : 1;
    t->ndim = ndim;
    t->numel = numel;
    t->data = (float *)(chunk + TENSOR_HEAD);
    t->flags = BD_TENSOR_ARENA;
    return t;
}

bd_tensor *bd_tape_view(bd_tape *tp, const bd_tensor *x)
{
    bd_tensor *t = bd_arena_alloc(&tp->arena, sizeof *t);
    if (!t)
        return NULL;
    *t = *x;
    t->grad = NULL;
    t->flags = x->flags & (BD_TENSOR_ARENA | BD_TENSOR_VIEW) ? BD_TENSOR_VIEW : 0;
    return t;
}

/* The tape tensor whose chunk holds t's data (t itself, or the tensor a
 * view shares), without asking which arena it is in. */
static bd_tensor *chunk_head(const bd_tensor *t)
{
    return (bd_tensor *)((unsigned char *)t->data - TENSOR_HEAD);
}

/* As chunk_head for a tensor of this tape's arena; NULL for any other
 * (heap tensors, views of them, another tape's). */
static bd_tensor *chunk_of(const bd_tape *tp, const bd_tensor *t)
{
    if (!t || !(t->flags & (BD_TENSOR_ARENA | BD_TENSOR_VIEW)))
        return NULL;
    bd_tensor *head = chunk_head(t);
    return bd_arena_owns(&tp->arena, head) ? head : NULL;
}

void bd_tape_keep(bd_tensor *t)
{
    t->flags |= BD_TENSOR_KEPT;
    if (t->flags & BD_TENSOR_VIEW)
        chunk_head(t)->flags |= BD_TENSOR_KEPT;
}

void bd_tape_release(bd_tape *tp, bd_tensor *t)
{
    if (!t || tp->grad_enabled || tp->n_nodes
        || (t->flags & (BD_TENSOR_ARENA | BD_TENSOR_KEPT)) != BD_TENSOR_ARENA)
        return;
    t->flags &= ~(uint32_t)BD_TENSOR_ARENA; /* before the header is released */
    if (!bd_arena_release(&tp->arena, t, tensor_chunk(t->numel)))
        t->flags |= BD_TENSOR_ARENA;
}

bd_tensor *bd_tape_tensor_like(bd_tape *tp, const bd_tensor *like)
{
    return bd_tape_tensor(tp, like->ndim, like->shape);
}

bool bd_tape_needs_node(const bd_tape *tp, bd_tensor *const *in, int n_in)
{
    if (!tp->grad_enabled)
        return false;
    for (int i = 0; i < n_in; i++)
        if (in[i] && (in[i]->flags & BD_TENSOR_REQUIRES_GRAD))
            return true;
    return false;
}

static bd_status grow_nodes(bd_tape *tp)
{
    size_t cap = tp->cap_nodes;
    BD_TRY(grow((void **)&tp->saved_end, &cap, sizeof *tp->saved_end, "nodes"));
    return grow((void **)&tp->nodes, &tp->cap_nodes, sizeof *tp->nodes, "nodes");
}

bd_status bd_tape_record(bd_tape *tp, bd_backward_fn backward, bd_tensor *out,
                         bd_tensor *const *in, int n_in, void *ctx)
{
    if (n_in > BD_NODE_MAX_INPUTS)
        return bd_fail(BD_E_ARG, "tape: %d inputs, at most %d", n_in,
                       BD_NODE_MAX_INPUTS);
    if (tp->n_nodes == tp->cap_nodes)
        BD_TRY(grow_nodes(tp));
    bd_node *node = &tp->nodes[tp->n_nodes++];
    memset(node, 0, sizeof *node);
    node->backward = backward;
    node->out = out;
    node->n_in = n_in;
    node->ctx = ctx;
    for (int i = 0; i < n_in; i++)
        node->in[i] = in[i];
    tp->saved_end[tp->n_nodes - 1] = tp->n_saved;
    out->flags |= BD_TENSOR_REQUIRES_GRAD;
    return BD_OK;
}

/* Give a temporary that requires grad a grad buffer, unwritten: its first
 * writer assigns or zeroes it (bd_grad_first, bd_grad_of). */
static bd_status ensure_grad(bd_tape *tp, bd_tensor *t)
{
    if (!t || !(t->flags & BD_TENSOR_REQUIRES_GRAD) || t->grad)
        return BD_OK;
    t->grad = bd_arena_alloc(&tp->arena, (size_t)t->numel * sizeof(float));
    if (!t->grad)
        return BD_E_NOMEM;
    t->flags |= BD_TENSOR_GRAD_UNSET;
    return BD_OK;
}

float *bd_grad_first(const bd_tensor *t, bool *assign)
{
    *assign = false;
    if (!t || !(t->flags & BD_TENSOR_REQUIRES_GRAD))
        return NULL;
    bd_tensor *w = (bd_tensor *)t; /* tape tensors are never const objects */
    *assign = (w->flags & BD_TENSOR_GRAD_UNSET) != 0;
    w->flags &= ~(uint32_t)BD_TENSOR_GRAD_UNSET;
    return w->grad;
}

float *bd_grad_of(const bd_tensor *t)
{
    bool assign;
    float *g = bd_grad_first(t, &assign);
    if (assign)
        memset(g, 0, (size_t)t->numel * sizeof *g);
    return g;
}

/* Plan t's chunk (t's own, or the one a view shares) for release after
 * node `node`, the first in forward order to read it, so the last in the
 * backward, unless it outlives the backward: already planned (or the
 * loss), another tape's or the heap's, a tap's, or a leaf that collects
 * a gradient (requires grad and no node made it). */
static bd_status plan_release(bd_tape *tp, const bd_tensor *t, size_t node)
{
    bd_tensor *chunk = chunk_of(tp, t);
    if (!chunk || (chunk->flags & BD_TENSOR_PLANNED))
        return BD_OK;
    chunk->flags |= BD_TENSOR_PLANNED;
    const bool made_here = tp->nodes[node].out == chunk;
    if ((chunk->flags & BD_TENSOR_KEPT)
        || (!made_here && (chunk->flags & BD_TENSOR_REQUIRES_GRAD)))
        return BD_OK;
    if (tp->n_plan == tp->cap_plan)
        BD_TRY(grow((void **)&tp->plan, &tp->cap_plan, sizeof *tp->plan,
                    "planned releases"));
    tp->plan[tp->n_plan++] = (planned_release){node, chunk};
    return BD_OK;
}

static bd_status plan_releases(bd_tape *tp, const bd_tensor *loss)
{
    bd_tensor *root = chunk_of(tp, loss);
    if (root)
        root->flags |= BD_TENSOR_PLANNED; /* the caller reads the loss */
    for (size_t i = 0; i < tp->n_nodes; i++) {
        const bd_node *node = &tp->nodes[i];
        BD_TRY(plan_release(tp, node->out, i));
        for (int k = 0; k < node->n_in; k++)
            BD_TRY(plan_release(tp, node->in[k], i));
    }
    return BD_OK;
}

/* Node i has run: nothing later in the backward reads its output's grad,
 * its saved state, or the chunks planned for it. */
static void release_after(bd_tape *tp, size_t i, const bd_tensor *loss)
{
    bd_tensor *out = tp->nodes[i].out;
    if (out != loss && out->grad
        && bd_arena_release(&tp->arena, out->grad,
                            (size_t)out->numel * sizeof(float)))
        out->grad = NULL;
    for (size_t s = i ? tp->saved_end[i - 1] : 0; s < tp->saved_end[i]; s++)
        bd_arena_release(&tp->arena, tp->saved[s].p, tp->saved[s].bytes);
    while (tp->n_plan && tp->plan[tp->n_plan - 1].node == i) {
        bd_tensor *t = tp->plan[--tp->n_plan].chunk;
        bd_arena_release(&tp->arena, t, tensor_chunk(t->numel));
    }
}

bd_status bd_tape_backward(bd_tape *tp, bd_tensor *loss)
{
    if (tp->consumed)
        return bd_fail(BD_E_STATE, "backward: already ran on this tape; reset"
                       " it and run the forward pass again");
    if (loss->numel != 1)
        return bd_fail(BD_E_ARG, "backward: loss has %lld elements, expected 1",
                       (long long)loss->numel);
    if (!(loss->flags & BD_TENSOR_REQUIRES_GRAD))
        return bd_fail(BD_E_STATE, "backward: loss does not depend on anything"
                       " that requires grad (was grad mode off?)");
    if (!tp->keep)
        BD_TRY(plan_releases(tp, loss));
    BD_TRY(ensure_grad(tp, loss));
    tp->consumed = true; /* from here on, tensors go back to the arena */
    bd_grad_of(loss)[0] += 1.0f;
    for (size_t i = tp->n_nodes; i-- > 0;) {
        const bd_node *node = &tp->nodes[i];
        if (node->out->grad) { /* else no gradient reached this node */
            bd_grad_of(node->out); /* zeroed if no consumer wrote it */
            for (int k = 0; k < node->n_in; k++)
                BD_TRY(ensure_grad(tp, node->in[k]));
            node->backward(node);
        }
        if (!tp->keep)
            release_after(tp, i, loss);
    }
    return BD_OK;
}
