/* Model specs for the C tests and the fuzzers: SimpleCNN's words (a copy of SIMPLECNN_SPEC in
 * src/checkpoint.c, which tests/checkpoint.test.js checks against web/models/simplecnn.txt), a
 * small builder for other specs, and synthetic records in any layout. Not public API: the node
 * kinds and the layout come from src/spec.h. */
#ifndef TEST_MODELS_H
#define TEST_MODELS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"
#include "webtrain.h"

/* Nodes below list only the arguments they use; the rest are zero, as in a spec. */
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif

#define F_HALF 0x3F000000 /* 0.5f */
#define SIMPLECNN_PARAMS 62006
#define SIMPLECNN_WORDS (WT_SPEC_HEADER_WORDS + 12 * WT_NODE_WORDS)
/* CIFAR-10's layout: a label byte, then 3 planes of 32 x 32. */
#define CIFAR_RECORD_BYTES 3073

static const int32_t SIMPLECNN_SPEC[SIMPLECNN_WORDS] = {
    WT_SPEC_MAGIC, WT_SPEC_HEADER_WORDS, 3, 32, 32, 10, WT_GRAD_BLOCK, 12,
    F_HALF, F_HALF, F_HALF, 0, F_HALF, F_HALF, F_HALF, 0, 0, 0, 0, 0,
    WT_OP_CONV, 6, 5, 1, 0, 1, 0, 0, 0, 0,
    WT_OP_RELU, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    WT_OP_MAXPOOL, 2, 2, 0, 0, 0, 0, 0, 0, 0,
    WT_OP_CONV, 16, 5, 1, 0, 1, 0, 0, 0, 0,
    WT_OP_RELU, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    WT_OP_MAXPOOL, 2, 2, 0, 0, 0, 0, 0, 0, 0,
    WT_OP_FLATTEN, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    WT_OP_LINEAR, 120, 0, 0, 0, 1, 0, 0, 0, 0,
    WT_OP_RELU, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    WT_OP_LINEAR, 84, 0, 0, 0, 1, 0, 0, 0, 0,
    WT_OP_RELU, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    WT_OP_LINEAR, 10, 0, 0, 0, 1, 0, 0, 0, 0,
};

/* One node as written in a test: kind, integer arguments i0..i6, float arguments f0, f1. */
typedef struct test_node {
  int32_t kind;
  int32_t i[7];
  float f[2];
} test_node;

#define SPEC_MAX_WORDS (WT_SPEC_HEADER_WORDS + WT_SPEC_MAX_NODES * WT_NODE_WORDS)

static inline int32_t float_word(float f) {
  int32_t w;
  memcpy(&w, &f, 4);
  return w;
}

/* Writes the spec of nodes[0..count) for C x H x W images of `classes` classes, ghost batch
 * `block`, normalisation mean 0.5 and std 0.5, into out (SPEC_MAX_WORDS); returns its words. */
static inline size_t build_spec(int32_t *out, int C, int H, int W, int classes, int block, const test_node *nodes, int count) {
  memset(out, 0, sizeof(int32_t) * WT_SPEC_HEADER_WORDS);
  out[0] = WT_SPEC_MAGIC, out[1] = WT_SPEC_HEADER_WORDS;
  out[2] = C, out[3] = H, out[4] = W, out[5] = classes, out[6] = block, out[7] = count;
  for (int c = 0; c < C && c < 4; c++) out[8 + c] = F_HALF, out[12 + c] = F_HALF;
  for (int n = 0; n < count; n++) {
    int32_t *w = out + WT_SPEC_HEADER_WORDS + (size_t)n * WT_NODE_WORDS;
    w[0] = nodes[n].kind;
    memcpy(w + 1, nodes[n].i, sizeof nodes[n].i);
    w[8] = float_word(nodes[n].f[0]), w[9] = float_word(nodes[n].f[1]);
  }
  return WT_SPEC_HEADER_WORDS + (size_t)count * WT_NODE_WORDS;
}

#define NODES(array) (array), (int)(sizeof(array) / sizeof((array)[0]))

/* Every layer kind, residual blocks with and without a shortcut, batch norm 2d and 1d, both GELUs:
 * 3 x 16 x 16 images, 4 classes, ghost batch 4. */
static const test_node EVERY_KIND_NET[] = {
    {WT_OP_CONV, {8, 3, 1, -1, 1}},                    /* conv 8, 3x3 same, bias */
    {WT_OP_BATCHNORM, {2, 0, 0, 0, 1, 8}, {1e-5f, 0.1f}},
    {WT_OP_RELU},
    {WT_OP_RESIDUAL},                                  /* identity shortcut */
    {WT_OP_CONV, {8, 3, 1, 1, 0, 8}},
    {WT_OP_BATCHNORM, {0, 0, 0, 0, 0}, {1e-5f, 0.1f}}, /* no affine, dims from the input */
    {WT_OP_GELU, {0}},
    {WT_OP_END},
    {WT_OP_RESIDUAL},                                  /* projection shortcut, stride 2 */
    {WT_OP_CONV, {16, 3, 2, 1, 0}},
    {WT_OP_BATCHNORM, {2, 0, 0, 0, 1}, {1e-3f, 0.2f}},
    {WT_OP_GELU, {1}},
    {WT_OP_SHORTCUT},
    {WT_OP_CONV, {16, 1, 2, 0, 0}},
    {WT_OP_BATCHNORM, {2, 0, 0, 0, 1}, {1e-5f, 0.1f}},
    {WT_OP_END},
    {WT_OP_RELU},
    {WT_OP_MAXPOOL, {3, 2, 1}},                        /* 8x8 -> 4x4 */
    {WT_OP_AVGPOOL, {2, 1, 1}},                        /* 4x4 -> 5x5 */
    {WT_OP_SCALE, {0}, {0.5f}},
    {WT_OP_DROPOUT, {0}, {0.1f}},
    {WT_OP_RESIDUAL},                                  /* global average + global max */
    {WT_OP_GLOBALAVG},
    {WT_OP_SHORTCUT},
    {WT_OP_GLOBALMAX},
    {WT_OP_END},
    {WT_OP_FLATTEN},
    {WT_OP_LINEAR, {32, 0, 0, 0, 1, 16}},
    {WT_OP_BATCHNORM, {1, 0, 0, 0, 1, 32}, {1e-5f, 0.1f}},
    {WT_OP_RELU},
    {WT_OP_DROPOUT, {0}, {0.2f}},
    {WT_OP_LINEAR, {4, 0, 0, 0, 1}},
};
#define EVERY_KIND_SIDE 16
#define EVERY_KIND_CLASSES 4
#define EVERY_KIND_BLOCK 4

/* A small batch-norm net: 3 x 8 x 8 images, 3 classes, ghost batch 2. */
static const test_node SMALL_BN_NET[] = {
    {WT_OP_CONV, {4, 3, 1, -1, 0}},
    {WT_OP_BATCHNORM, {2, 0, 0, 0, 1}, {1e-5f, 0.1f}},
    {WT_OP_RELU},
    {WT_OP_MAXPOOL, {2, 2, 0}},
    {WT_OP_GLOBALAVG},
    {WT_OP_FLATTEN},
    {WT_OP_LINEAR, {3, 0, 0, 0, 1}},
};
#define SMALL_BN_SIDE 8
#define SMALL_BN_CLASSES 3
#define SMALL_BN_BLOCK 2

/* A learnable set, like tests/helpers/synthetic.js: each class a colour and stripe pattern under
 * noise; labels i % classes. Records of 1 + C*H*W bytes, label first. Caller frees. */
static inline uint8_t *make_synthetic(int count, int C, int side, int classes, uint32_t seed) {
  uint32_t s = seed ? seed : 0x9E3779B9u;
  const size_t record = 1 + (size_t)C * side * side;
  uint8_t *out = malloc((size_t)count * record);
  if (!out) abort();
  for (int i = 0; i < count; i++) {
    uint8_t *rec = out + (size_t)i * record;
    const int label = i % classes;
    rec[0] = (uint8_t)label;
    for (int c = 0; c < C; c++) {
      const int base = 40 + 20 * ((label * (c + 3)) % 10);
      for (int y = 0; y < side; y++)
        for (int x = 0; x < side; x++) {
          s ^= s << 13, s ^= s >> 17, s ^= s << 5;
          const int stripe = ((label % 2 ? x : y) >> (label % 3)) & 1 ? 50 : -50;
          const int v = base + stripe + (int)(s % 121) - 60;
          rec[1 + ((size_t)c * side + y) * side + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
  }
  return out;
}

/* Records of make_synthetic as the engine reads them. */
static inline wt_records synthetic_records(const uint8_t *data, int count, int C, int side) {
  const wt_records r = {data, count, (int32_t)(1 + C * side * side), 0, 1};
  return r;
}

#endif
