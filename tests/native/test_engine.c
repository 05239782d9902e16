/* The public C API end to end, natively (and under ASan/UBSan from tests/fuzz/run.sh): models
 * planned from specs (SimpleCNN and a net with every layer kind), refused specs, training,
 * evaluation, the gradient tree, the shuffle, record checks, weights files, checkpoints (version
 * 2, and version 1 files into SimpleCNN), and that every bad argument comes back as a status
 * instead of a crash. Prints the first mismatches, then exits non-zero. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "test_models.h"
#include "webtrain.h"

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

static const wt_optim_config ADAM = {.kind = WT_OPTIM_ADAM, .group_count = 1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                                     .groups = {{.lr = 1e-3}}};
static const wt_adam_config ADAM_STATE = {1e-3, 0.9, 0.999, 1e-8};

/* SimpleCNN on CIFAR-layout records. */
static uint8_t *make_records(int count, uint32_t seed) { return make_synthetic(count, 3, 32, 10, seed); }
static wt_records cifar(const uint8_t *data, int count) { return synthetic_records(data, count, 3, 32); }

static wt_model *new_model_from(const int32_t *spec, size_t words, int32_t max_batch, uint32_t seed) {
  wt_model *m = NULL;
  if (wt_model_create(&m, spec, words, NULL, 0, max_batch, seed) != WT_OK || !m) {
    printf("wt_model_create(max_batch %d, seed %u) failed: %s\n", (int)max_batch, (unsigned)seed, wt_last_error());
    exit(1);
  }
  return m;
}
static wt_model *new_model(int32_t max_batch, uint32_t seed) {
  return new_model_from(SIMPLECNN_SPEC, SIMPLECNN_WORDS, max_batch, seed);
}

static int32_t every_spec[SPEC_MAX_WORDS];
static size_t every_words;
static wt_model *new_every_kind(int32_t max_batch, uint32_t seed) {
  return new_model_from(every_spec, every_words, max_batch, seed);
}

/* The whole model state a refused call must leave alone. */
typedef struct snapshot {
  size_t P, R;
  float *params, *adam_m, *adam_v, *running;
  int32_t steps, stat_steps;
} snapshot;

static void take_snapshot(snapshot *s, wt_model *m) {
  s->P = (size_t)wt_model_param_count(m), s->R = (size_t)wt_model_running_count(m);
  s->params = malloc(4 * s->P), s->adam_m = malloc(4 * s->P), s->adam_v = malloc(4 * s->P), s->running = malloc(4 * s->R + 4);
  memcpy(s->params, wt_model_params(m), 4 * s->P);
  memcpy(s->adam_m, wt_model_adam_m(m), 4 * s->P);
  memcpy(s->adam_v, wt_model_adam_v(m), 4 * s->P);
  memcpy(s->running, wt_model_running(m), 4 * s->R);
  s->steps = wt_model_adam_step_count(m), s->stat_steps = wt_model_stat_steps(m);
}
static void restore_snapshot(const snapshot *s, wt_model *m) {
  memcpy(wt_model_params(m), s->params, 4 * s->P);
  memcpy(wt_model_adam_m(m), s->adam_m, 4 * s->P);
  memcpy(wt_model_adam_v(m), s->adam_v, 4 * s->P);
  memcpy(wt_model_running(m), s->running, 4 * s->R);
  wt_model_set_adam_step_count(m, s->steps);
  wt_model_set_stat_steps(m, s->stat_steps);
}
static void free_snapshot(snapshot *s) { free(s->params), free(s->adam_m), free(s->adam_v), free(s->running); }

/* Index of the first float that differs bit for bit, or -1. */
static long first_difference(const float *a, const float *b, size_t n) {
  if (memcmp(a, b, 4 * n) == 0) return -1;
  for (size_t i = 0; i < n; i++)
    if (memcmp(&a[i], &b[i], 4) != 0) return (long)i;
  return -1;
}

/* 1 when the model matches the snapshot bit for bit; otherwise prints the first difference. */
static int same_as_snapshot(const snapshot *s, wt_model *m, const char *what) {
  if ((size_t)wt_model_param_count(m) != s->P || (size_t)wt_model_running_count(m) != s->R) {
    printf("  %s: the model has other sizes than the snapshot\n", what);
    return 0;
  }
  const float *now[4] = {wt_model_params(m), wt_model_adam_m(m), wt_model_adam_v(m), wt_model_running(m)};
  const float *before[4] = {s->params, s->adam_m, s->adam_v, s->running};
  const size_t counts[4] = {s->P, s->P, s->P, s->R};
  static const char *names[4] = {"params", "adam_m", "adam_v", "running"};
  for (int b = 0; b < 4; b++) {
    const long i = first_difference(now[b], before[b], counts[b]);
    if (i >= 0) {
      printf("  %s: %s[%ld] changed from %.9g to %.9g\n", what, names[b], i, before[b][i], now[b][i]);
      return 0;
    }
  }
  if (wt_model_adam_step_count(m) != s->steps || wt_model_stat_steps(m) != s->stat_steps) {
    printf("  %s: step counts changed from %d/%d to %d/%d\n", what, (int)s->steps, (int)s->stat_steps,
           (int)wt_model_adam_step_count(m), (int)wt_model_stat_steps(m));
    return 0;
  }
  return 1;
}

/* Mean loss over records (evaluation mode). */
static double mean_loss(wt_model *m, const wt_records *r) {
  int32_t correct = 0;
  double loss = 0;
  if (wt_model_evaluate(m, r, 0, r->count, &correct, &loss, NULL, NULL, NULL) != WT_OK) return NAN;
  return loss / r->count;
}

/* Mean training-mode loss over all records (batch statistics, dropout of step 0), in batches. */
static double mean_train_loss(wt_model *m, const wt_records *r) {
  uint32_t *idx = malloc(sizeof(uint32_t) * (size_t)r->count);
  for (int i = 0; i < r->count; i++) idx[i] = (uint32_t)i;
  double total = 0;
  for (int done = 0; done < r->count;) {
    const int n = r->count - done < wt_model_max_batch(m) ? r->count - done : wt_model_max_batch(m);
    double sum = 0;
    if (wt_model_forward(m, r, idx + done, n, &sum) != WT_OK) total = NAN;
    total += sum, done += n;
  }
  free(idx);
  return total / r->count;
}

/* Trains `steps` steps of `batch` over the records in epoch-permutation order; step numbers
 * count from `first_step` (they key the dropout masks). Returns the mean loss of the last 5. */
static double train_from(wt_model *m, const wt_records *r, int batch, int first_step, int steps, uint32_t seed) {
  const int n = r->count;
  uint32_t *perm = malloc(sizeof(uint32_t) * (size_t)n);
  const int per_epoch = n / batch;
  double tail = 0;
  for (int s = first_step; s < first_step + steps; s++) {
    if (s == first_step || s % per_epoch == 0) wt_epoch_permutation(perm, n, seed, s / per_epoch);
    float loss = 0;
    const wt_status st = wt_model_train_step(m, r, perm + batch * (s % per_epoch), batch, s, &ADAM, &loss);
    CHECK(st == WT_OK && isfinite(loss), "train step %d: status %d, loss %g", s, (int)st, loss);
    if (s >= first_step + steps - 5) tail += loss / 5;
  }
  free(perm);
  return tail;
}
static void train(wt_model *m, const wt_records *r, int steps, uint32_t seed) { train_from(m, r, 8, 0, steps, seed); }

static void test_create_destroy(void) {
  CHECK(wt_spec_check(SIMPLECNN_SPEC, SIMPLECNN_WORDS) == WT_OK, "SimpleCNN's spec is refused");
  wt_model *existing = new_model(1, 1), *m = existing; /* a refusal must reset *out to NULL */
  CHECK_STATUS(wt_model_create(&m, SIMPLECNN_SPEC, SIMPLECNN_WORDS, NULL, 0, 0, 1), WT_ERR_INVALID_ARGUMENT);
  CHECK(m == NULL, "a refused create left *out = %p", (void *)m);
  CHECK_STATUS(wt_model_create(&m, SIMPLECNN_SPEC, SIMPLECNN_WORDS, NULL, 0, -5, 1), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_create(&m, SIMPLECNN_SPEC, SIMPLECNN_WORDS, NULL, 0, WT_MAX_BATCH + 1, 1), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_create(NULL, SIMPLECNN_SPEC, SIMPLECNN_WORDS, NULL, 0, 4, 1), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_create(&m, NULL, SIMPLECNN_WORDS, NULL, 0, 4, 1), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_create(&m, SIMPLECNN_SPEC, SIMPLECNN_WORDS, NULL, 5, 4, 1), WT_ERR_INVALID_ARGUMENT);
  wt_model_destroy(existing);
  wt_model_destroy(NULL); /* must be a no-op */

  const uint8_t text[] = "# SimpleCNN\nconv(6, 5)\n";
  wt_model *a = NULL;
  CHECK_STATUS(wt_model_create(&a, SIMPLECNN_SPEC, SIMPLECNN_WORDS, text, sizeof text - 1, 3, 42), WT_OK);
  if (!a) exit(1);
  wt_model *b = new_model(7, 42), *c = new_model(3, 43);
  const size_t P = (size_t)wt_model_param_count(a);
  CHECK(P == SIMPLECNN_PARAMS && wt_model_grad_count(a) == SIMPLECNN_PARAMS && wt_model_running_count(a) == 0,
        "SimpleCNN: %zu params, %d grads, %d running", P, (int)wt_model_grad_count(a), (int)wt_model_running_count(a));
  CHECK(wt_model_max_batch(a) == 3 && wt_model_max_batch(b) == 7, "max_batch %d, %d", (int)wt_model_max_batch(a),
        (int)wt_model_max_batch(b));
  CHECK(wt_model_block(a) == WT_GRAD_BLOCK, "block %d", (int)wt_model_block(a));
  const wt_data_format *f = wt_model_data_format(a);
  CHECK(f->channels == 3 && f->height == 32 && f->width == 32 && f->classes == 10 && f->mean[0] == 0.5f && f->std[2] == 0.5f,
        "data format %dx%dx%d, %d classes", (int)f->channels, (int)f->height, (int)f->width, (int)f->classes);
  size_t words = 0, bytes = 0;
  const int32_t *spec = wt_model_spec(a, &words);
  const uint8_t *kept = wt_model_text(a, &bytes);
  CHECK(words == SIMPLECNN_WORDS && memcmp(spec, SIMPLECNN_SPEC, sizeof SIMPLECNN_SPEC) == 0, "the model's spec differs");
  CHECK(bytes == sizeof text - 1 && memcmp(kept, text, bytes) == 0, "the model's text differs");
  wt_model_text(b, &bytes);
  CHECK(bytes == 0, "a model made without text has %zu bytes of it", bytes);

  /* The tensor and layer tables: SimpleCNN's state_dict and summary. */
  static const int32_t counts[10] = {450, 6, 2400, 16, 48000, 120, 10080, 84, 840, 10};
  CHECK(wt_model_tensor_count(a) == 10, "%d tensors", (int)wt_model_tensor_count(a));
  int32_t offset = 0;
  for (int t = 0; t < 10; t++) {
    wt_tensor_info info;
    CHECK(wt_model_tensor_info(a, t, &info) == 1 && info.count == counts[t] && info.offset == offset && info.role == t % 2 &&
              info.trainable == 1,
          "tensor %d: count %d offset %d role %d", t, (int)info.count, (int)info.offset, (int)info.role);
    offset += counts[t];
  }
  wt_tensor_info none;
  CHECK(wt_model_tensor_info(a, 10, &none) == 0 && wt_model_tensor_info(a, -1, &none) == 0, "tensor past the end");
  CHECK(wt_model_layer_count(a) == 12, "%d layers", (int)wt_model_layer_count(a));
  wt_layer_info conv1, last;
  CHECK(wt_model_layer_info(a, 0, &conv1) && conv1.c == 6 && conv1.h == 28 && conv1.w == 28 && conv1.params == 456 &&
            conv1.flops == 2.0 * 6 * 28 * 28 * 75,
        "conv1: %dx%dx%d, %d params, %g flops", (int)conv1.c, (int)conv1.h, (int)conv1.w, (int)conv1.params, conv1.flops);
  CHECK(wt_model_layer_info(a, 11, &last) && last.node == 11 && last.flat == 1 && last.c == 10, "last layer");
  CHECK(wt_model_profile_slots(a) == 4 + 2 * 12, "%d profile slots", (int)wt_model_profile_slots(a));

  CHECK(memcmp(wt_model_params(a), wt_model_params(b), 4 * P) == 0, "same seed, different parameters");
  CHECK(memcmp(wt_model_params(a), wt_model_params(c), 4 * P) != 0, "seeds 42 and 43 give the same parameters");
  CHECK(wt_model_adam_step_count(a) == 0 && wt_model_stat_steps(a) == 0, "fresh model has %d Adam steps",
        (int)wt_model_adam_step_count(a));
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
  wt_model_set_stat_steps(c, 4);
  wt_model_init(c, 42);
  CHECK(memcmp(wt_model_params(a), wt_model_params(c), 4 * P) == 0, "wt_model_init(42) differs from create(42)");
  CHECK(wt_model_adam_step_count(c) == 0 && wt_model_stat_steps(c) == 0, "wt_model_init left %d Adam steps",
        (int)wt_model_adam_step_count(c));
  wt_model_destroy(a), wt_model_destroy(b), wt_model_destroy(c);
}

/* Batch norm's tensors: weight 1, bias 0, running mean 0 and variance 1; a net without affine
 * has no parameters for it but still its running statistics. */
static void test_every_kind_tables(void) {
  wt_model *m = new_every_kind(8, 3);
  CHECK(wt_model_block(m) == EVERY_KIND_BLOCK, "block %d", (int)wt_model_block(m));
  CHECK(wt_model_grad_count(m) > wt_model_param_count(m), "batch norm adds no statistics to the gradient vector");
  const int32_t R = wt_model_running_count(m);
  /* Running statistics: 8 + 8 + 16 + 16 + 32 channels, mean and variance each. */
  CHECK(R == 2 * (8 + 8 + 16 + 16 + 32), "%d running statistics", (int)R);
  int bad_init = 0, layers_seen = 0;
  for (int32_t t = 0; t < wt_model_tensor_count(m); t++) {
    wt_tensor_info info;
    wt_model_tensor_info(m, t, &info);
    wt_layer_info layer;
    wt_model_layer_info(m, info.layer, &layer);
    if (layer.kind != WT_OP_BATCHNORM) continue;
    layers_seen++;
    const float *p = (info.role >= 2 ? wt_model_running(m) : wt_model_params(m)) + info.offset;
    const float want = info.role == 0 || info.role == 3 ? 1.0f : 0.0f;
    for (int32_t k = 0; k < info.count; k++) bad_init |= p[k] != want;
    CHECK(info.trainable == (info.role < 2), "tensor %d role %d trainable %d", (int)t, (int)info.role, (int)info.trainable);
  }
  CHECK(!bad_init && layers_seen == 4 * 4 + 2, "batch norm init wrong (%d tensors)", layers_seen);
  wt_layer_info info;
  CHECK(wt_model_layer_info(m, wt_model_layer_count(m) - 1, &info) && info.c == EVERY_KIND_CLASSES && info.flat, "last layer");
  /* A raw weights file cannot hold running statistics: refused. */
  const size_t P = (size_t)wt_model_param_count(m);
  uint8_t *file = calloc(P, 4);
  CHECK_STATUS(wt_model_load_weights(m, file, 4 * P), WT_ERR_BAD_DATA);
  CHECK(strstr(wt_last_error(), "running statistics") != NULL, "message does not say why");
  free(file);
  wt_model_destroy(m);
}

static void test_training_reduces_loss(void) {
  const int n = 64;
  uint8_t *data = make_records(n, 7);
  const wt_records records = cifar(data, n);
  wt_model *m = new_model(8, 1);
  const double before = mean_loss(m, &records);
  train(m, &records, 40, 5);
  const double after = mean_loss(m, &records);
  printf("SimpleCNN: mean loss %.4f -> %.4f after 40 steps, %d Adam steps\n", before, after, (int)wt_model_adam_step_count(m));
  CHECK(isfinite(before) && isfinite(after) && after < 0.8 * before, "loss %.5f -> %.5f did not drop by 20%%", before, after);
  CHECK(wt_model_adam_step_count(m) == 40 && wt_model_stat_steps(m) == 0, "%d Adam steps after 40 train steps",
        (int)wt_model_adam_step_count(m));
  const size_t P = (size_t)wt_model_param_count(m);

  /* Same seeds, same steps: bit-identical parameters. */
  wt_model *twin = new_model(8, 1);
  train(twin, &records, 40, 5);
  CHECK(memcmp(wt_model_params(m), wt_model_params(twin), 4 * P) == 0, "training is not deterministic");

  /* A train step is the gradient tree's root with loss scale 1/B, then the update. */
  wt_model *manual = new_model(8, 1);
  const uint32_t idx[8] = {0, 9, 18, 27, 36, 45, 54, 63};
  float step_loss = 0;
  double sum = 0;
  CHECK_STATUS(wt_model_train_step(twin, &records, idx, 8, 40, &ADAM, &step_loss), WT_OK);
  train(manual, &records, 40, 5);
  CHECK_STATUS(wt_model_gradient(manual, &records, idx, 8, 0, 1, 1.0f / 8, 40, wt_model_grads(manual), &sum), WT_OK);
  CHECK_STATUS(wt_model_update(manual, &ADAM, 1), WT_OK);
  CHECK(memcmp(wt_model_params(manual), wt_model_params(twin), 4 * P) == 0, "train_step differs from gradient + update");
  CHECK((float)(sum / 8) == step_loss, "train_step loss %.9g, gradient loss %.9g", step_loss, sum / 8);

  /* forward gives the same loss as the gradient and does not touch gradients. */
  double fwd = 0;
  const float grad0 = wt_model_grads(manual)[123];
  CHECK_STATUS(wt_model_forward(manual, &records, idx, 8, &fwd), WT_OK);
  CHECK(wt_model_grads(manual)[123] == grad0, "forward changed a gradient");
  wt_model_destroy(m), wt_model_destroy(twin), wt_model_destroy(manual);
  free(data);
}

/* The update folds a step's batch statistics into the running ones: for each batch norm,
 * running = (1 - momentum) * running + momentum * (summed block statistics / blocks). The
 * statistics follow the parameters in the gradient vector, in the running statistics' layout. */
static void test_running_statistics(void) {
  const int n = 16;
  uint8_t *data = make_synthetic(n, 3, EVERY_KIND_SIDE, EVERY_KIND_CLASSES, 23);
  const wt_records records = synthetic_records(data, n, 3, EVERY_KIND_SIDE);
  wt_model *m = new_every_kind(16, 4);
  const size_t P = (size_t)wt_model_param_count(m), R = (size_t)wt_model_running_count(m);
  CHECK((size_t)wt_model_grad_count(m) == P + R, "%d gradients for %zu parameters and %zu running statistics",
        (int)wt_model_grad_count(m), P, R);
  uint32_t idx[16];
  for (int i = 0; i < n; i++) idx[i] = (uint32_t)(15 - i);
  for (int step = 0; step < 2; step++) {
    float *before = malloc(4 * R), *stats = malloc(4 * R);
    memcpy(before, wt_model_running(m), 4 * R);
    CHECK_STATUS(wt_model_gradient(m, &records, idx, n, 0, 4, 1.0f / n, step, wt_model_grads(m), NULL), WT_OK);
    memcpy(stats, wt_model_grads(m) + P, 4 * R);
    CHECK_STATUS(wt_model_update(m, &ADAM, 4), WT_OK);
    /* Channels and momentum of the five batch norms, in order. */
    static const int channels[5] = {8, 8, 16, 16, 32};
    static const float momentum[5] = {0.1f, 0.1f, 0.2f, 0.1f, 0.1f};
    size_t at = 0;
    int shown = 0;
    for (int layer = 0; layer < 5; layer++) {
      const float keep = 1.0f - momentum[layer];
      for (int k = 0; k < 2 * channels[layer]; k++, at++) {
        const float want = keep * before[at] + momentum[layer] * (stats[at] / 4.0f);
        if (wt_model_running(m)[at] != want && shown++ < 3) {
          CHECK(0, "step %d: running statistic %zu is %.9g, expected %.9g", step, at, wt_model_running(m)[at], want);
        }
        /* Variances (the second half of each layer's) are non-negative sums of four blocks. */
        if (k >= channels[layer] && !(stats[at] >= 0) && shown++ < 3) CHECK(0, "step %d: variance sum %zu is %g", step, at, stats[at]);
      }
    }
    CHECK(at == R, "the batch norms hold %zu running statistics, the model %zu", at, R);
    CHECK(wt_model_stat_steps(m) == step + 1, "%d statistics steps after %d updates", (int)wt_model_stat_steps(m), step + 1);
    free(before), free(stats);
  }
  wt_model_destroy(m);
  free(data);
}

/* SimpleCNN's evaluation runs conv + ReLU + max-pool as one pass; with the activation view it
 * runs them apart. Both give the same logits, bit for bit. */
static void test_fused_evaluation(void) {
  wt_model *m = new_model(8, 9);
  const size_t in = 3 * 32 * 32;
  float *x = malloc(sizeof(float) * in * 3), *fused = malloc(sizeof(float) * 30), *apart = malloc(sizeof(float) * 30);
  size_t act_total = 0;
  for (int32_t i = 0; i < wt_model_layer_count(m); i++) {
    wt_layer_info li;
    wt_model_layer_info(m, i, &li);
    act_total += (size_t)li.c * li.h * li.w;
  }
  float *acts = malloc(sizeof(float) * act_total);
  for (size_t i = 0; i < in * 3; i++) x[i] = (float)((int)(i * 7919 % 511) - 255) / 255.0f;
  CHECK_STATUS(wt_model_run(m, x, 3, 0, fused, NULL), WT_OK);
  CHECK_STATUS(wt_model_run(m, x, 3, 0, apart, acts), WT_OK);
  const long at = first_difference(fused, apart, 30);
  CHECK(at < 0, "fused evaluation differs at logit %ld: %.9g vs %.9g", at, at < 0 ? 0 : fused[at], at < 0 ? 0 : apart[at]);
  CHECK(memcmp(acts + act_total - 10, apart, sizeof(float) * 10) == 0, "the activation view's logits differ");
  /* Training mode of SimpleCNN (no batch norm, no dropout) gives the same logits too. */
  float *train = malloc(sizeof(float) * 30);
  CHECK_STATUS(wt_model_run(m, x, 3, 1, train, NULL), WT_OK);
  CHECK(memcmp(train, apart, sizeof(float) * 30) == 0, "SimpleCNN's training-mode logits differ from evaluation's");
  free(x), free(fused), free(apart), free(acts), free(train);
  wt_model_destroy(m);
}

/* Every layer kind with residual blocks plans, trains without error, and learns. */
static void test_every_kind_trains(void) {
  const int n = 48;
  uint8_t *data = make_synthetic(n, 3, EVERY_KIND_SIDE, EVERY_KIND_CLASSES, 17);
  const wt_records records = synthetic_records(data, n, 3, EVERY_KIND_SIDE);
  wt_model *m = new_every_kind(8, 2);
  const double before = mean_train_loss(m, &records);
  const double first = train_from(m, &records, 8, 0, 5, 3);
  const double last = train_from(m, &records, 8, 5, 25, 3);
  const double after = mean_train_loss(m, &records);
  printf("every layer kind: training-mode loss %.4f -> %.4f after 30 steps (train steps %.4f -> %.4f), eval %.4f\n", before,
         after, first, last, mean_loss(m, &records));
  CHECK(isfinite(before) && isfinite(after) && after < 0.7 * before, "loss %.5f -> %.5f did not drop by 30%%", before, after);
  CHECK(last < first, "the last train steps' loss %.5f is not below the first ones' %.5f", last, first);
  CHECK(wt_model_adam_step_count(m) == 30 && wt_model_stat_steps(m) == 30, "%d Adam steps, %d statistics steps",
        (int)wt_model_adam_step_count(m), (int)wt_model_stat_steps(m));
  int moved = 0;
  for (int32_t i = 0; i < wt_model_running_count(m); i++) moved += wt_model_running(m)[i] != (i % 2 ? 1.0f : 0.0f);
  CHECK(moved > 0, "the running statistics never moved");
  int32_t correct = 0;
  double loss = 0;
  CHECK_STATUS(wt_model_evaluate(m, &records, 0, n, &correct, &loss, NULL, NULL, NULL), WT_OK);
  CHECK(isfinite(loss) && correct >= 0 && correct <= n, "evaluation: %d correct, loss %g", (int)correct, loss);

  /* wt_model_run in eval mode agrees with evaluate's loss, and the activation view holds every
   * layer's output for image 0. */
  const wt_data_format *f = wt_model_data_format(m);
  const size_t in = (size_t)f->channels * f->height * f->width;
  size_t act_total = 0;
  for (int32_t i = 0; i < wt_model_layer_count(m); i++) {
    wt_layer_info li;
    wt_model_layer_info(m, i, &li);
    act_total += (size_t)li.c * li.h * li.w;
  }
  float *x = malloc(sizeof(float) * in * 5), *y = malloc(sizeof(float) * 5 * EVERY_KIND_CLASSES);
  float *acts = malloc(sizeof(float) * act_total);
  for (int b = 0; b < 5; b++)
    for (size_t i = 0; i < in; i++) x[b * in + i] = ((float)data[(size_t)b * records.record_bytes + 1 + i] / 255.0f - 0.5f) / 0.5f;
  CHECK_STATUS(wt_model_run(m, x, 5, 0, y, acts), WT_OK);
  double run_loss = 0;
  for (int b = 0; b < 5; b++) {
    const float *z = y + b * EVERY_KIND_CLASSES;
    double mx = z[0], s = 0;
    for (int k = 1; k < EVERY_KIND_CLASSES; k++) mx = z[k] > mx ? z[k] : mx;
    for (int k = 0; k < EVERY_KIND_CLASSES; k++) s += exp(z[k] - mx);
    run_loss += log(s) + mx - z[data[(size_t)b * records.record_bytes]];
  }
  double eval5 = 0;
  correct = 0;
  CHECK_STATUS(wt_model_evaluate(m, &records, 0, 5, &correct, &eval5, NULL, NULL, NULL), WT_OK);
  CHECK(fabs(run_loss - eval5) <= 1e-4 * fabs(eval5) + 1e-6, "wt_model_run loss %.7g, evaluate %.7g", run_loss, eval5);
  CHECK(memcmp(acts + act_total - EVERY_KIND_CLASSES, y, sizeof(float) * EVERY_KIND_CLASSES) == 0,
        "the activation view's last layer is not image 0's logits");
  free(x), free(y), free(acts);
  wt_model_destroy(m);
  free(data);
}

/* A spec is refused with a status and a message that names the offending node. */
static void test_bad_specs(void) {
  int32_t spec[SPEC_MAX_WORDS];
  size_t words;
  struct {
    const char *what;
    test_node nodes[10];
    int count, side, classes;
    int node; /* -1: a header problem, no node named */
    const char *message;
  } cases[] = {
      {"unclosed residual", {{WT_OP_RESIDUAL}, {WT_OP_RELU}, {WT_OP_FLATTEN}, {WT_OP_LINEAR, {4}}}, 4, 8, 4, 3, "never closed"},
      {"end without residual", {{WT_OP_END}, {WT_OP_FLATTEN}, {WT_OP_LINEAR, {4}}}, 3, 8, 4, 0, "without an open"},
      {"shortcut outside a block", {{WT_OP_SHORTCUT}, {WT_OP_FLATTEN}, {WT_OP_LINEAR, {4}}}, 3, 8, 4, 0, "shortcut"},
      {"unknown kind 13", {{WT_OP_FLATTEN}, {13}, {WT_OP_LINEAR, {4}}}, 3, 8, 4, 1, "unknown layer kind"},
      {"unknown kind 0", {{WT_OP_FLATTEN}, {WT_OP_LINEAR, {4}}, {0}}, 3, 8, 4, 2, "unknown layer kind"},
      {"unknown kind -1", {{-1}}, 1, 8, 4, 0, "unknown layer kind"},
      {"conv kernel larger than its input", {{WT_OP_CONV, {4, 9, 1, 0, 1}}, {WT_OP_FLATTEN}, {WT_OP_LINEAR, {4}}}, 3, 8, 4, 0, "larger than its input"},
      {"pool kernel larger than its input", {{WT_OP_CONV, {4, 3, 1, 0, 1}}, {WT_OP_MAXPOOL, {7, 1, 0}}, {WT_OP_FLATTEN}, {WT_OP_LINEAR, {4}}}, 4, 8, 4, 1, "larger than its input"},
      {"linear without flatten", {{WT_OP_CONV, {4, 3, 1, 0, 1}}, {WT_OP_LINEAR, {4}}}, 2, 8, 4, 1, "flatten"},
      {"conv after flatten", {{WT_OP_FLATTEN}, {WT_OP_CONV, {4, 1, 1, 0, 1}}, {WT_OP_LINEAR, {4}}}, 3, 8, 4, 1, "flat"},
      {"residual shape mismatch", {{WT_OP_RESIDUAL}, {WT_OP_CONV, {4, 3, 1, 1, 1}}, {WT_OP_END}, {WT_OP_FLATTEN}, {WT_OP_LINEAR, {4}}}, 5, 8, 4, 2, "residual block"},
      {"shortcut shape mismatch", {{WT_OP_RESIDUAL}, {WT_OP_CONV, {4, 3, 2, 1, 1}}, {WT_OP_SHORTCUT}, {WT_OP_CONV, {4, 1, 1, 0, 1}}, {WT_OP_END}, {WT_OP_FLATTEN}, {WT_OP_LINEAR, {4}}}, 7, 8, 4, 4, "shortcut gives"},
      {"in_channels mismatch", {{WT_OP_CONV, {4, 3, 1, 1, 1, 5}}, {WT_OP_FLATTEN}, {WT_OP_LINEAR, {4}}}, 3, 8, 4, 0, "in_channels 5"},
      {"in_features mismatch", {{WT_OP_FLATTEN}, {WT_OP_LINEAR, {4, 0, 0, 0, 1, 100}}}, 2, 8, 4, 1, "in_features 100"},
      {"batchnorm features mismatch", {{WT_OP_BATCHNORM, {2, 0, 0, 0, 1, 4}, {1e-5f, 0.1f}}, {WT_OP_FLATTEN}, {WT_OP_LINEAR, {4}}}, 3, 8, 4, 0, "num_features 4"},
      {"BatchNorm1d on an image", {{WT_OP_BATCHNORM, {1, 0, 0, 0, 1}, {1e-5f, 0.1f}}, {WT_OP_FLATTEN}, {WT_OP_LINEAR, {4}}}, 3, 8, 4, 0, "BatchNorm1d"},
      {"net ends with 5 values", {{WT_OP_FLATTEN}, {WT_OP_LINEAR, {5}}}, 2, 8, 4, 1, "one per class"},
      {"net ends with an image", {{WT_OP_CONV, {4, 7, 1, 0, 1}}}, 1, 8, 4, 0, "one per class"},
      {"dropout p 1", {{WT_OP_DROPOUT, {0}, {1.0f}}, {WT_OP_FLATTEN}, {WT_OP_LINEAR, {4}}}, 3, 8, 4, 0, "dropout"},
      {"gelu approximation 2", {{WT_OP_GELU, {2}}, {WT_OP_FLATTEN}, {WT_OP_LINEAR, {4}}}, 3, 8, 4, 0, "gelu"},
      {"same padding with stride 2", {{WT_OP_CONV, {4, 3, 2, -1, 1}}, {WT_OP_FLATTEN}, {WT_OP_LINEAR, {4}}}, 3, 8, 4, 0, "same"},
      {"conv 0 channels", {{WT_OP_CONV, {0, 3, 1, 0, 1}}, {WT_OP_FLATTEN}, {WT_OP_LINEAR, {4}}}, 3, 8, 4, 0, "out of range"},
      {"nested 9 deep", {{WT_OP_RESIDUAL}, {WT_OP_RESIDUAL}, {WT_OP_RESIDUAL}, {WT_OP_RESIDUAL}, {WT_OP_RESIDUAL}, {WT_OP_RESIDUAL}, {WT_OP_RESIDUAL}, {WT_OP_RESIDUAL}, {WT_OP_RESIDUAL}}, 9, 8, 4, 8, "deeper"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    words = build_spec(spec, 3, cases[c].side, cases[c].side, cases[c].classes, 2, cases[c].nodes, cases[c].count);
    const wt_status st = wt_spec_check(spec, words);
    CHECK(st == WT_ERR_BAD_DATA, "%s: wt_spec_check status %d", cases[c].what, (int)st);
    char node[32];
    snprintf(node, sizeof node, "node %d: ", cases[c].node);
    CHECK(strncmp(wt_last_error(), node, strlen(node)) == 0, "%s: message does not start with \"%s\"", cases[c].what, node);
    CHECK(strstr(wt_last_error(), cases[c].message) != NULL, "%s: message lacks \"%s\"", cases[c].what, cases[c].message);
    wt_model *m = NULL;
    const wt_status created = wt_model_create(&m, spec, words, NULL, 0, 4, 1);
    CHECK(created == st && m == NULL, "%s: wt_model_create status %d", cases[c].what, (int)created);
  }

  /* Header problems: magic, header size, node count, word count, ranges. */
  const test_node ok_nodes[] = {{WT_OP_FLATTEN}, {WT_OP_LINEAR, {4}}};
  const size_t ok_words = build_spec(spec, 3, 8, 8, 4, 2, NODES(ok_nodes));
  CHECK_STATUS(wt_spec_check(spec, ok_words), WT_OK);
  struct {
    const char *what;
    int word;
    int32_t value;
    long words_delta;
    const char *message;
  } header[] = {
      {"bad magic", 0, 0x324E5457, 0, "WTN1"},
      {"header words", 1, 21, 0, "header"},
      {"0 nodes", 7, 0, 0, "nodes is out of range"},
      {"-1 nodes", 7, -1, 0, "nodes is out of range"},
      {"257 nodes", 7, WT_SPEC_MAX_NODES + 1, 0, "nodes is out of range"},
      {"3 nodes in the words of 2", 7, 3, 0, "words for 3 nodes"},
      {"a word short", 0, WT_SPEC_MAGIC, -1, "words for 2 nodes"},
      {"a word long", 0, WT_SPEC_MAGIC, 1, "words for 2 nodes"},
      {"too short for a header", 0, WT_SPEC_MAGIC, -(long)ok_words + 5, "WTN1"},
      {"0 channels", 2, 0, 0, "out of range"},
      {"5 channels", 2, 5, 0, "out of range"},
      {"side 1025", 3, 1025, 0, "out of range"},
      {"1 class", 5, 1, 0, "classes"},
      {"257 classes", 5, 257, 0, "classes"},
      {"ghost batch 0", 6, 0, 0, "ghost batch"},
      {"ghost batch 1025", 6, 1025, 0, "ghost batch"},
      {"std 0", 12, 0, 0, "normalisation"},
      {"NaN mean", 8, 0x7FC00000, 0, "normalisation"},
      {"unused channel's mean", 11, F_HALF, 0, "normalisation"},
      {"reserved word", 17, 1, 0, "header"},
      {"NaN float argument", WT_SPEC_HEADER_WORDS + 8, 0x7FC00000, 0, "node 0: "},
  };
  int32_t bad[SPEC_MAX_WORDS + 1];
  for (size_t c = 0; c < sizeof header / sizeof header[0]; c++) {
    memcpy(bad, spec, sizeof(int32_t) * ok_words);
    bad[ok_words] = 0;
    bad[header[c].word] = header[c].value;
    const size_t n = (size_t)((long)ok_words + header[c].words_delta);
    CHECK_STATUS(wt_spec_check(bad, n), WT_ERR_BAD_DATA);
    CHECK(strstr(wt_last_error(), header[c].message) != NULL, "%s: message lacks \"%s\"", header[c].what, header[c].message);
  }
  CHECK_STATUS(wt_spec_check(NULL, ok_words), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_spec_check(spec, 0), WT_ERR_BAD_DATA);
}

/* Bytes the C heap holds, mmapped chunks included (a large arena is mmapped, which
 * wt_heap_bytes_in_use's count leaves out). Under ASan mallinfo reports nothing: 0. */
static size_t heap_total(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
#else
  return wt_heap_bytes_in_use();
#endif
}

/* A spec whose arena would be huge is refused by its sizes, before any allocation. */
static void test_hostile_specs(void) {
  int32_t spec[SPEC_MAX_WORDS];
  struct {
    const char *what;
    test_node nodes[3];
    int count, side, block;
    const char *message;
  } cases[] = {
      {"65536 channels at 1024x1024", {{WT_OP_CONV, {65536, 1, 1, 0, 1}}, {WT_OP_GLOBALAVG}, {WT_OP_FLATTEN}}, 3, 1024, 1, "too large"},
      {"64 channels at 1024x1024, block 1024", {{WT_OP_CONV, {64, 1, 1, 0, 1}}, {WT_OP_GLOBALAVG}, {WT_OP_FLATTEN}}, 3, 1024, 1024, "MiB"},
      {"a 65536 x 65536 linear", {{WT_OP_FLATTEN}, {WT_OP_LINEAR, {65536}}, {WT_OP_LINEAR, {65536}}}, 3, 128, 1, "MiB"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    test_node nodes[5];
    memcpy(nodes, cases[c].nodes, sizeof cases[c].nodes);
    nodes[cases[c].count] = (test_node){WT_OP_FLATTEN};
    nodes[cases[c].count + 1] = (test_node){WT_OP_LINEAR, {10}};
    const size_t words = build_spec(spec, 1, cases[c].side, cases[c].side, 10, cases[c].block, nodes, cases[c].count + 2);
    const size_t heap_before = wt_heap_bytes_in_use(), total_before = heap_total();
    wt_model *m = NULL;
    const wt_status st = wt_model_create(&m, spec, words, NULL, 0, WT_MAX_BATCH, 1);
    const size_t heap_after = wt_heap_bytes_in_use(), total_after = heap_total();
    CHECK(st == WT_ERR_BAD_DATA && m == NULL, "%s: status %d (out of memory is 2: it tried to allocate)", cases[c].what, (int)st);
    CHECK(strstr(wt_last_error(), cases[c].message) != NULL, "%s: message lacks \"%s\"", cases[c].what, cases[c].message);
    CHECK(heap_after <= heap_before + 4096 && total_after <= total_before + 4096, "%s: the heap grew by %zu (%zu with mmaps) bytes",
          cases[c].what, heap_after - heap_before, total_after - total_before);
    if (m) wt_model_destroy(m);
  }
}

static void test_evaluate(void) {
  const int n = 23; /* not a multiple of the block: a partial last block */
  uint8_t *data = make_records(n, 11);
  wt_records records = cifar(data, n);
  wt_model *small = new_model(4, 3), *large = new_model(32, 3);
  int32_t correct_small = 5, correct_large = 0; /* evaluate adds to what is there */
  double loss_small = 1.0, loss_large = 0;
  int32_t confusion[100] = {0};
  uint8_t predictions[23];
  memset(predictions, 0xEE, sizeof predictions);
  CHECK_STATUS(wt_model_evaluate(small, &records, 0, n, &correct_small, &loss_small, confusion, predictions, NULL), WT_OK);
  CHECK_STATUS(wt_model_evaluate(large, &records, 0, n, &correct_large, &loss_large, NULL, NULL, NULL), WT_OK);
  CHECK(correct_small - 5 == correct_large, "%d correct, and %d", (int)(correct_small - 5), (int)correct_large);
  CHECK(fabs((loss_small - 1.0) - loss_large) <= 1e-9 * loss_large, "loss %.12g, and %.12g", loss_small - 1.0, loss_large);
  CHECK(correct_large >= 0 && correct_large <= n, "%d correct of %d", (int)correct_large, n);
  int32_t total = 0, diagonal = 0;
  for (int t = 0; t < 10; t++)
    for (int p = 0; p < 10; p++) total += confusion[t * 10 + p], diagonal += t == p ? confusion[t * 10 + p] : 0;
  CHECK(total == n && diagonal == correct_large, "confusion matrix sums to %d (diagonal %d), expected %d (%d)", (int)total,
        (int)diagonal, n, (int)correct_large);
  for (int i = 0; i < n; i++) {
    CHECK(predictions[i] < 10, "prediction %d is %u", i, predictions[i]);
    if (predictions[i] >= 10) break;
    CHECK(confusion[data[(size_t)i * CIFAR_RECORD_BYTES] * 10 + predictions[i]] > 0, "prediction %d not in the confusion matrix", i);
  }
  /* A window of the records: the same predictions as in the whole. */
  int32_t c7 = 0;
  double l7 = 0;
  uint8_t window[7];
  CHECK_STATUS(wt_model_evaluate(large, &records, 9, 7, &c7, &l7, NULL, window, NULL), WT_OK);
  CHECK(memcmp(window, predictions + 9, 7) == 0, "records 9..16 predicted differently on their own");
  /* A prediction is the argmax of that image's logits (a forward of one image: block of 1). */
  const uint32_t idx[1] = {17};
  CHECK_STATUS(wt_model_forward(large, &records, idx, 1, NULL), WT_OK);
  const float *z = wt_model_logits(large);
  int best = 0;
  for (int k = 1; k < 10; k++) best = z[k] > z[best] ? k : best;
  CHECK(best == predictions[17], "argmax of logits %d, prediction %u", best, predictions[17]);

  /* Zero records: nothing added. Bad input: refused. */
  int32_t c = 0;
  double l = 0;
  CHECK_STATUS(wt_model_evaluate(large, &records, 0, 0, &c, &l, NULL, NULL, NULL), WT_OK);
  CHECK(c == 0 && l == 0, "evaluating 0 records gave %d correct, loss %g", (int)c, l);
  CHECK_STATUS(wt_model_evaluate(large, &records, 0, -1, &c, &l, NULL, NULL, NULL), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_evaluate(large, &records, -1, 2, &c, &l, NULL, NULL, NULL), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_evaluate(large, &records, 20, 4, &c, &l, NULL, NULL, NULL), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_evaluate(large, &records, 0x7FFFFFFF, 2, &c, &l, NULL, NULL, NULL), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_evaluate(NULL, &records, 0, n, &c, &l, NULL, NULL, NULL), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_evaluate(large, NULL, 0, n, &c, &l, NULL, NULL, NULL), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_evaluate(large, &records, 0, n, NULL, &l, NULL, NULL, NULL), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_evaluate(large, &records, 0, n, &c, NULL, NULL, NULL, NULL), WT_ERR_INVALID_ARGUMENT);
  /* Records whose layout cannot hold this net's images. */
  const wt_records layouts[] = {
      {data, n, 3072, 0, 1},              /* one byte short of the pixels */
      {data, n, CIFAR_RECORD_BYTES, CIFAR_RECORD_BYTES, 1}, /* label past the record */
      {data, n, CIFAR_RECORD_BYTES, -1, 1},
      {data, n, CIFAR_RECORD_BYTES, 0, -1},
      {data, n, 0, 0, 0},
      {data, 0, CIFAR_RECORD_BYTES, 0, 1},
      {NULL, n, CIFAR_RECORD_BYTES, 0, 1},
  };
  for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
    CHECK_STATUS(wt_model_evaluate(large, &layouts[i], 0, 1, &c, &l, NULL, NULL, NULL), WT_ERR_INVALID_ARGUMENT);
  }
  data[5 * CIFAR_RECORD_BYTES] = 10;
  CHECK_STATUS(wt_model_evaluate(large, &records, 0, n, &c, &l, NULL, NULL, NULL), WT_ERR_BAD_DATA);
  CHECK(c == 0 && l == 0, "a refused evaluation changed the totals (%d, %g)", (int)c, l);
  wt_model_destroy(small), wt_model_destroy(large);
  free(data);
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
  enum { R = CIFAR_RECORD_BYTES };
  uint8_t *records = make_records(3, 5);
  int32_t count = -7;
  CHECK_STATUS(wt_records_check(records, 3 * R, R, 0, 10, &count), WT_OK);
  CHECK(count == 3, "count %d, expected 3", (int)count);
  CHECK_STATUS(wt_records_check(records, 0, R, 0, 10, &count), WT_ERR_BAD_DATA);
  CHECK(count == 0 && strstr(wt_last_error(), "empty"), "empty file: count %d", (int)count);
  CHECK_STATUS(wt_records_check(NULL, 0, R, 0, 10, &count), WT_ERR_BAD_DATA);
  CHECK_STATUS(wt_records_check(records, R - 1, R, 0, 10, &count), WT_ERR_BAD_DATA);
  CHECK(strstr(wt_last_error(), "3072 bytes left over") != NULL, "message does not give the leftover bytes");
  CHECK_STATUS(wt_records_check(records, 2 * R + 1, R, 0, 10, &count), WT_ERR_BAD_DATA);
  CHECK(count == 0, "a refused check left count %d", (int)count);
  CHECK_STATUS(wt_records_check(records, R, R, 0, 10, &count), WT_OK); /* a prefix of whole records */
  CHECK(count == 1, "count %d, expected 1", (int)count);
  static const uint8_t bad_labels[] = {10, 11, 128, 255};
  for (size_t i = 0; i < sizeof bad_labels; i++) {
    records[2 * R] = bad_labels[i];
    CHECK_STATUS(wt_records_check(records, 3 * R, R, 0, 10, &count), WT_ERR_BAD_DATA);
    CHECK(strstr(wt_last_error(), "record 2 ") != NULL, "label %u: message does not name record 2", bad_labels[i]);
  }
  records[2 * R] = 9;
  CHECK_STATUS(wt_records_check(records, 3 * R, R, 0, 10, &count), WT_OK);
  /* Another layout: the label at the end of a record, 4 classes. */
  records[R - 1] = 3, records[2 * R - 1] = 0, records[3 * R - 1] = 2;
  CHECK_STATUS(wt_records_check(records, 3 * R, R, R - 1, 4, &count), WT_OK);
  records[3 * R - 1] = 4;
  CHECK_STATUS(wt_records_check(records, 3 * R, R, R - 1, 4, &count), WT_ERR_BAD_DATA);
  CHECK(strstr(wt_last_error(), "record 2 ") != NULL, "label at the end: message does not name record 2");
  CHECK_STATUS(wt_records_check(records, 3 * R, R, 0, 10, NULL), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_records_check(NULL, R, R, 0, 10, &count), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_records_check(records, R, 0, 0, 10, &count), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_records_check(records, R, R, R, 10, &count), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_records_check(records, R, R, -1, 10, &count), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_records_check(records, R, R, 0, 0, &count), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_records_check(records, R, R, 0, WT_MAX_CLASSES + 1, &count), WT_ERR_INVALID_ARGUMENT);
  free(records);
}

static void test_batch_arguments(void) {
  const int n = 10;
  uint8_t *data = make_records(n, 9);
  const wt_records records = cifar(data, n), empty = cifar(data, 0), negative = cifar(data, -1);
  wt_model *m = new_model(4, 2);
  snapshot before;
  take_snapshot(&before, m);
  const uint32_t good[4] = {0, 1, 2, 3}, past[4] = {0, 1, 10, 3}, huge[1] = {0xFFFFFFFFu};
  float loss = 0;
  double sum = 0;
  float *dst = malloc(sizeof(float) * (size_t)wt_model_grad_count(m));
  wt_optim_config bad = ADAM;
  CHECK_STATUS(wt_model_train_step(NULL, &records, good, 4, 0, &ADAM, &loss), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_train_step(m, NULL, good, 4, 0, &ADAM, &loss), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_train_step(m, &records, NULL, 4, 0, &ADAM, &loss), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_train_step(m, &records, good, 4, 0, NULL, &loss), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_train_step(m, &records, good, 0, 0, &ADAM, &loss), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_train_step(m, &records, good, -1, 0, &ADAM, &loss), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_train_step(m, &records, good, 5, 0, &ADAM, &loss), WT_ERR_INVALID_ARGUMENT); /* > max_batch */
  CHECK_STATUS(wt_model_train_step(m, &records, past, 4, 0, &ADAM, &loss), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_train_step(m, &records, huge, 1, 0, &ADAM, &loss), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_train_step(m, &empty, good, 1, 0, &ADAM, &loss), WT_ERR_INVALID_ARGUMENT);
  /* A negative count must not turn into a huge unsigned bound that lets any index through. */
  CHECK_STATUS(wt_model_train_step(m, &negative, huge, 1, 0, &ADAM, &loss), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_forward(m, &negative, huge, 1, &sum), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_gradient(m, &negative, huge, 1, 0, 1, 1.0f, 0, dst, &sum), WT_ERR_INVALID_ARGUMENT);
  for (int k = 0; k < 4; k++) {
    bad = ADAM;
    double *field = k == 0 ? &bad.groups[0].lr : k == 1 ? &bad.beta1 : k == 2 ? &bad.beta2 : &bad.eps;
    *field = k == 1 || k == 2 ? 1.0 : 0.0;
    CHECK_STATUS(wt_model_train_step(m, &records, good, 4, 0, &bad, &loss), WT_ERR_INVALID_ARGUMENT);
    *field = NAN;
    CHECK_STATUS(wt_model_update(m, &bad, 1), WT_ERR_INVALID_ARGUMENT);
  }
  CHECK_STATUS(wt_model_update(m, &ADAM, 0), WT_ERR_INVALID_ARGUMENT);
  CHECK(same_as_snapshot(&before, m, "refused train steps"), "a refused train step changed the model");
  data[3 * CIFAR_RECORD_BYTES] = 200;
  CHECK_STATUS(wt_model_train_step(m, &records, good, 4, 0, &ADAM, &loss), WT_ERR_BAD_DATA);
  CHECK_STATUS(wt_model_forward(m, &records, good, 4, &sum), WT_ERR_BAD_DATA);
  data[3 * CIFAR_RECORD_BYTES] = 3;
  CHECK(same_as_snapshot(&before, m, "bad labels"), "a refused train step changed the model");

  CHECK_STATUS(wt_model_forward(NULL, &records, good, 4, &sum), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_forward(m, &records, good, 4, NULL), WT_OK); /* the loss is optional */
  CHECK_STATUS(wt_model_gradient(NULL, &records, good, 4, 0, 1, 0.25f, 0, dst, &sum), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_update(NULL, &ADAM, 1), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_update(m, NULL, 1), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_set_adam_step_count(m, -1), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_set_adam_step_count(NULL, 3), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_set_stat_steps(m, -1), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_set_stat_steps(NULL, 3), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_set_adam_step_count(m, 12), WT_OK);
  CHECK(wt_model_adam_step_count(m) == 12, "step count %d after setting 12", (int)wt_model_adam_step_count(m));
  CHECK_STATUS(wt_model_run(NULL, dst, 1, 0, dst, NULL), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_run(m, NULL, 1, 0, dst, NULL), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_run(m, dst, -1, 0, dst, NULL), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_run_backward(m, dst, 0, 1, dst, dst, dst), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_run_backward(m, dst, WT_GRAD_BLOCK + 1, 1, dst, dst, dst), WT_ERR_INVALID_ARGUMENT);

  /* A non-finite gradient is refused by Adam, and nothing moves. */
  wt_model_set_adam_step_count(m, before.steps);
  free_snapshot(&before);
  take_snapshot(&before, m);
  wt_model_grads(m)[77] = INFINITY;
  CHECK_STATUS(wt_model_update(m, &ADAM, 1), WT_ERR_NON_FINITE);
  CHECK(same_as_snapshot(&before, m, "non-finite gradient"), "Adam moved on a non-finite gradient");
  free_snapshot(&before);
  free(dst);
  wt_model_destroy(m);
  free(data);
}

static void test_load_weights(void) {
  wt_model *m = new_model(8, 8);
  const int n = 16;
  uint8_t *data = make_records(n, 3);
  const wt_records records = cifar(data, n);
  train(m, &records, 3, 1); /* non-zero Adam state, which a refusal must also keep */
  snapshot before;
  take_snapshot(&before, m);
  const size_t P = (size_t)wt_model_param_count(m), bytes = 4 * P;

  uint8_t *file = malloc(bytes + 1);
  for (size_t i = 0; i < P; i++) {
    const float v = (float)((int)(i % 2001) - 1000) * 1e-4f;
    memcpy(file + 4 * i, &v, 4); /* little-endian host assumed, as in the Wasm module */
  }
  const size_t wrong_sizes[] = {0, 1, 4, bytes - 4, bytes - 1, bytes + 1};
  for (size_t i = 0; i < sizeof wrong_sizes / sizeof wrong_sizes[0]; i++) {
    CHECK_STATUS(wt_model_load_weights(m, file, wrong_sizes[i]), WT_ERR_BAD_DATA);
    CHECK(strstr(wt_last_error(), "248024") != NULL, "%zu bytes: message does not give the expected size", wrong_sizes[i]);
  }
  static const float poison[] = {NAN, INFINITY, -INFINITY};
  const size_t where[] = {0, 31337, P - 1};
  for (size_t k = 0; k < 3; k++) {
    float saved;
    memcpy(&saved, file + 4 * where[k], 4);
    memcpy(file + 4 * where[k], &poison[k], 4);
    CHECK_STATUS(wt_model_load_weights(m, file, bytes), WT_ERR_BAD_DATA);
    memcpy(file + 4 * where[k], &saved, 4);
  }
  CHECK_STATUS(wt_model_load_weights(NULL, file, bytes), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_model_load_weights(m, NULL, bytes), WT_ERR_INVALID_ARGUMENT);
  CHECK(same_as_snapshot(&before, m, "refused weights"), "a refused weights file changed the model");

  CHECK_STATUS(wt_model_load_weights(m, file, bytes), WT_OK);
  CHECK(memcmp(wt_model_params(m), file, bytes) == 0, "loaded parameters differ from the file");
  int moments = 0;
  for (size_t i = 0; i < P; i++) moments |= wt_model_adam_m(m)[i] != 0 || wt_model_adam_v(m)[i] != 0;
  CHECK(!moments && wt_model_adam_step_count(m) == 0, "loading weights did not reset Adam");
  free_snapshot(&before);
  wt_model_destroy(m);
  free(file), free(data);
}

static wt_run_state valid_state(void) {
  wt_run_state s;
  memset(&s, 0, sizeof s);
  s.epoch = 2, s.step = 5, s.epochs = 4, s.batch_size = 8, s.shuffle = 1, s.workers = 2, s.seed = 0xDEADBEEFu;
  s.train_count = 100, s.window_count = 3, s.window_sum = 6.75, s.adam = ADAM_STATE;
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
static void put_f64(uint8_t *p, double v) {
  uint64_t bits;
  memcpy(&bits, &v, 8);
  put_u32(p, (uint32_t)bits), put_u32(p + 4, (uint32_t)(bits >> 32));
}
static void reseal(uint8_t *ckpt, size_t bytes) { put_u32(ckpt + bytes - 4, wt_crc32(ckpt, bytes - 4)); }

/* The recipe text saved with the checkpoints (opaque to C): 11 bytes, 1 of padding. */
static const uint8_t RECIPE[] = "{\"lr\":0.01}";
#define RECIPE_BYTES (sizeof RECIPE - 1)

static uint8_t *save(wt_model *m, const wt_run_state *state, size_t *bytes) {
  *bytes = wt_checkpoint_bytes(m, RECIPE_BYTES);
  uint8_t *file = malloc(*bytes + 1);
  CHECK_STATUS(wt_checkpoint_save(m, state, RECIPE, RECIPE_BYTES, file, *bytes + 1), WT_OK); /* a larger buffer is fine */
  return file;
}

/* Version 3 on SimpleCNN: the layout, a round trip, training after a resume, and every refusal. */
static void test_checkpoints(void) {
  CHECK(wt_crc32((const uint8_t *)"123456789", 9) == 0xCBF43926u, "CRC-32 check value %08X", (unsigned)wt_crc32((const uint8_t *)"123456789", 9));
  CHECK(wt_crc32(NULL, 0) == 0, "CRC-32 of nothing is %08X", (unsigned)wt_crc32(NULL, 0));

  const int n = 16;
  uint8_t *data = make_records(n, 21);
  const wt_records records = cifar(data, n);
  const uint8_t text[] = "simplecnn"; /* 9 bytes: 3 bytes of padding */
  wt_model *source = NULL;
  CHECK_STATUS(wt_model_create(&source, SIMPLECNN_SPEC, SIMPLECNN_WORDS, text, 9, 8, 4), WT_OK);
  if (!source) exit(1);
  train(source, &records, 5, 2);
  const size_t P = SIMPLECNN_PARAMS, PB = 4 * P;
  const size_t text_at = 256 + 4 * SIMPLECNN_WORDS, recipe_at = text_at + 12, floats_at = recipe_at + 12;
  const wt_run_state state = valid_state();
  size_t bytes;
  uint8_t *file = save(source, &state, &bytes);
  CHECK(bytes == floats_at + 3 * PB + 4, "checkpoint size %zu", bytes);
  CHECK(memcmp(file, "WTCKPT\r\n\3\0\0\0", 12) == 0 && memcmp(file + 256, SIMPLECNN_SPEC, 4 * SIMPLECNN_WORDS) == 0 &&
            memcmp(file + text_at, "simplecnn\0\0\0", 12) == 0 && memcmp(file + recipe_at, "{\"lr\":0.01}\0", 12) == 0 &&
            memcmp(file + floats_at, wt_model_params(source), PB) == 0,
        "the file's layout is not version 3's");
  const uint8_t *recipe;
  size_t recipe_bytes;
  CHECK_STATUS(wt_checkpoint_recipe(file, bytes, &recipe, &recipe_bytes), WT_OK);
  CHECK(recipe_bytes == RECIPE_BYTES && memcmp(recipe, RECIPE, RECIPE_BYTES) == 0, "the recipe read back differs (%zu bytes)", recipe_bytes);

  /* It describes itself. */
  const int32_t *spec;
  size_t words, text_bytes;
  const uint8_t *described;
  CHECK_STATUS(wt_checkpoint_describe(file, bytes, &spec, &words, &described, &text_bytes), WT_OK);
  CHECK(words == SIMPLECNN_WORDS && memcmp(spec, SIMPLECNN_SPEC, sizeof SIMPLECNN_SPEC) == 0 && text_bytes == 9 &&
            memcmp(described, text, 9) == 0,
        "describe gives another spec or text (%zu words, %zu bytes)", words, text_bytes);
  CHECK_STATUS(wt_checkpoint_describe(file, bytes, NULL, &words, &described, &text_bytes), WT_ERR_INVALID_ARGUMENT);
  file[1000] ^= 1;
  CHECK_STATUS(wt_checkpoint_describe(file, bytes, &spec, &words, &described, &text_bytes), WT_ERR_BAD_DATA);
  file[1000] ^= 1;

  /* Round trip into a different model: everything restored, and saving again is byte-identical. */
  wt_model *target = new_model(2, 99);
  wt_run_state loaded;
  memset(&loaded, 0, sizeof loaded);
  CHECK_STATUS(wt_checkpoint_load(target, &loaded, file, bytes), WT_OK);
  snapshot want;
  take_snapshot(&want, source);
  CHECK(same_as_snapshot(&want, target, "checkpoint round trip"), "the loaded model differs from the saved one");
  CHECK(same_state(&loaded, &state), "the loaded run state differs from the saved one");
  free_snapshot(&want);
  /* The target was made without text: the checkpoint saved again differs only there. */
  wt_model_destroy(target);
  CHECK_STATUS(wt_model_create(&target, SIMPLECNN_SPEC, SIMPLECNN_WORDS, text, 9, 2, 99), WT_OK);
  if (!target) exit(1);
  CHECK_STATUS(wt_checkpoint_load(target, &loaded, file, bytes), WT_OK);
  uint8_t *again = malloc(bytes);
  CHECK_STATUS(wt_checkpoint_save(target, &loaded, RECIPE, RECIPE_BYTES, again, bytes), WT_OK);
  CHECK(memcmp(file, again, bytes) == 0, "saving a loaded checkpoint gives different bytes");
  /* ...and training continues identically. */
  const uint32_t idx[2] = {3, 11};
  float loss_a = 0, loss_b = 0;
  CHECK_STATUS(wt_model_train_step(source, &records, idx, 2, 7, &ADAM, &loss_a), WT_OK);
  CHECK_STATUS(wt_model_train_step(target, &records, idx, 2, 7, &ADAM, &loss_b), WT_OK);
  CHECK(loss_a == loss_b && memcmp(wt_model_params(source), wt_model_params(target), PB) == 0,
        "training after a resume diverges (loss %.9g vs %.9g)", loss_a, loss_b);

  /* The same file in version 2 (no recipe, no optimizer kind, no average) still loads. */
  {
    const size_t v2_bytes = bytes - 12;
    uint8_t *v2 = malloc(v2_bytes);
    memcpy(v2, file, recipe_at);
    memcpy(v2 + recipe_at, file + floats_at, bytes - floats_at);
    put_u32(v2 + 8, 2), put_u32(v2 + 16, (uint32_t)v2_bytes), put_u32(v2 + 20, 0);
    memset(v2 + 128, 0, 12);
    reseal(v2, v2_bytes);
    wt_model *old = new_model(2, 98);
    wt_run_state old_state;
    CHECK_STATUS(wt_checkpoint_load(old, &old_state, v2, v2_bytes), WT_OK);
    CHECK_STATUS(wt_checkpoint_recipe(v2, v2_bytes, &recipe, &recipe_bytes), WT_OK);
    CHECK(memcmp(wt_model_params(old), file + floats_at, PB) == 0 && memcmp(wt_model_adam_v(old), file + floats_at + 2 * PB, PB) == 0 &&
              recipe_bytes == 0 && same_state(&old_state, &state) && wt_model_optimizer(old) == WT_OPTIM_ADAM && !wt_model_ema_active(old),
          "a version 2 file loads other values (recipe of %zu bytes)", recipe_bytes);
    wt_model_destroy(old);
    free(v2);
  }

  /* Refusals: each names its problem and leaves the model and *state alone. */
  snapshot before;
  take_snapshot(&before, target);
  wt_run_state untouched = loaded;
  struct {
    const char *what;
    size_t offset, size; /* where to write `value` (size 0: no write) */
    uint64_t value;
    size_t length;       /* bytes passed to load (0: the file's) */
    int reseal;          /* fix the CRC so the check behind it is reached */
    const char *message;
  } cases[] = {
      {"empty", 0, 0, 0, 0, 0, "no WTCKPT signature"},
      {"magic", 3, 1, 'X', 0, 1, "no WTCKPT signature"},
      {"7 bytes", 0, 0, 0, 7, 0, "no WTCKPT signature"},
      {"23 bytes", 0, 0, 0, 23, 0, "truncated"},
      {"header only", 0, 0, 0, 256, 0, "truncated"},
      {"one byte short", 0, 0, 0, bytes - 1, 0, "truncated"},
      {"one byte long", 0, 0, 0, bytes + 1, 0, "trailing bytes"},
      {"version 4", 8, 4, 4, 0, 1, "version 4"},
      {"version 0", 8, 4, 0, 0, 1, "version 0"},
      {"header size", 12, 4, 128, 0, 1, "header size"},
      {"total size", 16, 4, bytes + 4, 0, 1, "truncated"},
      {"total size high word", 20, 4, 1, 0, 1, "truncated"},
      {"spec words", 24, 4, SIMPLECNN_WORDS + 1, 0, 1, "do not add up"},
      {"spec words huge", 24, 4, 0xFFFFFFFFu, 0, 1, "do not add up"},
      {"text bytes", 28, 4, 13, 0, 1, "do not add up"},
      {"text bytes huge", 28, 4, 0x7FFFFFFFu, 0, 1, "do not add up"},
      {"parameter count", 32, 4, P + 1, 0, 1, "do not add up"},
      {"parameter count wraps", 32, 4, 0x55555556u, 0, 1, "do not add up"},
      {"running count", 36, 4, 1, 0, 1, "do not add up"},
      {"CRC", floats_at + 4000, 1, 0x55, 0, 0, "corrupted"},
      {"stored CRC", bytes - 4, 1, 0, 0, 0, "corrupted"},
      {"negative Adam steps", 40, 4, 0x80000000u, 0, 1, "negative"},
      {"negative statistics steps", 44, 4, 0xFFFFFFFFu, 0, 1, "negative"},
      {"negative epoch", 48, 4, 0xFFFFFFFFu, 0, 1, "run state"},
      {"step past the epoch", 52, 4, 13, 0, 1, "not inside an epoch"},
      {"batch size 0", 60, 4, 0, 0, 1, "run state"},
      {"batch size too big", 60, 4, WT_MAX_BATCH + 1, 0, 1, "run state"},
      {"shuffle 2", 64, 4, 2, 0, 1, "run state"},
      {"0 workers", 68, 4, 0, 0, 1, "run state"},
      {"0 records", 76, 4, 0, 0, 1, "run state"},
      {"window longer than step", 80, 4, 6, 0, 1, "not inside an epoch"},
      {"reserved word 84", 85, 1, 1, 0, 1, "reserved"},
      {"NaN window sum", 88, 8, 0x7FF8000000000000ull, 0, 1, "run state"},
      {"lr 0", 96, 8, 0, 0, 1, "Adam settings"},
      {"beta1 1", 104, 8, 0x3FF0000000000000ull, 0, 1, "Adam settings"},
      {"beta2 NaN", 112, 8, 0x7FF8000000000000ull, 0, 1, "Adam settings"},
      {"eps infinite", 120, 8, 0x7FF0000000000000ull, 0, 1, "Adam settings"},
      {"reserved byte 200", 200, 1, 1, 0, 1, "reserved"},
      {"reserved byte 140", 140, 1, 1, 0, 1, "reserved"},
      {"recipe bytes", 128, 4, RECIPE_BYTES + 4, 0, 1, "do not add up"},
      {"recipe bytes huge", 128, 4, 0xFFFFFFFCu, 0, 1, "do not add up"},
      {"recipe padding", recipe_at + 11, 1, 'x', 0, 1, "recipe padding"},
      {"optimizer 3", 132, 4, 3, 0, 1, "optimizer 3"},
      {"average of 1 float", 136, 4, 1, 0, 1, "do not add up"},
      {"another spec: conv2 with 17 channels", 256 + 4 * (WT_SPEC_HEADER_WORDS + 3 * WT_NODE_WORDS + 1), 4, 17, 0, 1, "another model"},
      {"another spec: magic", 256, 4, 0, 0, 1, "another model"},
      {"text padding", text_at + 10, 1, 'x', 0, 1, "padding"},
      {"NaN parameter", floats_at + 4 * 5, 4, 0x7FC00000u, 0, 1, "parameter"},
      {"infinite Adam m", floats_at + PB + 4 * 6, 4, 0xFF800000u, 0, 1, "Adam m"},
      {"negative Adam v", floats_at + 2 * PB + 4 * 7, 4, 0xBF800000u, 0, 1, "Adam v"},
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
  CHECK_STATUS(wt_checkpoint_save(NULL, &state, RECIPE, RECIPE_BYTES, again, bytes), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_checkpoint_save(target, NULL, RECIPE, RECIPE_BYTES, again, bytes), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_checkpoint_save(target, &state, RECIPE, RECIPE_BYTES, NULL, bytes), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_checkpoint_save(target, &state, NULL, RECIPE_BYTES, again, bytes), WT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(wt_checkpoint_save(target, &state, RECIPE, RECIPE_BYTES, again, bytes - 1), WT_ERR_INVALID_ARGUMENT);
  /* An impossible run state is refused before anything is written. */
  wt_run_state impossible = state;
  impossible.step = 1000;
  memset(again, 0xA5, bytes);
  const wt_status st = wt_checkpoint_save(target, &impossible, RECIPE, RECIPE_BYTES, again, bytes);
  CHECK(st != WT_OK, "saving step 1000 of a 13-step epoch succeeded");
  int written = 0;
  for (size_t i = 0; i < bytes; i++) written |= again[i] != 0xA5;
  CHECK(!written, "a refused save wrote into the buffer");
  CHECK(same_as_snapshot(&before, target, "bad arguments"), "a refused call changed the model");

  free_snapshot(&before);
  wt_model_destroy(source), wt_model_destroy(target);
  free(file), free(again), free(data);
}

/* A version 1 file (SimpleCNN, 744,204 bytes), written here from the layout documented in
 * src/checkpoint.c: it describes itself as SimpleCNN without text, and loads into SimpleCNN. */
static void test_checkpoint_v1(void) {
  const int n = 16;
  uint8_t *data = make_records(n, 31);
  const wt_records records = cifar(data, n);
  wt_model *source = new_model(8, 6);
  train(source, &records, 3, 4);
  const size_t P = SIMPLECNN_PARAMS, bytes = 128 + 12 * P + 4;
  CHECK(bytes == 744204, "a version 1 file is %zu bytes", bytes);
  uint8_t *file = calloc(1, bytes);
  const wt_run_state state = valid_state();
  memcpy(file, "WTCKPT\r\n", 8);
  put_u32(file + 8, 1);
  put_u32(file + 12, 0x31434E53u); /* "SNC1" */
  put_u32(file + 16, (uint32_t)P);
  put_u32(file + 20, 128);
  put_u32(file + 24, (uint32_t)wt_model_adam_step_count(source));
  const int32_t fields[9] = {state.epoch, state.step, state.epochs, state.batch_size, state.shuffle,
                             state.workers, (int32_t)state.seed, state.train_count, state.window_count};
  for (int i = 0; i < 9; i++) put_u32(file + 28 + 4 * i, (uint32_t)fields[i]);
  put_f64(file + 64, state.window_sum);
  put_f64(file + 72, state.adam.lr), put_f64(file + 80, state.adam.beta1);
  put_f64(file + 88, state.adam.beta2), put_f64(file + 96, state.adam.eps);
  memcpy(file + 128, wt_model_params(source), 4 * P); /* little-endian host, as the format */
  memcpy(file + 128 + 4 * P, wt_model_adam_m(source), 4 * P);
  memcpy(file + 128 + 8 * P, wt_model_adam_v(source), 4 * P);
  reseal(file, bytes);

  const int32_t *spec;
  size_t words, text_bytes;
  const uint8_t *text;
  CHECK_STATUS(wt_checkpoint_describe(file, bytes, &spec, &words, &text, &text_bytes), WT_OK);
  CHECK(words == SIMPLECNN_WORDS && memcmp(spec, SIMPLECNN_SPEC, sizeof SIMPLECNN_SPEC) == 0 && text_bytes == 0,
        "a version 1 file describes itself as another model (%zu words, %zu bytes of text)", words, text_bytes);
  wt_model *target = new_model(4, 77);
  wt_run_state loaded;
  CHECK_STATUS(wt_checkpoint_load(target, &loaded, file, bytes), WT_OK);
  snapshot want;
  take_snapshot(&want, source);
  CHECK(same_as_snapshot(&want, target, "version 1"), "the version 1 file loads other values");
  CHECK(same_state(&loaded, &state), "the version 1 run state differs");
  free_snapshot(&want);
  /* Saved again, it is a version 3 file of the same state. */
  size_t v3_bytes;
  uint8_t *v3 = save(target, &loaded, &v3_bytes);
  CHECK(v3[8] == 3 && v3_bytes == 256 + 4 * SIMPLECNN_WORDS + 12 + 12 * P + 4, "resaved as %zu bytes, version %d", v3_bytes, v3[8]);
  free(v3);

  /* Refused: another architecture, a wrong size, a bad CRC, a reserved byte, into another net. */
  snapshot before;
  take_snapshot(&before, target);
  uint8_t *bad = malloc(bytes + 1);
  struct {
    const char *what;
    size_t offset;
    uint32_t value;
    int reseal;
    const char *message;
  } cases[] = {
      {"architecture", 12, 0x32434E53u, 1, "another architecture"},
      {"parameter count", 16, (uint32_t)P + 1, 1, "another architecture"},
      {"header size", 20, 256, 1, "header size"},
      {"corrupted", 4000, 0x12345678u, 0, "corrupted"},
      {"reserved", 120, 1, 1, "reserved"},
      {"NaN parameter", 128 + 4 * 9, 0x7FC00000u, 1, "parameter"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    memcpy(bad, file, bytes);
    put_u32(bad + cases[c].offset, cases[c].value);
    if (cases[c].reseal) reseal(bad, bytes);
    CHECK_STATUS(wt_checkpoint_load(target, &loaded, bad, bytes), WT_ERR_BAD_DATA);
    CHECK(strstr(wt_last_error(), cases[c].message) != NULL, "v1 %s: message lacks \"%s\"", cases[c].what, cases[c].message);
    CHECK(same_as_snapshot(&before, target, cases[c].what), "v1 %s: a refused file changed the model", cases[c].what);
  }
  memcpy(bad, file, bytes);
  bad[bytes] = 0;
  CHECK_STATUS(wt_checkpoint_load(target, &loaded, bad, bytes + 1), WT_ERR_BAD_DATA);
  CHECK_STATUS(wt_checkpoint_load(target, &loaded, bad, bytes - 1), WT_ERR_BAD_DATA);
  wt_model *other = new_every_kind(4, 1);
  snapshot other_before;
  take_snapshot(&other_before, other);
  CHECK_STATUS(wt_checkpoint_load(other, &loaded, file, bytes), WT_ERR_BAD_DATA);
  CHECK(strstr(wt_last_error(), "another model") != NULL, "v1 into another net: message does not say so");
  CHECK(same_as_snapshot(&other_before, other, "v1 into another net"), "a refused v1 file changed another net");
  free_snapshot(&before), free_snapshot(&other_before);
  wt_model_destroy(source), wt_model_destroy(target), wt_model_destroy(other);
  free(file), free(bad), free(data);
}

/* Version 2 of a batch-norm net round-trips exactly: parameters, Adam's moments, running
 * statistics, both step counts; a checkpoint of one model is refused by another, untouched. */
static void test_checkpoint_batchnorm(void) {
  const int n = 24;
  uint8_t *data = make_synthetic(n, 3, EVERY_KIND_SIDE, EVERY_KIND_CLASSES, 5);
  const wt_records records = synthetic_records(data, n, 3, EVERY_KIND_SIDE);
  const uint8_t text[] = "# every layer kind\n";
  wt_model *source = NULL;
  CHECK_STATUS(wt_model_create(&source, every_spec, every_words, text, sizeof text - 1, 8, 12), WT_OK);
  if (!source) exit(1);
  train_from(source, &records, 8, 0, 4, 9);
  wt_model_set_stat_steps(source, 1234); /* distinct from the Adam step count */
  wt_run_state state = valid_state();
  state.train_count = n, state.batch_size = 8, state.step = 2, state.window_count = 2;
  size_t bytes;
  uint8_t *file = save(source, &state, &bytes);
  const size_t P = (size_t)wt_model_param_count(source), R = (size_t)wt_model_running_count(source);
  CHECK(bytes == 256 + 4 * every_words + ((sizeof text - 1 + 3) & ~(size_t)3) + 12 + 4 * (3 * P + R) + 4, "checkpoint of %zu bytes", bytes);

  const int32_t *spec;
  size_t words, text_bytes;
  const uint8_t *described;
  CHECK_STATUS(wt_checkpoint_describe(file, bytes, &spec, &words, &described, &text_bytes), WT_OK);
  CHECK(words == every_words && memcmp(spec, every_spec, 4 * words) == 0 && text_bytes == sizeof text - 1 &&
            memcmp(described, text, text_bytes) == 0,
        "describe gives another spec or text");
  /* A model made from what the checkpoint describes takes it. It is created with the run's seed,
   * which keys the dropout masks and is not in the file (the CLI and the worker read it from the
   * run state first), then re-initialised so that every value differs before the load. */
  wt_model *target = NULL;
  CHECK_STATUS(wt_model_create(&target, spec, words, described, text_bytes, 8, 12), WT_OK);
  if (!target) exit(1);
  wt_model_init(target, 77);
  wt_run_state loaded;
  CHECK_STATUS(wt_checkpoint_load(target, &loaded, file, bytes), WT_OK);
  snapshot want;
  take_snapshot(&want, source);
  CHECK(same_as_snapshot(&want, target, "batch-norm round trip"), "the loaded batch-norm net differs from the saved one");
  CHECK(wt_model_stat_steps(target) == 1234 && wt_model_adam_step_count(target) == 4, "step counts %d, %d",
        (int)wt_model_adam_step_count(target), (int)wt_model_stat_steps(target));
  CHECK(same_state(&loaded, &state), "the loaded run state differs");
  free_snapshot(&want);
  uint8_t *again = malloc(bytes);
  CHECK_STATUS(wt_checkpoint_save(target, &loaded, RECIPE, RECIPE_BYTES, again, bytes), WT_OK);
  CHECK(memcmp(file, again, bytes) == 0, "saving the loaded batch-norm checkpoint gives different bytes");
  /* Both continue the same: the same loss, parameters and running statistics. */
  const double tail_a = train_from(source, &records, 8, 4, 5, 9), tail_b = train_from(target, &records, 8, 4, 5, 9);
  CHECK(tail_a == tail_b && memcmp(wt_model_params(source), wt_model_params(target), 4 * P) == 0 &&
            memcmp(wt_model_running(source), wt_model_running(target), 4 * R) == 0,
        "training after a resume diverges (%.9g vs %.9g)", tail_a, tail_b);

  /* A NaN or infinite running statistic is refused. */
  snapshot before;
  take_snapshot(&before, target);
  uint8_t *bad = malloc(bytes);
  const size_t running_at = bytes - 4 - 4 * R;
  memcpy(bad, file, bytes);
  put_u32(bad + running_at + 4 * 3, 0x7FC00000u);
  reseal(bad, bytes);
  CHECK_STATUS(wt_checkpoint_load(target, &loaded, bad, bytes), WT_ERR_BAD_DATA);
  CHECK(strstr(wt_last_error(), "running statistic") != NULL, "NaN running statistic: message lacks what");
  CHECK(same_as_snapshot(&before, target, "NaN running statistic"), "a refused checkpoint changed the model");
  /* So is a negative running variance (evaluation would take its square root): the first batch
   * norm's running_var starts at index 8, after its 8 means. */
  memcpy(bad, file, bytes);
  put_u32(bad + running_at + 4 * 8, 0xBF800000u); /* -1.0f */
  reseal(bad, bytes);
  if (wt_checkpoint_load(target, &loaded, bad, bytes) == WT_OK) {
    CHECK(0, "a checkpoint with a negative running variance was accepted");
    restore_snapshot(&before, target); /* so that the checks below test what they say */
  }
  CHECK(same_as_snapshot(&before, target, "negative running variance"), "a refused checkpoint changed the model");

  /* Another model refuses it, untouched: SimpleCNN, the same net with another dropout p, and the
   * batch-norm net refuses SimpleCNN's. */
  wt_model *simple = new_model(4, 1);
  snapshot simple_before;
  take_snapshot(&simple_before, simple);
  CHECK_STATUS(wt_checkpoint_load(simple, &loaded, file, bytes), WT_ERR_BAD_DATA);
  CHECK(strstr(wt_last_error(), "another model") != NULL, "into SimpleCNN: message does not say so");
  CHECK(same_as_snapshot(&simple_before, simple, "into SimpleCNN"), "a refused checkpoint changed SimpleCNN");
  int32_t other_spec[SPEC_MAX_WORDS];
  test_node nodes[sizeof EVERY_KIND_NET / sizeof EVERY_KIND_NET[0]];
  memcpy(nodes, EVERY_KIND_NET, sizeof nodes);
  nodes[20].f[0] = 0.25f; /* the first dropout */
  const size_t other_words =
      build_spec(other_spec, 3, EVERY_KIND_SIDE, EVERY_KIND_SIDE, EVERY_KIND_CLASSES, EVERY_KIND_BLOCK, NODES(nodes));
  wt_model *other = new_model_from(other_spec, other_words, 4, 77);
  CHECK(wt_model_param_count(other) == (int32_t)P && wt_model_running_count(other) == (int32_t)R, "the dropout changed the sizes");
  snapshot other_before;
  take_snapshot(&other_before, other);
  CHECK_STATUS(wt_checkpoint_load(other, &loaded, file, bytes), WT_ERR_BAD_DATA);
  CHECK(strstr(wt_last_error(), "another model") != NULL, "another dropout: message does not say so");
  /* The sizes are the same: the message must name the difference, the node that differs. */
  CHECK(strstr(wt_last_error(), "node 20") != NULL, "another dropout: the message does not name node 20, where the specs differ");
  CHECK(same_as_snapshot(&other_before, other, "another dropout"), "a refused checkpoint changed the other net");
  size_t simple_bytes;
  const wt_run_state simple_state = valid_state();
  uint8_t *simple_file = save(simple, &simple_state, &simple_bytes);
  CHECK_STATUS(wt_checkpoint_load(target, &loaded, simple_file, simple_bytes), WT_ERR_BAD_DATA);
  CHECK(same_as_snapshot(&before, target, "SimpleCNN's into the batch-norm net"), "a refused checkpoint changed the model");
  CHECK(same_state(&loaded, &state), "a refused checkpoint changed the run state");

  free_snapshot(&before), free_snapshot(&simple_before), free_snapshot(&other_before);
  wt_model_destroy(source), wt_model_destroy(target), wt_model_destroy(simple), wt_model_destroy(other);
  free(file), free(again), free(bad), free(simple_file), free(data);
}

/* Computes tree node [lo, hi) alone into a fresh buffer (caller frees). */
static float *node_alone(wt_model *m, const wt_records *r, const uint32_t *idx, int batch, int lo, int hi, float scale,
                         int step, double *loss) {
  float *g = malloc(sizeof(float) * (size_t)wt_model_grad_count(m));
  memset(g, 0x55, sizeof(float) * (size_t)wt_model_grad_count(m)); /* overwritten, not added to */
  CHECK_STATUS(wt_model_gradient(m, r, idx, batch, lo, hi, scale, step, g, loss), WT_OK);
  return g;
}

/* Node [lo, hi) rebuilt from its leaves computed apart, added in the tree's order. */
static float *node_from_leaves(wt_model *m, const wt_records *r, const uint32_t *idx, int batch, int lo, int hi, float scale,
                               int step, double *loss) {
  if (hi - lo == 1) return node_alone(m, r, idx, batch, lo, hi, scale, step, loss);
  const int mid = wt_grad_tree_mid(lo, hi);
  double left_loss = 0, right_loss = 0;
  float *left = node_from_leaves(m, r, idx, batch, lo, mid, scale, step, &left_loss);
  float *right = node_from_leaves(m, r, idx, batch, mid, hi, scale, step, &right_loss);
  wt_model_add_grads(m, left, right);
  free(right);
  *loss = left_loss + right_loss;
  return left;
}

/* The gradient tree: nodes add up to the root bit for bit for any split of the batch, with batch
 * norm and dropout too; a leaf is its block alone; the train step uses the root. */
static void test_gradient_tree(void) {
  const int32_t mids[][3] = {{0, 2, 1}, {0, 3, 2}, {0, 4, 2}, {0, 5, 4}, {0, 8, 4}, {0, 9, 8}, {4, 7, 6}, {5, 8, 7}, {2, 4, 3}};
  for (size_t i = 0; i < sizeof mids / sizeof mids[0]; i++) {
    CHECK(wt_grad_tree_mid(mids[i][0], mids[i][1]) == mids[i][2], "tree mid of [%d, %d) is %d, not %d",
          (int)mids[i][0], (int)mids[i][1], (int)wt_grad_tree_mid(mids[i][0], mids[i][1]), (int)mids[i][2]);
  }
  for (int net = 0; net < 2; net++) {
    const int side = net ? EVERY_KIND_SIDE : 32, classes = net ? EVERY_KIND_CLASSES : 10;
    const int block = net ? EVERY_KIND_BLOCK : WT_GRAD_BLOCK;
    const char *name = net ? "every layer kind" : "SimpleCNN";
    const int n = 40, batch = 4 * block + 3; /* five blocks, the last one short */
    uint8_t *data = make_synthetic(n, 3, side, classes, 13);
    const wt_records records = synthetic_records(data, n, 3, side);
    uint32_t idx[80];
    for (int i = 0; i < batch; i++) idx[i] = (uint32_t)((i * 7) % n);
    wt_model *m = net ? new_every_kind(64, 5) : new_model(64, 5);
    const size_t G = (size_t)wt_model_grad_count(m);
    const float scale = 1.0f / batch;
    const int step = 3;
    double root_loss = 0, split_loss = 0, half_loss = 0;
    float *root = node_alone(m, &records, idx, batch, 0, 5, scale, step, &root_loss);
    /* Every leaf alone, added up in the tree's order: [0,5) = ([0,2) + [2,4)) + [4,5). */
    float *split = node_from_leaves(m, &records, idx, batch, 0, 5, scale, step, &split_loss);
    long at = first_difference(split, root, G);
    CHECK(at < 0, "%s: leaves added in tree order differ from the root at %ld (%.9g vs %.9g)", name, at, at < 0 ? 0 : split[at],
          at < 0 ? 0 : root[at]);
    CHECK(split_loss == root_loss, "%s: loss %.17g from the leaves, %.17g at the root", name, split_loss, root_loss);
    /* Two workers: [0,4) on one, [4,5) on another. */
    float *half = node_alone(m, &records, idx, batch, 0, 4, scale, step, &half_loss);
    double tail_loss = 0;
    float *tail = node_alone(m, &records, idx, batch, 4, 5, scale, step, &tail_loss);
    wt_model_add_grads(m, half, tail);
    at = first_difference(half, root, G);
    CHECK(at < 0 && half_loss + tail_loss == root_loss, "%s: [0,4) + [4,5) differs from the root at %ld", name, at);
    /* Another step draws other dropout masks (only the net with dropout changes). */
    double other_loss = 0;
    float *other = node_alone(m, &records, idx, batch, 0, 5, scale, step + 1, &other_loss);
    CHECK(net ? memcmp(other, root, 4 * G) != 0 : memcmp(other, root, 4 * G) == 0, "%s: the step %s the gradient", name,
          net ? "does not change" : "changes");
    /* The root into the model's own gradients, then the update, is the train step. */
    wt_model *twin = net ? new_every_kind(64, 5) : new_model(64, 5);
    float step_loss = 0;
    CHECK_STATUS(wt_model_gradient(m, &records, idx, batch, 0, 5, scale, step, wt_model_grads(m), &root_loss), WT_OK);
    CHECK(memcmp(wt_model_grads(m), root, 4 * G) == 0, "%s: the root into the model's gradients differs", name);
    CHECK_STATUS(wt_model_update(m, &ADAM, 5), WT_OK);
    CHECK_STATUS(wt_model_train_step(twin, &records, idx, batch, step, &ADAM, &step_loss), WT_OK);
    CHECK(memcmp(wt_model_params(m), wt_model_params(twin), 4 * (size_t)wt_model_param_count(m)) == 0 &&
              memcmp(wt_model_running(m), wt_model_running(twin), 4 * (size_t)wt_model_running_count(m)) == 0,
          "%s: train_step differs from the tree root + update", name);
    CHECK((float)(root_loss / batch) == step_loss, "%s: train_step loss %.9g, root loss %.9g", name, step_loss, root_loss / batch);
    /* Nodes outside the batch's blocks, and a missing or overlapping destination, are refused untouched. */
    memset(half, 0x55, 4 * G);
    const int32_t bad[][2] = {{-1, 1}, {0, 6}, {2, 2}, {3, 2}, {5, 6}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
      CHECK_STATUS(wt_model_gradient(m, &records, idx, batch, bad[i][0], bad[i][1], scale, step, half, &half_loss), WT_ERR_INVALID_ARGUMENT);
    }
    CHECK_STATUS(wt_model_gradient(m, &records, idx, batch, 0, 1, scale, step, NULL, &half_loss), WT_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wt_model_gradient(m, &records, idx, 65, 0, 1, scale, step, half, &half_loss), WT_ERR_INVALID_ARGUMENT);
    CHECK(((const uint8_t *)half)[0] == 0x55 && ((const uint8_t *)half)[4 * G - 1] == 0x55, "%s: a refused node wrote its destination", name);
    free(root), free(split), free(half), free(tail), free(other);
    wt_model_destroy(m), wt_model_destroy(twin);
    free(data);
  }
}

int main(void) {
  every_words = build_spec(every_spec, 3, EVERY_KIND_SIDE, EVERY_KIND_SIDE, EVERY_KIND_CLASSES, EVERY_KIND_BLOCK,
                           NODES(EVERY_KIND_NET));
  if (wt_spec_check(every_spec, every_words) != WT_OK) {
    printf("the every-layer-kind spec is refused: %s\n", wt_last_error());
    return 1;
  }
  test_create_destroy();
  test_every_kind_tables();
  test_training_reduces_loss();
  test_every_kind_trains();
  test_running_statistics();
  test_fused_evaluation();
  test_bad_specs();
  test_hostile_specs();
  test_gradient_tree();
  test_evaluate();
  test_permutation();
  test_records_check();
  test_batch_arguments();
  test_load_weights();
  test_checkpoints();
  test_checkpoint_v1();
  test_checkpoint_batchnorm();
  printf(failures ? "test_engine: %d FAILED\n" : "test_engine: all passed\n", failures);
  return failures ? 1 : 0;
}
