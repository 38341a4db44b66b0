/* PNG writer (stored deflate blocks, no zlib) and sample grids. */
#include "bd/image.h"
#include "bd/run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORED_MAX 65535           /* bytes in one stored deflate block */
#define PNG_MAX_RAW (1u << 30)     /* filtered image bytes we accept */

/* ---- checksums ----------------------------------------------------------- */

/* CRC-32 (ISO 3309, reflected 0xEDB88320) as PNG chunks use it. */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* Adler-32 of the uncompressed zlib payload. */
static uint32_t adler32(const uint8_t *p, size_t n)
{
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < n; i++) {
        a = (a + p[i]) % 65521;
        b = (b + a) % 65521;
    }
    return b << 16 | a;
}

/* ---- byte buffer --------------------------------------------------------- */

typedef struct bytes {
    uint8_t *p;
    size_t   len, cap;
} bytes;

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void append(bytes *b, const void *src, size_t n)
{
    if (n == 0) /* IEND has no data: src may be NULL */
        return;
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

/* A chunk: length, type, data, CRC over type and data. */
static void append_chunk(bytes *b, const char type[4], const uint8_t *data,
                         size_t n)
{
    uint8_t be[4];
    put_be32(be, (uint32_t)n);
    append(b, be, 4);
    size_t at = b->len;
    append(b, type, 4);
    append(b, data, n);
    put_be32(be, crc32_update(0, b->p + at, n + 4));
    append(b, be, 4);
}

/* zlib stream of `raw` in stored blocks: 2-byte header, blocks of
 * [final flag, LEN, ~LEN, bytes], Adler-32. Returns its length. */
static size_t zlib_stored(uint8_t *out, const uint8_t *raw, size_t n)
{
    size_t at = 0;
    out[at++] = 0x78; /* deflate, 32K window */
    out[at++] = 0x01; /* no preset dictionary, fastest; (0x78 << 8 | 1) % 31 == 0 */
    size_t done = 0;
    do {
        size_t len = n - done < STORED_MAX ? n - done : STORED_MAX;
        out[at++] = done + len == n; /* BFINAL, BTYPE 00 */
        out[at++] = (uint8_t)len;
        out[at++] = (uint8_t)(len >> 8);
        out[at++] = (uint8_t)~len;
        out[at++] = (uint8_t)(~len >> 8);
        memcpy(out + at, raw + done, len);
        at += len;
        done += len;
    } while (done < n);
    put_be32(out + at, adler32(raw, n));
    return at + 4;
}

/* Atomically: the old file or the whole new one (bd_write_file_atomic). */
static bd_status write_file(const char *path, const bytes *b)
{
    return bd_write_file_atomic(path, b->p, b->len);
}

bd_status bd_png_write(const char *path, int width, int height, int channels,
                       const uint8_t *pixels)
{
    if (channels != 1 && channels != 3)
        return bd_fail(BD_E_ARG, "png: %d channels, expected 1 or 3", channels);
    if (width < 1 || height < 1)
        return bd_fail(BD_E_ARG, "png: size %dx%d, expected at least 1x1",
                       width, height);
    size_t row = (size_t)width * (size_t)channels + 1; /* filter byte first */
    if ((uint64_t)row * (uint64_t)height > PNG_MAX_RAW)
        return bd_fail(BD_E_ARG, "png: %dx%dx%d is larger than %u bytes", width,
                       height, channels, PNG_MAX_RAW);
    size_t raw_len = row * (size_t)height;
    size_t zlib_len = 2 + 5 * (raw_len / STORED_MAX + 1) + raw_len + 4;
    uint8_t *raw = malloc(raw_len), *zlib = malloc(zlib_len);
    bytes file = {malloc(8 + 25 + 12 + zlib_len + 12), 0, 0};
    bd_status s = BD_OK;
    if (!raw || !zlib || !file.p) {
        s = bd_fail(BD_E_NOMEM, "png: cannot allocate %zu bytes", 2 * zlib_len);
        goto done;
    }
    for (int y = 0; y < height; y++) {
        raw[(size_t)y * row] = 0; /* filter: none */
        memcpy(raw + (size_t)y * row + 1,
               pixels + (size_t)y * (row - 1), row - 1);
    }
    zlib_len = zlib_stored(zlib, raw, raw_len);
    uint8_t ihdr[13];
    put_be32(ihdr, (uint32_t)width);
    put_be32(ihdr + 4, (uint32_t)height);
    ihdr[8] = 8;                       /* bits per sample */
    ihdr[9] = channels == 3 ? 2 : 0;   /* colour type: RGB or gray */
    ihdr[10] = ihdr[11] = ihdr[12] = 0; /* deflate, adaptive filters, no interlace */
    append(&file, "\x89PNG\r\n\x1a\n", 8);
    append_chunk(&file, "IHDR", ihdr, sizeof ihdr);
    append_chunk(&file, "IDAT", zlib, zlib_len);
    append_chunk(&file, "IEND", NULL, 0);
    s = write_file(path, &file);
done:
    free(raw);
    free(zlib);
    free(file.p);
    return s;
}

/* ---- grids --------------------------------------------------------------- */

bd_grid_options bd_grid_defaults(void)
{
    return (bd_grid_options){.cols = 0, .scale = 4, .pad = 2, .lo = -1.0f,
                             .hi = 1.0f, .marks = NULL};
}

typedef struct canvas {
    uint8_t *rgb;
    int      width, height;
} canvas;

static void set_pixel(canvas *c, int x, int y, const uint8_t rgb[3])
{
    if (x >= 0 && y >= 0 && x < c->width && y < c->height)
        memcpy(c->rgb + 3 * ((size_t)y * c->width + x), rgb, 3);
}

static uint8_t to_byte(float v, float lo, float hi)
{
    float u = (v - lo) / (hi - lo) * 255.0f;
    return (uint8_t)(u > 0.0f ? (u < 255.0f ? u + 0.5f : 255.0f) : 0.0f);
}

/* Image i drawn at (x0, y0), each pixel scale x scale. */
static void draw_tile(canvas *c, const bd_tensor *images, int64_t i, int x0,
                      int y0, const bd_grid_options *o)
{
    const int channels = images->ndim == 4 ? (int)images->shape[1] : 1;
    const int H = (int)images->shape[images->ndim - 2];
    const int W = (int)images->shape[images->ndim - 1];
    const float *img = images->data + i * channels * H * W;
    for (int y = 0; y < H * o->scale; y++)
        for (int x = 0; x < W * o->scale; x++) {
            uint8_t rgb[3];
            for (int k = 0; k < 3; k++) {
                int ch = channels == 3 ? k : 0;
                rgb[k] = to_byte(img[((size_t)ch * H + y / o->scale) * W
                                     + x / o->scale], o->lo, o->hi);
            }
            set_pixel(c, x0 + x, y0 + y, rgb);
        }
}

/* Four red ticks around (mx, my), leaving the centre visible: from one to
 * two and a half image pixels away, clipped to the tile. */
static void draw_mark(canvas *c, float mx, float my, int x0, int y0, int w,
                      int h, int scale)
{
    static const uint8_t red[3] = {255, 32, 32};
    if (!(mx >= 0 && my >= 0 && mx <= (float)w / scale && my <= (float)h / scale))
        return;
    const int cx = x0 + (int)lroundf(mx * scale);
    const int cy = y0 + (int)lroundf(my * scale);
    for (int d = scale; d <= scale * 5 / 2; d++) {
        const int dx[4] = {d, -d, 0, 0}, dy[4] = {0, 0, d, -d};
        for (int k = 0; k < 4; k++) {
            int x = cx + dx[k], y = cy + dy[k];
            if (x >= x0 && x < x0 + w && y >= y0 && y < y0 + h)
                set_pixel(c, x, y, red);
        }
    }
}

static bd_status check_grid(const bd_tensor *images, const bd_grid_options *o)
{
    char shape[64];
    bool gray = images->ndim == 3 || (images->ndim == 4 && images->shape[1] == 1);
    bool rgb = images->ndim == 4 && images->shape[1] == 3;
    if (!gray && !rgb)
        return bd_fail(BD_E_ARG, "save_grid: images have shape %s, expected"
                       " (N, H, W), (N, 1, H, W) or (N, 3, H, W)",
                       bd_shape_str(images, shape, sizeof shape));
    if (o->scale < 1 || o->scale > 32)
        return bd_fail(BD_E_ARG, "save_grid: scale %d, expected 1 to 32",
                       o->scale);
    if (o->pad < 0 || o->pad > 64)
        return bd_fail(BD_E_ARG, "save_grid: pad %d, expected 0 to 64", o->pad);
    if (!(o->lo < o->hi))
        return bd_fail(BD_E_ARG, "save_grid: range [%g, %g], expected lo < hi",
                       o->lo, o->hi);
    const int64_t H = images->shape[images->ndim - 2];
    const int64_t W = images->shape[images->ndim - 1];
    if (H * o->scale > 4096 || W * o->scale > 4096 || images->shape[0] > 65536)
        return bd_fail(BD_E_ARG, "save_grid: %lld tiles of %lldx%lld at scale"
                       " %d, expected at most 65536 tiles of 4096x4096",
                       (long long)images->shape[0], (long long)H, (long long)W,
                       o->scale);
    return BD_OK;
}

bd_status bd_image_save_grid(const char *path, const bd_tensor *images,
                             const bd_grid_options *opt)
{
    BD_TRY(check_grid(images, opt));
    const int n = (int)images->shape[0];
    const int th = (int)images->shape[images->ndim - 2] * opt->scale;
    const int tw = (int)images->shape[images->ndim - 1] * opt->scale;
    int cols = opt->cols > 0 ? opt->cols : (int)ceil(sqrt((double)n));
    if (cols > n)
        cols = n;
    const int rows = (n + cols - 1) / cols;
    const int64_t width = (int64_t)cols * (tw + opt->pad) + opt->pad;
    const int64_t height = (int64_t)rows * (th + opt->pad) + opt->pad;
    if (width * height > PNG_MAX_RAW / 3)
        return bd_fail(BD_E_ARG, "save_grid: a %lldx%lld grid is too large",
                       (long long)width, (long long)height);
    canvas c = {malloc((size_t)(width * height * 3)), (int)width, (int)height};
    if (!c.rgb)
        return bd_fail(BD_E_NOMEM, "save_grid: cannot allocate a %lldx%lld"
                       " grid", (long long)width, (long long)height);
    memset(c.rgb, 96, (size_t)(width * height * 3)); /* gray background */
    for (int i = 0; i < n; i++) {
        int x0 = opt->pad + (i % cols) * (tw + opt->pad);
        int y0 = opt->pad + (i / cols) * (th + opt->pad);
        draw_tile(&c, images, i, x0, y0, opt);
        if (opt->marks)
            draw_mark(&c, opt->marks[2 * i], opt->marks[2 * i + 1], x0, y0, tw,
                      th, opt->scale);
    }
    bd_status s = bd_png_write(path, c.width, c.height, 3, c.rgb);
    free(c.rgb);
    return s;
}
