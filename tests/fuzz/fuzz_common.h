/* Shared by the libFuzzer harnesses: a check that aborts (a crash libFuzzer records), and a
 * snapshot of a model's training state (parameters, Adam's moments, running statistics and step
 * counts) to restore before every input, so a crash reproduces from its input alone, and to
 * compare after a refusal. Define FUZZ_NAME (the harness, for messages) before including it. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_models.h"
#include "webtrain.h"

static inline void require(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "%s: %s (last error: %s)\n", FUZZ_NAME, what, wt_last_error());
    abort();
  }
}

static inline wt_model *create_or_die(const int32_t *spec, size_t words, int32_t max_batch, uint32_t seed) {
  wt_model *m = NULL;
  require(wt_model_create(&m, spec, words, NULL, 0, max_batch, seed) == WT_OK && m, "wt_model_create failed");
  return m;
}

typedef struct model_state {
  size_t P, R;
  float *floats; /* params | adam_m | adam_v | running */
  int32_t steps, stat_steps;
} model_state;

static inline model_state state_take(wt_model *m) {
  model_state s = {(size_t)wt_model_param_count(m), (size_t)wt_model_running_count(m), NULL, wt_model_adam_step_count(m),
                   wt_model_stat_steps(m)};
  s.floats = malloc(sizeof(float) * (3 * s.P + s.R + 1));
  require(s.floats != NULL, "out of memory for a model snapshot");
  memcpy(s.floats, wt_model_params(m), sizeof(float) * s.P);
  memcpy(s.floats + s.P, wt_model_adam_m(m), sizeof(float) * s.P);
  memcpy(s.floats + 2 * s.P, wt_model_adam_v(m), sizeof(float) * s.P);
  memcpy(s.floats + 3 * s.P, wt_model_running(m), sizeof(float) * s.R);
  return s;
}

static inline void state_free(model_state *s) {
  free(s->floats);
  s->floats = NULL;
}

static inline void state_restore(wt_model *m, const model_state *s) {
  memcpy(wt_model_params(m), s->floats, sizeof(float) * s->P);
  memcpy(wt_model_adam_m(m), s->floats + s->P, sizeof(float) * s->P);
  memcpy(wt_model_adam_v(m), s->floats + 2 * s->P, sizeof(float) * s->P);
  memcpy(wt_model_running(m), s->floats + 3 * s->P, sizeof(float) * s->R);
  wt_model_set_adam_step_count(m, s->steps);
  wt_model_set_stat_steps(m, s->stat_steps);
}

/* Requires that m still holds s; `refused` names the input in the messages ("a refused file"). */
static inline void require_state(wt_model *m, const model_state *s, const char *refused) {
  static const char *parts[4] = {"the parameters", "Adam m", "Adam v", "the running statistics"};
  float *now[4] = {wt_model_params(m), wt_model_adam_m(m), wt_model_adam_v(m), wt_model_running(m)};
  const size_t offsets[4] = {0, s->P, 2 * s->P, 3 * s->P}, counts[4] = {s->P, s->P, s->P, s->R};
  char what[128];
  for (int i = 0; i < 4; i++) {
    snprintf(what, sizeof what, "%s changed %s", refused, parts[i]);
    require(memcmp(now[i], s->floats + offsets[i], sizeof(float) * counts[i]) == 0, what);
  }
  snprintf(what, sizeof what, "%s changed a step count", refused);
  require(wt_model_adam_step_count(m) == s->steps && wt_model_stat_steps(m) == s->stat_steps, what);
}

/* n records of the model's input shape in make_synthetic's layout (label first), labels
 * i % classes. Caller frees. */
static inline uint8_t *records_for(const wt_model *m, int n, wt_records *out) {
  const wt_data_format *f = wt_model_data_format(m);
  const size_t pixels = (size_t)f->channels * f->height * f->width, record = 1 + pixels;
  uint8_t *data = malloc((size_t)n * record);
  require(data != NULL, "out of memory for records");
  for (int r = 0; r < n; r++) {
    data[(size_t)r * record] = (uint8_t)(r % f->classes);
    for (size_t i = 0; i < pixels; i++) data[(size_t)r * record + 1 + i] = (uint8_t)((i * (r + 3) + (i >> 5) * 7) & 0xFF);
  }
  *out = (wt_records){data, n, (int32_t)record, 0, 1};
  return data;
}

#endif
