/* Arena: bump allocator for per-step temporaries.
 *
 * Allocations are 64-byte aligned and live until bd_arena_reset. A reset
 * that finds the arena spilled into extra blocks merges them into one block
 * big enough for the whole step, so from the second step on a step of the
 * same shape never calls malloc. */
#ifndef BD_ARENA_H
#define BD_ARENA_H

#include <stddef.h>

typedef struct bd_arena_block bd_arena_block;

typedef struct bd_arena {
    bd_arena_block *head;     /* block being filled; older blocks behind it */
    size_t          used;     /* bytes handed out since the last reset */
    size_t          peak;     /* largest `used` seen */
    size_t          capacity; /* bytes held in all blocks */
} bd_arena;

void  bd_arena_init(bd_arena *a);
void  bd_arena_free(bd_arena *a);
/* NULL (and the error set) when out of memory or on size overflow. */
void *bd_arena_alloc(bd_arena *a, size_t bytes);
void *bd_arena_calloc(bd_arena *a, size_t count, size_t size);
void  bd_arena_reset(bd_arena *a);

#endif
