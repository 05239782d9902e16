/* The public C API end to end, natively (and under ASan/UBSan from tests/fuzz/run.sh): models,
 * training, evaluation, the shuffle, record checks, weights files, checkpoints, and that every
 * bad argument comes back as a status instead of a crash. Prints the first mismatches, then
 * exits non-zero. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "webtrain.h"

#define P WT_PARAM_COUNT
#define PARAM_BYTES ((size_t)P * sizeof(float))

static int failures = 0;

#define CHECK(cond, ...)                                         \
  do {                                                           \
    if (!(cond)) {                                               \
      failures++;                                                \
      printf("  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);   \
      printf(__VA_ARGS__);                                       \
      printf(" (last error: %s)\n", wt_last_error());            \
    }                                                            \
  } while (0)

#define CHECK_STATUS(call, expected)                                                    \
  do {                                                                                  \
    const wt_status got_ = (call);                                                      \
    CHECK(got_ == (expected), "%s returned %d, expected %d", #call, (int)got_, (int)(expected)); \
  } while (0)

static const wt_adam_config ADAM = {1e-3, 0.9, 0.999, 1e-8};

/* Deterministic xorshift32, so every run sees the same records. */
static uint32_t rng_state;
static uint32_t next_u32(void) {
  rng_state ^= rng_state << 13, rng_state ^= rng_state >> 17, rng_state ^= rng_state << 5;
  return rng_state;
}

/* A learnable set, like tests/helpers/synthetic.js: each class a colour and stripe pattern under
 * noise. Labels are i % 10 so every class is present. Caller frees. */
static uint8_t *make_records(int count, uint32_t seed) {
  rng_state = seed ? seed : 0x9E3779B9u;
  uint8_t *out = malloc((size_t)count * WT_RECORD_BYTES);
  for (int i = 0; i < count; i++) {
    uint8_t *rec = out + (size_t)i * WT_RECORD_BYTES;
    const int label = i % 10;
    rec[0] = (uint8_t)label;
    for (int c = 0; c < 3; c++) {
      const int base = 40 + 20 * ((label * (c + 3)) % 10);
      for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) {
          const int stripe = ((label % 2 ? x : y) >> (1 + label % 3)) & 1 ? 50 : -50;
          const int noise = (int)(next_u32() % 121) - 60;
          const int v = base + stripe + noise;
          rec[1 + c * 1024 + y * 32 + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
  }
  return out;
}

/* The whole model state a refused call must leave alone. */
typedef struct snapshot {
  float params[P], adam_m[P], adam_v[P];
  int32_t steps;
} snapshot;

static void take_snapshot(snapshot *s, wt_model *m) {
  memcpy(s->params, wt_model_params(m), PARAM_BYTES);
  memcpy(s->adam_m, wt_model_adam_m(m), PARAM_BYTES);
  memcpy(s->adam_v, wt_model_adam_v(m), PARAM_BYTES);
  s->steps = wt_model_adam_step_count(m);
}

/* 1 when the model matches the snapshot bit for bit; otherwise prints the first difference. */
static int same_as_snapshot(const snapshot *s, wt_model *m, const char *what) {
  const float *now[3] = {wt_model_params(m), wt_model_adam_m(m), wt_model_adam_v(m)};
  const float *before[3] = {s->params, s->adam_m, s->adam_v};
  static const char *names[3] = {"params", "adam_m", "adam_v"};
  for (int b = 0; b < 3; b++) {
    if (memcmp(now[b], before[b], PARAM_BYTES) != 0) {
      for (size_t i = 0; i < P; i++)
        if (memcmp(&now[b][i], &before[b][i], sizeof(float)) != 0) {
          printf("  %s: %s[%zu] changed from %.9g to %.9g\n", what, names[b], i, before[b][i], now[b][i]);
          break;
        }
      return 0;
    }
  }
  if (wt_model_adam_step_count(m) != s->steps) {
    printf("  %s: Adam step count changed from %d to %d\n", what, (int)s->steps, (int)wt_model_adam_step_count(m));
    return 0;
  }
  return 1;
}

static wt_model *new_model(int32_t max_batch, uint32_t seed) {
  wt_model *m = NULL;
  if (wt_model_create(&m, max_batch, seed) != WT_OK || !m) {
    printf("wt_model_create(%d, %u) failed: %s\n", (int)max_batch, (unsigned)seed, wt_last_error());
    exit(1);
  }
  return m;
}

/* Mean loss over records[0..n) (evaluation only). */
static double mean_loss(wt_model *m, const uint8_t *records, int n) {
  int32_t correct = 0;
  double loss = 0;
  if (wt_model_evaluate(m, records, n, &correct, &loss, NULL, NULL) != WT_OK) return NAN;
  return loss / n;
}

/* Trains `steps` steps of batch 8 over the records in epoch-permutation order. */
static void train(wt_model *m, const uint8_t *records, int n, int steps, uint32_t seed) {
  uint32_t *perm = malloc(sizeof(uint32_t) * (size_t)n);
  const int per_epoch = n / 8;
  for (int s = 0; s < steps; s++) {
    if (s % per_epoch == 0) wt_epoch_permutation(perm, n, seed, s / per_epoch);
    float loss = 0;
    const wt_status st = wt_model_train_step(m, records, n, perm + 8 * (s % per_epoch), 8, &ADAM, &loss);
    CHECK(st == WT_OK && isfinite(loss), "train step %d: status %d, loss %g", s, (int)st, loss);
  }
  free(perm);
}

static void test_create_destroy(void) {
  wt_model *existing = new_model(1, 1), *m = existing; /* a refusal must reset *out to NULL */
  CHECK_STATUS(wt_model_create(&m, 0, 1), WT_ERR_INVALID_ARGUMENT);
  CHECK(m == NULL, "a refused create left *out = %p", (void *)m);
  CHECK_STATUS(wt_model_create(&m, -5, 1), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_create(&m, WT_MAX_BATCH + 1, 1), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_create(NULL, 4, 1), WT_ERR_INVALID_ARGUMENT);
  wt_model_destroy(existing);
  wt_model_destroy(NULL); /* must be a no-op */

  wt_model *a = new_model(3, 42), *b = new_model(7, 42), *c = new_model(3, 43);
  CHECK(wt_model_max_batch(a) == 3 && wt_model_max_batch(b) == 7, "max_batch %d, %d", (int)wt_model_max_batch(a),
        (int)wt_model_max_batch(b));
  CHECK(memcmp(wt_model_params(a), wt_model_params(b), PARAM_BYTES) == 0, "same seed, different parameters");
  CHECK(memcmp(wt_model_params(a), wt_model_params(c), PARAM_BYTES) != 0, "seeds 42 and 43 give the same parameters");
  CHECK(wt_model_adam_step_count(a) == 0, "fresh model has %d Adam steps", (int)wt_model_adam_step_count(a));
  /* PyTorch's default init: every value within 1/sqrt(fan_in) of zero; conv1's fan_in is 75. */
  float worst = 0, conv1_worst = 0;
  int nonzero_moment = 0;
  for (size_t i = 0; i < P; i++) {
    const float v = fabsf(wt_model_params(a)[i]);
    worst = v > worst ? v : worst;
    if (i < 450) conv1_worst = v > conv1_worst ? v : conv1_worst;
    nonzero_moment |= wt_model_adam_m(a)[i] != 0 || wt_model_adam_v(a)[i] != 0 || wt_model_grads(a)[i] != 0;
  }
  CHECK(conv1_worst <= 1.0f / sqrtf(75.0f) && conv1_worst > 0.5f / sqrtf(75.0f), "conv1 init bound %g", conv1_worst);
  CHECK(worst <= 1.0f / sqrtf(75.0f), "init value %g is outside every bound", worst);
  CHECK(!nonzero_moment, "a fresh model has non-zero gradients or Adam moments");
  /* Re-initialising with the same seed restores the same parameters and resets Adam. */
  wt_model_set_adam_step_count(c, 9);
  wt_model_init(c, 42);
  CHECK(memcmp(wt_model_params(a), wt_model_params(c), PARAM_BYTES) == 0, "wt_model_init(42) differs from create(42)");
  CHECK(wt_model_adam_step_count(c) == 0, "wt_model_init left %d Adam steps", (int)wt_model_adam_step_count(c));
  wt_model_destroy(a), wt_model_destroy(b), wt_model_destroy(c);
}

static void test_training_reduces_loss(void) {
  const int n = 64;
  uint8_t *records = make_records(n, 7);
  wt_model *m = new_model(8, 1);
  const double before = mean_loss(m, records, n);
  train(m, records, n, 40, 5);
  const double after = mean_loss(m, records, n);
  printf("training: mean loss %.4f -> %.4f after 40 steps, %d Adam steps\n", before, after,
         (int)wt_model_adam_step_count(m));
  CHECK(isfinite(before) && isfinite(after) && after < 0.8 * before, "loss %.5f -> %.5f did not drop by 20%%", before, after);
  CHECK(wt_model_adam_step_count(m) == 40, "%d Adam steps after 40 train steps", (int)wt_model_adam_step_count(m));

  /* Same seeds, same steps: bit-identical parameters. */
  wt_model *twin = new_model(8, 1);
  train(twin, records, n, 40, 5);
  CHECK(memcmp(wt_model_params(m), wt_model_params(twin), PARAM_BYTES) == 0, "training is not deterministic");

  /* A train step equals zero_grads + backward(1/B) + adam_update. */
  wt_model *manual = new_model(8, 1);
  const uint32_t idx[8] = {0, 9, 18, 27, 36, 45, 54, 63};
  float step_loss = 0;
  double sum = 0;
  CHECK_STATUS(wt_model_train_step(twin, records, n, idx, 8, &ADAM, &step_loss), WT_OK);
  train(manual, records, n, 40, 5);
  wt_model_zero_grads(manual);
  CHECK_STATUS(wt_model_backward(manual, records, n, idx, 8, 1.0f / 8, &sum), WT_OK);
  CHECK_STATUS(wt_model_adam_update(manual, &ADAM), WT_OK);
  CHECK(memcmp(wt_model_params(manual), wt_model_params(twin), PARAM_BYTES) == 0,
        "train_step differs from zero_grads + backward + adam_update");
  CHECK((float)(sum / 8) == step_loss, "train_step loss %.9g, backward loss %.9g", step_loss, sum / 8);

  /* forward gives the same loss as backward and does not touch gradients. */
  double fwd = 0;
  float grad0 = wt_model_grads(manual)[123];
  CHECK_STATUS(wt_model_forward(manual, records, n, idx, 8, &fwd), WT_OK);
  CHECK(wt_model_grads(manual)[123] == grad0, "forward changed a gradient");
  wt_model_destroy(m), wt_model_destroy(twin), wt_model_destroy(manual);
  free(records);
}

static void test_evaluate(void) {
  const int n = 23; /* not a multiple of either batch size: a partial last chunk */
  uint8_t *records = make_records(n, 11);
  wt_model *small = new_model(4, 3), *large = new_model(32, 3);
  int32_t correct_small = 5, correct_large = 0; /* evaluate adds to what is there */
  double loss_small = 1.0, loss_large = 0;
  int32_t confusion[100] = {0};
  uint8_t predictions[23];
  memset(predictions, 0xEE, sizeof predictions);
  CHECK_STATUS(wt_model_evaluate(small, records, n, &correct_small, &loss_small, confusion, predictions), WT_OK);
  CHECK_STATUS(wt_model_evaluate(large, records, n, &correct_large, &loss_large, NULL, NULL), WT_OK);
  CHECK(correct_small - 5 == correct_large, "chunked evaluation: %d correct, unchunked %d", (int)(correct_small - 5),
        (int)correct_large);
  CHECK(fabs((loss_small - 1.0) - loss_large) <= 1e-9 * loss_large, "chunked loss %.12g, unchunked %.12g",
        loss_small - 1.0, loss_large);
  CHECK(correct_large >= 0 && correct_large <= n, "%d correct of %d", (int)correct_large, n);
  int32_t total = 0, diagonal = 0;
  for (int t = 0; t < 10; t++)
    for (int p = 0; p < 10; p++) total += confusion[t * 10 + p], diagonal += t == p ? confusion[t * 10 + p] : 0;
  CHECK(total == n && diagonal == correct_large, "confusion matrix sums to %d (diagonal %d), expected %d (%d)", (int)total,
        (int)diagonal, n, (int)correct_large);
  for (int i = 0; i < n; i++) {
    CHECK(predictions[i] < 10, "prediction %d is %u", i, predictions[i]);
    if (predictions[i] >= 10) break;
    CHECK(confusion[records[(size_t)i * WT_RECORD_BYTES] * 10 + predictions[i]] > 0, "prediction %d not in the confusion matrix", i);
  }
  /* A prediction is the argmax of that image's logits. */
  const uint32_t idx[1] = {17};
  CHECK_STATUS(wt_model_forward(large, records, n, idx, 1, NULL), WT_OK);
  const float *z = wt_model_logits(large);
  int best = 0;
  for (int k = 1; k < 10; k++) best = z[k] > z[best] ? k : best;
  CHECK(best == predictions[17], "argmax of logits %d, prediction %u", best, predictions[17]);

  /* Zero records: nothing added. Bad input: refused. */
  int32_t c = 0;
  double l = 0;
  CHECK_STATUS(wt_model_evaluate(large, records, 0, &c, &l, NULL, NULL), WT_OK);
  CHECK(c == 0 && l == 0, "evaluating 0 records gave %d correct, loss %g", (int)c, l);
  CHECK_STATUS(wt_model_evaluate(large, records, -1, &c, &l, NULL, NULL), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_evaluate(NULL, records, n, &c, &l, NULL, NULL), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_evaluate(large, NULL, n, &c, &l, NULL, NULL), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_evaluate(large, records, n, NULL, &l, NULL, NULL), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_evaluate(large, records, n, &c, NULL, NULL, NULL), WT_ERR_INVALID_ARGUMENT);
  records[5 * WT_RECORD_BYTES] = 10;
  CHECK_STATUS(wt_model_evaluate(large, records, n, &c, &l, NULL, NULL), WT_ERR_BAD_DATA);
  CHECK(c == 0 && l == 0, "a refused evaluation changed the totals (%d, %g)", (int)c, l);
  wt_model_destroy(small), wt_model_destroy(large);
  free(records);
}

static int is_permutation(const uint32_t *perm, int n) {
  uint8_t *seen = calloc((size_t)n + 1, 1);
  int ok = 1;
  for (int i = 0; i < n && ok; i++) {
    if (perm[i] >= (uint32_t)n || seen[perm[i]]) {
      printf("  perm[%d] = %u is out of range or repeated (n = %d)\n", i, (unsigned)perm[i], n);
      ok = 0;
    } else {
      seen[perm[i]] = 1;
    }
  }
  free(seen);
  return ok;
}

static void test_permutation(void) {
  static const int sizes[] = {0, 1, 2, 3, 10, 1000, 50000};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    const int n = sizes[s];
    uint32_t *a = malloc(sizeof(uint32_t) * (size_t)(n + 1)), *b = malloc(sizeof(uint32_t) * (size_t)(n + 1));
    CHECK_STATUS(wt_epoch_permutation(a, n, 1234, 3), WT_OK);
    CHECK(is_permutation(a, n), "n = %d: not a permutation", n);
    CHECK_STATUS(wt_epoch_permutation(b, n, 1234, 3), WT_OK);
    CHECK(memcmp(a, b, sizeof(uint32_t) * (size_t)n) == 0, "n = %d: same (seed, epoch), different order", n);
    if (n >= 10) {
      CHECK_STATUS(wt_epoch_permutation(b, n, 1235, 3), WT_OK);
      CHECK(is_permutation(b, n) && memcmp(a, b, sizeof(uint32_t) * (size_t)n) != 0, "n = %d: seed does not change the order", n);
      CHECK_STATUS(wt_epoch_permutation(b, n, 1234, 4), WT_OK);
      CHECK(is_permutation(b, n) && memcmp(a, b, sizeof(uint32_t) * (size_t)n) != 0, "n = %d: epoch does not change the order", n);
      int fixed = 0;
      for (int i = 0; i < n; i++) fixed += a[i] == (uint32_t)i;
      CHECK(n < 1000 || fixed < n / 50, "n = %d: %d of the indices stay in place", n, fixed);
    }
    free(a), free(b);
  }
  uint32_t p[4];
  CHECK_STATUS(wt_epoch_permutation(NULL, 4, 1, 0), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_epoch_permutation(p, -1, 1, 0), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_epoch_permutation(p, 4, 1, -1), WT_ERR_INVALID_ARGUMENT);
}

static void test_records_check(void) {
  uint8_t *records = make_records(3, 5);
  int32_t count = -7;
  CHECK_STATUS(wt_records_check(records, 3 * WT_RECORD_BYTES, &count), WT_OK);
  CHECK(count == 3, "count %d, expected 3", (int)count);
  CHECK_STATUS(wt_records_check(records, 0, &count), WT_ERR_BAD_DATA);
  CHECK(count == 0 && strstr(wt_last_error(), "empty"), "empty file: count %d", (int)count);
  CHECK_STATUS(wt_records_check(NULL, 0, &count), WT_ERR_BAD_DATA);
  CHECK_STATUS(wt_records_check(records, WT_RECORD_BYTES - 1, &count), WT_ERR_BAD_DATA);
  CHECK(strstr(wt_last_error(), "3072 bytes left over") != NULL, "message does not give the leftover bytes");
  CHECK_STATUS(wt_records_check(records, 2 * WT_RECORD_BYTES + 1, &count), WT_ERR_BAD_DATA);
  CHECK(count == 0, "a refused check left count %d", (int)count);
  CHECK_STATUS(wt_records_check(records, WT_RECORD_BYTES, &count), WT_OK); /* a prefix of whole records */
  CHECK(count == 1, "count %d, expected 1", (int)count);
  static const uint8_t bad_labels[] = {10, 11, 128, 255};
  for (size_t i = 0; i < sizeof bad_labels; i++) {
    records[2 * WT_RECORD_BYTES] = bad_labels[i];
    CHECK_STATUS(wt_records_check(records, 3 * WT_RECORD_BYTES, &count), WT_ERR_BAD_DATA);
    CHECK(strstr(wt_last_error(), "record 2 ") != NULL, "label %u: message does not name record 2", bad_labels[i]);
  }
  records[2 * WT_RECORD_BYTES] = 9;
  CHECK_STATUS(wt_records_check(records, 3 * WT_RECORD_BYTES, &count), WT_OK);
  CHECK_STATUS(wt_records_check(records, 3 * WT_RECORD_BYTES, NULL), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_records_check(NULL, WT_RECORD_BYTES, &count), WT_ERR_INVALID_ARGUMENT);
  free(records);
}

static void test_batch_arguments(void) {
  const int n = 10;
  uint8_t *records = make_records(n, 9);
  wt_model *m = new_model(4, 2);
  snapshot before;
  take_snapshot(&before, m);
  const uint32_t good[4] = {0, 1, 2, 3}, past[4] = {0, 1, 10, 3}, huge[1] = {0xFFFFFFFFu};
  float loss = 0;
  double sum = 0;
  wt_adam_config bad = ADAM;
  CHECK_STATUS(wt_model_train_step(NULL, records, n, good, 4, &ADAM, &loss), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_train_step(m, NULL, n, good, 4, &ADAM, &loss), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_train_step(m, records, n, NULL, 4, &ADAM, &loss), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_train_step(m, records, n, good, 4, NULL, &loss), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_train_step(m, records, n, good, 0, &ADAM, &loss), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_train_step(m, records, n, good, -1, &ADAM, &loss), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_train_step(m, records, n, good, 5, &ADAM, &loss), WT_ERR_INVALID_ARGUMENT); /* > max_batch */
  CHECK_STATUS(wt_model_train_step(m, records, n, past, 4, &ADAM, &loss), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_train_step(m, records, n, huge, 1, &ADAM, &loss), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_train_step(m, records, 0, good, 1, &ADAM, &loss), WT_ERR_INVALID_ARGUMENT);
  /* A negative count must not turn into a huge unsigned bound that lets any index through. */
  CHECK_STATUS(wt_model_train_step(m, records, -1, huge, 1, &ADAM, &loss), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_forward(m, records, -1, huge, 1, &sum), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_backward(m, records, -1, huge, 1, 1.0f, &sum), WT_ERR_INVALID_ARGUMENT);
  for (int k = 0; k < 4; k++) {
    bad = ADAM;
    double *field = k == 0 ? &bad.lr : k == 1 ? &bad.beta1 : k == 2 ? &bad.beta2 : &bad.eps;
    *field = k == 1 || k == 2 ? 1.0 : 0.0;
    CHECK_STATUS(wt_model_train_step(m, records, n, good, 4, &bad, &loss), WT_ERR_INVALID_ARGUMENT);
    *field = NAN;
    CHECK_STATUS(wt_model_adam_update(m, &bad), WT_ERR_INVALID_ARGUMENT);
  }
  CHECK(same_as_snapshot(&before, m, "refused train steps"), "a refused train step changed the model");
  records[3 * WT_RECORD_BYTES] = 200;
  CHECK_STATUS(wt_model_train_step(m, records, n, good, 4, &ADAM, &loss), WT_ERR_BAD_DATA);
  CHECK_STATUS(wt_model_forward(m, records, n, good, 4, &sum), WT_ERR_BAD_DATA);
  records[3 * WT_RECORD_BYTES] = 3;
  CHECK(same_as_snapshot(&before, m, "bad labels"), "a refused train step changed the model");

  CHECK_STATUS(wt_model_forward(NULL, records, n, good, 4, &sum), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_forward(m, records, n, good, 4, NULL), WT_OK); /* the loss is optional */
  CHECK_STATUS(wt_model_backward(NULL, records, n, good, 4, 0.25f, &sum), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_adam_update(NULL, &ADAM), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_adam_update(m, NULL), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_set_adam_step_count(m, -1), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_set_adam_step_count(NULL, 3), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_set_adam_step_count(m, 12), WT_OK);
  CHECK(wt_model_adam_step_count(m) == 12, "step count %d after setting 12", (int)wt_model_adam_step_count(m));

  /* A non-finite gradient is refused by Adam, and nothing moves. */
  wt_model_set_adam_step_count(m, before.steps);
  take_snapshot(&before, m);
  wt_model_grads(m)[77] = INFINITY;
  CHECK_STATUS(wt_model_adam_update(m, &ADAM), WT_ERR_NON_FINITE);
  CHECK(same_as_snapshot(&before, m, "non-finite gradient"), "Adam moved on a non-finite gradient");
  wt_model_destroy(m);
  free(records);
}

static void test_load_weights(void) {
  wt_model *m = new_model(8, 8);
  const int n = 16;
  uint8_t *records = make_records(n, 3);
  train(m, records, n, 3, 1); /* non-zero Adam state, which a refusal must also keep */
  snapshot before;
  take_snapshot(&before, m);

  uint8_t *file = malloc(PARAM_BYTES + 1);
  for (size_t i = 0; i < P; i++) {
    const float v = (float)((int)(i % 2001) - 1000) * 1e-4f;
    memcpy(file + 4 * i, &v, 4); /* little-endian host assumed, as in the Wasm module */
  }
  static const size_t wrong_sizes[] = {0, 1, 4, PARAM_BYTES - 4, PARAM_BYTES - 1, PARAM_BYTES + 1};
  for (size_t i = 0; i < sizeof wrong_sizes / sizeof wrong_sizes[0]; i++) {
    CHECK_STATUS(wt_model_load_weights(m, file, wrong_sizes[i]), WT_ERR_BAD_DATA);
    CHECK(strstr(wt_last_error(), "248024") != NULL, "%zu bytes: message does not give the expected size", wrong_sizes[i]);
  }
  static const float poison[] = {NAN, INFINITY, -INFINITY};
  static const size_t where[] = {0, 31337, P - 1};
  for (size_t k = 0; k < 3; k++) {
    float saved;
    memcpy(&saved, file + 4 * where[k], 4);
    memcpy(file + 4 * where[k], &poison[k], 4);
    CHECK_STATUS(wt_model_load_weights(m, file, PARAM_BYTES), WT_ERR_BAD_DATA);
    memcpy(file + 4 * where[k], &saved, 4);
  }
  CHECK_STATUS(wt_model_load_weights(NULL, file, PARAM_BYTES), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_load_weights(m, NULL, PARAM_BYTES), WT_ERR_INVALID_ARGUMENT);
  CHECK(same_as_snapshot(&before, m, "refused weights"), "a refused weights file changed the model");

  CHECK_STATUS(wt_model_load_weights(m, file, PARAM_BYTES), WT_OK);
  CHECK(memcmp(wt_model_params(m), file, PARAM_BYTES) == 0, "loaded parameters differ from the file");
  int moments = 0;
  for (size_t i = 0; i < P; i++) moments |= wt_model_adam_m(m)[i] != 0 || wt_model_adam_v(m)[i] != 0;
  CHECK(!moments && wt_model_adam_step_count(m) == 0, "loading weights did not reset Adam");
  wt_model_destroy(m);
  free(file), free(records);
}

static wt_run_state valid_state(void) {
  wt_run_state s;
  memset(&s, 0, sizeof s);
  s.epoch = 2, s.step = 5, s.epochs = 4, s.batch_size = 8, s.shuffle = 1, s.workers = 2, s.seed = 0xDEADBEEFu;
  s.train_count = 100, s.window_count = 3, s.window_sum = 6.75, s.adam = ADAM;
  return s;
}

static int same_state(const wt_run_state *a, const wt_run_state *b) {
  return a->epoch == b->epoch && a->step == b->step && a->epochs == b->epochs && a->batch_size == b->batch_size &&
         a->shuffle == b->shuffle && a->workers == b->workers && a->seed == b->seed && a->train_count == b->train_count &&
         a->window_count == b->window_count && memcmp(&a->window_sum, &b->window_sum, 8) == 0 &&
         memcmp(&a->adam, &b->adam, sizeof a->adam) == 0;
}

static void put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void reseal(uint8_t *ckpt, size_t bytes) { put_u32(ckpt + bytes - 4, wt_crc32(ckpt, bytes - 4)); }

static void test_checkpoints(void) {
  const size_t bytes = wt_checkpoint_bytes();
  CHECK(bytes == 128 + 3 * PARAM_BYTES + 4 && bytes == 744204, "checkpoint size %zu", bytes);
  CHECK(wt_crc32((const uint8_t *)"123456789", 9) == 0xCBF43926u, "CRC-32 check value %08X", (unsigned)wt_crc32((const uint8_t *)"123456789", 9));
  CHECK(wt_crc32(NULL, 0) == 0, "CRC-32 of nothing is %08X", (unsigned)wt_crc32(NULL, 0));

  const int n = 16;
  uint8_t *records = make_records(n, 21);
  wt_model *source = new_model(8, 4);
  train(source, records, n, 5, 2);
  const wt_run_state state = valid_state();
  uint8_t *file = malloc(bytes + 1), *again = malloc(bytes);
  CHECK_STATUS(wt_checkpoint_save(source, &state, file, bytes + 1), WT_OK); /* a larger buffer is fine */

  /* Round trip into a different model: everything restored, and saving again is byte-identical. */
  wt_model *target = new_model(2, 99);
  wt_run_state loaded;
  memset(&loaded, 0, sizeof loaded);
  CHECK_STATUS(wt_checkpoint_load(target, &loaded, file, bytes), WT_OK);
  snapshot want;
  take_snapshot(&want, source);
  CHECK(same_as_snapshot(&want, target, "checkpoint round trip"), "the loaded model differs from the saved one");
  CHECK(same_state(&loaded, &state), "the loaded run state differs from the saved one");
  CHECK_STATUS(wt_checkpoint_save(target, &loaded, again, bytes), WT_OK);
  CHECK(memcmp(file, again, bytes) == 0, "saving a loaded checkpoint gives different bytes");
  /* ...and training continues identically. */
  const uint32_t idx[2] = {3, 11};
  float loss_a = 0, loss_b = 0;
  CHECK_STATUS(wt_model_train_step(source, records, n, idx, 2, &ADAM, &loss_a), WT_OK);
  CHECK_STATUS(wt_model_train_step(target, records, n, idx, 2, &ADAM, &loss_b), WT_OK);
  CHECK(loss_a == loss_b && memcmp(wt_model_params(source), wt_model_params(target), PARAM_BYTES) == 0,
        "training after a resume diverges (loss %.9g vs %.9g)", loss_a, loss_b);

  /* Refusals: each names its problem and leaves the model and *state alone. */
  snapshot before;
  take_snapshot(&before, target);
  wt_run_state untouched = loaded;
  struct {
    const char *what;
    size_t offset, size; /* where to write `value` (size 0: no write) */
    uint64_t value;
    size_t length;      /* bytes passed to load */
    int reseal;         /* fix the CRC so the check behind it is reached */
    const char *message;
  } cases[] = {
      {"empty", 0, 0, 0, 0, 0, "no WTCKPT signature"},
      {"magic", 3, 1, 'X', 0, 1, "no WTCKPT signature"},
      {"header only", 0, 0, 0, 128, 0, "truncated"},
      {"7 bytes", 0, 0, 0, 7, 0, "no WTCKPT signature"},
      {"one byte short", 0, 0, 0, 744203, 0, "truncated"},
      {"one byte long", 0, 0, 0, 744205, 0, "trailing bytes"},
      {"version", 8, 4, 2, 0, 1, "version 2"},
      {"architecture", 12, 4, 0x32434E53u, 0, 1, "another architecture"},
      {"parameter count", 16, 4, P + 1, 0, 1, "another architecture"},
      {"header size", 20, 4, 64, 0, 1, "header size"},
      {"CRC", 128 + 4000, 1, 0x55, 0, 0, "corrupted"},
      {"stored CRC", 744200, 1, 0, 0, 0, "corrupted"},
      {"negative Adam steps", 24, 4, 0x80000000u, 0, 1, "negative"},
      {"negative epoch", 28, 4, 0xFFFFFFFFu, 0, 1, "run state"},
      {"step past the epoch", 32, 4, 13, 0, 1, "not inside an epoch"},
      {"batch size 0", 40, 4, 0, 0, 1, "run state"},
      {"batch size too big", 40, 4, WT_MAX_BATCH + 1, 0, 1, "run state"},
      {"shuffle 2", 44, 4, 2, 0, 1, "run state"},
      {"0 workers", 48, 4, 0, 0, 1, "run state"},
      {"0 records", 56, 4, 0, 0, 1, "run state"},
      {"window longer than step", 60, 4, 6, 0, 1, "not inside an epoch"},
      {"NaN window sum", 64, 8, 0x7FF8000000000000ull, 0, 1, "run state"},
      {"lr 0", 72, 8, 0, 0, 1, "Adam settings"},
      {"beta1 1", 80, 8, 0x3FF0000000000000ull, 0, 1, "Adam settings"},
      {"beta2 NaN", 88, 8, 0x7FF8000000000000ull, 0, 1, "Adam settings"},
      {"eps infinite", 96, 8, 0x7FF0000000000000ull, 0, 1, "Adam settings"},
      {"reserved byte", 110, 1, 1, 0, 1, "reserved"},
      {"NaN parameter", 128 + 4 * 5, 4, 0x7FC00000u, 0, 1, "parameter"},
      {"infinite Adam m", 128 + PARAM_BYTES + 4 * 6, 4, 0xFF800000u, 0, 1, "Adam m"},
      {"negative Adam v", 128 + 2 * PARAM_BYTES + 4 * 7, 4, 0xBF800000u, 0, 1, "Adam v"},
  };
  uint8_t *bad = malloc(bytes + 1);
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    memcpy(bad, file, bytes);
    bad[bytes] = 0;
    for (size_t i = 0; i < cases[c].size; i++) bad[cases[c].offset + i] = (uint8_t)(cases[c].value >> (8 * i));
    if (cases[c].reseal) reseal(bad, bytes);
    const size_t length = cases[c].length ? cases[c].length : strcmp(cases[c].what, "empty") == 0 ? 0 : bytes;
    const wt_status st = wt_checkpoint_load(target, &loaded, bad, length);
    CHECK(st == WT_ERR_BAD_DATA, "%s: status %d", cases[c].what, (int)st);
    CHECK(strstr(wt_last_error(), cases[c].message) != NULL, "%s: message lacks \"%s\"", cases[c].what, cases[c].message);
    CHECK(same_as_snapshot(&before, target, cases[c].what), "%s: a refused checkpoint changed the model", cases[c].what);
    CHECK(same_state(&loaded, &untouched), "%s: a refused checkpoint changed the run state", cases[c].what);
  }
  free(bad);

  /* Bad arguments. */
  CHECK_STATUS(wt_checkpoint_load(NULL, &loaded, file, bytes), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_checkpoint_load(target, NULL, file, bytes), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_checkpoint_load(target, &loaded, NULL, bytes), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_checkpoint_save(NULL, &state, again, bytes), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_checkpoint_save(target, NULL, again, bytes), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_checkpoint_save(target, &state, NULL, bytes), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_checkpoint_save(target, &state, again, bytes - 1), WT_ERR_INVALID_ARGUMENT);
  /* An impossible run state is refused before anything is written. */
  wt_run_state impossible = state;
  impossible.step = 1000;
  memset(again, 0xA5, bytes);
  const wt_status st = wt_checkpoint_save(target, &impossible, again, bytes);
  CHECK(st != WT_OK, "saving step 1000 of a 13-step epoch succeeded");
  int written = 0;
  for (size_t i = 0; i < bytes; i++) written |= again[i] != 0xA5;
  CHECK(!written, "a refused save wrote into the buffer");
  CHECK(same_as_snapshot(&before, target, "bad arguments"), "a refused call changed the model");

  wt_model_destroy(source), wt_model_destroy(target);
  free(file), free(again), free(records);
}

/* The gradient tree: nodes add up to the root bit for bit, a leaf is a plain backward of its
 * block, and the train step uses the root. */
static void test_gradient_tree(void) {
  CHECK(wt_grad_block() == WT_GRAD_BLOCK, "wt_grad_block %d", (int)wt_grad_block());
  const int32_t mids[][3] = {{0, 2, 1}, {0, 3, 2}, {0, 4, 2}, {0, 5, 4}, {0, 8, 4}, {0, 9, 8}, {4, 7, 6}, {5, 8, 7}, {2, 4, 3}};
  for (size_t i = 0; i < sizeof mids / sizeof mids[0]; i++) {
    CHECK(wt_grad_tree_mid(mids[i][0], mids[i][1]) == mids[i][2], "tree mid of [%d, %d) is %d, not %d",
          (int)mids[i][0], (int)mids[i][1], (int)wt_grad_tree_mid(mids[i][0], mids[i][1]), (int)mids[i][2]);
  }
  const int n = 40, batch = 2 * WT_GRAD_BLOCK + 5; /* three blocks, the last one short */
  uint8_t *records = make_records(n, 13);
  uint32_t idx[2 * WT_GRAD_BLOCK + 5];
  for (int i = 0; i < batch; i++) idx[i] = (uint32_t)((i * 7) % n);
  wt_model *m = new_model(32, 5);
  float *root = malloc(PARAM_BYTES), *left = malloc(PARAM_BYTES), *right = malloc(PARAM_BYTES);
  const float scale = 1.0f / batch;
  double root_loss = 0, left_loss = 0, right_loss = 0;
  CHECK_STATUS(wt_model_gradient(m, records, n, idx, batch, 0, 3, scale, root, &root_loss), WT_OK);
  /* [0, 3) = [0, 2) + [2, 3), computed apart and added as a second worker's would be. */
  CHECK_STATUS(wt_model_gradient(m, records, n, idx, batch, 0, 2, scale, left, &left_loss), WT_OK);
  CHECK_STATUS(wt_model_gradient(m, records, n, idx, batch, 2, 3, scale, right, &right_loss), WT_OK);
  wt_grads_add(left, right);
  CHECK(memcmp(left, root, PARAM_BYTES) == 0, "node [0,2) + node [2,3) differs from the root [0,3)");
  CHECK(left_loss + right_loss == root_loss, "loss %.17g + %.17g != %.17g", left_loss, right_loss, root_loss);
  /* A leaf is backward on its block from zero. */
  wt_model_zero_grads(m);
  double leaf_loss = 0;
  CHECK_STATUS(wt_model_backward(m, records, n, idx + 2 * WT_GRAD_BLOCK, 5, scale, &leaf_loss), WT_OK);
  CHECK(memcmp(wt_model_grads(m), right, PARAM_BYTES) == 0 && leaf_loss == right_loss, "leaf [2,3) differs from backward on its 5 images");
  /* The root into the model's own gradients, then Adam, is the train step. */
  wt_model *twin = new_model(32, 5);
  float step_loss = 0;
  CHECK_STATUS(wt_model_gradient(m, records, n, idx, batch, 0, 3, scale, wt_model_grads(m), &root_loss), WT_OK);
  CHECK(memcmp(wt_model_grads(m), root, PARAM_BYTES) == 0, "the root into the model's gradients differs");
  CHECK_STATUS(wt_model_adam_update(m, &ADAM), WT_OK);
  CHECK_STATUS(wt_model_train_step(twin, records, n, idx, batch, &ADAM, &step_loss), WT_OK);
  CHECK(memcmp(wt_model_params(m), wt_model_params(twin), PARAM_BYTES) == 0, "train_step differs from the tree root + Adam");
  CHECK((float)(root_loss / batch) == step_loss, "train_step loss %.9g, root loss %.9g", step_loss, root_loss / batch);
  /* Nodes outside the batch's blocks, and a missing destination, are refused untouched. */
  memset(left, 0x55, PARAM_BYTES);
  const int32_t bad[][2] = {{-1, 1}, {0, 4}, {2, 2}, {3, 2}, {3, 4}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK_STATUS(wt_model_gradient(m, records, n, idx, batch, bad[i][0], bad[i][1], scale, left, &left_loss), WT_ERR_INVALID_ARGUMENT);
  }
  CHECK_STATUS(wt_model_gradient(m, records, n, idx, batch, 0, 1, scale, NULL, &left_loss), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_gradient(m, records, n, idx, 33, 0, 1, scale, left, &left_loss), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_gradient(NULL, records, n, idx, batch, 0, 1, scale, left, &left_loss), WT_ERR_INVALID_ARGUMENT);
  CHECK(((const uint8_t *)left)[0] == 0x55 && ((const uint8_t *)left)[PARAM_BYTES - 1] == 0x55, "a refused node wrote its destination");
  free(root), free(left), free(right);
  wt_model_destroy(m), wt_model_destroy(twin);
  free(records);
}

int main(void) {
  test_create_destroy();
  test_training_reduces_loss();
  test_gradient_tree();
  test_evaluate();
  test_permutation();
  test_records_check();
  test_batch_arguments();
  test_load_weights();
  test_checkpoints();
  printf(failures ? "test_engine: %d FAILED\n" : "test_engine: all passed\n", failures);
  return failures ? 1 : 0;
}
