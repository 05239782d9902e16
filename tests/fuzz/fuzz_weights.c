/* libFuzzer harness for the raw weights loader (SimpleCNN): a refused file leaves the model byte
 * for byte as it was; an accepted one becomes exactly the parameters and is safe to evaluate.
 * Built with -fsanitize=fuzzer,address,undefined. */
#define FUZZ_NAME "fuzz_weights"
#include "fuzz_common.h"

#define EVAL_RECORDS 3

static wt_model *model;
static model_state trained; /* after a few steps: non-zero Adam state to guard */
static uint8_t *data_records;
static wt_records records;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  model = create_or_die(SIMPLECNN_SPEC, SIMPLECNN_WORDS, 2, 7);
  data_records = records_for(model, EVAL_RECORDS, &records);
  const wt_optim_config adam = {.kind = WT_OPTIM_ADAM, .group_count = 1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .groups = {{.lr = 1e-3}}};
  const uint32_t indices[2] = {0, 2};
  for (int s = 0; s < 2; s++)
    require(wt_model_train_step(model, &records, indices, 2, s, &adam, NULL) == WT_OK, "warm-up step failed");
  trained = state_take(model);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* Every input starts from the same trained model, so a crash reproduces from its input alone. */
  state_restore(model, &trained);

  const wt_status st = wt_model_load_weights(model, data, size);
  if (st != WT_OK) {
    require(st == WT_ERR_BAD_DATA || (st == WT_ERR_INVALID_ARGUMENT && !data), "unexpected status for a refused file");
    require_state(model, &trained, "a refused file");
    return 0;
  }
  const size_t bytes = sizeof(float) * trained.P;
  require(size == bytes && memcmp(wt_model_params(model), data, bytes) == 0, "accepted parameters differ from the file");
  require(wt_model_adam_step_count(model) == 0, "loading weights did not reset Adam");
  int32_t correct = 0, confusion[100] = {0};
  double loss = 0;
  uint8_t predictions[EVAL_RECORDS];
  require(wt_model_evaluate(model, &records, 0, EVAL_RECORDS, &correct, &loss, confusion, predictions, NULL) == WT_OK,
          "evaluation failed after accepted weights");
  require(correct >= 0 && correct <= EVAL_RECORDS, "evaluation counts out of range");
  for (int r = 0; r < EVAL_RECORDS; r++) require(predictions[r] < 10, "a prediction outside 0..9");
  return 0;
}
