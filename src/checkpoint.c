/* Checkpoint files: a fixed little-endian header, the model's spec and description, the run's
 * recipe, the parameters, the optimizer's two buffers, the running statistics, the weights'
 * average, and a CRC-32 of everything before it. Loading checks all of it before touching the
 * model.
 *
 * Version 3 is version 2 with, in the header's reserved bytes:
 *      128     4  recipe bytes J (the run's recipe as JSON text, web/recipe.js; JS validates it)
 *      132     4  optimizer (wt_optimizer: whose state adam_m and adam_v hold; SGD's momentum
 *                 buffer is adam_m, and its adam_v is zero)
 *      136     4  weights' average floats E: 0 (none) or P + R
 *      140   116  zero
 * and after the description: J bytes of recipe, zero-padded to 4, then the v2 floats, then E
 * floats of the average (parameters, then running statistics), then the CRC-32.
 *
 * Version 2:
 *   offset  size  field
 *        0     8  magic "WTCKPT\r\n" (the CR LF catches text-mode mangling)
 *        8     4  format version (2)
 *       12     4  header size (256)
 *       16     8  total file size
 *       24     4  spec words S;  28  4  description bytes T
 *       32     4  parameter count P;  36  4  running statistics count R
 *       40     4  Adam step count;  44  4  statistics step count (num_batches_tracked)
 *       48    36  epoch, step, epochs, batch_size, shuffle, workers, seed, train_count, window_count
 *       84     4  zero
 *       88     8  window_sum (double)
 *       96    32  lr, beta1, beta2, eps (doubles)
 *      128   128  zero
 *      256    4S  the spec (int32), then T bytes of description text, zero-padded to 4
 *               then 4P parameters, 4P Adam m, 4P Adam v, 4R running statistics (float32)
 *   last 4        CRC-32 of every byte before it
 *
 * Version 1 (SimpleCNN only, 744,204 bytes): the same magic and version at 8, then architecture id
 * "SNC1" at 12, P at 16, header size 128 at 20, Adam steps at 24, the run state at 28..72, the
 * Adam settings at 72..104, zeros to 128, 3P floats and the CRC-32.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

#define V2_HEADER 256
#define V3_RESERVED_FROM 140
#define V1_HEADER 128
#define V1_ARCH_SIMPLECNN 0x31434E53u
#define V1_PARAMS 62006
#define V1_BYTES (V1_HEADER + 12 * (size_t)V1_PARAMS + 4)
#define MAX_SPEC_WORDS (WT_SPEC_HEADER_WORDS + WT_SPEC_MAX_NODES * WT_NODE_WORDS)
#define MAX_TEXT_BYTES (1u << 20)

/* web/engine.js reads and writes wt_run_state at these offsets. */
_Static_assert(offsetof(wt_run_state, window_count) == 32 && offsetof(wt_run_state, window_sum) == 40 &&
                   offsetof(wt_run_state, adam) == 48 && sizeof(wt_run_state) == 80,
               "wt_run_state layout changed: update RUN_STATE in web/engine.js");

#define F_ONE_HALF 0x3F000000 /* 0.5f */
/* SimpleCNN for CIFAR-10, as web/model-spec.js encodes web/models/simplecnn.txt: what a version 1
 * file holds. tests/checkpoint.test.js checks the two agree. */
static const int32_t SIMPLECNN_SPEC[WT_SPEC_HEADER_WORDS + 12 * WT_NODE_WORDS] = {
    WT_SPEC_MAGIC, WT_SPEC_HEADER_WORDS, 3, 32, 32, 10, WT_GRAD_BLOCK, 12,
    F_ONE_HALF, F_ONE_HALF, F_ONE_HALF, 0, F_ONE_HALF, F_ONE_HALF, F_ONE_HALF, 0, 0, 0, 0, 0,
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

static const uint8_t MAGIC[8] = {'W', 'T', 'C', 'K', 'P', 'T', '\r', '\n'};

uint32_t wt_crc32(const uint8_t *data, size_t bytes) {
  static uint32_t table[256];
  static int ready = 0;
  if (!ready) {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    ready = 1;
  }
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < bytes; i++) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}


/* Explicit little-endian encoding: the file is the same from any host. */
static void put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put_f64(uint8_t *p, double v) {
  uint64_t bits;
  memcpy(&bits, &v, 8);
  put_u32(p, (uint32_t)bits), put_u32(p + 4, (uint32_t)(bits >> 32));
}
static double get_f64(const uint8_t *p) {
  const uint64_t bits = (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
  double v;
  memcpy(&v, &bits, 8);
  return v;
}
static void put_floats(uint8_t *p, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint32_t bits;
    memcpy(&bits, &x[i], 4);
    put_u32(p + 4 * i, bits);
  }
}
static void get_floats(float *x, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const uint32_t bits = get_u32(p + 4 * i);
    memcpy(&x[i], &bits, 4);
  }
}

static size_t pad4(size_t n) { return (n + 3) & ~(size_t)3; }

/* Floats of the weights' average a checkpoint of `model` holds. */
static size_t ema_floats(const wt_model *model) {
  return wt_model_ema_active(model) ? (size_t)wt_model_param_count(model) + (size_t)wt_model_running_count(model) : 0;
}

size_t wt_checkpoint_bytes(const wt_model *model, size_t recipe_bytes) {
  size_t spec_words, text_bytes;
  wt_model_spec(model, &spec_words);
  wt_model_text(model, &text_bytes);
  const size_t P = (size_t)wt_model_param_count(model), R = (size_t)wt_model_running_count(model);
  return V2_HEADER + 4 * spec_words + pad4(text_bytes) + pad4(recipe_bytes) + 4 * (3 * P + R + ema_floats(model)) + 4;
}

/* Names the first difference between a checkpoint's spec and a model's, for the refusal. */
static void describe_spec_difference(char *out, size_t n, const int32_t *theirs, size_t their_words, const int32_t *mine,
                                     size_t my_words) {
  size_t i = 0;
  while (i < their_words && i < my_words && theirs[i] == mine[i]) i++;
  if (i < WT_SPEC_HEADER_WORDS) {
    const char *field = i >= 2 && i <= 4 ? "the input shape" : i == 5 ? "the class count" : i == 6 ? "the ghost batch"
                      : i == 7 ? "the number of layers" : i >= 8 && i <= 15 ? "the normalisation" : "its header";
    snprintf(out, n, "%s differs", field);
  } else if (i >= their_words || i >= my_words) {
    snprintf(out, n, "it has %zu spec nodes, this model %zu", (their_words - WT_SPEC_HEADER_WORDS) / WT_NODE_WORDS,
             (my_words - WT_SPEC_HEADER_WORDS) / WT_NODE_WORDS);
  } else {
    const size_t node = (i - WT_SPEC_HEADER_WORDS) / WT_NODE_WORDS;
    snprintf(out, n, "node %zu differs (kind %d there, %d here; argument word %zu)", node,
             (int)theirs[WT_SPEC_HEADER_WORDS + node * WT_NODE_WORDS], (int)mine[WT_SPEC_HEADER_WORDS + node * WT_NODE_WORDS],
             (i - WT_SPEC_HEADER_WORDS) % WT_NODE_WORDS);
  }
}

static wt_status check_state(const wt_run_state *s) {
  if (s->epoch < 0 || s->step < 0 || s->epochs < 0 || s->batch_size < 1 || s->batch_size > WT_MAX_BATCH ||
      (s->shuffle != 0 && s->shuffle != 1) || s->workers < 1 || s->train_count < 1 || s->window_count < 0 ||
      !isfinite(s->window_sum)) {
    return wt_fail(WT_ERR_BAD_DATA, "run state out of range (epoch %d, step %d, epochs %d, batch %d, shuffle %d, workers %d, records %d)",
                   (int)s->epoch, (int)s->step, (int)s->epochs, (int)s->batch_size, (int)s->shuffle, (int)s->workers,
                   (int)s->train_count);
  }
  const int32_t steps_per_epoch = (int32_t)((s->train_count + (int64_t)s->batch_size - 1) / s->batch_size);
  if (s->step >= steps_per_epoch || s->window_count > s->step) {
    return wt_fail(WT_ERR_BAD_DATA, "step %d is not inside an epoch of %d steps", (int)s->step, (int)steps_per_epoch);
  }
  const wt_adam_config *a = &s->adam;
  if (!(a->lr > 0 && isfinite(a->lr)) || !(a->beta1 >= 0 && a->beta1 < 1) || !(a->beta2 >= 0 && a->beta2 < 1) ||
      !(a->eps > 0 && isfinite(a->eps))) {
    return wt_fail(WT_ERR_BAD_DATA, "Adam settings out of range (lr %g, betas %g/%g, eps %g)", a->lr, a->beta1, a->beta2, a->eps);
  }
  return WT_OK;
}

static void put_state(uint8_t *p, const wt_run_state *state) {
  const int32_t fields[9] = {state->epoch, state->step, state->epochs, state->batch_size, state->shuffle,
                             state->workers, (int32_t)state->seed, state->train_count, state->window_count};
  for (int i = 0; i < 9; i++) put_u32(p + 4 * i, (uint32_t)fields[i]);
}

static void get_state(wt_run_state *s, const uint8_t *ints, const uint8_t *window_sum, const uint8_t *adam) {
  memset(s, 0, sizeof *s);
  int32_t f[9];
  for (int i = 0; i < 9; i++) f[i] = (int32_t)get_u32(ints + 4 * i);
  s->epoch = f[0], s->step = f[1], s->epochs = f[2], s->batch_size = f[3], s->shuffle = f[4];
  s->workers = f[5], s->seed = (uint32_t)f[6], s->train_count = f[7], s->window_count = f[8];
  s->window_sum = get_f64(window_sum);
  s->adam.lr = get_f64(adam), s->adam.beta1 = get_f64(adam + 8), s->adam.beta2 = get_f64(adam + 16), s->adam.eps = get_f64(adam + 24);
}

wt_status wt_checkpoint_save(const wt_model *model, const wt_run_state *state, const uint8_t *recipe, size_t recipe_bytes,
                             uint8_t *out, size_t out_bytes) {
  if (!model || !state || !out || (!recipe && recipe_bytes)) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_checkpoint_save: NULL argument");
  if (recipe_bytes > MAX_TEXT_BYTES) return wt_fail(WT_ERR_INVALID_ARGUMENT, "recipe of %zu bytes is over 1 MiB", recipe_bytes);
  const size_t total = wt_checkpoint_bytes(model, recipe_bytes);
  if (out_bytes < total) return wt_fail(WT_ERR_INVALID_ARGUMENT, "checkpoint buffer of %zu bytes is smaller than %zu", out_bytes, total);
  const wt_status st = check_state(state);
  if (st != WT_OK) return st;
  wt_model *m = (wt_model *)model; /* accessors take non-const; nothing is written */
  size_t spec_words, text_bytes;
  const int32_t *spec = wt_model_spec(m, &spec_words);
  const uint8_t *text = wt_model_text(m, &text_bytes);
  const size_t P = (size_t)wt_model_param_count(m), R = (size_t)wt_model_running_count(m), E = ema_floats(m);
  memset(out, 0, V2_HEADER);
  memcpy(out, MAGIC, 8);
  put_u32(out + 8, WT_CHECKPOINT_VERSION);
  put_u32(out + 12, V2_HEADER);
  put_u32(out + 16, (uint32_t)total), put_u32(out + 20, (uint32_t)((uint64_t)total >> 32));
  put_u32(out + 24, (uint32_t)spec_words), put_u32(out + 28, (uint32_t)text_bytes);
  put_u32(out + 32, (uint32_t)P), put_u32(out + 36, (uint32_t)R);
  put_u32(out + 40, (uint32_t)wt_model_adam_step_count(m)), put_u32(out + 44, (uint32_t)wt_model_stat_steps(m));
  put_state(out + 48, state);
  put_f64(out + 88, state->window_sum);
  put_f64(out + 96, state->adam.lr), put_f64(out + 104, state->adam.beta1);
  put_f64(out + 112, state->adam.beta2), put_f64(out + 120, state->adam.eps);
  put_u32(out + 128, (uint32_t)recipe_bytes), put_u32(out + 132, (uint32_t)wt_model_optimizer(m)), put_u32(out + 136, (uint32_t)E);
  uint8_t *p = out + V2_HEADER;
  for (size_t i = 0; i < spec_words; i++, p += 4) put_u32(p, (uint32_t)spec[i]);
  memset(p, 0, pad4(text_bytes));
  if (text_bytes) memcpy(p, text, text_bytes);
  p += pad4(text_bytes);
  memset(p, 0, pad4(recipe_bytes));
  if (recipe_bytes) memcpy(p, recipe, recipe_bytes);
  p += pad4(recipe_bytes);
  put_floats(p, wt_model_params(m), P), p += 4 * P;
  put_floats(p, wt_model_adam_m(m), P), p += 4 * P;
  put_floats(p, wt_model_adam_v(m), P), p += 4 * P;
  put_floats(p, wt_model_running(m), R), p += 4 * R;
  put_floats(p, wt_model_ema(m), E), p += 4 * E;
  put_u32(p, wt_crc32(out, total - 4));
  return WT_OK;
}

/* The parts of a checked checkpoint file. */
typedef struct parsed {
  int32_t version, optimizer;
  const int32_t *spec;
  size_t spec_words, text_bytes, recipe_bytes, params, running, ema;
  const uint8_t *text, *recipe, *floats; /* floats: params, m, v, running, ema */
  int32_t adam_steps, stat_steps;
  wt_run_state state;
} parsed;

static int32_t spec_copy[MAX_SPEC_WORDS]; /* the spec of the file last parsed, aligned */

static wt_status check_crc(const uint8_t *data, size_t total) {
  const uint32_t stored = get_u32(data + total - 4), actual = wt_crc32(data, total - 4);
  if (stored != actual) return wt_fail(WT_ERR_BAD_DATA, "checkpoint is corrupted (CRC-32 %08X, computed %08X)", (unsigned)stored, (unsigned)actual);
  return WT_OK;
}

static wt_status parse_v1(const uint8_t *data, size_t bytes, parsed *out) {
  const uint32_t arch = get_u32(data + 12), count = get_u32(data + 16), header = get_u32(data + 20);
  if (arch != V1_ARCH_SIMPLECNN || count != V1_PARAMS) {
    return wt_fail(WT_ERR_BAD_DATA, "checkpoint is for another architecture (id 0x%08X, %u parameters; expected SimpleCNN, %d)",
                   (unsigned)arch, (unsigned)count, V1_PARAMS);
  }
  if (header != V1_HEADER) return wt_fail(WT_ERR_BAD_DATA, "checkpoint header size %u is wrong (expected %d)", (unsigned)header, V1_HEADER);
  if (bytes != V1_BYTES) {
    return wt_fail(WT_ERR_BAD_DATA, "checkpoint %s: %zu bytes, expected %zu", bytes < V1_BYTES ? "truncated" : "has trailing bytes", bytes, V1_BYTES);
  }
  wt_status st = check_crc(data, V1_BYTES);
  if (st != WT_OK) return st;
  for (int i = 104; i < V1_HEADER; i++) {
    if (data[i] != 0) return wt_fail(WT_ERR_BAD_DATA, "checkpoint header has a non-zero reserved byte at offset %d", i);
  }
  out->version = 1;
  out->spec = SIMPLECNN_SPEC;
  out->spec_words = sizeof SIMPLECNN_SPEC / 4;
  out->text = data, out->text_bytes = 0;
  out->recipe = data, out->recipe_bytes = 0, out->optimizer = WT_OPTIM_ADAM, out->ema = 0;
  out->params = V1_PARAMS, out->running = 0;
  out->floats = data + V1_HEADER;
  out->adam_steps = (int32_t)get_u32(data + 24), out->stat_steps = 0;
  get_state(&out->state, data + 28, data + 64, data + 72);
  return WT_OK;
}

/* Versions 2 and 3 (3: a recipe, the optimizer's kind and the weights' average). */
static wt_status parse_v2(const uint8_t *data, size_t bytes, uint32_t version, parsed *out) {
  if (bytes < V2_HEADER + 4) return wt_fail(WT_ERR_BAD_DATA, "checkpoint truncated: %zu bytes, the header alone is %d", bytes, V2_HEADER);
  const uint64_t total = (uint64_t)get_u32(data + 16) | (uint64_t)get_u32(data + 20) << 32;
  if (get_u32(data + 12) != V2_HEADER) return wt_fail(WT_ERR_BAD_DATA, "checkpoint header size %u is wrong (expected %d)", (unsigned)get_u32(data + 12), V2_HEADER);
  if (total != bytes) {
    return wt_fail(WT_ERR_BAD_DATA, "checkpoint %s: %zu bytes, its header says %llu", bytes < total ? "truncated" : "has trailing bytes", bytes,
                   (unsigned long long)total);
  }
  const uint64_t S = get_u32(data + 24), T = get_u32(data + 28), P = get_u32(data + 32), R = get_u32(data + 36);
  const uint64_t J = version >= 3 ? get_u32(data + 128) : 0, E = version >= 3 ? get_u32(data + 136) : 0;
  const uint32_t optimizer = version >= 3 ? get_u32(data + 132) : WT_OPTIM_ADAM;
  if (S > MAX_SPEC_WORDS || T > MAX_TEXT_BYTES || J > MAX_TEXT_BYTES || E > P + R ||
      V2_HEADER + 4 * S + pad4(T) + pad4(J) + 4 * (3 * P + R + E) + 4 != total) {
    return wt_fail(WT_ERR_BAD_DATA, "checkpoint sections (spec %llu words, text %llu bytes, recipe %llu bytes, %llu parameters, %llu statistics, %llu averaged) do not add up to its %zu bytes",
                   (unsigned long long)S, (unsigned long long)T, (unsigned long long)J, (unsigned long long)P, (unsigned long long)R,
                   (unsigned long long)E, bytes);
  }
  wt_status st = check_crc(data, bytes);
  if (st != WT_OK) return st;
  if (E != 0 && E != P + R) {
    return wt_fail(WT_ERR_BAD_DATA, "checkpoint's weights average holds %llu floats; expected 0 or %llu", (unsigned long long)E, (unsigned long long)(P + R));
  }
  if (optimizer > WT_OPTIM_SGD) return wt_fail(WT_ERR_BAD_DATA, "checkpoint optimizer %u is not 0 (Adam), 1 (AdamW) or 2 (SGD)", (unsigned)optimizer);
  for (int i = 84; i < 88; i++)
    if (data[i]) return wt_fail(WT_ERR_BAD_DATA, "checkpoint header has a non-zero reserved byte at offset %d", i);
  for (int i = version >= 3 ? V3_RESERVED_FROM : 128; i < V2_HEADER; i++)
    if (data[i]) return wt_fail(WT_ERR_BAD_DATA, "checkpoint header has a non-zero reserved byte at offset %d", i);
  for (size_t i = 0; i < S; i++) spec_copy[i] = (int32_t)get_u32(data + V2_HEADER + 4 * i);
  for (size_t i = T; i < pad4(T); i++)
    if (data[V2_HEADER + 4 * S + i]) return wt_fail(WT_ERR_BAD_DATA, "checkpoint description padding is not zero");
  const uint8_t *recipe = data + V2_HEADER + 4 * S + pad4(T);
  for (size_t i = J; i < pad4(J); i++)
    if (recipe[i]) return wt_fail(WT_ERR_BAD_DATA, "checkpoint recipe padding is not zero");
  out->version = (int32_t)version;
  out->spec = spec_copy;
  out->spec_words = (size_t)S;
  out->text = data + V2_HEADER + 4 * S, out->text_bytes = (size_t)T;
  out->recipe = recipe, out->recipe_bytes = (size_t)J;
  out->optimizer = (int32_t)optimizer, out->ema = (size_t)E;
  out->params = (size_t)P, out->running = (size_t)R;
  out->floats = recipe + pad4(J);
  out->adam_steps = (int32_t)get_u32(data + 40), out->stat_steps = (int32_t)get_u32(data + 44);
  get_state(&out->state, data + 48, data + 88, data + 96);
  return WT_OK;
}

static wt_status parse(const uint8_t *data, size_t bytes, parsed *out) {
  if (!data && bytes) return wt_fail(WT_ERR_INVALID_ARGUMENT, "checkpoint: NULL data");
  if (bytes < 8 || memcmp(data, MAGIC, 8) != 0) return wt_fail(WT_ERR_BAD_DATA, "not a webtrain checkpoint (no WTCKPT signature)");
  if (bytes < 24) return wt_fail(WT_ERR_BAD_DATA, "checkpoint truncated: %zu bytes", bytes);
  if ((uint64_t)bytes > WT_CHECKPOINT_MAX_BYTES) return wt_fail(WT_ERR_BAD_DATA, "checkpoint of %zu bytes is over the 1 GiB limit", bytes);
  const uint32_t version = get_u32(data + 8);
  if (version == 1) return parse_v1(data, bytes, out);
  if (version == 2 || version == 3) return parse_v2(data, bytes, version, out);
  return wt_fail(WT_ERR_BAD_DATA, "checkpoint format version %u is not supported (this build reads versions 1 to 3)", (unsigned)version);
}

wt_status wt_checkpoint_describe(const uint8_t *data, size_t bytes, const int32_t **spec, size_t *spec_words,
                                 const uint8_t **text, size_t *text_bytes) {
  if (!spec || !spec_words || !text || !text_bytes) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_checkpoint_describe: NULL argument");
  parsed p;
  const wt_status st = parse(data, bytes, &p);
  if (st != WT_OK) return st;
  *spec = p.spec, *spec_words = p.spec_words, *text = p.text, *text_bytes = p.text_bytes;
  return WT_OK;
}

wt_status wt_checkpoint_recipe(const uint8_t *data, size_t bytes, const uint8_t **recipe, size_t *recipe_bytes) {
  if (!recipe || !recipe_bytes) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_checkpoint_recipe: NULL argument");
  parsed p;
  const wt_status st = parse(data, bytes, &p);
  if (st != WT_OK) return st;
  *recipe = p.recipe, *recipe_bytes = p.recipe_bytes;
  return WT_OK;
}

wt_status wt_checkpoint_load(wt_model *model, wt_run_state *state, const uint8_t *data, size_t bytes) {
  if (!model || !state) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_checkpoint_load: NULL argument");
  parsed p;
  wt_status st = parse(data, bytes, &p);
  if (st != WT_OK) return st;
  size_t words;
  const int32_t *mine = wt_model_spec(model, &words);
  if (words != p.spec_words || memcmp(mine, p.spec, 4 * words) != 0 || p.params != (size_t)wt_model_param_count(model) ||
      p.running != (size_t)wt_model_running_count(model)) {
    char where[160];
    describe_spec_difference(where, sizeof where, p.spec, p.spec_words, mine, words);
    return wt_fail(WT_ERR_BAD_DATA, "checkpoint is for another model: %s (%zu parameters; this one has %d)", where, p.params,
                   (int)wt_model_param_count(model));
  }
  st = check_state(&p.state);
  if (st != WT_OK) return st;
  if (p.adam_steps < 0 || p.stat_steps < 0) return wt_fail(WT_ERR_BAD_DATA, "checkpoint step counts (%d, %d) are negative", (int)p.adam_steps, (int)p.stat_steps);
  const size_t P = p.params, total = 3 * P + p.running + p.ema;
  /* Which running statistics are variances (they must not be negative either). */
  size_t var_lo[WT_SPEC_MAX_NODES], var_hi[WT_SPEC_MAX_NODES];
  int vars = 0;
  wt_tensor_info info;
  for (int32_t t = 0; wt_model_tensor_info(model, t, &info) && vars < WT_SPEC_MAX_NODES; t++) {
    if (info.role == 3) var_lo[vars] = 3 * P + (size_t)info.offset, var_hi[vars++] = 3 * P + (size_t)info.offset + (size_t)info.count;
  }
  for (size_t i = 0; i < total; i++) {
    float v;
    const uint32_t bits = get_u32(p.floats + 4 * i);
    memcpy(&v, &bits, 4);
    const size_t ema_from = 3 * P + p.running;
    int var = i >= 2 * P && i < 3 * P;
    for (int k = 0; k < vars && !var; k++) {
      var = (i >= var_lo[k] && i < var_hi[k]) || (p.ema && i >= var_lo[k] + p.running + P && i < var_hi[k] + p.running + P);
    }
    if (!isfinite(v) || (var && v < 0)) {
      const char *what = i < P ? "parameter" : i < 2 * P ? "Adam m" : i < 3 * P ? "Adam v" : i < ema_from ? "running statistic" : "weights average";
      return wt_fail(WT_ERR_BAD_DATA, "checkpoint holds an invalid %s value at index %zu", what,
                     i < 3 * P ? i % P : i < ema_from ? i - 3 * P : i - ema_from);
    }
  }
  /* Everything checked: now the model changes. */
  get_floats(wt_model_params(model), p.floats, P);
  get_floats(wt_model_adam_m(model), p.floats + 4 * P, P);
  get_floats(wt_model_adam_v(model), p.floats + 8 * P, P);
  get_floats(wt_model_running(model), p.floats + 12 * P, p.running);
  wt_model_ema_reset(model, p.ema != 0);
  get_floats(wt_model_ema(model), p.floats + 12 * P + 4 * p.running, p.ema);
  wt_model_set_optimizer(model, p.optimizer);
  wt_model_set_adam_step_count(model, p.adam_steps);
  wt_model_set_stat_steps(model, p.stat_steps);
  *state = p.state;
  return WT_OK;
}
