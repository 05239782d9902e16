/* Shared by the libFuzzer harnesses: a check that aborts (a crash libFuzzer records), and a
 * snapshot of a model's training state (parameters, Adam's moments and step count) to restore
 * before every input, so a crash reproduces from its input alone, and to compare after a refusal.
 * Define FUZZ_NAME (the harness, for messages) before including it. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "webtrain.h"

#define STATE_BYTES (sizeof(float) * WT_PARAM_COUNT)

static void require(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "%s: %s (last error: %s)\n", FUZZ_NAME, what, wt_last_error());
    abort();
  }
}

typedef struct model_state {
  float *floats; /* params | adam_m | adam_v */
  int32_t steps;
} model_state;

static model_state state_take(wt_model *m) {
  model_state s = {malloc(3 * STATE_BYTES), wt_model_adam_step_count(m)};
  require(s.floats != NULL, "out of memory for a model snapshot");
  memcpy(s.floats, wt_model_params(m), STATE_BYTES);
  memcpy(s.floats + WT_PARAM_COUNT, wt_model_adam_m(m), STATE_BYTES);
  memcpy(s.floats + 2 * WT_PARAM_COUNT, wt_model_adam_v(m), STATE_BYTES);
  return s;
}

static void state_restore(wt_model *m, const model_state *s) {
  memcpy(wt_model_params(m), s->floats, STATE_BYTES);
  memcpy(wt_model_adam_m(m), s->floats + WT_PARAM_COUNT, STATE_BYTES);
  memcpy(wt_model_adam_v(m), s->floats + 2 * WT_PARAM_COUNT, STATE_BYTES);
  wt_model_set_adam_step_count(m, s->steps);
}

/* Requires that m still holds s; `refused` names the input in the messages ("a refused file"). */
static void require_state(wt_model *m, const model_state *s, const char *refused) {
  static const char *parts[3] = {"the parameters", "Adam m", "Adam v"};
  float *now[3] = {wt_model_params(m), wt_model_adam_m(m), wt_model_adam_v(m)};
  char what[128];
  for (int i = 0; i < 3; i++) {
    snprintf(what, sizeof what, "%s changed %s", refused, parts[i]);
    require(memcmp(now[i], s->floats + (size_t)i * WT_PARAM_COUNT, STATE_BYTES) == 0, what);
  }
  snprintf(what, sizeof what, "%s changed the Adam step count", refused);
  require(wt_model_adam_step_count(m) == s->steps, what);
}

#endif
