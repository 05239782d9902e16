/* The spec: a description as the int32 words JavaScript encodes (web/model-spec.js) and the
 * engine plans from. Reading it checks every word before anything is allocated.
 *
 *   word  field
 *      0  magic 0x314E5457 ("WTN1")
 *      1  header words (20)
 *    2-5  input channels, height, width; classes
 *      6  images per block of the gradient tree (the ghost batch of batch norm)
 *      7  node count
 *   8-11  per-channel mean (float bits; channels 0..C-1, the rest 0)
 *  12-15  per-channel std (float bits)
 *     16  flags: bit 0 = no loss head (the net's output is any size: per-layer tests)
 *  17-19  zero
 *    20-  nodes of WT_NODE_WORDS words: kind, i0..i6, f0, f1 (float bits)
 *
 * Node arguments (unused ones are 0):
 *   conv       i0 out channels, i1 kernel, i2 stride, i3 padding (-1 = same), i4 bias (0/1),
 *              i5 in channels to check (0 = inferred), i6 init (0 PyTorch's default, 1 dirac,
 *              2 whiten: frozen weights from wt_model_init_whitening); whiten only: f0 eps,
 *              f1 images (a whole number)
 *   linear     i0 out features, i4 bias, i5 in features to check (0 = inferred)
 *   gelu       i0 approximation (0 none, 1 tanh)
 *   maxpool, avgpool   i0 kernel, i1 stride, i2 padding
 *   batchnorm  i0 dims (0 from the input, 1, 2), i1 weight frozen (0/1), i4 affine, i5 features
 *              to check, f0 eps, f1 momentum
 *   dropout    f0 p;    scale  f0 factor
 *   relu, globalavgpool, globalmaxpool, flatten, residual, shortcut, end: none
 */
#include <math.h>
#include <string.h>

#include "spec.h"

static float word_float(int32_t w) {
  float f;
  memcpy(&f, &w, 4);
  return f;
}

static int all_zero(const int32_t *w, int n) {
  for (int i = 0; i < n; i++)
    if (w[i]) return 0;
  return 1;
}

wt_status wt_spec_read(const int32_t *spec, size_t words, wt_spec *out) {
  if (!spec || !out) return wt_fail(WT_ERR_INVALID_ARGUMENT, "model spec: NULL argument");
  memset(out, 0, sizeof *out);
  if (words < WT_SPEC_HEADER_WORDS || spec[0] != WT_SPEC_MAGIC) {
    return wt_fail(WT_ERR_BAD_DATA, "model spec: not a webtrain model spec (%zu words, no WTN1 signature)", words);
  }
  if (spec[1] != WT_SPEC_HEADER_WORDS || (spec[16] & ~1) || !all_zero(spec + 17, 3)) {
    return wt_fail(WT_ERR_BAD_DATA, "model spec: header of %d words is not this version's (%d)", (int)spec[1],
                   WT_SPEC_HEADER_WORDS);
  }
  wt_data_format *f = &out->format;
  f->channels = spec[2], f->height = spec[3], f->width = spec[4], f->classes = spec[5];
  out->headless = spec[16] & 1;
  /* Images have 1 to 4 channels (their normalisation is in the header); a headless test net takes
   * any already-normalised input. */
  const int32_t max_channels = out->headless ? 4096 : 4;
  if (f->channels < 1 || f->channels > max_channels || f->height < 1 || f->height > WT_SPEC_MAX_SIDE || f->width < 1 ||
      f->width > WT_SPEC_MAX_SIDE) {
    return wt_fail(WT_ERR_BAD_DATA, "model spec: input %d x %d x %d is out of range (1-%d channels, sides 1..%d)",
                   (int)f->channels, (int)f->height, (int)f->width, (int)max_channels, WT_SPEC_MAX_SIDE);
  }
  if (f->classes < 2 || f->classes > WT_MAX_CLASSES) {
    return wt_fail(WT_ERR_BAD_DATA, "model spec: %d classes is out of range 2..%d", (int)f->classes, WT_MAX_CLASSES);
  }
  out->block = spec[6];
  if (out->block < 1 || out->block > WT_SPEC_MAX_BLOCK) {
    return wt_fail(WT_ERR_BAD_DATA, "model spec: ghost batch of %d images is out of range 1..%d", (int)out->block,
                   WT_SPEC_MAX_BLOCK);
  }
  for (int c = 0; c < 4; c++) {
    f->mean[c] = word_float(spec[8 + c]);
    f->std[c] = word_float(spec[12 + c]);
    const int used = !out->headless && c < f->channels;
    if (used ? !(isfinite(f->mean[c]) && isfinite(f->std[c]) && f->std[c] > 0) : (spec[8 + c] || spec[12 + c])) {
      return wt_fail(WT_ERR_BAD_DATA, "model spec: normalisation of channel %d (mean %g, std %g) is invalid", c,
                     f->mean[c], f->std[c]);
    }
  }
  const int32_t count = spec[7];
  if (count < 1 || count > WT_SPEC_MAX_NODES) {
    return wt_fail(WT_ERR_BAD_DATA, "model spec: %d nodes is out of range 1..%d", (int)count, WT_SPEC_MAX_NODES);
  }
  if (words != WT_SPEC_HEADER_WORDS + (size_t)count * WT_NODE_WORDS) {
    return wt_fail(WT_ERR_BAD_DATA, "model spec: %zu words for %d nodes (expected %zu)", words, (int)count,
                   WT_SPEC_HEADER_WORDS + (size_t)count * WT_NODE_WORDS);
  }
  out->count = count;
  int depth = 0;
  int in_shortcut[WT_SPEC_MAX_DEPTH + 1] = {0};
  for (int32_t n = 0; n < count; n++) {
    const int32_t *w = spec + WT_SPEC_HEADER_WORDS + (size_t)n * WT_NODE_WORDS;
    wt_node *node = &out->nodes[n];
    node->kind = w[0];
    memcpy(node->i, w + 1, sizeof node->i);
    node->f[0] = word_float(w[8]), node->f[1] = word_float(w[9]);
    if (!isfinite(node->f[0]) || !isfinite(node->f[1])) {
      return wt_fail(WT_ERR_BAD_DATA, "node %d: a float argument is not finite", (int)n);
    }
    switch (node->kind) {
      case WT_OP_RESIDUAL:
        if (depth == WT_SPEC_MAX_DEPTH) return wt_fail(WT_ERR_BAD_DATA, "node %d: residual blocks nest deeper than %d", (int)n, WT_SPEC_MAX_DEPTH);
        in_shortcut[++depth] = 0;
        break;
      case WT_OP_SHORTCUT:
        if (!depth || in_shortcut[depth]) return wt_fail(WT_ERR_BAD_DATA, "node %d: 'shortcut' outside a residual block's body", (int)n);
        in_shortcut[depth] = 1;
        break;
      case WT_OP_END:
        if (!depth) return wt_fail(WT_ERR_BAD_DATA, "node %d: 'end' without an open residual block", (int)n);
        depth--;
        break;
      default:
        if (node->kind < WT_OP_CONV || node->kind > WT_OP_SCALE) {
          return wt_fail(WT_ERR_BAD_DATA, "node %d: unknown layer kind %d", (int)n, (int)node->kind);
        }
    }
  }
  if (depth) return wt_fail(WT_ERR_BAD_DATA, "node %d: a residual block is never closed", (int)count - 1);
  return WT_OK;
}
