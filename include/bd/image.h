/* Images out: PNG files and grids of samples with their requested
 * positions marked.
 *
 * The PNG writer needs no zlib: pixel rows go into stored (uncompressed)
 * deflate blocks, which every decoder reads. Sample grids are small, so the
 * size does not matter. */
#ifndef BD_IMAGE_H
#define BD_IMAGE_H

#include <stdint.h>

#include "bd/tensor.h"

/* Write an 8-bit PNG: channels 1 (gray) or 3 (RGB), `pixels` row-major from
 * the top row, channels interleaved. */
bd_status bd_png_write(const char *path, int width, int height, int channels,
                       const uint8_t *pixels);

typedef struct bd_grid_options {
    int          cols;   /* tiles per row; <= 0: ceil(sqrt(N)) */
    int          scale;  /* each pixel drawn as scale x scale, 1 to 32 */
    int          pad;    /* background pixels between tiles, 0 to 64 */
    float        lo, hi; /* values mapped to black and white, lo < hi */
    /* (N, 2) positions (x, y) to mark in red on each tile, in pixel units
     * where pixel i spans [i, i + 1) (so 8.5 is the centre of pixel 8);
     * positions outside the tile are not drawn. NULL: no marks. */
    const float *marks;
} bd_grid_options;

/* cols 0, scale 4, pad 2, lo -1, hi 1, no marks. */
bd_grid_options bd_grid_defaults(void);

/* Save images as a grid PNG (RGB), tiles in row-major order.
 * images: (N, H, W) or (N, 1, H, W) gray, or (N, 3, H, W) colour. */
bd_status bd_image_save_grid(const char *path, const bd_tensor *images,
                             const bd_grid_options *opt);

#endif
