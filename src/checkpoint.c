/* Checkpoint files: a fixed little-endian header, the parameters, Adam's two moments, and a
 * CRC-32 of everything before it. Loading checks all of it before touching the model.
 *
 *   offset  size  field
 *        0     8  magic "WTCKPT\r\n" (the CR LF catches text-mode mangling)
 *        8     4  format version (WT_CHECKPOINT_VERSION)
 *       12     4  architecture id (WT_ARCH_SIMPLECNN)
 *       16     4  parameter count (WT_PARAM_COUNT)
 *       20     4  header size (128)
 *       24     4  Adam step count
 *       28    36  epoch, step, epochs, batch_size, shuffle, workers, seed, train_count, window_count
 *       64     8  window_sum (double)
 *       72    32  lr, beta1, beta2, eps (doubles)
 *      104    24  zero
 *      128   4P   parameters, then 4P Adam m, then 4P Adam v (float32, P = WT_PARAM_COUNT)
 *  128+12P     4  CRC-32 of bytes [0, 128 + 12P)
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"

#define HEADER_BYTES 128
#define PARAM_BYTES ((size_t)WT_PARAM_COUNT * 4)
#define CHECKPOINT_BYTES (HEADER_BYTES + 3 * PARAM_BYTES + 4)

/* web/engine.js reads and writes wt_run_state at these offsets. */
_Static_assert(offsetof(wt_run_state, window_count) == 32 && offsetof(wt_run_state, window_sum) == 40 &&
                   offsetof(wt_run_state, adam) == 48 && sizeof(wt_run_state) == 80,
               "wt_run_state layout changed: update RUN_STATE in web/engine.js");

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

size_t wt_checkpoint_bytes(void) { return CHECKPOINT_BYTES; }

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
static void put_floats(uint8_t *p, const float *x) {
  for (size_t i = 0; i < WT_PARAM_COUNT; i++) {
    uint32_t bits;
    memcpy(&bits, &x[i], 4);
    put_u32(p + 4 * i, bits);
  }
}
static void get_floats(float *x, const uint8_t *p) {
  for (size_t i = 0; i < WT_PARAM_COUNT; i++) {
    const uint32_t bits = get_u32(p + 4 * i);
    memcpy(&x[i], &bits, 4);
  }
}

static const float *model_buffer(const wt_model *model, int which) {
  wt_model *m = (wt_model *)model; /* accessors take non-const; nothing is written */
  return which == 0 ? wt_model_params(m) : which == 1 ? wt_model_adam_m(m) : wt_model_adam_v(m);
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

wt_status wt_checkpoint_save(const wt_model *model, const wt_run_state *state, uint8_t *out,
                             size_t out_bytes) {
  if (!model || !state || !out) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_checkpoint_save: NULL argument");
  if (out_bytes < CHECKPOINT_BYTES) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "checkpoint buffer of %zu bytes is smaller than %zu", out_bytes, (size_t)CHECKPOINT_BYTES);
  }
  const wt_status st = check_state(state);
  if (st != WT_OK) return st;
  memset(out, 0, HEADER_BYTES);
  memcpy(out, MAGIC, 8);
  put_u32(out + 8, WT_CHECKPOINT_VERSION);
  put_u32(out + 12, WT_ARCH_SIMPLECNN);
  put_u32(out + 16, WT_PARAM_COUNT);
  put_u32(out + 20, HEADER_BYTES);
  put_u32(out + 24, (uint32_t)wt_model_adam_step_count(model));
  const int32_t fields[9] = {state->epoch, state->step, state->epochs, state->batch_size, state->shuffle,
                             state->workers, (int32_t)state->seed, state->train_count, state->window_count};
  for (int i = 0; i < 9; i++) put_u32(out + 28 + 4 * i, (uint32_t)fields[i]);
  put_f64(out + 64, state->window_sum);
  put_f64(out + 72, state->adam.lr), put_f64(out + 80, state->adam.beta1);
  put_f64(out + 88, state->adam.beta2), put_f64(out + 96, state->adam.eps);
  for (int b = 0; b < 3; b++) put_floats(out + HEADER_BYTES + b * PARAM_BYTES, model_buffer(model, b));
  put_u32(out + CHECKPOINT_BYTES - 4, wt_crc32(out, CHECKPOINT_BYTES - 4));
  return WT_OK;
}

wt_status wt_checkpoint_load(wt_model *model, wt_run_state *state, const uint8_t *data,
                             size_t bytes) {
  if (!model || !state || (!data && bytes)) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_checkpoint_load: NULL argument");
  if (bytes < 8 || memcmp(data, MAGIC, 8) != 0) {
    return wt_fail(WT_ERR_BAD_DATA, "not a webtrain checkpoint (no WTCKPT signature)");
  }
  if (bytes < HEADER_BYTES) {
    return wt_fail(WT_ERR_BAD_DATA, "checkpoint truncated: %zu bytes, the header alone is %d", bytes, HEADER_BYTES);
  }
  const uint32_t version = get_u32(data + 8), arch = get_u32(data + 12), count = get_u32(data + 16),
                 header = get_u32(data + 20);
  if (version != WT_CHECKPOINT_VERSION) {
    return wt_fail(WT_ERR_BAD_DATA, "checkpoint format version %u is not supported (this build reads version %d)",
                   (unsigned)version, WT_CHECKPOINT_VERSION);
  }
  if (arch != WT_ARCH_SIMPLECNN || count != WT_PARAM_COUNT) {
    return wt_fail(WT_ERR_BAD_DATA, "checkpoint is for another architecture (id 0x%08X, %u parameters; expected SimpleCNN, %d)",
                   (unsigned)arch, (unsigned)count, WT_PARAM_COUNT);
  }
  if (header != HEADER_BYTES) return wt_fail(WT_ERR_BAD_DATA, "checkpoint header size %u is wrong (expected %d)", (unsigned)header, HEADER_BYTES);
  if (bytes != CHECKPOINT_BYTES) {
    return wt_fail(WT_ERR_BAD_DATA, "checkpoint %s: %zu bytes, expected %zu", bytes < CHECKPOINT_BYTES ? "truncated" : "has trailing bytes",
                   bytes, (size_t)CHECKPOINT_BYTES);
  }
  const uint32_t stored = get_u32(data + CHECKPOINT_BYTES - 4), actual = wt_crc32(data, CHECKPOINT_BYTES - 4);
  if (stored != actual) {
    return wt_fail(WT_ERR_BAD_DATA, "checkpoint is corrupted (CRC-32 %08X, computed %08X)", (unsigned)stored, (unsigned)actual);
  }
  /* Save writes zeros there; refusing anything else keeps the format canonical (load then save
   * gives the same bytes) and leaves the bytes free for a later version to define. */
  for (int i = 104; i < HEADER_BYTES; i++) {
    if (data[i] != 0) return wt_fail(WT_ERR_BAD_DATA, "checkpoint header has a non-zero reserved byte at offset %d", i);
  }
  wt_run_state s;
  memset(&s, 0, sizeof s);
  int32_t fields[9];
  for (int i = 0; i < 9; i++) fields[i] = (int32_t)get_u32(data + 28 + 4 * i);
  s.epoch = fields[0], s.step = fields[1], s.epochs = fields[2], s.batch_size = fields[3], s.shuffle = fields[4];
  s.workers = fields[5], s.seed = (uint32_t)fields[6], s.train_count = fields[7], s.window_count = fields[8];
  s.window_sum = get_f64(data + 64);
  s.adam.lr = get_f64(data + 72), s.adam.beta1 = get_f64(data + 80);
  s.adam.beta2 = get_f64(data + 88), s.adam.eps = get_f64(data + 96);
  wt_status st = check_state(&s);
  if (st != WT_OK) return st;
  const int32_t adam_steps = (int32_t)get_u32(data + 24);
  if (adam_steps < 0) return wt_fail(WT_ERR_BAD_DATA, "checkpoint Adam step count %d is negative", (int)adam_steps);
  for (size_t i = 0; i < 3 * (size_t)WT_PARAM_COUNT; i++) {
    float v;
    const uint32_t bits = get_u32(data + HEADER_BYTES + 4 * i);
    memcpy(&v, &bits, 4);
    if (!isfinite(v) || (i >= 2 * (size_t)WT_PARAM_COUNT && v < 0)) {
      return wt_fail(WT_ERR_BAD_DATA, "checkpoint holds an invalid %s value at index %zu",
                     i < WT_PARAM_COUNT ? "parameter" : i < 2 * (size_t)WT_PARAM_COUNT ? "Adam m" : "Adam v",
                     i % WT_PARAM_COUNT);
    }
  }
  /* Everything checked: now the model changes. */
  get_floats(wt_model_params(model), data + HEADER_BYTES);
  get_floats(wt_model_adam_m(model), data + HEADER_BYTES + PARAM_BYTES);
  get_floats(wt_model_adam_v(model), data + HEADER_BYTES + 2 * PARAM_BYTES);
  wt_model_set_adam_step_count(model, adam_steps);
  *state = s;
  return WT_OK;
}
