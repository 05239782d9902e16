/* libFuzzer harness for model specs: arbitrary int32 words through wt_spec_check and
 * wt_model_create. Both agree (the one difference allowed: a spec whose arena is over the limit
 * passes the check and is refused by create, by its sizes); a refusal is WT_ERR_BAD_DATA with a
 * message. A huge spec must be refused before anything is allocated: run.sh bounds the harness
 * with -malloc_limit_mb just above the engine's arena limit and -rss_limit_mb, so an allocation
 * of a hostile spec's arena fails the run. A model that is created and cheap enough (under
 * MAX_FLOPS per image) then runs a train step, an evaluation and a forward/backward with the
 * input gradient on a few synthetic images, so every op meets fuzzed shapes under the sanitizers.
 * Inputs shorter than a spec header are spliced over SimpleCNN's.
 * Built with -fsanitize=fuzzer,address,undefined. */
#define FUZZ_NAME "fuzz_spec"
#include "fuzz_common.h"

#define MAX_FLOPS 4e6 /* forward FLOPs per image worth running */
#define MAX_WORDS SPEC_MAX_WORDS

static int32_t words_buffer[MAX_WORDS + WT_NODE_WORDS];

static void run_model(wt_model *m) {
  double flops = 0;
  for (int32_t i = 0; i < wt_model_layer_count(m); i++) {
    wt_layer_info info;
    require(wt_model_layer_info(m, i, &info) == 1, "a layer without its info");
    require(info.c >= 1 && info.h >= 1 && info.w >= 1 && info.params >= 0 && info.flops >= 0, "impossible layer info");
    flops += info.flops;
  }
  const wt_data_format *f = wt_model_data_format(m);
  const size_t in = (size_t)f->channels * f->height * f->width;
  if (flops > MAX_FLOPS || in > 4096) return;
  const int32_t batch = 3;
  wt_records records;
  uint8_t *data = records_for(m, batch, &records);
  const uint32_t indices[3] = {2, 0, 1};
  const wt_optim_config adam = {.kind = WT_OPTIM_ADAM, .group_count = 1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .groups = {{.lr = 1e-3}}};
  float loss = 0;
  const wt_status trained = wt_model_train_step(m, &records, indices, batch, 1, &adam, &loss);
  require(trained == WT_OK || trained == WT_ERR_NON_FINITE, "a train step failed on a created model");
  int32_t correct = 0;
  double loss_sum = 0;
  require(wt_model_evaluate(m, &records, 0, batch, &correct, &loss_sum, NULL, NULL, NULL) == WT_OK, "evaluation failed on a created model");
  require(correct >= 0 && correct <= batch, "evaluation counts out of range");
  /* One block forward and backward with the input's gradient (the per-layer test path). */
  wt_layer_info last;
  wt_model_layer_info(m, wt_model_layer_count(m) - 1, &last);
  const size_t out = (size_t)last.c * last.h * last.w;
  const int32_t n = wt_model_block(m) < 2 ? wt_model_block(m) : 2;
  float *x = malloc(sizeof(float) * in * n), *dx = malloc(sizeof(float) * in * n);
  float *y = malloc(sizeof(float) * out * n), *dy = malloc(sizeof(float) * out * n);
  require(x && dx && y && dy, "out of memory");
  for (size_t i = 0; i < in * n; i++) x[i] = (float)((int)(i * 37 % 101) - 50) / 25.0f;
  for (size_t i = 0; i < out * n; i++) dy[i] = (float)((int)(i * 13 % 7) - 3) / 3.0f;
  require(wt_model_run_backward(m, x, n, 1, y, dy, dx) == WT_OK, "forward/backward failed on a created model");
  require(wt_model_run(m, x, n, 0, y, NULL) == WT_OK, "an evaluation run failed on a created model");
  free(x), free(dx), free(y), free(dy);
  free(data);
}

static void try_spec(const int32_t *spec, size_t words) {
  const wt_status checked = wt_spec_check(spec, words);
  require(checked == WT_OK || (checked == WT_ERR_BAD_DATA && wt_last_error()[0]), "wt_spec_check: unexpected refusal");
  wt_model *m = NULL;
  const wt_status created = wt_model_create(&m, spec, words, NULL, 0, 4, 5);
  if (created != WT_OK) {
    require(m == NULL && created == WT_ERR_BAD_DATA, "wt_model_create: unexpected refusal");
    require(checked != WT_OK || strstr(wt_last_error(), "MiB") != NULL, "wt_spec_check accepted a spec wt_model_create refused");
    return;
  }
  require(checked == WT_OK, "wt_model_create accepted a spec wt_spec_check refused");
  size_t kept = 0;
  require(wt_model_spec(m, &kept) != NULL && kept == words && memcmp(wt_model_spec(m, NULL), spec, 4 * words) == 0,
          "the model keeps another spec");
  require(wt_model_param_count(m) >= 0 && wt_model_grad_count(m) >= wt_model_param_count(m) && wt_model_running_count(m) >= 0,
          "impossible sizes");
  run_model(m);
  wt_model_destroy(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t words = size / 4;
  if (words > MAX_WORDS + WT_NODE_WORDS) words = MAX_WORDS + WT_NODE_WORDS;
  if (words < WT_SPEC_HEADER_WORDS) {
    memcpy(words_buffer, SIMPLECNN_SPEC, sizeof SIMPLECNN_SPEC);
    memcpy(words_buffer, data, size);
    try_spec(words_buffer, SIMPLECNN_WORDS);
  }
  memcpy(words_buffer, data, 4 * words);
  try_spec(words_buffer, words);
  return 0;
}
