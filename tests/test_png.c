/* PNG writer and sample grids: files are decoded back here, checking the
 * signature, every chunk CRC, the zlib header, stored blocks and Adler-32. */
#include "bd/image.h"
#include "harness.h"

#include <stdint.h>

#include <unistd.h>

static char OUT[64]; /* a file in /tmp named by the process id */

typedef struct decoded {
    int      width, height, channels;
    uint8_t *pixels; /* width * height * channels */
} decoded;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Bitwise CRC-32, independent of the writer's table. */
static uint32_t crc_bitwise(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(*n);
    if (fread(p, 1, *n, f) != *n)
        *n = 0;
    fclose(f);
    return p;
}

/* Inflate a zlib stream made of stored blocks only; checks Adler-32. */
static uint8_t *inflate_stored(const uint8_t *z, size_t n, size_t *out_len)
{
    if (n < 6 || z[0] != 0x78 || ((z[0] << 8) | z[1]) % 31 != 0)
        return NULL;
    uint8_t *out = malloc(n);
    size_t at = 2, len = 0;
    for (int final = 0; !final;) {
        if (at + 5 > n || (z[at] & 0x06) != 0) /* BTYPE must be 00 */
            goto bad;
        final = z[at] & 1;
        unsigned blen = z[at + 1] | z[at + 2] << 8;
        unsigned nlen = z[at + 3] | z[at + 4] << 8;
        if ((blen ^ 0xFFFFu) != nlen || at + 5 + blen > n)
            goto bad;
        memcpy(out + len, z + at + 5, blen);
        len += blen;
        at += 5 + blen;
    }
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < len; i++) {
        a = (a + out[i]) % 65521;
        b = (b + a) % 65521;
    }
    if (at + 4 != n || be32(z + at) != (b << 16 | a))
        goto bad;
    *out_len = len;
    return out;
bad:
    free(out);
    return NULL;
}

/* Decode a PNG written by bd_png_write; 0 on success, else the failed check. */
static const char *decode(const char *path, decoded *d)
{
    size_t n = 0;
    uint8_t *f = read_all(path, &n);
    const char *why = NULL;
    uint8_t *idat = calloc(1, n + 1), *raw = NULL;
    size_t idat_len = 0, at = 8;
    memset(d, 0, sizeof *d);
    if (!f || n < 8 || memcmp(f, "\x89PNG\r\n\x1a\n", 8) != 0) {
        why = "signature";
        goto done;
    }
    for (int seen_end = 0; !seen_end;) {
        if (at + 12 > n) { why = "truncated chunk"; goto done; }
        uint32_t len = be32(f + at);
        if (at + 12 + len > n) { why = "chunk length"; goto done; }
        const uint8_t *type = f + at + 4, *data = f + at + 8;
        if (crc_bitwise(type, len + 4) != be32(data + len)) { why = "crc"; goto done; }
        if (!memcmp(type, "IHDR", 4)) {
            d->width = (int)be32(data);
            d->height = (int)be32(data + 4);
            d->channels = data[9] == 2 ? 3 : data[9] == 0 ? 1 : 0;
            if (len != 13 || data[8] != 8 || !d->channels || data[12]) { why = "ihdr"; goto done; }
        } else if (!memcmp(type, "IDAT", 4)) {
            memcpy(idat + idat_len, data, len);
            idat_len += len;
        } else if (!memcmp(type, "IEND", 4)) {
            seen_end = 1;
        }
        at += 12 + len;
    }
    if (at != n) { why = "bytes after IEND"; goto done; }
    size_t raw_len = 0;
    raw = inflate_stored(idat, idat_len, &raw_len);
    size_t row = (size_t)d->width * d->channels;
    if (!raw || raw_len != (row + 1) * d->height) { why = "zlib"; goto done; }
    d->pixels = malloc(row * d->height);
    for (int y = 0; y < d->height; y++) {
        if (raw[y * (row + 1)] != 0) { why = "filter"; goto done; }
        memcpy(d->pixels + y * row, raw + y * (row + 1) + 1, row);
    }
done:
    free(f);
    free(idat);
    free(raw);
    return why;
}

static void round_trip(int w, int h, int channels)
{
    size_t n = (size_t)w * h * channels;
    uint8_t *px = malloc(n);
    for (size_t i = 0; i < n; i++)
        px[i] = (uint8_t)(i * 37 + 11);
    CHECK_OK(bd_png_write(OUT, w, h, channels, px));
    decoded d;
    const char *why = decode(OUT, &d);
    CHECK(!why, "%dx%dx%d: decode failed at %s", w, h, channels, why ? why : "");
    CHECK(d.width == w && d.height == h && d.channels == channels,
          "header %dx%dx%d, expected %dx%dx%d", d.width, d.height, d.channels,
          w, h, channels);
    CHECK(!why && memcmp(d.pixels, px, n) == 0, "%dx%dx%d: pixels differ", w,
          h, channels);
    printf("   %dx%dx%d round trip ok\n", w, h, channels);
    free(d.pixels);
    free(px);
}

static void test_round_trip(void)
{
    round_trip(5, 3, 1);
    round_trip(7, 2, 3);
    round_trip(1, 1, 1);
    round_trip(300, 300, 1); /* several stored blocks */
    round_trip(257, 130, 3);
}

static void test_write_errors(void)
{
    uint8_t px[12] = {0};
    CHECK_FAILS(bd_png_write(OUT, 2, 2, 2, px), BD_E_ARG,
                "2 channels, expected 1 or 3");
    CHECK_FAILS(bd_png_write(OUT, 0, 2, 1, px), BD_E_ARG,
                "size 0x2, expected at least 1x1");
    CHECK_FAILS(bd_png_write(OUT, 40000, 40000, 3, px), BD_E_ARG,
                "larger than");
    CHECK_FAILS(bd_png_write("no-such-dir/x.png", 2, 2, 1, px), BD_E_IO,
                "write 'no-such-dir/x.png': cannot create");
}

static const uint8_t *pixel(const decoded *d, int x, int y)
{
    return d->pixels + 3 * ((size_t)y * d->width + x);
}

/* 3 gray 4x4 images in 2 columns at scale 2 with 1 pixel of padding:
 * 2 * (8 + 1) + 1 = 19 pixels each way. */
static void test_grid(void)
{
    bd_tensor *imgs = bd_tensor_new4(3, 1, 4, 4, false);
    for (int64_t i = 0; i < imgs->numel; i++)
        imgs->data[i] = -1.0f + 2.0f * (float)(i % 16) / 15.0f;
    imgs->data[16 + 5] = 1.0f; /* image 1, pixel (x 1, y 1) white */
    const float marks[6] = {2.5f, 2.5f, 9.0f, 9.0f, 1.0f, 3.0f};
    bd_grid_options o = bd_grid_defaults();
    o.cols = 2;
    o.scale = 2;
    o.pad = 1;
    o.marks = marks;
    CHECK_OK(bd_image_save_grid(OUT, imgs, &o));
    decoded d;
    const char *why = decode(OUT, &d);
    CHECK(!why, "grid decode failed at %s", why ? why : "");
    if (why)
        goto done;
    CHECK(d.width == 19 && d.height == 19 && d.channels == 3,
          "grid %dx%dx%d, expected 19x19x3", d.width, d.height, d.channels);
    CHECK(pixel(&d, 0, 0)[0] == 96, "background %d", pixel(&d, 0, 0)[0]);
    CHECK(pixel(&d, 1, 1)[0] == 0 && pixel(&d, 1, 1)[2] == 0,
          "tile 0 pixel (0,0) is %d, expected black", pixel(&d, 1, 1)[0]);
    /* tile 1 starts at x = 1 + 9 = 10; its pixel (1,1) covers (12..13, 3..4) */
    const uint8_t *white = pixel(&d, 13, 4);
    CHECK(white[0] == 255 && white[1] == 255 && white[2] == 255,
          "tile 1 pixel (1,1) is %d,%d,%d, expected white", white[0],
          white[1], white[2]);
    /* tile 0 mark at (2.5, 2.5) -> output (1 + 5, 1 + 5); ticks 2..5 away */
    const uint8_t *tick = pixel(&d, 6 + 2, 6), *centre = pixel(&d, 6, 6);
    CHECK(tick[0] == 255 && tick[1] == 32, "tick %d,%d,%d, expected red",
          tick[0], tick[1], tick[2]);
    CHECK(centre[0] == centre[1], "mark centre is left unpainted");
    /* tile 1 mark at (9, 9) lies outside the 4x4 tile: nothing drawn */
    int red = 0;
    for (int y = 1; y < 9; y++)
        for (int x = 10; x < 18; x++)
            red += pixel(&d, x, y)[0] == 255 && pixel(&d, x, y)[1] == 32;
    CHECK(red == 0, "%d red pixels from an out-of-tile mark", red);
    /* tile 2 is at row 1: y0 = 10; mark (1, 3) -> (1 + 2, 10 + 6), tick above */
    const uint8_t *up = pixel(&d, 3, 16 - 2);
    CHECK(up[0] == 255 && up[1] == 32, "tile 2 tick %d,%d,%d", up[0], up[1],
          up[2]);
    /* the empty fourth cell is background */
    CHECK(pixel(&d, 14, 14)[0] == 96, "empty cell %d", pixel(&d, 14, 14)[0]);
done:
    free(d.pixels);
    bd_tensor_free(imgs);
}

static void test_grid_errors(void)
{
    bd_tensor *two = bd_tensor_new4(2, 2, 4, 4, false);
    bd_tensor *flat = bd_tensor_new4(2, 16, 0, 0, false);
    bd_grid_options o = bd_grid_defaults();
    CHECK_FAILS(bd_image_save_grid(OUT, two, &o), BD_E_ARG,
                "images have shape (2, 2, 4, 4), expected (N, H, W)");
    CHECK_FAILS(bd_image_save_grid(OUT, flat, &o), BD_E_ARG,
                "images have shape (2, 16)");
    bd_tensor *ok = bd_tensor_new4(2, 4, 4, 0, false);
    o.scale = 0;
    CHECK_FAILS(bd_image_save_grid(OUT, ok, &o), BD_E_ARG,
                "scale 0, expected 1 to 32");
    o = bd_grid_defaults();
    o.lo = 1.0f;
    CHECK_FAILS(bd_image_save_grid(OUT, ok, &o), BD_E_ARG,
                "range [1, 1], expected lo < hi");
    o = bd_grid_defaults();
    CHECK_OK(bd_image_save_grid(OUT, ok, &o));
    bd_tensor_free(two);
    bd_tensor_free(flat);
    bd_tensor_free(ok);
}

int main(void)
{
    snprintf(OUT, sizeof OUT, "/tmp/bd-test-png-%d.png", (int)getpid());
    RUN(test_round_trip);
    RUN(test_write_errors);
    RUN(test_grid);
    RUN(test_grid_errors);
    remove(OUT);
    return harness_summary();
}
