/* libFuzzer harness for checkpoints, versions 1 to 3. Each input is
 *   1. described (wt_checkpoint_describe); when that succeeds, a model is created from the spec it
 *      describes, as the CLI and the worker do on --resume, and the file loaded into it. The spec
 *      may be hostile: a huge model must be refused by its sizes before anything is allocated, so
 *      run.sh bounds the harness with -malloc_limit_mb just above the engine's arena limit (an
 *      allocation past it fails the run) and -rss_limit_mb;
 *   2. loaded into two fixed models, SimpleCNN and a small batch-norm net: a refused file leaves
 *      the model and the run state exactly as they were; an accepted version 3 file saves back to
 *      the same bytes (the format is canonical).
 * Random bytes almost never carry a valid CRC-32, so each input is also tried resealed (its CRC
 * recomputed) and, when shorter than a reference checkpoint, spliced over the front of one (the
 * input's length picks which): that lets the fuzzer reach every check behind the CRC, the spec
 * included, with small inputs. Built with -fsanitize=fuzzer,address,undefined. */
#define FUZZ_NAME "fuzz_checkpoint"
#include "fuzz_common.h"

typedef struct victim {
  wt_model *model;
  model_state before; /* what the model holds before every load */
} victim;

static victim victims[2];
static uint8_t *references[2]; /* valid version 3 checkpoints of the victims' nets, trained */
static const uint8_t RECIPE[] = "{\"optimizer\":\"sgd\",\"ema\":\"plain\"}";
static size_t reference_bytes[2];
static uint8_t *candidate, *resaved;
static size_t largest;

static void reseal(uint8_t *file, size_t bytes) {
  const uint32_t crc = wt_crc32(file, bytes - 4);
  for (int i = 0; i < 4; i++) file[bytes - 4 + i] = (uint8_t)(crc >> (8 * i));
}

static void train_steps(wt_model *m, int first, int steps) {
  wt_records records;
  uint8_t *data = records_for(m, 4, &records);
  /* SGD with Nesterov momentum: the checkpoints hold a momentum buffer, an SGD kind and an average. */
  const wt_optim_config sgd = {.kind = WT_OPTIM_SGD, .nesterov = 1, .group_count = 1, .momentum = 0.9, .groups = {{.lr = 1e-2, .weight_decay = 5e-4}}};
  const uint32_t indices[4] = {0, 1, 2, 3};
  if (!wt_model_ema_active(m)) wt_model_ema_reset(m, 1);
  for (int s = first; s < first + steps; s++) {
    require(wt_model_train_step(m, &records, indices, 4, s, &sgd, NULL) == WT_OK, "warm-up step failed");
    require(wt_model_ema_update(m, 0.9, 0) == WT_OK, "average update failed");
  }
  free(data);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  int32_t spec[SPEC_MAX_WORDS];
  const size_t words = build_spec(spec, 3, SMALL_BN_SIDE, SMALL_BN_SIDE, SMALL_BN_CLASSES, SMALL_BN_BLOCK, NODES(SMALL_BN_NET));
  victims[0].model = create_or_die(SIMPLECNN_SPEC, SIMPLECNN_WORDS, 4, 11);
  victims[1].model = create_or_die(spec, words, 4, 11);
  const wt_run_state state = {.epoch = 1, .step = 7, .epochs = 3, .batch_size = 16, .shuffle = 1, .workers = 1,
                              .seed = 11, .train_count = 500, .window_count = 2, .window_sum = 4.5,
                              .adam = {1e-3, 0.9, 0.999, 1e-8}};
  for (int v = 0; v < 2; v++) {
    wt_model *m = victims[v].model;
    train_steps(m, 0, 3);
    reference_bytes[v] = wt_checkpoint_bytes(m, sizeof RECIPE - 1);
    references[v] = malloc(reference_bytes[v]);
    require(wt_checkpoint_save(m, &state, RECIPE, sizeof RECIPE - 1, references[v], reference_bytes[v]) == WT_OK, "saving a reference failed");
    /* The model every load starts from differs from the reference in every buffer. */
    wt_model_init(m, 12);
    train_steps(m, 3, 1);
    victims[v].before = state_take(m);
    if (reference_bytes[v] > largest) largest = reference_bytes[v];
  }
  largest += 16; /* inputs a little longer than a checkpoint are resealed too */
  candidate = malloc(largest);
  resaved = malloc(largest);
  return 0;
}

static uint32_t get_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* Version 3 files save back to their own bytes, with their recipe, when the model holds the same
 * description text (the spec must match to load; the text is the user's wording and may differ). */
static void require_canonical(wt_model *m, const wt_run_state *state, const uint8_t *file, size_t size) {
  if (file[8] != WT_CHECKPOINT_VERSION) return; /* older versions save as the current one */
  const uint8_t *recipe = NULL;
  size_t recipe_bytes = 0;
  require(wt_checkpoint_recipe(file, size, &recipe, &recipe_bytes) == WT_OK, "a loaded checkpoint has no readable recipe");
  size_t text_bytes = 0;
  const uint8_t *text = wt_model_text(m, &text_bytes);
  const uint8_t *file_text = file + 256 + 4 * (size_t)get_u32(file + 24);
  if (get_u32(file + 28) != text_bytes || memcmp(file_text, text, text_bytes) != 0) return;
  require(size == wt_checkpoint_bytes(m, recipe_bytes), "accepted a checkpoint of the wrong size");
  memset(resaved, 0, size);
  require(wt_checkpoint_save(m, state, recipe, recipe_bytes, resaved, size) == WT_OK, "saving a loaded checkpoint failed");
  if (memcmp(resaved, file, size) != 0) {
    size_t at = 0;
    while (resaved[at] == file[at]) at++;
    fprintf(stderr, "fuzz_checkpoint: load then save does not give the same bytes: byte %zu loaded 0x%02X, saved 0x%02X\n",
            at, file[at], resaved[at]);
    abort();
  }
}

/* Loads file[0..size) into m (holding `before`) and checks the outcome either way. */
static void try_load(wt_model *m, const model_state *before, const uint8_t *file, size_t size) {
  wt_run_state state, sentinel;
  memset(&sentinel, 0xA5, sizeof sentinel);
  state = sentinel;
  const wt_status st = wt_checkpoint_load(m, &state, file, size);
  if (st != WT_OK) {
    require(st == WT_ERR_BAD_DATA || (st == WT_ERR_INVALID_ARGUMENT && !file), "a refused checkpoint gave an unexpected status");
    require_state(m, before, "a refused checkpoint");
    require(memcmp(&state, &sentinel, sizeof state) == 0, "a refused checkpoint changed the run state");
    return;
  }
  require_canonical(m, &state, file, size);
}

/* The --resume path: the model the checkpoint describes, then the checkpoint into it. */
static void describe_then_load(const uint8_t *file, size_t size) {
  const int32_t *spec = NULL;
  const uint8_t *text = NULL;
  size_t words = 0, text_bytes = 0;
  const wt_status st = wt_checkpoint_describe(file, size, &spec, &words, &text, &text_bytes);
  if (st != WT_OK) {
    require(st == WT_ERR_BAD_DATA || (st == WT_ERR_INVALID_ARGUMENT && !file), "describe gave an unexpected status");
    return;
  }
  require(spec != NULL && words >= WT_SPEC_HEADER_WORDS && words <= SPEC_MAX_WORDS, "describe gave an impossible spec");
  require(text != NULL && text_bytes <= (1u << 20), "describe gave an impossible text");
  const wt_status checked = wt_spec_check(spec, words);
  wt_model *m = NULL;
  const wt_status created = wt_model_create(&m, spec, words, text, text_bytes, 1, 3);
  if (created != WT_OK) {
    require(m == NULL && created == WT_ERR_BAD_DATA, "a refused spec gave an unexpected status");
    require(checked != WT_OK || strstr(wt_last_error(), "MiB") != NULL, "wt_spec_check accepted a spec wt_model_create refused");
    return;
  }
  require(checked == WT_OK, "wt_model_create accepted a spec wt_spec_check refused");
  model_state fresh = state_take(m);
  try_load(m, &fresh, file, size);
  state_free(&fresh);
  wt_model_destroy(m);
}

static void try_all(const uint8_t *file, size_t size) {
  describe_then_load(file, size);
  for (int v = 0; v < 2; v++) {
    state_restore(victims[v].model, &victims[v].before);
    try_load(victims[v].model, &victims[v].before, file, size);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  try_all(data, size);
  if (size >= 24 && size <= largest) {
    memcpy(candidate, data, size);
    reseal(candidate, size);
    try_all(candidate, size);
  }
  const int r = (int)(size % 2);
  if (size > 0 && size < reference_bytes[r]) {
    memcpy(candidate, references[r], reference_bytes[r]);
    memcpy(candidate, data, size);
    reseal(candidate, reference_bytes[r]);
    try_all(candidate, reference_bytes[r]);
  }
  return 0;
}
