/* Augmentation as part of decoding: the view of each training image, drawn from (seed, epoch,
 * record), and the decode of one image through a view in one pass (model.c calls both). */
#include "spec.h"

/* Its own stream per record, so an image's view does not depend on which others share its batch. */
#define WT_STREAM_AUGMENT 0x4155474D454E54ULL /* "AUGMENT" */

int wt_view_is_identity(const wt_view *v) {
  return !v->flip && !v->dy && !v->dx && v->cut_y0 >= v->cut_y1;
}

static wt_rng record_rng(uint32_t seed, int32_t epoch, uint32_t record) {
  wt_rng rng;
  wt_rng_seed(&rng, ((uint64_t)seed << 32) | (uint32_t)epoch, WT_STREAM_AUGMENT + record);
  return rng;
}

void wt_augment_view(const wt_augment *a, int32_t epoch, uint32_t record, int H, int W, wt_view *out) {
  /* The draws are always made, in this order, so turning one part on leaves the others alone. */
  wt_rng rng = record_rng(a->seed, epoch, record);
  const uint32_t coin = wt_rng_below(&rng, 2);
  const uint32_t span = 2u * (uint32_t)a->translate + 1u;
  const int32_t dy = (int32_t)wt_rng_below(&rng, span) - a->translate;
  const int32_t dx = (int32_t)wt_rng_below(&rng, span) - a->translate;
  const int32_t cy = (int32_t)wt_rng_below(&rng, (uint32_t)H), cx = (int32_t)wt_rng_below(&rng, (uint32_t)W);
  int32_t flip = 0;
  if (a->flip == WT_FLIP_RANDOM) {
    flip = (int32_t)coin;
  } else if (a->flip == WT_FLIP_ALTERNATE) {
    /* airbench: epoch 0's coin, then the whole set mirrored on odd epochs. */
    wt_rng first = record_rng(a->seed, 0, record);
    flip = (int32_t)(epoch == 0 ? coin : wt_rng_below(&first, 2)) ^ (epoch & 1);
  }
  *out = (wt_view){.flip = flip, .dy = dy, .dx = dx, .pad = a->padding};
  if (a->cutout > 0) {
    const int32_t y0 = cy - a->cutout / 2, x0 = cx - a->cutout / 2;
    out->cut_y0 = y0 < 0 ? 0 : y0;
    out->cut_y1 = y0 + a->cutout > H ? H : y0 + a->cutout;
    out->cut_x0 = x0 < 0 ? 0 : x0;
    out->cut_x1 = x0 + a->cutout > W ? W : x0 + a->cutout;
  }
}

/* Index i of a side of n after a shift, reflected as PyTorch's 'reflect' padding (the edge is not
 * repeated), or -1 for a padded pixel. |shift| < n keeps one reflection enough. */
static int32_t source_index(int32_t i, int32_t n, int reflect) {
  if (i >= 0 && i < n) return i;
  if (!reflect) return -1;
  return i < 0 ? -i : 2 * (n - 1) - i;
}

void wt_decode_view(float *img, const uint8_t *px, const float (*lut)[256], int C, int H, int W, const wt_view *v) {
  const size_t plane = (size_t)H * W;
  if (wt_view_is_identity(v)) {
    for (int c = 0; c < C; c++)
      for (size_t i = 0; i < plane; i++) img[c * plane + i] = lut[c][px[c * plane + i]];
    return;
  }
  const int reflect = v->pad == WT_PAD_REFLECT;
  int32_t xs[WT_SPEC_MAX_SIDE];
  for (int32_t x = 0; x < W; x++) xs[x] = source_index((v->flip ? W - 1 - x : x) + v->dx, W, reflect);
  for (int c = 0; c < C; c++) {
    const float *l = lut[c];
    const float black = l[0];
    for (int32_t y = 0; y < H; y++) {
      float *row = img + c * plane + (size_t)y * W;
      const int32_t ys = source_index(y + v->dy, H, reflect);
      if (ys < 0) {
        for (int32_t x = 0; x < W; x++) row[x] = black;
      } else {
        const uint8_t *src = px + c * plane + (size_t)ys * W;
        for (int32_t x = 0; x < W; x++) row[x] = xs[x] < 0 ? black : l[src[xs[x]]];
      }
      if (y >= v->cut_y0 && y < v->cut_y1)
        for (int32_t x = v->cut_x0; x < v->cut_x1; x++) row[x] = 0.0f;
    }
  }
}
