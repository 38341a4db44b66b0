/* Arena: bump allocator for per-step temporaries.
 *
 * Allocations are 64-byte aligned and live until bd_arena_reset. A reset
 * keeps every block (each new one twice the size of the last), and the
 * next step fills them again in the same order: from the second step on, a
 * step of the same shape neither calls malloc nor touches a page the
 * kernel has not already mapped (no page faults, no pages to clear). */
#ifndef BD_ARENA_H
#define BD_ARENA_H

#include <stddef.h>

typedef struct bd_arena_block bd_arena_block;

typedef struct bd_arena {
    bd_arena_block *head;     /* the first block; the others follow it */
    bd_arena_block *cur;      /* the block being filled */
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
