/* Arena: bump allocator for per-step temporaries, with release.
 *
 * Allocations are 64-byte aligned and live until bd_arena_reset or until
 * they are handed back with bd_arena_release. A reset keeps every block
 * (each new one twice the size of the last), and the next step fills them
 * again in the same order: from the second step on, a step of the same
 * shape neither calls malloc nor touches a page the kernel has not already
 * mapped (no page faults, no pages to clear).
 *
 * A released chunk becomes a hole: later allocations take the smallest
 * hole that fits (best fit), neighbouring holes merge, and a hole that
 * reaches the filled end of its block gives the space back to the block.
 * A forward pass without gradients releases each activation once its
 * consumers have read it, so its peak is the live activations, not all;
 * a backward releases each grad, saved state and activation once nothing
 * later in it reads them. Under AddressSanitizer released and reset
 * chunks are poisoned until handed out again. */
#ifndef BD_ARENA_H
#define BD_ARENA_H

#include <stdbool.h>
#include <stddef.h>

typedef struct bd_arena_block bd_arena_block;

/* Free bytes [offset, offset + size) inside a block, below its fill mark. */
typedef struct bd_arena_hole {
    bd_arena_block *block;
    size_t          offset, size;
} bd_arena_hole;

typedef struct bd_arena {
    bd_arena_block *head;     /* the first block; the others follow it */
    bd_arena_block *cur;      /* the block filled last */
    size_t          used;     /* bytes handed out and not released */
    size_t          peak;     /* largest `used` seen */
    size_t          capacity; /* bytes held in all blocks */
    bd_arena_hole  *holes;    /* released chunks, in no order */
    size_t          n_holes, cap_holes;
} bd_arena;

void  bd_arena_init(bd_arena *a);
void  bd_arena_free(bd_arena *a);
/* NULL (and the error set) when out of memory or on size overflow. */
void *bd_arena_alloc(bd_arena *a, size_t bytes);
void *bd_arena_calloc(bd_arena *a, size_t count, size_t size);
/* Hand back `bytes` at p, as allocated by bd_arena_alloc(a, bytes). False,
 * and nothing done, when p is not inside one of a's blocks. */
bool  bd_arena_release(bd_arena *a, void *p, size_t bytes);
/* True when p lies in a chunk of a's blocks (handed out, or a hole). */
bool  bd_arena_owns(const bd_arena *a, const void *p);
void  bd_arena_reset(bd_arena *a);

#endif
