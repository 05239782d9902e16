/* A network wired from its description. Creating a model plans everything once: each layer's
 * shapes, tensors, saved state and scratch (by its op, one file per op), the activation slots
 * (a ReLU overwrites its input where nothing else needs it; flatten is a view), and one arena:
 * params | grads (+ batch statistics) | adam_m (or SGD's momentum) | adam_v | running statistics |
 * the weights' moving average (params then running statistics), then the
 * activations, their gradients and the saved state of one block of images, scratch, and the
 * gradient tree's nodes. A training step only runs the plan and allocates nothing. */
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

#define WT_STREAM_INIT 0x494E4954ULL
#define WT_MAX_TENSORS (4 * WT_SPEC_MAX_NODES)
#define WT_MAX_SLOTS (WT_SPEC_MAX_NODES + 1)
/* The most floats a tensor, or all of a kind together, may hold (1 GiB): sizes stay exact in 32 bits. */
#define WT_MAX_TENSOR_FLOATS ((uint64_t)1 << 28)

typedef struct wt_tensor {
  int32_t layer, role, ndim, shape[4], fan_in, trainable;
  size_t offset, count; /* floats into params (weight, bias) or running (running_mean, running_var) */
  float fill;           /* constant init when fan_in == 0 */
} wt_tensor;

struct wt_model {
  wt_spec spec;
  int32_t *spec_words;
  size_t spec_count;
  uint8_t *text;
  size_t text_bytes;
  int32_t block, max_batch, classes;
  uint32_t seed;
  int32_t layer_count, tensor_count, slot_count, logits_slot;
  wt_layer layers[WT_SPEC_MAX_NODES];
  wt_tensor tensors[WT_MAX_TENSORS];
  size_t slot_size[WT_MAX_SLOTS]; /* floats per image */
  float *act[WT_MAX_SLOTS], *dact[WT_MAX_SLOTS];
  size_t params_n, stats_n, running_n, grads_n, stride_p, stride_g, scratch_n;
  float *params, *grads, *adam_m, *adam_v, *running;
  float *ema; /* (params_n + running_n): the weights' moving average, when ema_active */
  int32_t ema_active, optim_kind;
  double label_smoothing;
  uint8_t tensor_group[WT_MAX_TENSORS]; /* parameter group of each tensor */
  uint8_t *labels;
  uint32_t *eval_indices;
  float *scratch;
  float *tree; /* (tree_levels, stride_g): right-hand nodes of the gradient tree */
  int32_t tree_levels;
  int32_t adam_t, stat_steps;
  /* The backward runs layers from train_from on: the first layer with a tensor that the last update
   * trained (0 until one has), since nothing below it is updated. A frozen prefix (fast's whitening
   * conv once its bias freezes) then costs no backward, and the first trained layer computes no
   * input gradient. need_dslot: the slots those layers write, whose gradients they need. */
  int32_t train_from;
  uint8_t need_dslot[WT_MAX_SLOTS];
  wt_augment augment; /* of training images; all zero: none */
  int32_t epoch;      /* whose augmentation the training blocks get */
  int32_t tta;        /* WT_TTA_* of wt_model_evaluate */
  float *tta_logits;  /* (3, block, classes): the views' averages */
  float lut[4][256]; /* pixel byte -> normalised value, per channel */
  double *profile;   /* wt_model_profile_slots() ms, or NULL */
  /* Calls of the API that run layers, counted (wrapping past 0 to 1); each layer's prepared
   * buffers were derived in call prepared_call[layer][i] (0: never). */
  uint32_t call;
  uint32_t prepared_call[WT_SPEC_MAX_NODES][2];
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

enum { PROF_DECODE, PROF_LOSS, PROF_TREE, PROF_UPDATE, PROF_LAYERS };
static void set_train_from(wt_model *m, int32_t from);

/* Runs `call`, adding its time to the slot when profiling is on. */
#define TIMED(m, slot, call)                     \
  do {                                           \
    if ((m)->profile) {                          \
      const double t0_ = wt_clock_ms();          \
      call;                                      \
      (m)->profile[slot] += wt_clock_ms() - t0_; \
    } else {                                     \
      call;                                      \
    }                                            \
  } while (0)

void wt_model_set_profile(wt_model *model, double *slots_ms) { model->profile = slots_ms; }
int32_t wt_model_profile_slots(const wt_model *model) { return PROF_LAYERS + 2 * model->layer_count; }

static size_t align16(size_t bytes) { return (bytes + 15) & ~(size_t)15; }
static size_t round4(size_t n) { return (n + 3) & ~(size_t)3; }

int32_t wt_grad_tree_mid(int32_t lo, int32_t hi) {
  int32_t half = 1;
  while (2 * half < hi - lo) half *= 2;
  return lo + half;
}

static int32_t tree_height(int32_t blocks) {
  int32_t h = 0;
  while ((1 << h) < blocks) h++;
  return h;
}

/* ---- planning ---- */

static const wt_op *op_for(int32_t kind) {
  switch (kind) {
    case WT_OP_CONV: return &wt_op_conv;
    case WT_OP_LINEAR: return &wt_op_linear;
    case WT_OP_RELU: return &wt_op_relu;
    case WT_OP_GELU: return &wt_op_gelu;
    case WT_OP_MAXPOOL: return &wt_op_maxpool;
    case WT_OP_AVGPOOL: return &wt_op_avgpool;
    case WT_OP_GLOBALAVG: return &wt_op_globalavg;
    case WT_OP_GLOBALMAX: return &wt_op_globalmax;
    case WT_OP_BATCHNORM: return &wt_op_batchnorm;
    case WT_OP_DROPOUT: return &wt_op_dropout;
    case WT_OP_FLATTEN: return &wt_op_flatten;
    case WT_OP_SCALE: return &wt_op_scale;
    case WT_OP_END: return &wt_op_add;
    default: return NULL;
  }
}

wt_status wt_plan_fail(const wt_layer *layer, const char *fmt, ...) {
  char message[400];
  va_list args;
  va_start(args, fmt);
  vsnprintf(message, sizeof message, fmt, args);
  va_end(args);
  return wt_fail(WT_ERR_BAD_DATA, "node %d: %s", (int)layer->node, message);
}

void wt_plan_tensor(wt_planner *p, wt_layer *l, int32_t role, int ndim, const int32_t *shape, int32_t fan_in,
                    float fill, int trainable) {
  wt_model *m = p->model;
  wt_tensor *t = &m->tensors[m->tensor_count];
  memset(t, 0, sizeof *t);
  t->layer = (int32_t)(l - m->layers);
  t->role = role;
  t->ndim = ndim;
  uint64_t count = 1; /* in 64 bits: size_t is 32 bits in Wasm */
  for (int d = 0; d < 4; d++) {
    t->shape[d] = d < ndim ? shape[d] : 1;
    count *= (uint64_t)t->shape[d];
  }
  if (count > WT_MAX_TENSOR_FLOATS) {
    p->too_big = 1;
    count = 0;
  }
  t->count = (size_t)count;
  t->fan_in = fan_in;
  t->fill = fill;
  t->trainable = trainable;
  const int running = role == WT_ROLE_RUNNING_MEAN || role == WT_ROLE_RUNNING_VAR;
  t->offset = running ? p->running : p->params;
  if (running) p->running += t->count;
  else p->params += t->count;
  if (l->tensor_count == 0) l->first_tensor = m->tensor_count;
  l->tensor_count++;
  m->tensor_count++;
}

static void shape_text(char *out, size_t n, wt_shape s) {
  if (s.flat) snprintf(out, n, "%d", (int)s.c);
  else snprintf(out, n, "%dx%dx%d", (int)s.c, (int)s.h, (int)s.w);
}

static int same_shape(wt_shape a, wt_shape b) { return a.c == b.c && a.h == b.h && a.w == b.w && a.flat == b.flat; }

/* Plans the layers of m->spec; fills the layer and tensor tables and the sizes (no arena yet). */
static wt_status plan(wt_model *m) {
  const wt_spec *spec = &m->spec;
  wt_planner p = {.model = m, .block = spec->block};
  int32_t pinned[WT_MAX_SLOTS] = {0}; /* > 0: another branch still reads the slot */
  int32_t writer[WT_MAX_SLOTS];       /* layer that wrote the slot's values, -1 for the input */
  struct frame {
    int32_t in_slot, body_slot, shortcut;
    wt_shape in, body;
  } stack[WT_SPEC_MAX_DEPTH + 1];
  int depth = 0;
  wt_shape cur = {spec->format.channels, spec->format.height, spec->format.width, 0};
  int32_t cur_slot = 0;
  m->slot_count = 1;
  m->slot_size[0] = wt_shape_size(cur);
  writer[0] = -1;
  for (int32_t n = 0; n < spec->count; n++) {
    const wt_node *node = &spec->nodes[n];
    if (node->kind == WT_OP_RESIDUAL) {
      stack[++depth] = (struct frame){.in_slot = cur_slot, .in = cur};
      pinned[cur_slot]++;
      continue;
    }
    if (node->kind == WT_OP_SHORTCUT) {
      struct frame *f = &stack[depth];
      f->body_slot = cur_slot, f->body = cur, f->shortcut = 1;
      pinned[cur_slot]++;
      cur_slot = f->in_slot, cur = f->in;
      continue;
    }
    wt_layer *l = &m->layers[m->layer_count];
    memset(l, 0, sizeof *l);
    l->op = op_for(node->kind);
    l->node = n;
    l->kind = node->kind;
    memcpy(l->arg, node->i, sizeof l->arg);
    memcpy(l->farg, node->f, sizeof l->farg);
    l->x = cur_slot, l->x2 = -1, l->in = cur;
    if (node->kind == WT_OP_END) {
      struct frame *f = &stack[depth--];
      const int32_t a = f->shortcut ? f->body_slot : cur_slot, b = f->shortcut ? cur_slot : f->in_slot;
      const wt_shape sa = f->shortcut ? f->body : cur, sb = f->shortcut ? cur : f->in;
      pinned[f->in_slot]--;
      if (f->shortcut) pinned[f->body_slot]--;
      if (!same_shape(sa, sb)) {
        char ta[48], tb[48];
        shape_text(ta, sizeof ta, sa), shape_text(tb, sizeof tb, sb);
        return wt_plan_fail(l, f->shortcut
                                   ? "the residual block's body gives %s but its shortcut gives %s: they must match to be added"
                                   : "the residual block's body gives %s but its input is %s: add a shortcut that makes them match, "
                                     "e.g. conv(out_channels, 1, stride=...) then batchnorm",
                            ta, tb);
      }
      l->x = a, l->x2 = b, l->in = sa;
    }
    l->out = l->in;
    const wt_status st = l->op->plan(l, &p);
    if (st != WT_OK) return st;
    if (p.too_big || p.params > WT_MAX_TENSOR_FLOATS || p.running > WT_MAX_TENSOR_FLOATS || p.stats > WT_MAX_TENSOR_FLOATS) {
      return wt_plan_fail(l, "the net's parameters would take more than the %.0f MiB a model may hold",
                          (double)WT_MAX_TENSOR_FLOATS * 4 / (1 << 20));
    }
    if (wt_shape_size(l->out) > ((size_t)1 << 26)) return wt_plan_fail(l, "its output of %zu values per image is too large", wt_shape_size(l->out));
    if (node->kind == WT_OP_FLATTEN) {
      l->y = l->x; /* a view: same values */
    } else if (node->kind == WT_OP_RELU && l->x != 0 && !pinned[l->x] && writer[l->x] >= 0 &&
               m->layers[writer[l->x]].op->output_free) {
      l->y = l->x, l->in_place = 1;
      writer[l->y] = m->layer_count;
    } else {
      if (m->slot_count == WT_MAX_SLOTS) return wt_plan_fail(l, "too many activations");
      l->y = m->slot_count++;
      m->slot_size[l->y] = wt_shape_size(l->out);
      writer[l->y] = m->layer_count;
    }
    cur = l->out, cur_slot = l->y;
    m->layer_count++;
  }
  if (m->layer_count == 0) return wt_fail(WT_ERR_BAD_DATA, "node 0: the description has no layers");
  const wt_layer *last = &m->layers[m->layer_count - 1];
  if (!spec->headless && wt_shape_size(cur) != (size_t)spec->format.classes) {
    char t[48];
    shape_text(t, sizeof t, cur);
    return wt_plan_fail(last, "the net ends with %s values per image; it must end with one per class (%d): e.g. linear(classes)",
                        t, (int)spec->format.classes);
  }
  m->logits_slot = cur_slot;
  /* Evaluation runs conv + ReLU (in place) + 2x2 max-pool as one pass where the conv can. */
  for (int32_t i = 0; i + 2 < m->layer_count; i++) {
    wt_layer *c = &m->layers[i], *r = &m->layers[i + 1], *pool = &m->layers[i + 2];
    c->fused_eval = c->kind == WT_OP_CONV && conv2d_fusable(c) && r->kind == WT_OP_RELU && r->in_place &&
                    r->x == c->y && pool->kind == WT_OP_MAXPOOL && pool->x == r->y && pool->arg[0] == 2 &&
                    pool->arg[1] == 2 && pool->arg[2] == 0 && c->out.h % 2 == 0 && c->out.w % 2 == 0;
  }
  m->params_n = p.params;
  m->stats_n = p.stats;
  m->running_n = p.running;
  m->grads_n = p.params + p.stats;
  return WT_OK;
}

/* ---- creation ---- */

wt_status wt_spec_check(const int32_t *spec, size_t words) {
  wt_model *m = calloc(1, sizeof *m);
  if (!m) return wt_fail(WT_ERR_OUT_OF_MEMORY, "out of memory checking a model spec");
  wt_status st = wt_spec_read(spec, words, &m->spec);
  if (st == WT_OK) st = plan(m);
  free(m);
  return st;
}

/* Bytes of everything the arena holds, computed in 64 bits so a hostile spec cannot wrap it. */
static uint64_t arena_bytes(const wt_model *m) {
  const uint64_t B = (uint64_t)m->block;
  uint64_t bytes = 4 * align16(4 * (uint64_t)m->stride_g) + align16(4 * (uint64_t)m->running_n + 4);
  bytes += align16(4 * ((uint64_t)m->params_n + m->running_n) + 4);
  for (int32_t s = 0; s < m->slot_count; s++) bytes += 2 * align16(4 * B * m->slot_size[s]);
  for (int32_t i = 0; i < m->layer_count; i++) {
    const wt_layer *l = &m->layers[i];
    bytes += align16(4 * (B * l->aux_per_image + l->aux_extra)) + align16(B * l->aux8_per_image);
    bytes += align16(4 * (uint64_t)l->prepared_floats[0]) + align16(4 * (uint64_t)l->prepared_floats[1]);
  }
  bytes += align16(B) + align16(4 * B) + align16(4 * (uint64_t)m->scratch_n);
  bytes += align16(4 * 3 * B * (uint64_t)m->classes);
  bytes += (uint64_t)m->tree_levels * align16(4 * (uint64_t)m->stride_g);
  return bytes;
}

wt_status wt_model_create(wt_model **out, const int32_t *spec, size_t spec_words, const uint8_t *text,
                          size_t text_bytes, int32_t max_batch, uint32_t seed) {
  if (!out) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_create: out is NULL");
  *out = NULL;
  if (max_batch < 1 || max_batch > WT_MAX_BATCH) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "batch size %d is out of range 1..%d", (int)max_batch, WT_MAX_BATCH);
  }
  if (!text && text_bytes) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_create: text is NULL");
  if (text_bytes > (1u << 20)) return wt_fail(WT_ERR_BAD_DATA, "model description of %zu bytes is over 1 MiB", text_bytes);
  wt_model *m = calloc(1, sizeof *m);
  if (!m) return wt_fail(WT_ERR_OUT_OF_MEMORY, "out of memory creating a model");
  wt_status st = wt_spec_read(spec, spec_words, &m->spec);
  if (st == WT_OK) st = plan(m);
  if (st != WT_OK) {
    free(m);
    return st;
  }
  m->block = m->spec.block;
  m->max_batch = max_batch;
  m->classes = m->spec.format.classes;
  m->seed = seed;
  m->stride_p = round4(m->params_n);
  m->stride_g = round4(m->grads_n);
  m->tree_levels = tree_height((max_batch + m->block - 1) / m->block);
  for (int32_t i = 0; i < m->layer_count; i++) {
    if (m->layers[i].scratch_floats > m->scratch_n) m->scratch_n = m->layers[i].scratch_floats;
  }
  const uint64_t bytes = arena_bytes(m);
  if (bytes > WT_MODEL_MAX_BYTES) {
    const int32_t block = m->block;
    free(m);
    return wt_fail(WT_ERR_BAD_DATA, "the model needs %.0f MiB for a block of %d images and batches up to %d; the limit is %.0f MiB",
                   (double)bytes / (1 << 20), (int)block, (int)max_batch, (double)WT_MODEL_MAX_BYTES / (1 << 20));
  }
  void *arena = aligned_alloc(16, (size_t)bytes);
  m->spec_words = malloc(4 * spec_words);
  m->text = malloc(text_bytes ? text_bytes : 1);
  if (!arena || !m->spec_words || !m->text) {
    free(arena), free(m->spec_words), free(m->text), free(m);
    return wt_fail(WT_ERR_OUT_OF_MEMORY, "out of memory allocating %.1f MiB for the model", (double)bytes / (1 << 20));
  }
  memcpy(m->spec_words, spec, 4 * spec_words);
  m->spec_count = spec_words;
  if (text_bytes) memcpy(m->text, text, text_bytes);
  m->text_bytes = text_bytes;
  memset(arena, 0, (size_t)bytes);
  m->arena = arena;

  char *cursor = arena;
#define TAKE(type, count) ((type *)(cursor += align16(sizeof(type) * (size_t)(count)), cursor - align16(sizeof(type) * (size_t)(count))))
  const size_t B = (size_t)m->block;
  m->params = TAKE(float, m->stride_g);
  m->grads = TAKE(float, m->stride_g);
  m->adam_m = TAKE(float, m->stride_g);
  m->adam_v = TAKE(float, m->stride_g);
  m->running = TAKE(float, m->running_n + 1);
  m->ema = TAKE(float, m->params_n + m->running_n + 1);
  for (int32_t s = 0; s < m->slot_count; s++) m->act[s] = TAKE(float, B * m->slot_size[s]);
  for (int32_t s = 0; s < m->slot_count; s++) m->dact[s] = TAKE(float, B * m->slot_size[s]);
  for (int32_t i = 0; i < m->layer_count; i++) {
    wt_layer *l = &m->layers[i];
    l->aux = TAKE(float, B * l->aux_per_image + l->aux_extra);
    for (int k = 0; k < 2; k++) l->prepared[k] = l->prepared_floats[k] ? TAKE(float, l->prepared_floats[k]) : NULL;
    l->aux8 = TAKE(uint8_t, B * l->aux8_per_image);
  }
  m->labels = TAKE(uint8_t, B);
  m->eval_indices = TAKE(uint32_t, B);
  m->scratch = TAKE(float, m->scratch_n);
  m->tta_logits = TAKE(float, 3 * B * (size_t)m->classes);
  m->tree = TAKE(float, (size_t)m->tree_levels * m->stride_g);
#undef TAKE
  const wt_data_format *f = &m->spec.format;
  for (int c = 0; !m->spec.headless && c < f->channels; c++)
    for (int v = 0; v < 256; v++) m->lut[c][v] = ((float)v / 255.0f - f->mean[c]) / f->std[c];
  wt_model_init(m, seed);
  *out = m;
  return WT_OK;
}

void wt_model_destroy(wt_model *model) {
  if (!model) return;
  free(model->arena);
  free(model->spec_words);
  free(model->text);
  free(model);
}

int32_t wt_model_max_batch(const wt_model *model) { return model->max_batch; }
int32_t wt_model_block(const wt_model *model) { return model->block; }
uint32_t wt_model_seed(const wt_model *model) { return model->seed; }
const wt_data_format *wt_model_data_format(const wt_model *model) { return &model->spec.format; }
const int32_t *wt_model_spec(const wt_model *model, size_t *out_words) {
  if (out_words) *out_words = model->spec_count;
  return model->spec_words;
}
const uint8_t *wt_model_text(const wt_model *model, size_t *out_bytes) {
  if (out_bytes) *out_bytes = model->text_bytes;
  return model->text;
}
int32_t wt_model_param_count(const wt_model *model) { return (int32_t)model->params_n; }
int32_t wt_model_grad_count(const wt_model *model) { return (int32_t)model->grads_n; }
int32_t wt_model_running_count(const wt_model *model) { return (int32_t)model->running_n; }
int32_t wt_model_tensor_count(const wt_model *model) { return model->tensor_count; }
int32_t wt_model_layer_count(const wt_model *model) { return model->layer_count; }

int32_t wt_model_tensor_info(const wt_model *model, int32_t index, wt_tensor_info *out) {
  if (!model || !out || index < 0 || index >= model->tensor_count) return 0;
  const wt_tensor *t = &model->tensors[index];
  out->layer = t->layer, out->role = t->role, out->ndim = t->ndim;
  memcpy(out->shape, t->shape, sizeof out->shape);
  out->offset = (int32_t)t->offset, out->count = (int32_t)t->count, out->trainable = t->trainable;
  return 1;
}

int32_t wt_model_layer_info(const wt_model *model, int32_t index, wt_layer_info *out) {
  if (!model || !out || index < 0 || index >= model->layer_count) return 0;
  const wt_layer *l = &model->layers[index];
  out->node = l->node, out->kind = l->kind;
  out->c = l->out.c, out->h = l->out.h, out->w = l->out.w, out->flat = l->out.flat;
  int64_t params = 0;
  for (int32_t t = 0; t < l->tensor_count; t++) {
    const wt_tensor *tensor = &model->tensors[l->first_tensor + t];
    if (tensor->role <= WT_ROLE_BIAS) params += (int64_t)tensor->count;
  }
  out->params = (int32_t)params;
  out->flops = l->flops;
  return 1;
}

void wt_model_init(wt_model *model, uint32_t seed) {
  wt_rng rng;
  wt_rng_seed(&rng, seed, WT_STREAM_INIT);
  for (int32_t i = 0; i < model->tensor_count; i++) {
    const wt_tensor *t = &model->tensors[i];
    const int running = t->role == WT_ROLE_RUNNING_MEAN || t->role == WT_ROLE_RUNNING_VAR;
    float *p = (running ? model->running : model->params) + t->offset;
    if (t->fan_in > 0) {
      const float bound = 1.0f / sqrtf((float)t->fan_in);
      for (size_t k = 0; k < t->count; k++) p[k] = (2.0f * wt_rng_uniform(&rng) - 1.0f) * bound;
    } else {
      for (size_t k = 0; k < t->count; k++) p[k] = t->fill;
    }
  }
  /* torch.nn.init.dirac_ on the first min(out, in) output channels, over the default init (which
   * drew the same numbers, so the other tensors do not move): the identity on those channels. */
  for (int32_t i = 0; i < model->layer_count; i++) {
    const wt_layer *l = &model->layers[i];
    if (l->kind != WT_OP_CONV || l->arg[6] != WT_CONV_INIT_DIRAC) continue;
    const wt_conv_shape *s = &l->conv;
    float *w = model->params + model->tensors[l->first_tensor].offset; /* (OC, C, K, K) */
    const int32_t n = s->OC < s->C ? s->OC : s->C, kk = s->K * s->K;
    memset(w, 0, sizeof(float) * (size_t)n * s->C * kk);
    for (int32_t o = 0; o < n; o++) w[((size_t)o * s->C + o) * kk + (s->K / 2) * s->K + s->K / 2] = 1.0f;
  }
  memset(model->grads, 0, sizeof(float) * model->stride_g);
  memset(model->adam_m, 0, sizeof(float) * model->stride_g);
  memset(model->adam_v, 0, sizeof(float) * model->stride_g);
  model->adam_t = 0;
  model->stat_steps = 0;
  model->ema_active = 0;
  set_train_from(model, 0);
}

float *wt_model_params(wt_model *model) { return model->params; }
float *wt_model_grads(wt_model *model) { return model->grads; }
float *wt_model_adam_m(wt_model *model) { return model->adam_m; }
float *wt_model_adam_v(wt_model *model) { return model->adam_v; }
float *wt_model_running(wt_model *model) { return model->running; }
int32_t wt_model_adam_step_count(const wt_model *model) { return model->adam_t; }
int32_t wt_model_stat_steps(const wt_model *model) { return model->stat_steps; }

wt_status wt_model_set_adam_step_count(wt_model *model, int32_t steps) {
  if (!model) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_set_adam_step_count: model is NULL");
  if (steps < 0) return wt_fail(WT_ERR_INVALID_ARGUMENT, "Adam step count %d is negative", (int)steps);
  model->adam_t = steps;
  return WT_OK;
}

wt_status wt_model_set_stat_steps(wt_model *model, int32_t steps) {
  if (!model) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_set_stat_steps: model is NULL");
  if (steps < 0) return wt_fail(WT_ERR_INVALID_ARGUMENT, "statistics step count %d is negative", (int)steps);
  model->stat_steps = steps;
  return WT_OK;
}

const float *wt_model_logits(const wt_model *model) { return model->act[model->logits_slot]; }

/* ---- accessors for the ops ---- */

float *wt_layer_param(const wt_layer *l, wt_ctx *ctx, int index) {
  return ctx->model->params + ctx->model->tensors[l->first_tensor + index].offset;
}
float *wt_layer_grad(const wt_layer *l, wt_ctx *ctx, int index) {
  return ctx->grads + ctx->model->tensors[l->first_tensor + index].offset;
}
float *wt_layer_running(const wt_layer *l, wt_ctx *ctx) { return ctx->model->running + l->running_offset; }
float *wt_layer_prepared(const wt_layer *l, wt_ctx *ctx, int which, int *stale) {
  wt_model *m = ctx->model;
  uint32_t *tag = &m->prepared_call[l - m->layers][which];
  *stale = *tag != m->call;
  *tag = m->call;
  return l->prepared[which];
}
float *wt_slot(wt_ctx *ctx, int32_t slot) { return ctx->model->act[slot]; }
float *wt_dslot(wt_ctx *ctx, int32_t slot) { return ctx->model->dact[slot]; }
float *wt_layer_stats(const wt_layer *l, wt_ctx *ctx) {
  return ctx->grads ? ctx->grads + ctx->model->params_n + l->stat_offset : NULL;
}

/* ---- running the plan ---- */

static int all_finite(const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

wt_status wt_model_load_weights(wt_model *model, const uint8_t *data, size_t bytes) {
  if (!model || (!data && bytes)) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_load_weights: NULL argument");
  const size_t want = sizeof(float) * model->params_n;
  if (model->running_n) {
    return wt_fail(WT_ERR_BAD_DATA, "this net has batch-norm running statistics, which a raw weights file does not hold: use safetensors or a checkpoint");
  }
  if (bytes != want) {
    return wt_fail(WT_ERR_BAD_DATA, "weights file is %zu bytes; this net's weights file is %zu bytes (%zu float32 parameters)",
                   bytes, want, model->params_n);
  }
  for (size_t i = 0; i < model->params_n; i++) {
    float value;
    memcpy(&value, data + i * sizeof(float), sizeof value);
    if (!isfinite(value)) return wt_fail(WT_ERR_BAD_DATA, "weights file holds a non-finite value at parameter %zu", i);
  }
  memcpy(model->params, data, want);
  memset(model->adam_m, 0, sizeof(float) * model->stride_g);
  memset(model->adam_v, 0, sizeof(float) * model->stride_g);
  model->adam_t = 0;
  set_train_from(model, 0);
  return WT_OK;
}

static wt_status check_records(const wt_model *m, const wt_records *r) {
  if (m->spec.headless) return wt_fail(WT_ERR_INVALID_ARGUMENT, "this model has no loss head (a per-layer test model)");
  if (!r || !r->data) return wt_fail(WT_ERR_INVALID_ARGUMENT, "NULL records");
  if (r->count < 1) return wt_fail(WT_ERR_INVALID_ARGUMENT, "record count %d is not positive", (int)r->count);
  const size_t pixels = wt_shape_size(m->layers[0].in);
  if (r->record_bytes < 1 || r->label_offset < 0 || r->label_offset >= r->record_bytes || r->pixel_offset < 0 ||
      (size_t)r->pixel_offset + pixels > (size_t)r->record_bytes) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "records of %d bytes (label at %d, pixels at %d) do not hold this net's %zu-byte images",
                   (int)r->record_bytes, (int)r->label_offset, (int)r->pixel_offset, pixels);
  }
  return WT_OK;
}

static wt_status check_batch(const wt_model *m, const wt_records *r, const uint32_t *indices, int32_t batch) {
  if (!m || !indices) return wt_fail(WT_ERR_INVALID_ARGUMENT, "NULL model or indices");
  const wt_status st = check_records(m, r);
  if (st != WT_OK) return st;
  if (batch < 1 || batch > m->max_batch) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "batch of %d images does not fit this model (1..%d)", (int)batch, (int)m->max_batch);
  }
  for (int32_t i = 0; i < batch; i++) {
    if (indices[i] >= (uint32_t)r->count) {
      return wt_fail(WT_ERR_INVALID_ARGUMENT, "record index %u is past the %d records loaded", (unsigned)indices[i], (int)r->count);
    }
    const uint8_t label = r->data[(size_t)indices[i] * r->record_bytes + r->label_offset];
    if (label >= m->classes) {
      return wt_fail(WT_ERR_BAD_DATA, "record %u has label %u; labels must be 0..%d", (unsigned)indices[i], (unsigned)label,
                     (int)m->classes - 1);
    }
  }
  return WT_OK;
}

static int augmenting(const wt_model *m) {
  const wt_augment *a = &m->augment;
  return a->flip || a->translate || a->cutout;
}

/* Records indices[0..B) into x (B, C, H, W) and their labels: through `view`, or with view NULL
 * each through its training view of the current epoch (the identity without augmentation). */
static void decode_into(wt_model *m, float *x, const wt_records *r, const uint32_t *indices, int B, const wt_view *view) {
  const wt_data_format *f = &m->spec.format;
  const size_t image = (size_t)f->channels * f->height * f->width;
  const wt_view identity = {0};
  for (int b = 0; b < B; b++) {
    const uint8_t *rec = r->data + (size_t)indices[b] * r->record_bytes;
    m->labels[b] = rec[r->label_offset];
    wt_view drawn;
    const wt_view *v = view ? view : &identity;
    if (!view && augmenting(m)) {
      wt_augment_view(&m->augment, m->epoch, indices[b], f->height, f->width, &drawn);
      v = &drawn;
    }
    wt_decode_view(x + (size_t)b * image, rec + r->pixel_offset, (const float(*)[256])m->lut, f->channels, f->height,
                   f->width, v);
  }
}

static void decode(wt_model *m, const wt_records *r, const uint32_t *indices, int B, const wt_view *view) {
  decode_into(m, m->act[0], r, indices, B, view);
}

/* A call of the API that runs layers begins: what layers derived from the parameters in earlier
 * calls is stale (wt_layer_prepared). */
static void begin_call(wt_model *m) {
  if (++m->call == 0) {
    memset(m->prepared_call, 0, sizeof m->prepared_call);
    m->call = 1;
  }
}

static void forward_layers(wt_model *m, wt_ctx *ctx, float *activations) {
  for (int32_t i = 0; i < m->layer_count; i++) {
    const wt_layer *l = &m->layers[i];
    if (!ctx->train && !ctx->grads && l->fused_eval && !activations) {
      TIMED(m, PROF_LAYERS + 2 * i, conv2d_relu_pool_eval(l, &m->layers[i + 2], ctx));
      i += 2;
      continue;
    }
    TIMED(m, PROF_LAYERS + 2 * i, l->op->forward(l, ctx));
    if (activations) {
      const size_t n = wt_shape_size(l->out);
      memcpy(activations, m->act[l->y], sizeof(float) * n);
      activations += n;
    }
  }
}

/* Zeroes the activation gradients of a block (the input's only when asked for), then runs every
 * layer's backward in reverse. */
static void backward_layers(wt_model *m, wt_ctx *ctx, int want_dx) {
  const int32_t from = want_dx ? 0 : m->train_from;
  ctx->need_dslot = want_dx ? NULL : m->need_dslot;
  for (int32_t s = want_dx ? 0 : 1; s < m->slot_count; s++) {
    if (s == m->logits_slot || (!want_dx && !m->need_dslot[s])) continue; /* logits: the loss's gradient */
    memset(m->dact[s], 0, sizeof(float) * (size_t)ctx->B * m->slot_size[s]);
  }
  for (int32_t i = m->layer_count - 1; i >= from; i--) {
    const wt_layer *l = &m->layers[i];
    TIMED(m, PROF_LAYERS + 2 * i + 1, l->op->backward(l, ctx));
  }
}

/* Forward (and with dst, backward) of one block of a checked batch; returns its summed loss. */
static double run_block(wt_model *m, const wt_records *r, const uint32_t *indices, int B, int32_t first_image,
                        int32_t step, float loss_scale, float *dst) {
  wt_ctx ctx = {.model = m, .B = B, .train = 1, .first_image = first_image, .step = step, .model_seed = m->seed, .grads = dst, .scratch = m->scratch};
  TIMED(m, PROF_DECODE, decode(m, r, indices, B, NULL));
  forward_layers(m, &ctx, NULL);
  const float *logits = m->act[m->logits_slot];
  double loss;
  TIMED(m, PROF_LOSS, loss = crossentropy_forward(logits, m->labels, m->label_smoothing, B, m->classes));
  if (!dst) return loss;
  float *dlogits = m->dact[m->logits_slot];
  TIMED(m, PROF_LOSS, {
    memset(dlogits, 0, sizeof(float) * (size_t)B * m->classes);
    crossentropy_backward(dlogits, logits, m->labels, m->label_smoothing, loss_scale, B, m->classes);
  });
  backward_layers(m, &ctx, 0);
  return loss;
}

wt_status wt_model_forward(wt_model *model, const wt_records *records, const uint32_t *indices, int32_t batch,
                           double *out_loss_sum) {
  const wt_status st = check_batch(model, records, indices, batch);
  if (st != WT_OK) return st;
  begin_call(model);
  double loss = 0;
  for (int32_t first = 0; first < batch; first += model->block) {
    const int32_t B = batch - first < model->block ? batch - first : model->block;
    loss += run_block(model, records, indices + first, B, first, 0, 0, NULL);
  }
  if (out_loss_sum) *out_loss_sum = loss;
  return WT_OK;
}

void wt_model_add_grads(const wt_model *model, float *dst, const float *src) { wt_add(dst, src, model->grads_n); }

/* Tree node [lo, hi) of a checked batch into dst; `level` is the first free scratch level.
 * The left half goes straight into dst and the right half into a scratch node, then dst += it. */
static double gradient_node(wt_model *m, const wt_records *r, const uint32_t *indices, int32_t batch, int32_t lo,
                            int32_t hi, float loss_scale, int32_t step, float *dst, int32_t level) {
  if (hi - lo == 1) {
    const int32_t first = lo * m->block;
    const int32_t count = batch - first < m->block ? batch - first : m->block;
    TIMED(m, PROF_TREE, memset(dst, 0, sizeof(float) * m->grads_n));
    return run_block(m, r, indices + first, count, first, step, loss_scale, dst);
  }
  const int32_t mid = wt_grad_tree_mid(lo, hi);
  float *right = m->tree + (size_t)level * m->stride_g;
  const double left_loss = gradient_node(m, r, indices, batch, lo, mid, loss_scale, step, dst, level);
  const double right_loss = gradient_node(m, r, indices, batch, mid, hi, loss_scale, step, right, level + 1);
  TIMED(m, PROF_TREE, wt_add(dst, right, m->grads_n));
  return left_loss + right_loss;
}

wt_status wt_model_gradient(wt_model *model, const wt_records *records, const uint32_t *indices, int32_t batch,
                            int32_t lo, int32_t hi, float loss_scale, int32_t step, float *dst, double *out_loss_sum) {
  const wt_status st = check_batch(model, records, indices, batch);
  if (st != WT_OK) return st;
  const int32_t blocks = (batch + model->block - 1) / model->block;
  if (!dst) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_gradient: dst is NULL");
  if (lo < 0 || hi <= lo || hi > blocks) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "gradient tree node [%d, %d) is not inside the %d blocks of a batch of %d",
                   (int)lo, (int)hi, (int)blocks, (int)batch);
  }
  const float *tree_end = model->tree + (size_t)model->tree_levels * model->stride_g;
  if (dst + model->grads_n > model->tree && dst < tree_end) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_gradient: dst overlaps the model's scratch nodes");
  }
  begin_call(model);
  const double loss = gradient_node(model, records, indices, batch, lo, hi, loss_scale, step, dst, 0);
  if (out_loss_sum) *out_loss_sum = loss;
  return WT_OK;
}

/* web/engine.js writes wt_optim_config at these offsets. */
_Static_assert(offsetof(wt_optim_config, beta1) == 16 && offsetof(wt_optim_config, groups) == 56 && sizeof(wt_param_group) == 24 &&
                   sizeof(wt_optim_config) == 56 + 24 * WT_MAX_PARAM_GROUPS,
               "wt_optim_config layout changed: update OPTIM_CONFIG in web/engine.js");

/* A message naming what is wrong with an optimizer config, or NULL. */
static const char *optim_config_problem(const wt_optim_config *c, char *message, size_t n) {
  if (c->kind < WT_OPTIM_ADAM || c->kind > WT_OPTIM_SGD) {
    snprintf(message, n, "optimizer kind %d is not 0 (Adam), 1 (AdamW) or 2 (SGD)", (int)c->kind);
  } else if (c->group_count < 1 || c->group_count > WT_MAX_PARAM_GROUPS) {
    snprintf(message, n, "%d parameter groups; 1 to %d are allowed", (int)c->group_count, WT_MAX_PARAM_GROUPS);
  } else if ((c->nesterov != 0 && c->nesterov != 1) || (c->decoupled != 0 && c->decoupled != 1)) {
    snprintf(message, n, "nesterov (%d) and decoupled (%d) must be 0 or 1", (int)c->nesterov, (int)c->decoupled);
  } else if (c->kind != WT_OPTIM_SGD && (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1) || !(c->eps > 0 && isfinite(c->eps)))) {
    snprintf(message, n, "Adam settings out of range (betas %g/%g, eps %g)", c->beta1, c->beta2, c->eps);
  } else if (c->kind == WT_OPTIM_SGD && (!(c->momentum >= 0 && c->momentum < 1) || !(c->dampening >= 0 && c->dampening <= 1))) {
    snprintf(message, n, "SGD settings out of range (momentum %g must be in [0, 1), dampening %g in [0, 1])", c->momentum, c->dampening);
  } else if (c->kind == WT_OPTIM_SGD && c->nesterov && !(c->momentum > 0 && c->dampening == 0)) {
    snprintf(message, n, "Nesterov momentum requires a momentum and zero dampening (momentum %g, dampening %g)", c->momentum, c->dampening);
  } else {
    for (int32_t g = 0; g < c->group_count; g++) {
      const wt_param_group *p = &c->groups[g];
      if (!(p->lr > 0 && isfinite(p->lr)) || !(p->weight_decay >= 0 && isfinite(p->weight_decay)) || (p->frozen != 0 && p->frozen != 1)) {
        snprintf(message, n, "parameter group %d out of range (lr %g must be positive, weight decay %g not negative, frozen %d 0 or 1)",
                 (int)g, p->lr, p->weight_decay, (int)p->frozen);
        return message;
      }
    }
    return NULL;
  }
  return message;
}

/* Where the backward starts (train_from, need_dslot): layer `from` and those after it. */
static void set_train_from(wt_model *m, int32_t from) {
  m->train_from = from;
  memset(m->need_dslot, 0, sizeof m->need_dslot);
  for (int32_t i = from; i < m->layer_count; i++) m->need_dslot[m->layers[i].y] = 1;
}

/* Tensor i's parameter group in config (group 0 when config has fewer groups). */
static const wt_param_group *group_of(const wt_model *m, const wt_optim_config *c, int32_t i) {
  return &c->groups[m->tensor_group[i] < c->group_count ? m->tensor_group[i] : 0];
}

/* Whether config's step updates tensor i (trainable, and its group not frozen). */
static int updates_tensor(const wt_model *m, const wt_optim_config *c, int32_t i) {
  const wt_tensor *tensor = &m->tensors[i];
  return tensor->role <= WT_ROLE_BIAS && tensor->trainable && !group_of(m, c, i)->frozen;
}

/* The first layer with a tensor config updates (layer_count if none). */
static int32_t first_updated_layer(const wt_model *m, const wt_optim_config *c) {
  for (int32_t l = 0; l < m->layer_count; l++)
    for (int32_t i = m->layers[l].first_tensor; i < m->layers[l].first_tensor + m->layers[l].tensor_count; i++)
      if (updates_tensor(m, c, i)) return l;
  return m->layer_count;
}

/* The optimizer step on every trainable tensor of an unfrozen group, with its group's settings.
 * t is the step number after increment. Adam without weight decay keeps its SIMD loop. */
static void optimizer_step(wt_model *m, const wt_optim_config *c, int32_t t) {
  const wt_adam_config adam = {0, c->beta1, c->beta2, c->eps};
  for (int32_t i = 0; i < m->tensor_count; i++) {
    if (!updates_tensor(m, c, i)) continue;
    const wt_tensor *tensor = &m->tensors[i];
    const wt_param_group *g = group_of(m, c, i);
    const size_t o = tensor->offset, n = tensor->count;
    float *p = m->params + o, *mom = m->adam_m + o;
    const float *grad = m->grads + o;
    if (c->kind == WT_OPTIM_SGD) {
      sgd_update(p, grad, mom, n, g->lr, c->momentum, c->dampening, c->nesterov, g->weight_decay, c->decoupled, t == 1);
    } else {
      wt_adam_config a = adam;
      a.lr = g->lr;
      if (g->weight_decay == 0) {
        adam_update(p, grad, mom, m->adam_v + o, n, &a, t);
      } else {
        adam_update_decay(p, grad, mom, m->adam_v + o, n, &a, t, g->weight_decay, c->kind == WT_OPTIM_ADAMW || c->decoupled);
      }
    }
  }
}

wt_status wt_model_update(wt_model *model, const wt_optim_config *config, int32_t groups) {
  if (!model || !config) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_update: NULL argument");
  char problem[200];
  if (optim_config_problem(config, problem, sizeof problem)) return wt_fail(WT_ERR_INVALID_ARGUMENT, "%s", problem);
  if (groups < 1) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_update: %d groups", (int)groups);
  for (size_t i = 0; i < model->grads_n; i++) {
    if (!isfinite(model->grads[i])) {
      return wt_fail(WT_ERR_NON_FINITE, "gradient of parameter %zu is not finite after %d optimizer steps; parameters left unchanged", i,
                     (int)model->adam_t);
    }
  }
  const int32_t first = first_updated_layer(model, config);
  if (first < model->train_from) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT,
                   "wt_model_update: layer %d's parameters are trained again, but the last update froze them, so this "
                   "step's backward did not compute their gradients; parameters left unchanged (a group cannot be "
                   "unfrozen on the same model)", (int)first);
  }
  model->adam_t += 1;
  model->optim_kind = config->kind;
  set_train_from(model, first);
  TIMED(model, PROF_UPDATE, {
    optimizer_step(model, config, model->adam_t);
    for (int32_t i = 0; i < model->layer_count; i++) {
      const wt_layer *l = &model->layers[i];
      if (l->kind == WT_OP_BATCHNORM) {
        batchnorm_update_running(l, model->running + l->running_offset, model->grads + model->params_n + l->stat_offset, groups);
      }
    }
  });
  if (model->running_n) model->stat_steps += 1;
  if (!all_finite(model->params, model->params_n)) {
    return wt_fail(WT_ERR_NON_FINITE, "a parameter became non-finite at optimizer step %d", (int)model->adam_t);
  }
  return WT_OK;
}

wt_status wt_model_set_tensor_group(wt_model *model, int32_t tensor, int32_t group) {
  if (!model) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_set_tensor_group: model is NULL");
  if (tensor < 0 || tensor >= model->tensor_count) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "tensor %d is not one of the model's %d", (int)tensor, (int)model->tensor_count);
  }
  if (group < 0 || group >= WT_MAX_PARAM_GROUPS) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "parameter group %d is outside 0..%d", (int)group, WT_MAX_PARAM_GROUPS - 1);
  }
  model->tensor_group[tensor] = (uint8_t)group;
  return WT_OK;
}

int32_t wt_model_tensor_group(const wt_model *model, int32_t tensor) {
  return model && tensor >= 0 && tensor < model->tensor_count ? model->tensor_group[tensor] : -1;
}

wt_status wt_model_set_label_smoothing(wt_model *model, double smoothing) {
  if (!model) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_set_label_smoothing: model is NULL");
  if (!(smoothing >= 0 && smoothing < 1)) return wt_fail(WT_ERR_INVALID_ARGUMENT, "label smoothing %g is outside [0, 1)", smoothing);
  model->label_smoothing = smoothing;
  return WT_OK;
}

int32_t wt_model_optimizer(const wt_model *model) { return model->optim_kind; }

wt_status wt_model_set_optimizer(wt_model *model, int32_t kind) {
  if (!model) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_set_optimizer: model is NULL");
  if (kind < WT_OPTIM_ADAM || kind > WT_OPTIM_SGD) return wt_fail(WT_ERR_INVALID_ARGUMENT, "optimizer kind %d is not 0, 1 or 2", (int)kind);
  model->optim_kind = kind;
  return WT_OK;
}

float *wt_model_ema(wt_model *model) { return model->ema; }
int32_t wt_model_ema_active(const wt_model *model) { return model->ema_active; }

void wt_model_ema_reset(wt_model *model, int32_t active) {
  model->ema_active = active != 0;
  if (!model->ema_active) return;
  memcpy(model->ema, model->params, sizeof(float) * model->params_n);
  memcpy(model->ema + model->params_n, model->running, sizeof(float) * model->running_n);
}

wt_status wt_model_ema_update(wt_model *model, double decay, int32_t copy_back) {
  if (!model) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_ema_update: model is NULL");
  if (!model->ema_active) return wt_fail(WT_ERR_INVALID_ARGUMENT, "the weights' average was not started (wt_model_ema_reset)");
  if (!(decay >= 0 && decay <= 1)) return wt_fail(WT_ERR_INVALID_ARGUMENT, "EMA decay %g is outside [0, 1]", decay);
  ema_update(model->ema, model->params, model->params_n, decay, copy_back);
  ema_update(model->ema + model->params_n, model->running, model->running_n, decay, copy_back);
  return WT_OK;
}

static void swap_floats(float *a, float *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const float t = a[i];
    a[i] = b[i], b[i] = t;
  }
}

wt_status wt_model_ema_swap(wt_model *model) {
  if (!model) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_ema_swap: model is NULL");
  if (!model->ema_active) return wt_fail(WT_ERR_INVALID_ARGUMENT, "the weights' average was not started (wt_model_ema_reset)");
  swap_floats(model->ema, model->params, model->params_n);
  swap_floats(model->ema + model->params_n, model->running, model->running_n);
  return WT_OK;
}

wt_status wt_model_train_step(wt_model *model, const wt_records *records, const uint32_t *indices, int32_t batch,
                              int32_t step, const wt_optim_config *config, float *out_loss) {
  if (!model) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_train_step: model is NULL");
  double loss_sum = 0;
  const int32_t blocks = batch > 0 ? (batch + model->block - 1) / model->block : 1;
  wt_status st = wt_model_gradient(model, records, indices, batch, 0, blocks, 1.0f / (float)batch, step, model->grads,
                                   &loss_sum);
  if (st != WT_OK) return st;
  const double loss = loss_sum / batch;
  if (out_loss) *out_loss = (float)loss;
  if (!isfinite(loss)) {
    return wt_fail(WT_ERR_NON_FINITE, "the loss is %s at optimizer step %d; parameters left unchanged", isnan(loss) ? "NaN" : "infinite",
                   (int)model->adam_t + 1);
  }
  return wt_model_update(model, config, blocks);
}

/* The index of the largest of z[0..K) (the first of equals). */
static int argmax(const float *z, int K) {
  int best = 0;
  for (int k = 1; k < K; k++)
    if (z[k] > z[best]) best = k;
  return best;
}

/* Logits of one block of evaluation images (at eval_indices) under the model's test-time
 * augmentation: each pair of views is averaged as airbench does, 0.5 * a + 0.5 * b. Adds the
 * correct predictions of the first view (the image itself) to *plain_correct. */
static const float *tta_logits(wt_model *m, wt_ctx *ctx, const wt_records *r, int B, int32_t *plain_correct) {
  static const wt_view views[6] = { /* pad 0: WT_PAD_REFLECT, as airbench pads its translations */
      {0}, {.flip = 1}, {.dy = -1, .dx = -1}, {.flip = 1, .dy = -1, .dx = -1}, {.dy = 1, .dx = 1}, {.flip = 1, .dy = 1, .dx = 1},
  };
  const float *logits = m->act[m->logits_slot];
  const size_t n = (size_t)B * m->classes;
  const int pairs = m->tta == WT_TTA_NONE ? 0 : m->tta == WT_TTA_FLIP ? 1 : 3;
  if (!pairs) {
    TIMED(m, PROF_DECODE, decode(m, r, m->eval_indices, B, &views[0]));
    forward_layers(m, ctx, NULL);
    return logits;
  }
  for (int p = 0; p < pairs; p++) {
    float *avg = m->tta_logits + p * n;
    for (int half = 0; half < 2; half++) {
      TIMED(m, PROF_DECODE, decode(m, r, m->eval_indices, B, &views[2 * p + half]));
      forward_layers(m, ctx, NULL);
      if (p == 0 && half == 0) {
        for (int b = 0; b < B; b++) *plain_correct += argmax(logits + (size_t)b * m->classes, m->classes) == m->labels[b];
      }
      for (size_t i = 0; i < n; i++) avg[i] = half ? avg[i] + 0.5f * logits[i] : 0.5f * logits[i];
    }
  }
  float *out = m->tta_logits;
  if (pairs == 3) { /* 0.5 * flip(image) + 0.5 * the mean of the two translations' */
    const float *t1 = m->tta_logits + n, *t2 = m->tta_logits + 2 * n;
    for (size_t i = 0; i < n; i++) out[i] = 0.5f * out[i] + 0.5f * ((t1[i] + t2[i]) / 2.0f);
  }
  memcpy(m->act[m->logits_slot], out, sizeof(float) * n); /* wt_model_logits(): the averaged logits */
  return logits;
}

wt_status wt_model_evaluate(wt_model *model, const wt_records *records, int32_t first, int32_t count, int32_t *correct,
                            double *loss_sum, int32_t *confusion, uint8_t *predictions, int32_t *plain_correct) {
  if (!model || !correct || !loss_sum) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_evaluate: NULL argument");
  wt_status st = check_records(model, records);
  if (st != WT_OK) return st;
  if (first < 0 || count < 0 || (int64_t)first + count > records->count) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "records %d..%lld are outside the %d loaded", (int)first, (long long)first + count,
                   (int)records->count);
  }
  const int32_t K = model->classes;
  for (int32_t i = 0; i < count; i++) {
    const uint8_t label = records->data[(size_t)(first + i) * records->record_bytes + records->label_offset];
    if (label >= K) return wt_fail(WT_ERR_BAD_DATA, "record %d has label %u; labels must be 0..%d", (int)(first + i), (unsigned)label, (int)K - 1);
  }
  wt_ctx ctx = {.model = model, .train = 0, .scratch = model->scratch};
  begin_call(model);
  for (int32_t start = 0; start < count; start += model->block) {
    const int32_t B = count - start < model->block ? count - start : model->block;
    for (int32_t i = 0; i < B; i++) model->eval_indices[i] = (uint32_t)(first + start + i);
    ctx.B = B;
    int32_t plain = 0;
    const float *logits = tta_logits(model, &ctx, records, B, &plain);
    TIMED(model, PROF_LOSS, *loss_sum += crossentropy_forward(logits, model->labels, 0, B, K));
    int32_t right = 0;
    for (int32_t b = 0; b < B; b++) {
      const int best = argmax(logits + (size_t)b * K, K), truth = model->labels[b];
      right += best == truth;
      if (confusion) confusion[truth * K + best] += 1;
      if (predictions) predictions[start + b] = (uint8_t)best;
    }
    *correct += right;
    if (plain_correct) *plain_correct += model->tta == WT_TTA_NONE ? right : plain;
  }
  return WT_OK;
}

wt_status wt_model_run(wt_model *model, const float *x, int32_t n, int32_t train, float *y, float *activations) {
  if (!model || !x || !y || n < 0) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_run: bad arguments");
  const size_t in = model->slot_size[0], out = model->slot_size[model->logits_slot];
  wt_ctx ctx = {.model = model, .train = train != 0, .model_seed = model->seed, .scratch = model->scratch};
  begin_call(model);
  for (int32_t start = 0; start < n; start += model->block) {
    const int32_t B = n - start < model->block ? n - start : model->block;
    ctx.B = B, ctx.first_image = start;
    memcpy(model->act[0], x + (size_t)start * in, sizeof(float) * B * in);
    forward_layers(model, &ctx, start == 0 ? activations : NULL);
    memcpy(y + (size_t)start * out, model->act[model->logits_slot], sizeof(float) * B * out);
  }
  return WT_OK;
}

wt_status wt_model_run_backward(wt_model *model, const float *x, int32_t n, int32_t train, float *y, const float *dy,
                                float *dx) {
  if (!model || !x || !y || !dy || !dx || n < 1 || n > model->block) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_run_backward: bad arguments (n %d, block %d)", (int)n, (int)model->block);
  }
  const size_t in = model->slot_size[0], out = model->slot_size[model->logits_slot];
  wt_ctx ctx = {.model = model, .B = n, .train = train != 0, .model_seed = model->seed, .grads = model->grads, .want_dx = 1, .scratch = model->scratch};
  begin_call(model);
  memcpy(model->act[0], x, sizeof(float) * n * in);
  memset(model->grads, 0, sizeof(float) * model->grads_n);
  forward_layers(model, &ctx, NULL);
  memcpy(y, model->act[model->logits_slot], sizeof(float) * n * out);
  memcpy(model->dact[model->logits_slot], dy, sizeof(float) * n * out);
  backward_layers(model, &ctx, 1);
  memcpy(dx, model->dact[0], sizeof(float) * n * in);
  return WT_OK;
}

/* ---- augmentation, test-time augmentation and whitening ---- */

wt_status wt_model_set_augment(wt_model *model, const wt_augment *config) {
  if (!model) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_set_augment: model is NULL");
  const wt_augment none = {0};
  const wt_augment *a = config ? config : &none;
  const wt_data_format *f = &model->spec.format;
  const int32_t side = f->height < f->width ? f->height : f->width;
  if (a->flip < WT_FLIP_NONE || a->flip > WT_FLIP_ALTERNATE) return wt_fail(WT_ERR_INVALID_ARGUMENT, "augmentation: unknown flip mode %d", (int)a->flip);
  if (a->translate < 0 || a->translate >= side) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "augmentation: translate %d must be from 0 to %d (below the image's side, %d)", (int)a->translate,
                   (int)side - 1, (int)side);
  }
  if (a->padding != WT_PAD_REFLECT && a->padding != WT_PAD_ZERO) return wt_fail(WT_ERR_INVALID_ARGUMENT, "augmentation: unknown padding %d", (int)a->padding);
  if (a->cutout < 0 || a->cutout > side) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "augmentation: cutout %d must be from 0 to the image's side, %d", (int)a->cutout, (int)side);
  }
  model->augment = *a;
  return WT_OK;
}

wt_status wt_model_set_epoch(wt_model *model, int32_t epoch) {
  if (!model || epoch < 0) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_set_epoch: bad arguments (epoch %d)", (int)epoch);
  model->epoch = epoch;
  return WT_OK;
}

wt_status wt_model_set_tta(wt_model *model, int32_t tta) {
  if (!model) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_set_tta: model is NULL");
  if (tta < WT_TTA_NONE || tta > WT_TTA_FLIP_TRANSLATE) return wt_fail(WT_ERR_INVALID_ARGUMENT, "unknown test-time augmentation %d", (int)tta);
  const wt_data_format *f = &model->spec.format;
  if (tta == WT_TTA_FLIP_TRANSLATE && (f->height < 2 || f->width < 2)) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "flip-translate needs images of at least 2 x 2 pixels");
  }
  model->tta = tta;
  return WT_OK;
}

wt_status wt_model_decode(wt_model *model, const wt_records *records, const uint32_t *indices, int32_t n, int32_t train,
                          float *out) {
  if (!model || !out || n < 1) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_decode: bad arguments (%d images)", (int)n);
  const size_t image = model->slot_size[0];
  const int32_t chunk = model->block < model->max_batch ? model->block : model->max_batch;
  const wt_view identity = {0};
  for (int32_t start = 0; start < n; start += chunk) {
    const int32_t B = n - start < chunk ? n - start : chunk;
    const wt_status st = check_batch(model, records, indices + start, B);
    if (st != WT_OK) return st;
    decode_into(model, out + (size_t)start * image, records, indices + start, B, train ? NULL : &identity);
  }
  return WT_OK;
}

/* sum a[i] * b[i] in four fixed chains (the same order on every build), for instruction-level
 * parallelism. */
static double dot_chains(const double *a, const double *b, int32_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i], s1 += a[i + 1] * b[i + 1], s2 += a[i + 2] * b[i + 2], s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; i++) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

#define WT_WHITEN_CHUNK 1024 /* patches gathered at a time, in whole rows (one row may be longer) */

/* The patch second moments of the first images for a whitening conv, then its weights. */
static wt_status whiten_layer(wt_model *m, const wt_layer *l, const wt_records *r) {
  const wt_conv_shape *s = &l->conv;
  const int32_t K = s->K, C = s->C, H = s->H, W = s->W, D = C * K * K;
  const int32_t images = (int32_t)l->farg[1] < r->count ? (int32_t)l->farg[1] : r->count;
  const double eps = l->farg[0];
  double *cov = calloc((size_t)D * D, sizeof(double)), *vectors = malloc(sizeof(double) * (size_t)D * D);
  double *values = malloc(sizeof(double) * D), *patches = malloc(sizeof(double) * (size_t)D * (W > WT_WHITEN_CHUNK ? W : WT_WHITEN_CHUNK));
  if (!cov || !vectors || !values || !patches) {
    free(cov), free(vectors), free(values), free(patches);
    return wt_fail(WT_ERR_OUT_OF_MEMORY, "out of memory whitening a %d-value patch", (int)D);
  }
  const wt_view identity = {0};
  const size_t plane = (size_t)H * W;
  const int32_t OH = H - K + 1, OW = W - K + 1, positions = OH * OW;
  const int32_t rows = OW >= WT_WHITEN_CHUNK ? 1 : WT_WHITEN_CHUNK / OW; /* patch rows gathered at a time */
  for (int32_t start = 0; start < images; start += m->block) {
    const int32_t B = images - start < m->block ? images - start : m->block;
    for (int32_t i = 0; i < B; i++) m->eval_indices[i] = (uint32_t)(start + i);
    decode(m, r, m->eval_indices, B, &identity);
    for (int32_t b = 0; b < B; b++) {
      const float *img = m->act[0] + (size_t)b * C * plane;
      for (int32_t y0 = 0; y0 < OH; y0 += rows) {
        const int32_t n = (y0 + rows <= OH ? rows : OH - y0) * OW;
        /* patches (D, n): row d = (c, ky, kx), the weight's layout; column = patch position */
        for (int32_t c = 0, d = 0; c < C; c++)
          for (int32_t ky = 0; ky < K; ky++)
            for (int32_t kx = 0; kx < K; kx++, d++)
              for (int32_t p = 0; p < n; p += OW) {
                const float *src = img + c * plane + (size_t)(y0 + p / OW + ky) * W + kx;
                for (int32_t x = 0; x < OW; x++) patches[(size_t)d * n + p + x] = src[x];
              }
        for (int32_t i = 0; i < D; i++)
          for (int32_t j = i; j < D; j++) cov[(size_t)i * D + j] += dot_chains(patches + (size_t)i * n, patches + (size_t)j * n, n);
      }
    }
  }
  const double count = (double)images * positions;
  for (int32_t i = 0; i < D; i++)
    for (int32_t j = i; j < D; j++) cov[(size_t)j * D + i] = cov[(size_t)i * D + j] /= count;
  wt_symmetric_eigen(cov, D, values, vectors);
  wt_status st = WT_OK;
  float *w = m->params + m->tensors[l->first_tensor].offset; /* (2D, C, K, K) */
  for (int32_t i = 0; i < D; i++) {
    if (!(values[i] + eps > 0)) {
      st = wt_fail(WT_ERR_BAD_DATA, "node %d: the patch matrix's eigenvalue %g plus eps %g is not positive", (int)l->node, values[i], eps);
      break;
    }
    const double scale = 1 / sqrt(values[i] + eps);
    for (int32_t k = 0; k < D; k++) {
      w[(size_t)i * D + k] = (float)(vectors[(size_t)i * D + k] * scale);
      w[(size_t)(D + i) * D + k] = -w[(size_t)i * D + k];
    }
  }
  free(cov), free(vectors), free(values), free(patches);
  return st;
}

wt_status wt_model_init_whitening(wt_model *model, const wt_records *records, int32_t *out_layers) {
  if (out_layers) *out_layers = 0;
  if (!model) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_model_init_whitening: model is NULL");
  int32_t done = 0;
  for (int32_t i = 0; i < model->layer_count; i++) {
    const wt_layer *l = &model->layers[i];
    if (l->kind != WT_OP_CONV || l->arg[6] != WT_CONV_INIT_WHITEN) continue;
    wt_status st = check_records(model, records);
    if (st == WT_OK) st = whiten_layer(model, l, records);
    if (st != WT_OK) return st;
    done++;
  }
  if (out_layers) *out_layers = done;
  return WT_OK;
}
