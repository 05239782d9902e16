/* SimpleCNN wired from a size table: conv(3->6,5) relu pool, conv(6->16,5) relu pool,
 * fc 400->120 relu, fc 120->84 relu, fc 84->10, softmax cross-entropy, Adam.
 * One arena holds params | grads | adam_m | adam_v (identical layouts), then the activations,
 * their gradients and scratch for max_batch images; a training step allocates nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { T_CONV1_W, T_CONV1_B, T_CONV2_W, T_CONV2_B, T_FC1_W, T_FC1_B, T_FC2_W, T_FC2_B, T_FC3_W, T_FC3_B, T_COUNT };

/* PyTorch state_dict order; fan_in sets the default init bound 1/sqrt(fan_in). */
static const struct {
  int32_t count, fan_in;
} tensor_table[T_COUNT] = {
    {6 * 3 * 5 * 5, 3 * 5 * 5},  {6, 3 * 5 * 5},   /* conv1 (6, 3, 5, 5) */
    {16 * 6 * 5 * 5, 6 * 5 * 5}, {16, 6 * 5 * 5},  /* conv2 (16, 6, 5, 5) */
    {120 * 400, 400},            {120, 400},       /* fc1 (120, 400) */
    {84 * 120, 120},             {84, 120},        /* fc2 (84, 120) */
    {10 * 84, 84},               {10, 84},         /* fc3 (10, 84) */
};

#define WT_STREAM_INIT 0x494E4954ULL
/* Each flat buffer is padded to whole SIMD vectors so the four stay 16-byte aligned. */
#define PARAM_STRIDE ((WT_PARAM_COUNT + 3) & ~3)

typedef struct activations {
  float *x;      /* (B, 3, 32, 32) normalised input */
  float *a1;     /* (B, 6, 28, 28) conv1 after ReLU */
  float *p1;     /* (B, 6, 14, 14) */
  float *a2;     /* (B, 16, 10, 10) conv2 after ReLU */
  float *p2;     /* (B, 16, 5, 5) = (B, 400) */
  float *h1;     /* (B, 120) fc1 after ReLU */
  float *h2;     /* (B, 84) fc2 after ReLU */
  float *logits; /* (B, 10) */
} activations;

struct wt_model {
  int32_t max_batch;
  int32_t adam_t; /* Adam steps taken */
  float *params, *grads, *adam_m, *adam_v; /* (PARAM_STRIDE) each */
  float *tensor[T_COUNT], *dtensor[T_COUNT];
  activations act, dact; /* dact: gradients of the same shapes */
  uint8_t *argmax1, *argmax2; /* like p1, p2 */
  uint8_t *labels;            /* (B) */
  uint32_t *eval_indices;     /* (B) */
  float *col, *dcol;          /* one image's im2col columns: (75, 784) is the largest */
  float *tree;                /* (tree_levels, PARAM_STRIDE): right-hand nodes of the gradient tree */
  int32_t tree_levels;
  double *profile;            /* (WT_PROF_SLOTS) ms, or NULL */
  void *arena;
};

#if defined(__wasm__)
/* The host's monotonic clock in milliseconds (performance.now), used only while profiling. */
__attribute__((import_module("env"), import_name("wt_clock_ms"))) double wt_clock_ms(void);
#else
#include <time.h>
static double wt_clock_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
#endif

/* Runs `call`, adding its time to the slot when profiling is on. */
#define TIMED(m, slot, call)                         \
  do {                                               \
    if ((m)->profile) {                              \
      const double t0_ = wt_clock_ms();              \
      call;                                          \
      (m)->profile[slot] += wt_clock_ms() - t0_;     \
    } else {                                         \
      call;                                          \
    }                                                \
  } while (0)

void wt_model_set_profile(wt_model *model, double *slots_ms) { model->profile = slots_ms; }

static size_t align16(size_t bytes) { return (bytes + 15) & ~(size_t)15; }

int32_t wt_grad_block(void) { return WT_GRAD_BLOCK; }

int32_t wt_grad_tree_mid(int32_t lo, int32_t hi) {
  int32_t half = 1;
  while (2 * half < hi - lo) half *= 2;
  return lo + half;
}

/* Height of the tree over `blocks` blocks: one scratch node per level below the root. */
static int32_t tree_height(int32_t blocks) {
  int32_t h = 0;
  while ((1 << h) < blocks) h++;
  return h;
}

/* Points the layers' gradient tensors at `base` (PARAM_STRIDE floats, laid out like params). */
static void set_grad_target(wt_model *m, float *base) {
  size_t offset = 0;
  for (int t = 0; t < T_COUNT; t++) {
    m->dtensor[t] = base + offset;
    offset += (size_t)tensor_table[t].count;
  }
}

wt_status wt_model_create(wt_model **out, int32_t max_batch, uint32_t seed) {
  if (!out) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_create: out is NULL");
  *out = NULL;
  if (max_batch < 1 || max_batch > WT_MAX_BATCH) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "batch size %d is out of range 1..%d", (int)max_batch,
                   WT_MAX_BATCH);
  }
  const size_t B = (size_t)max_batch;
  const size_t act_floats[8] = {B * 3072, B * 4704, B * 1176, B * 1600, B * 400, B * 120, B * 84, B * 10};
  const size_t col_floats = 75 * 784, dcol_floats = 150 * 100;
  const int32_t tree_levels = tree_height((max_batch + WT_GRAD_BLOCK - 1) / WT_GRAD_BLOCK);

  size_t bytes = 4 * align16(sizeof(float) * PARAM_STRIDE);
  for (int i = 0; i < 8; i++) bytes += 2 * align16(sizeof(float) * act_floats[i]);
  bytes += align16(B * 1176) + align16(B * 400) + align16(B) + align16(sizeof(uint32_t) * B);
  bytes += align16(sizeof(float) * col_floats) + align16(sizeof(float) * dcol_floats);
  bytes += (size_t)tree_levels * align16(sizeof(float) * PARAM_STRIDE);

  wt_model *m = calloc(1, sizeof *m);
  void *arena = m ? aligned_alloc(16, bytes) : NULL;
  if (!arena) {
    free(m);
    return wt_fail(WT_ERR_OUT_OF_MEMORY, "out of memory allocating %zu bytes for batch size %d",
                   bytes, (int)max_batch);
  }
  memset(arena, 0, bytes);
  m->arena = arena;
  m->max_batch = max_batch;

  char *cursor = arena;
#define TAKE(type, count) ((type *)(cursor += align16(sizeof(type) * (count)), cursor - align16(sizeof(type) * (count))))
  m->params = TAKE(float, PARAM_STRIDE);
  m->grads = TAKE(float, PARAM_STRIDE);
  m->adam_m = TAKE(float, PARAM_STRIDE);
  m->adam_v = TAKE(float, PARAM_STRIDE);
  float **act_slots[8] = {&m->act.x, &m->act.a1, &m->act.p1, &m->act.a2, &m->act.p2, &m->act.h1, &m->act.h2, &m->act.logits};
  float **dact_slots[8] = {&m->dact.x, &m->dact.a1, &m->dact.p1, &m->dact.a2, &m->dact.p2, &m->dact.h1, &m->dact.h2, &m->dact.logits};
  for (int i = 0; i < 8; i++) *act_slots[i] = TAKE(float, act_floats[i]);
  for (int i = 0; i < 8; i++) *dact_slots[i] = TAKE(float, act_floats[i]);
  m->argmax1 = TAKE(uint8_t, B * 1176);
  m->argmax2 = TAKE(uint8_t, B * 400);
  m->labels = TAKE(uint8_t, B);
  m->eval_indices = TAKE(uint32_t, B);
  m->col = TAKE(float, col_floats);
  m->dcol = TAKE(float, dcol_floats);
  m->tree = TAKE(float, (size_t)tree_levels * PARAM_STRIDE);
  m->tree_levels = tree_levels;
#undef TAKE

  size_t offset = 0;
  for (int t = 0; t < T_COUNT; t++) {
    m->tensor[t] = m->params + offset;
    offset += (size_t)tensor_table[t].count;
  }
  set_grad_target(m, m->grads);
  wt_model_init(m, seed);
  *out = m;
  return WT_OK;
}

void wt_model_destroy(wt_model *model) {
  if (!model) return;
  free(model->arena);
  free(model);
}

int32_t wt_model_max_batch(const wt_model *model) { return model->max_batch; }

void wt_model_init(wt_model *model, uint32_t seed) {
  wt_rng rng;
  wt_rng_seed(&rng, seed, WT_STREAM_INIT);
  for (int t = 0; t < T_COUNT; t++) {
    const float bound = 1.0f / sqrtf((float)tensor_table[t].fan_in);
    float *p = model->tensor[t];
    for (int32_t i = 0; i < tensor_table[t].count; i++) p[i] = (2.0f * wt_rng_uniform(&rng) - 1.0f) * bound;
  }
  memset(model->grads, 0, sizeof(float) * PARAM_STRIDE);
  memset(model->adam_m, 0, sizeof(float) * PARAM_STRIDE);
  memset(model->adam_v, 0, sizeof(float) * PARAM_STRIDE);
  model->adam_t = 0;
}

float *wt_model_params(wt_model *model) { return model->params; }
float *wt_model_grads(wt_model *model) { return model->grads; }
float *wt_model_adam_m(wt_model *model) { return model->adam_m; }
float *wt_model_adam_v(wt_model *model) { return model->adam_v; }
int32_t wt_model_adam_step_count(const wt_model *model) { return model->adam_t; }

wt_status wt_model_set_adam_step_count(wt_model *model, int32_t steps) {
  if (!model) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_set_adam_step_count: model is NULL");
  if (steps < 0) return wt_fail(WT_ERR_INVALID_ARGUMENT, "Adam step count %d is negative", (int)steps);
  model->adam_t = steps;
  return WT_OK;
}
const float *wt_model_logits(const wt_model *model) { return model->act.logits; }

static int all_finite(const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

wt_status wt_model_load_weights(wt_model *model, const uint8_t *data, size_t bytes) {
  const size_t want = sizeof(float) * WT_PARAM_COUNT;
  if (!model || (!data && bytes)) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_load_weights: NULL argument");
  if (bytes != want) {
    return wt_fail(WT_ERR_BAD_DATA,
                   "weights file is %zu bytes; a SimpleCNN weights file is %zu bytes (%d float32 parameters)",
                   bytes, want, WT_PARAM_COUNT);
  }
  for (size_t i = 0; i < WT_PARAM_COUNT; i++) {
    float value;
    memcpy(&value, data + i * sizeof(float), sizeof value);
    if (!isfinite(value)) {
      return wt_fail(WT_ERR_BAD_DATA, "weights file holds a non-finite value at parameter %zu", i);
    }
  }
  memcpy(model->params, data, want);
  memset(model->adam_m, 0, sizeof(float) * PARAM_STRIDE);
  memset(model->adam_v, 0, sizeof(float) * PARAM_STRIDE);
  model->adam_t = 0;
  return WT_OK;
}

static wt_status check_batch(const wt_model *model, const uint8_t *records, int32_t record_count,
                             const uint32_t *indices, int32_t batch) {
  if (!model || !records || !indices) return wt_fail(WT_ERR_INVALID_ARGUMENT, "NULL model, records or indices");
  /* Checked first: a negative count would become a huge unsigned bound for the indices. */
  if (record_count < 1) return wt_fail(WT_ERR_INVALID_ARGUMENT, "record count %d is not positive", (int)record_count);
  if (batch < 1 || batch > model->max_batch) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "batch of %d images does not fit this model (1..%d)",
                   (int)batch, (int)model->max_batch);
  }
  for (int32_t i = 0; i < batch; i++) {
    if (indices[i] >= (uint32_t)record_count) {
      return wt_fail(WT_ERR_INVALID_ARGUMENT, "record index %u is past the %d records loaded",
                     (unsigned)indices[i], (int)record_count);
    }
    /* Labels index the logits: never trust that the caller ran wt_records_check. */
    if (records[(size_t)indices[i] * WT_RECORD_BYTES] >= WT_NUM_CLASSES) {
      return wt_fail(WT_ERR_BAD_DATA, "record %u has label %u; labels must be 0..9", (unsigned)indices[i],
                     (unsigned)records[(size_t)indices[i] * WT_RECORD_BYTES]);
    }
  }
  return WT_OK;
}

/* The fully connected layers and the loss, after p2; returns the summed loss. */
static double head_forward(wt_model *m, int B) {
  activations *a = &m->act;
  double loss;
  TIMED(m, WT_PROF_FC_FWD, {
    linear_forward(a->h1, a->p2, m->tensor[T_FC1_W], m->tensor[T_FC1_B], B, 400, 120);
    wt_relu(a->h1, (size_t)B * 120);
    linear_forward(a->h2, a->h1, m->tensor[T_FC2_W], m->tensor[T_FC2_B], B, 120, 84);
    wt_relu(a->h2, (size_t)B * 84);
    linear_forward(a->logits, a->h2, m->tensor[T_FC3_W], m->tensor[T_FC3_B], B, 84, 10);
  });
  TIMED(m, WT_PROF_LOSS, loss = crossentropy_forward(a->logits, m->labels, B, 10));
  return loss;
}

/* Runs the network on a checked batch; returns the summed loss. */
static double forward(wt_model *m, const uint8_t *records, const uint32_t *indices, int B) {
  activations *a = &m->act;
  TIMED(m, WT_PROF_DECODE, cifar_decode_batch(a->x, m->labels, records, indices, B));
  TIMED(m, WT_PROF_CONV1_FWD, {
    conv2d_forward(a->a1, m->col, a->x, m->tensor[T_CONV1_W], m->tensor[T_CONV1_B], B, 3, 32, 32, 6, 5);
    wt_relu(a->a1, (size_t)B * 4704);
  });
  TIMED(m, WT_PROF_POOL1_FWD, maxpool2_forward(a->p1, m->argmax1, a->a1, B, 6, 28, 28));
  TIMED(m, WT_PROF_CONV2_FWD, {
    conv2d_forward(a->a2, m->col, a->p1, m->tensor[T_CONV2_W], m->tensor[T_CONV2_B], B, 6, 14, 14, 16, 5);
    wt_relu(a->a2, (size_t)B * 1600);
  });
  TIMED(m, WT_PROF_POOL2_FWD, maxpool2_forward(a->p2, m->argmax2, a->a2, B, 16, 10, 10));
  return head_forward(m, B);
}

/* Inference (evaluation): each convolution, its ReLU and its pooling in one pass, without the
 * full-size activations or the argmax that only backward needs. Same logits as forward(). */
static double forward_eval(wt_model *m, const uint8_t *records, const uint32_t *indices, int B) {
  activations *a = &m->act;
  TIMED(m, WT_PROF_DECODE, cifar_decode_batch(a->x, m->labels, records, indices, B));
  TIMED(m, WT_PROF_CONV1_FWD,
        conv2d_relu_pool_forward(a->p1, m->col, a->x, m->tensor[T_CONV1_W], m->tensor[T_CONV1_B], B, 3, 32, 32, 6, 5));
  TIMED(m, WT_PROF_CONV2_FWD,
        conv2d_relu_pool_forward(a->p2, m->col, a->p1, m->tensor[T_CONV2_W], m->tensor[T_CONV2_B], B, 6, 14, 14, 16, 5));
  return head_forward(m, B);
}

wt_status wt_model_forward(wt_model *model, const uint8_t *records, int32_t record_count,
                           const uint32_t *indices, int32_t batch, double *out_loss_sum) {
  const wt_status st = check_batch(model, records, record_count, indices, batch);
  if (st != WT_OK) return st;
  const double loss = forward(model, records, indices, batch);
  if (out_loss_sum) *out_loss_sum = loss;
  return WT_OK;
}

void wt_model_zero_grads(wt_model *model) { memset(model->grads, 0, sizeof(float) * PARAM_STRIDE); }

/* Forward and backward on a checked batch, accumulating into the gradient tensors (m->dtensor);
 * returns the summed loss. */
static double backward(wt_model *m, const uint8_t *records, const uint32_t *indices, int B, float loss_scale) {
  const double loss = forward(m, records, indices, B);

  activations *a = &m->act, *d = &m->dact;
  /* Activation gradients are accumulated into, so they start from zero (x needs none). */
  memset(d->a1, 0, sizeof(float) * (size_t)B * 4704);
  memset(d->p1, 0, sizeof(float) * (size_t)B * 1176);
  memset(d->a2, 0, sizeof(float) * (size_t)B * 1600);
  memset(d->p2, 0, sizeof(float) * (size_t)B * 400);
  memset(d->h1, 0, sizeof(float) * (size_t)B * 120);
  memset(d->h2, 0, sizeof(float) * (size_t)B * 84);
  memset(d->logits, 0, sizeof(float) * (size_t)B * 10);

  TIMED(m, WT_PROF_LOSS, crossentropy_backward(d->logits, a->logits, m->labels, loss_scale, B, 10));
  TIMED(m, WT_PROF_FC_BWD, {
    linear_backward(d->h2, m->dtensor[T_FC3_W], m->dtensor[T_FC3_B], d->logits, a->h2, m->tensor[T_FC3_W], B, 84, 10);
    wt_relu_gate(d->h2, a->h2, (size_t)B * 84);
    linear_backward(d->h1, m->dtensor[T_FC2_W], m->dtensor[T_FC2_B], d->h2, a->h1, m->tensor[T_FC2_W], B, 120, 84);
    wt_relu_gate(d->h1, a->h1, (size_t)B * 120);
    linear_backward(d->p2, m->dtensor[T_FC1_W], m->dtensor[T_FC1_B], d->h1, a->p2, m->tensor[T_FC1_W], B, 400, 120);
  });
  TIMED(m, WT_PROF_POOL2_BWD, {
    maxpool2_backward(d->a2, d->p2, m->argmax2, B, 16, 10, 10);
    wt_relu_gate(d->a2, a->a2, (size_t)B * 1600);
  });
  TIMED(m, WT_PROF_CONV2_BWD, conv2d_backward(d->p1, m->dtensor[T_CONV2_W], m->dtensor[T_CONV2_B], m->col, m->dcol,
                                              d->a2, a->p1, m->tensor[T_CONV2_W], B, 6, 14, 14, 16, 5));
  TIMED(m, WT_PROF_POOL1_BWD, {
    maxpool2_backward(d->a1, d->p1, m->argmax1, B, 6, 28, 28);
    wt_relu_gate(d->a1, a->a1, (size_t)B * 4704);
  });
  TIMED(m, WT_PROF_CONV1_BWD, conv2d_backward(NULL, m->dtensor[T_CONV1_W], m->dtensor[T_CONV1_B], m->col, m->dcol,
                                              d->a1, a->x, m->tensor[T_CONV1_W], B, 3, 32, 32, 6, 5));
  return loss;
}

wt_status wt_model_backward(wt_model *model, const uint8_t *records, int32_t record_count,
                            const uint32_t *indices, int32_t batch, float loss_scale,
                            double *out_loss_sum) {
  const wt_status st = check_batch(model, records, record_count, indices, batch);
  if (st != WT_OK) return st;
  const double loss = backward(model, records, indices, batch, loss_scale);
  if (out_loss_sum) *out_loss_sum = loss;
  return WT_OK;
}

void wt_grads_add(float *dst, const float *src) { wt_add(dst, src, WT_PARAM_COUNT); }

/* Tree node [lo, hi) of a checked batch into dst; `level` is the first free scratch level.
 * The left half goes straight into dst and the right half into a scratch node, then dst += it. */
static double gradient_node(wt_model *m, const uint8_t *records, const uint32_t *indices, int32_t batch,
                            int32_t lo, int32_t hi, float loss_scale, float *dst, int32_t level) {
  if (hi - lo == 1) {
    const int32_t first = lo * WT_GRAD_BLOCK;
    const int32_t count = batch - first < WT_GRAD_BLOCK ? batch - first : WT_GRAD_BLOCK;
    TIMED(m, WT_PROF_GRAD_TREE, memset(dst, 0, sizeof(float) * WT_PARAM_COUNT));
    set_grad_target(m, dst);
    const double loss = backward(m, records, indices + first, count, loss_scale);
    set_grad_target(m, m->grads);
    return loss;
  }
  const int32_t mid = wt_grad_tree_mid(lo, hi);
  float *right = m->tree + (size_t)level * PARAM_STRIDE;
  const double left_loss = gradient_node(m, records, indices, batch, lo, mid, loss_scale, dst, level);
  const double right_loss = gradient_node(m, records, indices, batch, mid, hi, loss_scale, right, level + 1);
  TIMED(m, WT_PROF_GRAD_TREE, wt_add(dst, right, WT_PARAM_COUNT));
  return left_loss + right_loss;
}

wt_status wt_model_gradient(wt_model *model, const uint8_t *records, int32_t record_count,
                            const uint32_t *indices, int32_t batch, int32_t lo, int32_t hi,
                            float loss_scale, float *dst, double *out_loss_sum) {
  const wt_status st = check_batch(model, records, record_count, indices, batch);
  if (st != WT_OK) return st;
  const int32_t blocks = (batch + WT_GRAD_BLOCK - 1) / WT_GRAD_BLOCK;
  if (!dst) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_gradient: dst is NULL");
  if (lo < 0 || hi <= lo || hi > blocks) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "gradient tree node [%d, %d) is not inside the %d blocks of a batch of %d",
                   (int)lo, (int)hi, (int)blocks, (int)batch);
  }
  const float *tree_end = model->tree + (size_t)model->tree_levels * PARAM_STRIDE;
  if (dst + WT_PARAM_COUNT > model->tree && dst < tree_end) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_gradient: dst overlaps the model's scratch nodes");
  }
  const double loss = gradient_node(model, records, indices, batch, lo, hi, loss_scale, dst, 0);
  if (out_loss_sum) *out_loss_sum = loss;
  return WT_OK;
}


wt_status wt_model_adam_update(wt_model *model, const wt_adam_config *config) {
  if (!model || !config) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_adam_update: NULL argument");
  if (!(config->lr > 0) || !(config->beta1 >= 0 && config->beta1 < 1) ||
      !(config->beta2 >= 0 && config->beta2 < 1) || !(config->eps > 0)) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "Adam settings out of range (lr %g, betas %g/%g, eps %g)",
                   config->lr, config->beta1, config->beta2, config->eps);
  }
  for (size_t i = 0; i < WT_PARAM_COUNT; i++) {
    if (!isfinite(model->grads[i])) {
      return wt_fail(WT_ERR_NON_FINITE,
                     "gradient of parameter %zu is not finite after %d Adam steps; parameters left unchanged",
                     i, (int)model->adam_t);
    }
  }
  model->adam_t += 1;
  TIMED(model, WT_PROF_ADAM, adam_update(model->params, model->grads, model->adam_m, model->adam_v, WT_PARAM_COUNT, config, model->adam_t));
  if (!all_finite(model->params, WT_PARAM_COUNT)) {
    return wt_fail(WT_ERR_NON_FINITE, "a parameter became non-finite at Adam step %d", (int)model->adam_t);
  }
  return WT_OK;
}

wt_status wt_model_train_step(wt_model *model, const uint8_t *records, int32_t record_count,
                              const uint32_t *indices, int32_t batch,
                              const wt_adam_config *config, float *out_loss) {
  if (!model) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_train_step: model is NULL");
  double loss_sum = 0;
  const int32_t blocks = batch > 0 ? (batch + WT_GRAD_BLOCK - 1) / WT_GRAD_BLOCK : 1;
  wt_status st = wt_model_gradient(model, records, record_count, indices, batch, 0, blocks, 1.0f / (float)batch,
                                   model->grads, &loss_sum);
  if (st != WT_OK) return st;
  const double loss = loss_sum / batch;
  if (out_loss) *out_loss = (float)loss;
  if (!isfinite(loss)) {
    return wt_fail(WT_ERR_NON_FINITE, "the loss is %s at Adam step %d; parameters left unchanged",
                   isnan(loss) ? "NaN" : "infinite", (int)model->adam_t + 1);
  }
  return wt_model_adam_update(model, config);
}

wt_status wt_model_evaluate(wt_model *model, const uint8_t *records, int32_t record_count,
                            int32_t *correct, double *loss_sum, int32_t *confusion,
                            uint8_t *predictions) {
  if (!model || !records || !correct || !loss_sum) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_evaluate: NULL argument");
  int32_t checked = 0;
  if (record_count > 0) {
    const wt_status st = wt_records_check(records, (size_t)record_count * WT_RECORD_BYTES, &checked);
    if (st != WT_OK) return st;
  } else if (record_count < 0) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "negative record count");
  }
  for (int32_t start = 0; start < record_count; start += model->max_batch) {
    const int32_t B = record_count - start < model->max_batch ? record_count - start : model->max_batch;
    for (int32_t i = 0; i < B; i++) model->eval_indices[i] = (uint32_t)(start + i);
    *loss_sum += forward_eval(model, records, model->eval_indices, B);
    for (int32_t b = 0; b < B; b++) {
      const float *z = model->act.logits + (size_t)b * 10;
      int best = 0;
      for (int k = 1; k < 10; k++)
        if (z[k] > z[best]) best = k;
      const int truth = model->labels[b];
      *correct += best == truth;
      if (confusion) confusion[truth * 10 + best] += 1;
      if (predictions) predictions[start + b] = (uint8_t)best;
    }
  }
  return WT_OK;
}
