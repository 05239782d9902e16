/* Writes the fuzzers' seed corpora: a few valid and near-valid files for each target.
 *   build/fuzz/make_corpus tests/fuzz/corpus
 * The output is deterministic; rerun it after a change to a file format and commit the result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "webtrain.h"

#define PARAM_BYTES (sizeof(float) * WT_PARAM_COUNT)

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

/* n records with labels labels[i] and a per-record gradient-and-stripes image. */
static uint8_t *make_records(int n, const uint8_t *labels) {
  uint8_t *out = malloc((size_t)n * WT_RECORD_BYTES);
  for (int r = 0; r < n; r++) {
    uint8_t *rec = out + (size_t)r * WT_RECORD_BYTES;
    rec[0] = labels[r];
    for (int i = 0; i < WT_IMAGE_BYTES; i++) {
      const int x = i % 32, y = (i / 32) % 32, c = i / 1024;
      rec[1 + i] = (uint8_t)(((x * (r + 1) + y * (c + 2)) * 5 + (((x >> 2) ^ (y >> 2)) & 1) * 90) & 0xFF);
    }
  }
  return out;
}

static void put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

int main(int argc, char **argv) {
  root = argc > 1 ? argv[1] : "tests/fuzz/corpus";

  /* records */
  static const uint8_t labels[5] = {3, 0, 9, 5, 1};
  uint8_t *records = make_records(5, labels);
  write_file("records", "one_record.bin", records, WT_RECORD_BYTES);
  write_file("records", "two_records.bin", records + WT_RECORD_BYTES, 2 * WT_RECORD_BYTES);
  write_file("records", "five_records.bin", records, 5 * WT_RECORD_BYTES); /* more than the fuzzer's batch */
  write_file("records", "one_byte_short.bin", records, WT_RECORD_BYTES - 1);
  write_file("records", "one_byte_long.bin", records, WT_RECORD_BYTES + 1);
  records[WT_RECORD_BYTES] = 10;
  write_file("records", "label_10.bin", records, 2 * WT_RECORD_BYTES);

  /* weights: a PyTorch-style initialisation, as `torch.save`-free raw float32 */
  wt_model *model;
  require(wt_model_create(&model, 4, 5), "wt_model_create");
  uint8_t *weights = malloc(PARAM_BYTES);
  memcpy(weights, wt_model_params(model), PARAM_BYTES);
  write_file("weights", "valid.bin", weights, PARAM_BYTES);
  write_file("weights", "truncated.bin", weights, 1000);
  const uint32_t nan_bits = 0x7FC00000u;
  memcpy(weights + 4 * 45000, &nan_bits, 4);
  write_file("weights", "nan_in_fc1.bin", weights, PARAM_BYTES);

  /* checkpoints: a fresh run and one mid-epoch after a few steps (non-zero Adam state) */
  const size_t ckpt_bytes = wt_checkpoint_bytes();
  uint8_t *ckpt = malloc(ckpt_bytes);
  wt_run_state state = {.epoch = 0, .step = 0, .epochs = 2, .batch_size = 4, .shuffle = 1, .workers = 1,
                        .seed = 5, .train_count = 5, .window_count = 0, .window_sum = 0,
                        .adam = {1e-3, 0.9, 0.999, 1e-8}};
  require(wt_checkpoint_save(model, &state, ckpt, ckpt_bytes), "wt_checkpoint_save (fresh)");
  write_file("checkpoint", "fresh.bin", ckpt, ckpt_bytes);
  static const uint8_t train_labels[5] = {3, 0, 9, 5, 1};
  uint8_t *train = make_records(5, train_labels);
  const uint32_t indices[4] = {4, 0, 2, 1};
  for (int s = 0; s < 3; s++) require(wt_model_train_step(model, train, 5, indices, 4, &state.adam, NULL), "train step");
  state = (wt_run_state){.epoch = 1, .step = 1, .epochs = 3, .batch_size = 2, .shuffle = 1, .workers = 2,
                         .seed = 5, .train_count = 5, .window_count = 1, .window_sum = 2.25,
                         .adam = {3e-4, 0.8, 0.99, 1e-7}};
  require(wt_checkpoint_save(model, &state, ckpt, ckpt_bytes), "wt_checkpoint_save (trained)");
  write_file("checkpoint", "mid_epoch.bin", ckpt, ckpt_bytes);
  /* Near-valid prefixes: the harness splices a short input over a valid checkpoint. */
  write_file("checkpoint", "header_only.bin", ckpt, 128);
  write_file("checkpoint", "magic_only.bin", ckpt, 8);
  put_u32(ckpt + 8, WT_CHECKPOINT_VERSION + 1);
  write_file("checkpoint", "header_next_version.bin", ckpt, 128);

  wt_model_destroy(model);
  free(records), free(weights), free(ckpt), free(train);
  return 0;
}
