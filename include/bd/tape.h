/* The tape: define-by-run reverse-mode autodiff plus the per-step arena.
 *
 * Every op takes a tape. The op allocates its output from the tape's arena
 * and, when grad mode is on and an input requires grad, records a node that
 * names its backward function. bd_tape_backward walks the nodes in reverse,
 * and each backward *accumulates* into its inputs' grads (the first writer
 * of a temporary's grad may assign instead: bd_grad_first). Parameters (heap
 * tensors with grad) collect gradients across the step; temporaries get grad
 * buffers from the arena when first needed.
 *
 * The backward hands memory back to the arena as soon as nothing later in
 * it reads it: a node's output grad and its saved state (bd_tape_alloc)
 * once the node has run, a tensor once the last node that reads it (or a
 * view of it) has run. What stays readable after bd_tape_backward: the
 * loss, tensors a tap keeps (bd_tape_keep), the grads of leaves (heap
 * tensors, and tape tensors that require grad without a node making
 * them), and tape tensors no node read. A backward function reads only
 * its node's tensors, their grads and its own saved state.
 *
 * A step:   bd_tape_reset(tape); forward ops ...; bd_tape_backward(tape, loss);
 * Sampling: bd_tape_set_grad(tape, false); ops record nothing, their saved
 *           state lives only while they run, and the net hands each
 *           activation back (bd_tape_release) once its consumers have read
 *           it, so a forward's memory is its live activations, not all.
 */
#ifndef BD_TAPE_H
#define BD_TAPE_H

#include "bd/arena.h"
#include "bd/tensor.h"

#define BD_NODE_MAX_INPUTS 6

typedef struct bd_node bd_node;
typedef void (*bd_backward_fn)(const bd_node *node);

struct bd_node {
    bd_backward_fn backward;
    bd_tensor     *out;
    bd_tensor     *in[BD_NODE_MAX_INPUTS];
    int            n_in;
    void          *ctx;   /* op-specific saved state, arena-allocated */
};

typedef struct bd_tape bd_tape;

bd_tape *bd_tape_new(void);
void     bd_tape_free(bd_tape *tape);

/* Forget all nodes and temporaries (arena reset). Heap grads are kept. */
void bd_tape_reset(bd_tape *tape);

/* Turn recording on or off; returns the previous setting. */
bool bd_tape_set_grad(bd_tape *tape, bool enabled);
bool bd_tape_grad_enabled(const bd_tape *tape);

/* With keep on, the backward hands nothing back: every temporary and its
 * grad stays readable until the reset (to inspect intermediate gradients).
 * Off by default; returns the previous setting. */
bool bd_tape_set_keep(bd_tape *tape, bool keep);

/* Seed d(loss)/d(loss) = 1 for a 1-element loss and run the nodes in
 * reverse, releasing what they no longer need (above). Fails if loss has
 * more than one element or does not depend on anything that requires
 * grad. */
bd_status bd_tape_backward(bd_tape *tape, bd_tensor *loss);

/* With grad off and nothing recorded since the reset: t's memory goes back
 * to the arena for the tensors that follow (t must not be read or released
 * again, nor a reshape of it). Otherwise (backward may need t), and for
 * tensors that are not this tape's own (heap tensors, views, another
 * tape's) or that a tap keeps, nothing happens. NULL is allowed. */
void bd_tape_release(bd_tape *tape, bd_tensor *t);

/* A tap holds t: neither the backward nor bd_tape_release hands back its
 * memory (for a view, the tensor it shares). */
void bd_tape_keep(bd_tensor *t);

/* Bytes of arena in use now and at most since creation (with grad off,
 * the tensors' peak plus the largest op's saved state). */
size_t bd_tape_arena_used(const bd_tape *tape);
size_t bd_tape_arena_peak(const bd_tape *tape);

/* ---- for op implementations ---------------------------------------------- */

/* Arena tensor of the given shape, data uninitialised, no grad. NULL (error
 * set) on bad shape or no memory. */
bd_tensor *bd_tape_tensor(bd_tape *tape, int ndim, const int64_t *shape);

/* Arena tensor of the same shape as `like`. */
bd_tensor *bd_tape_tensor_like(bd_tape *tape, const bd_tensor *like);

/* Arena tensor sharing x's data and shape, without grad: a reshape's
 * output. Its data lives as long as x's. */
bd_tensor *bd_tape_view(bd_tape *tape, const bd_tensor *x);

/* Raw arena memory for an op's saved state (e.g. normalisation statistics)
 * and scratch. With grad on it lives until the reset; with grad off only
 * until the op ends (bd_tape_op_done). */
void *bd_tape_alloc(bd_tape *tape, size_t bytes);

/* The end of an op's forward (bd_op_finish calls it): with grad off, its
 * bd_tape_alloc memory is reused by the next op. */
void bd_tape_op_done(bd_tape *tape);

/* True when an op with these inputs must record a node: grad mode is on and
 * at least one input (NULLs allowed and skipped) requires grad. */
bool bd_tape_needs_node(const bd_tape *tape, bd_tensor *const *in, int n_in);

/* Record a node for `out` (which is marked as requiring grad). Inputs may be
 * NULL (optional bias). Call only when bd_tape_needs_node said so. */
bd_status bd_tape_record(bd_tape *tape, bd_backward_fn backward, bd_tensor *out,
                         bd_tensor *const *in, int n_in, void *ctx);

/* Inside a backward function: the grad buffer of an input if gradient must
 * flow into it, else NULL; the backward adds to it. The tape allocates a
 * temporary's buffer unwritten: the first call zeroes it. */
float *bd_grad_of(const bd_tensor *t);

/* As bd_grad_of for a backward that writes every element of t's grad:
 * *assign is true when no backward has written it yet (it holds garbage:
 * assign, do not add, and skip zeroing it), false when adding. Call it
 * once per input, and write the input's grad before asking for the next
 * (an op may take the same tensor twice). */
float *bd_grad_first(const bd_tensor *t, bool *assign);

#endif
