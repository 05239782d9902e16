/* libFuzzer harness for the CIFAR-10 record reader: whatever wt_records_check accepts must be
 * safe to evaluate and to train on. Built with -fsanitize=fuzzer,address,undefined. */
#define FUZZ_NAME "fuzz_records"
#include "fuzz_common.h"

#define MAX_BATCH 4 /* small, so evaluation of a few records also covers the chunked path */

static wt_model *model;
static model_state pristine; /* the model as created */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  require(wt_model_create(&model, MAX_BATCH, 1) == WT_OK, "wt_model_create failed");
  pristine = state_take(model);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int32_t count = -1;
  const wt_status st = wt_records_check(data, size, &count);
  if (st != WT_OK) {
    require(st == WT_ERR_BAD_DATA || (st == WT_ERR_INVALID_ARGUMENT && !data), "unexpected status for a refused buffer");
    require(count == 0, "a refused buffer left a non-zero record count");
    require(wt_last_error()[0] != '\0', "a refusal without a message");
    return 0;
  }
  require(count > 0 && (size_t)count * WT_RECORD_BYTES == size, "accepted count does not match the size");
  for (int32_t i = 0; i < count; i++) require(data[(size_t)i * WT_RECORD_BYTES] < WT_NUM_CLASSES, "accepted a bad label");

  state_restore(model, &pristine); /* every input starts from the same model */
  int32_t correct = 0, confusion[WT_NUM_CLASSES * WT_NUM_CLASSES] = {0};
  double loss = 0;
  uint8_t *predictions = malloc((size_t)count);
  require(wt_model_evaluate(model, data, count, &correct, &loss, confusion, predictions) == WT_OK,
          "evaluation refused records that wt_records_check accepted");
  int32_t total = 0;
  for (int i = 0; i < WT_NUM_CLASSES * WT_NUM_CLASSES; i++) total += confusion[i];
  require(correct >= 0 && correct <= count && total == count, "evaluation counts do not add up");
  for (int32_t i = 0; i < count; i++) require(predictions[i] < WT_NUM_CLASSES, "a prediction outside 0..9");
  free(predictions);

  const int32_t batch = count < MAX_BATCH ? count : MAX_BATCH;
  uint32_t indices[MAX_BATCH];
  for (int32_t i = 0; i < batch; i++) indices[i] = (uint32_t)i;
  const wt_adam_config adam = {1e-3, 0.9, 0.999, 1e-8};
  float step_loss = 0;
  const wt_status trained = wt_model_train_step(model, data, count, indices, batch, &adam, &step_loss);
  require(trained == WT_OK || trained == WT_ERR_NON_FINITE, "a train step refused accepted records");
  return 0;
}
