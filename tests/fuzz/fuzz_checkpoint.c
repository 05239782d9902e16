/* libFuzzer harness for the checkpoint loader: a refused file leaves the model and the run state
 * exactly as they were; an accepted one saves back to the same bytes (the format is canonical).
 * Random bytes almost never carry a valid CRC-32, so each input is also tried resealed (its CRC
 * recomputed) and, when shorter than a checkpoint, spliced over the front of a valid one: that
 * lets the fuzzer reach every check behind the CRC with small inputs.
 * Built with -fsanitize=fuzzer,address,undefined. */
#define FUZZ_NAME "fuzz_checkpoint"
#include "fuzz_common.h"

static wt_model *model;
static size_t checkpoint_bytes;
static uint8_t *reference; /* a valid checkpoint of a trained model */
static uint8_t *candidate, *resaved;
static model_state victim; /* what the model holds before every load */

static void reseal(uint8_t *file) {
  const uint32_t crc = wt_crc32(file, checkpoint_bytes - 4);
  for (int i = 0; i < 4; i++) file[checkpoint_bytes - 4 + i] = (uint8_t)(crc >> (8 * i));
}

static void train_steps(int steps) {
  static uint8_t records[4 * WT_RECORD_BYTES];
  for (int r = 0; r < 4; r++) {
    records[(size_t)r * WT_RECORD_BYTES] = (uint8_t)(r * 2 + 1);
    for (int i = 0; i < WT_IMAGE_BYTES; i++) records[(size_t)r * WT_RECORD_BYTES + 1 + i] = (uint8_t)(i * (r + 3) >> 2);
  }
  const wt_adam_config adam = {1e-3, 0.9, 0.999, 1e-8};
  const uint32_t indices[4] = {0, 1, 2, 3};
  for (int s = 0; s < steps; s++)
    require(wt_model_train_step(model, records, 4, indices, 4, &adam, NULL) == WT_OK, "warm-up step failed");
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  checkpoint_bytes = wt_checkpoint_bytes();
  reference = malloc(checkpoint_bytes);
  candidate = malloc(checkpoint_bytes);
  resaved = malloc(checkpoint_bytes);
  require(wt_model_create(&model, 4, 11) == WT_OK, "wt_model_create failed");
  train_steps(3);
  const wt_run_state state = {.epoch = 1, .step = 7, .epochs = 3, .batch_size = 16, .shuffle = 1, .workers = 1,
                              .seed = 11, .train_count = 500, .window_count = 2, .window_sum = 4.5,
                              .adam = {1e-3, 0.9, 0.999, 1e-8}};
  require(wt_checkpoint_save(model, &state, reference, checkpoint_bytes) == WT_OK, "saving the reference failed");
  /* The model every load starts from differs from the reference in every buffer. */
  wt_model_init(model, 12);
  train_steps(1);
  victim = state_take(model);
  return 0;
}

/* Loads file[0..size) into the victim model and checks the outcome either way. */
static void try_load(const uint8_t *file, size_t size) {
  state_restore(model, &victim);
  wt_run_state state, sentinel;
  memset(&sentinel, 0xA5, sizeof sentinel);
  state = sentinel;

  const wt_status st = wt_checkpoint_load(model, &state, file, size);
  if (st != WT_OK) {
    require(st == WT_ERR_BAD_DATA, "a refused checkpoint gave a status other than WT_ERR_BAD_DATA");
    require_state(model, &victim, "a refused checkpoint");
    require(memcmp(&state, &sentinel, sizeof state) == 0, "a refused checkpoint changed the run state");
    return;
  }
  require(size == checkpoint_bytes, "accepted a checkpoint of the wrong size");
  memset(resaved, 0, checkpoint_bytes);
  require(wt_checkpoint_save(model, &state, resaved, checkpoint_bytes) == WT_OK, "saving a loaded checkpoint failed");
  if (memcmp(resaved, file, checkpoint_bytes) != 0) {
    size_t at = 0;
    while (resaved[at] == file[at]) at++;
    fprintf(stderr, "fuzz_checkpoint: load then save does not give the same bytes: byte %zu loaded 0x%02X, saved 0x%02X\n",
            at, file[at], resaved[at]);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  try_load(data, size);
  if (size == checkpoint_bytes) {
    memcpy(candidate, data, size);
    reseal(candidate);
    try_load(candidate, checkpoint_bytes);
  } else if (size > 0 && size < checkpoint_bytes) {
    memcpy(candidate, reference, checkpoint_bytes);
    memcpy(candidate, data, size);
    reseal(candidate);
    try_load(candidate, checkpoint_bytes);
  }
  return 0;
}
