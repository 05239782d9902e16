/* Writes the fuzzers' seed corpora: a few valid and near-valid inputs for each target.
 *   build/fuzz/make_corpus tests/fuzz/corpus
 * The output is deterministic; rerun it after a change to a file format and commit the result.
 * The version 1 checkpoints in corpus/checkpoint (fresh.bin, mid_epoch.bin, header_*.bin,
 * magic_only.bin) were written by the SimpleCNN-only engine and are kept as they are: this
 * engine writes version 2 only (the v2_* files). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_models.h"
#include "webtrain.h"

static const char *root;

static void write_file(const char *target, const char *name, const void *data, size_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, bytes, f) != bytes || fclose(f) != 0) {
    fprintf(stderr, "make_corpus: cannot write %s\n", path);
    exit(1);
  }
  printf("%-48s %7zu bytes\n", path, bytes);
}

static void require(wt_status st, const char *what) {
  if (st != WT_OK) {
    fprintf(stderr, "make_corpus: %s: %s\n", what, wt_last_error());
    exit(1);
  }
}

/* n CIFAR-10 records with labels labels[i] and a per-record gradient-and-stripes image. */
static uint8_t *make_records(int n, const uint8_t *labels) {
  uint8_t *out = malloc((size_t)n * CIFAR_RECORD_BYTES);
  for (int r = 0; r < n; r++) {
    uint8_t *rec = out + (size_t)r * CIFAR_RECORD_BYTES;
    rec[0] = labels[r];
    for (int i = 0; i < 3072; i++) {
      const int x = i % 32, y = (i / 32) % 32, c = i / 1024;
      rec[1 + i] = (uint8_t)(((x * (r + 1) + y * (c + 2)) * 5 + (((x >> 2) ^ (y >> 2)) & 1) * 90) & 0xFF);
    }
  }
  return out;
}

static void put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* A version 3 checkpoint of `model` with `state` and a recipe; caller frees. */
static uint8_t *checkpoint(wt_model *model, const wt_run_state *state, size_t *bytes) {
  static const char recipe[] = "{\"optimizer\":\"sgd\",\"nesterov\":true,\"ema\":\"plain:decay=0.9\"}";
  *bytes = wt_checkpoint_bytes(model, sizeof recipe - 1);
  uint8_t *out = malloc(*bytes);
  require(wt_checkpoint_save(model, state, (const uint8_t *)recipe, sizeof recipe - 1, out, *bytes), "wt_checkpoint_save");
  return out;
}

int main(int argc, char **argv) {
  root = argc > 1 ? argv[1] : "tests/fuzz/corpus";

  /* records */
  static const uint8_t labels[5] = {3, 0, 9, 5, 1};
  uint8_t *records = make_records(5, labels);
  write_file("records", "one_record.bin", records, CIFAR_RECORD_BYTES);
  write_file("records", "two_records.bin", records + CIFAR_RECORD_BYTES, 2 * CIFAR_RECORD_BYTES);
  write_file("records", "five_records.bin", records, 5 * CIFAR_RECORD_BYTES); /* more than the fuzzer's batch */
  write_file("records", "one_byte_short.bin", records, CIFAR_RECORD_BYTES - 1);
  write_file("records", "one_byte_long.bin", records, CIFAR_RECORD_BYTES + 1);
  /* The small batch-norm net's records: 193 bytes, labels below 3. */
  uint8_t small[5 * 193];
  for (int i = 0; i < 5 * 193; i++) small[i] = i % 193 == 0 ? (uint8_t)(i / 193 % 3) : records[i];
  write_file("records", "small_net_five.bin", small, sizeof small);
  records[CIFAR_RECORD_BYTES] = 10;
  write_file("records", "label_10.bin", records, 2 * CIFAR_RECORD_BYTES);

  /* weights: SimpleCNN's PyTorch-style initialisation, as raw float32 */
  wt_model *model;
  require(wt_model_create(&model, SIMPLECNN_SPEC, SIMPLECNN_WORDS, NULL, 0, 4, 5), "wt_model_create");
  const size_t param_bytes = sizeof(float) * (size_t)wt_model_param_count(model);
  uint8_t *weights = malloc(param_bytes);
  memcpy(weights, wt_model_params(model), param_bytes);
  write_file("weights", "valid.bin", weights, param_bytes);
  write_file("weights", "truncated.bin", weights, 1000);
  const uint32_t nan_bits = 0x7FC00000u;
  memcpy(weights + 4 * 45000, &nan_bits, 4);
  write_file("weights", "nan_in_fc1.bin", weights, param_bytes);

  /* checkpoints, version 3 (the v2_* files of the corpus were made by this program's version 2
   * and stay as seeds for the version 2 reader): SimpleCNN fresh and mid-epoch after a few Adam
   * steps, and the small batch-norm net with its description text, running statistics, an SGD
   * momentum buffer and the weights' average */
  wt_run_state state = {.epoch = 0, .step = 0, .epochs = 2, .batch_size = 4, .shuffle = 1, .workers = 1,
                        .seed = 5, .train_count = 5, .window_count = 0, .window_sum = 0,
                        .adam = {1e-3, 0.9, 0.999, 1e-8}};
  size_t bytes;
  uint8_t *ckpt = checkpoint(model, &state, &bytes);
  write_file("checkpoint", "v3_simplecnn_fresh.bin", ckpt, bytes);
  free(ckpt);
  const wt_records train = {make_records(5, labels), 5, CIFAR_RECORD_BYTES, 0, 1};
  const uint32_t indices[4] = {4, 0, 2, 1};
  const wt_optim_config adam = {.kind = WT_OPTIM_ADAM, .group_count = 1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .groups = {{.lr = 1e-3}}};
  for (int s = 0; s < 3; s++) require(wt_model_train_step(model, &train, indices, 4, s, &adam, NULL), "train step");
  state = (wt_run_state){.epoch = 1, .step = 1, .epochs = 3, .batch_size = 2, .shuffle = 1, .workers = 2,
                         .seed = 5, .train_count = 5, .window_count = 1, .window_sum = 2.25,
                         .adam = {3e-4, 0.8, 0.99, 1e-7}};
  ckpt = checkpoint(model, &state, &bytes);
  write_file("checkpoint", "v3_simplecnn_mid_epoch.bin", ckpt, bytes);
  /* Near-valid prefixes: the harness splices a short input over a valid checkpoint. */
  write_file("checkpoint", "v3_header_only.bin", ckpt, 256);
  write_file("checkpoint", "v3_header_and_spec.bin", ckpt, 256 + 4 * SIMPLECNN_WORDS);
  put_u32(ckpt + 8, WT_CHECKPOINT_VERSION + 1);
  write_file("checkpoint", "v3_header_next_version.bin", ckpt, 256);
  free(ckpt);

  int32_t spec[SPEC_MAX_WORDS];
  size_t words = build_spec(spec, 3, SMALL_BN_SIDE, SMALL_BN_SIDE, SMALL_BN_CLASSES, SMALL_BN_BLOCK, NODES(SMALL_BN_NET));
  static const char text[] = "# a small batch-norm net\nconv2d(3, 4, 3, padding='same', bias=False)\nbatchnorm2d(4)\nrelu()\n"
                             "maxpool2d(2)\nadaptiveavgpool2d(1)\nflatten()\nlinear(4, 3)\n";
  wt_model *bn;
  require(wt_model_create(&bn, spec, words, (const uint8_t *)text, sizeof text - 1, 4, 8), "wt_model_create (batch norm)");
  wt_records small_records = {small, 5, 193, 0, 1};
  const wt_optim_config sgd = {.kind = WT_OPTIM_SGD, .nesterov = 1, .group_count = 1, .momentum = 0.9, .groups = {{.lr = 1e-2}}};
  wt_model_ema_reset(bn, 1);
  for (int s = 0; s < 2; s++) {
    require(wt_model_train_step(bn, &small_records, indices, 4, s, &sgd, NULL), "train step (batch norm)");
    require(wt_model_ema_update(bn, 0.9, 0), "average update (batch norm)");
  }
  ckpt = checkpoint(bn, &state, &bytes);
  write_file("checkpoint", "v3_batchnorm_sgd_average.bin", ckpt, bytes);
  free(ckpt);

  /* specs: the nets above, every layer kind, and near-misses */
  write_file("spec", "simplecnn.bin", SIMPLECNN_SPEC, sizeof SIMPLECNN_SPEC);
  write_file("spec", "small_batchnorm.bin", spec, 4 * words);
  words = build_spec(spec, 3, EVERY_KIND_SIDE, EVERY_KIND_SIDE, EVERY_KIND_CLASSES, EVERY_KIND_BLOCK, NODES(EVERY_KIND_NET));
  write_file("spec", "every_kind.bin", spec, 4 * words);
  spec[7] -= 1; /* the last node dropped: the net ends with 32 values, not 4 */
  write_file("spec", "every_kind_truncated.bin", spec, 4 * (words - WT_NODE_WORDS));
  const test_node huge[] = {{WT_OP_CONV, {65536, 1, 1, 0, 1}}, {WT_OP_GLOBALAVG}, {WT_OP_FLATTEN}, {WT_OP_LINEAR, {10}}};
  words = build_spec(spec, 1, 1024, 1024, 10, 1024, NODES(huge));
  write_file("spec", "hostile_65536_channels.bin", spec, 4 * words);
  const test_node unclosed[] = {{WT_OP_RESIDUAL}, {WT_OP_CONV, {3, 3, 1, 1, 1}}, {WT_OP_FLATTEN}, {WT_OP_LINEAR, {10}}};
  words = build_spec(spec, 3, 8, 8, 10, 2, NODES(unclosed));
  write_file("spec", "unclosed_residual.bin", spec, 4 * words);

  wt_model_destroy(model), wt_model_destroy(bn);
  free(records), free(weights), free((void *)train.data);
  return 0;
}
