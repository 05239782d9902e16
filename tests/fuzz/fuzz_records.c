/* libFuzzer harness for the record reader: whatever wt_records_check accepts must be safe to
 * evaluate and to train on. The same bytes are read as CIFAR-10 records for SimpleCNN and as the
 * 193-byte records (8 x 8 images, 3 classes) of a small batch-norm net.
 * Built with -fsanitize=fuzzer,address,undefined. */
#define FUZZ_NAME "fuzz_records"
#include "fuzz_common.h"

#define MAX_BATCH 4 /* small, so a few records already span more than one block of the small net */

typedef struct target {
  const char *name;
  wt_model *model;
  model_state pristine; /* the model as created */
  int32_t record_bytes, classes;
} target;

static target targets[2];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  int32_t spec[SPEC_MAX_WORDS];
  const size_t words = build_spec(spec, 3, SMALL_BN_SIDE, SMALL_BN_SIDE, SMALL_BN_CLASSES, SMALL_BN_BLOCK, NODES(SMALL_BN_NET));
  targets[0] = (target){"SimpleCNN", create_or_die(SIMPLECNN_SPEC, SIMPLECNN_WORDS, MAX_BATCH, 1), {0}, CIFAR_RECORD_BYTES, 10};
  targets[1] = (target){"batch-norm net", create_or_die(spec, words, MAX_BATCH, 1), {0}, 1 + 3 * SMALL_BN_SIDE * SMALL_BN_SIDE,
                        SMALL_BN_CLASSES};
  for (int t = 0; t < 2; t++) targets[t].pristine = state_take(targets[t].model);
  return 0;
}

static void check_as(target *t, const uint8_t *data, size_t size) {
  int32_t count = -1;
  const wt_status st = wt_records_check(data, size, t->record_bytes, 0, t->classes, &count);
  if (st != WT_OK) {
    require(st == WT_ERR_BAD_DATA || (st == WT_ERR_INVALID_ARGUMENT && !data), "unexpected status for a refused buffer");
    require(count == 0, "a refused buffer left a non-zero record count");
    require(wt_last_error()[0] != '\0', "a refusal without a message");
    return;
  }
  require(count > 0 && (size_t)count * t->record_bytes == size, "accepted count does not match the size");
  for (int32_t i = 0; i < count; i++) require(data[(size_t)i * t->record_bytes] < t->classes, "accepted a bad label");

  state_restore(t->model, &t->pristine); /* every input starts from the same model */
  const wt_records records = {data, count, t->record_bytes, 0, 1};
  int32_t correct = 0, confusion[10 * 10] = {0};
  double loss = 0;
  uint8_t *predictions = malloc((size_t)count);
  require(wt_model_evaluate(t->model, &records, 0, count, &correct, &loss, confusion, predictions, NULL) == WT_OK,
          "evaluation refused records that wt_records_check accepted");
  int32_t total = 0;
  for (int i = 0; i < t->classes * t->classes; i++) total += confusion[i];
  require(correct >= 0 && correct <= count && total == count, "evaluation counts do not add up");
  for (int32_t i = 0; i < count; i++) require(predictions[i] < t->classes, "a prediction outside the classes");
  free(predictions);

  const int32_t batch = count < MAX_BATCH ? count : MAX_BATCH;
  uint32_t indices[MAX_BATCH];
  for (int32_t i = 0; i < batch; i++) indices[i] = (uint32_t)(count - 1 - i);
  const wt_optim_config adam = {.kind = WT_OPTIM_ADAM, .group_count = 1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .groups = {{.lr = 1e-3}}};
  float step_loss = 0;
  const wt_status trained = wt_model_train_step(t->model, &records, indices, batch, 0, &adam, &step_loss);
  require(trained == WT_OK || trained == WT_ERR_NON_FINITE, "a train step refused accepted records");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  for (int t = 0; t < 2; t++) check_as(&targets[t], data, size);
  return 0;
}
