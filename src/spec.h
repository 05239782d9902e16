/* The model spec's layout and limits (spec.c), and the plan the model builds from it (model.c). */
#ifndef WT_SPEC_H
#define WT_SPEC_H

#include "internal.h"

#define WT_SPEC_MAGIC 0x314E5457 /* "WTN1" */
#define WT_SPEC_HEADER_WORDS 20
#define WT_NODE_WORDS 10
#define WT_SPEC_MAX_NODES 256
#define WT_SPEC_MAX_DEPTH 8
#define WT_SPEC_MAX_SIDE 1024
#define WT_SPEC_MAX_BLOCK 1024
/* Nothing larger is allocated: the arena of a model (parameters, optimizer, activations). */
#define WT_MODEL_MAX_BYTES ((uint64_t)1536 << 20)

typedef struct wt_node {
  int32_t kind;
  int32_t i[7];
  float f[2];
} wt_node;

typedef struct wt_spec {
  wt_data_format format;
  int32_t block;
  int32_t headless; /* no loss head: only wt_model_run and wt_model_run_backward (per-layer tests) */
  int32_t count;
  wt_node nodes[WT_SPEC_MAX_NODES];
} wt_spec;

/* Validates the words (header, ranges, block structure; not shapes) into *out. */
wt_status wt_spec_read(const int32_t *spec, size_t words, wt_spec *out);

#endif /* WT_SPEC_H */
