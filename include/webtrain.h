/* webtrain public C API: the SimpleCNN for CIFAR-10 with its loss, Adam and data decoding.
 *
 * Every call that can fail returns a wt_status; wt_last_error() then holds a one-line message
 * for the user. The same API is exported from the Wasm module (see WT_API) and linked natively
 * for tests. Nothing here allocates inside a training step.
 */
#ifndef WEBTRAIN_H
#define WEBTRAIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from the Wasm module: keep every public symbol alive through the linker. */
#if defined(__EMSCRIPTEN__) || defined(__wasm__)
#define WT_API __attribute__((used, visibility("default")))
#else
#define WT_API
#endif

#define WT_PARAM_COUNT 62006 /* SimpleCNN parameters, PyTorch state_dict order */
#define WT_IMAGE_BYTES 3072  /* 3 planes (R, G, B) of 32x32 */
#define WT_RECORD_BYTES 3073 /* 1 label byte + image */
#define WT_NUM_CLASSES 10
#define WT_MAX_BATCH 4096
/* Gradients are summed over blocks of this many images in a fixed binary tree (see
 * wt_model_gradient), so a batch's gradient is the same however it is split between workers. */
#define WT_GRAD_BLOCK 8

typedef enum wt_status {
  WT_OK = 0,
  WT_ERR_INVALID_ARGUMENT = 1, /* a caller-supplied value is out of range */
  WT_ERR_OUT_OF_MEMORY = 2,
  WT_ERR_BAD_DATA = 3,   /* malformed CIFAR records or parameter file */
  WT_ERR_NON_FINITE = 4, /* the loss or a parameter became NaN or infinite */
} wt_status;

/* Message describing the most recent failure (static storage, never NULL). */
WT_API const char *wt_last_error(void);

/* Heap helpers for the JavaScript side (Wasm memory). */
WT_API void *wt_alloc(size_t bytes);
WT_API void wt_free(void *ptr);
/* Bytes currently allocated from the heap (for leak checks: flat across epochs). */
WT_API size_t wt_heap_bytes_in_use(void);

/* ---- data ---- */

/* Validates a buffer of CIFAR-10 binary records: non-empty, a whole number of records, every
 * label 0..9. On success *out_count is the number of records. */
WT_API wt_status wt_records_check(const uint8_t *data, size_t bytes, int32_t *out_count);

/* Writes the permutation of 0..n-1 used for `epoch` of a run seeded with `seed`. It is a pure
 * function of (seed, epoch, n), so a run can resume anywhere from those three numbers. */
WT_API wt_status wt_epoch_permutation(uint32_t *perm, int32_t n, uint32_t seed, int32_t epoch);

/* ---- model ---- */

typedef struct wt_model wt_model;

/* Doubles, as PyTorch keeps its hyperparameters as Python floats. */
typedef struct wt_adam_config {
  double lr, beta1, beta2, eps; /* PyTorch defaults: 0.001, 0.9, 0.999, 1e-8 */
} wt_adam_config;

/* Creates a model whose activation buffers hold up to max_batch images. Parameters are
 * initialised as PyTorch does by default, from `seed`. */
WT_API wt_status wt_model_create(wt_model **out, int32_t max_batch, uint32_t seed);
WT_API void wt_model_destroy(wt_model *model);
WT_API int32_t wt_model_max_batch(const wt_model *model);

/* Re-initialises the parameters (every tensor ~ U(-1/sqrt(fan_in), +1/sqrt(fan_in))) and resets
 * Adam's moments and step count. */
WT_API void wt_model_init(wt_model *model, uint32_t seed);

/* Flat buffers of WT_PARAM_COUNT floats in state_dict order; gradients and Adam's moments share
 * the same layout. */
WT_API float *wt_model_params(wt_model *model);
WT_API float *wt_model_grads(wt_model *model);
WT_API float *wt_model_adam_m(wt_model *model);
WT_API float *wt_model_adam_v(wt_model *model);
WT_API int32_t wt_model_adam_step_count(const wt_model *model);
/* Sets Adam's step count (restoring a saved optimizer state); refuses a negative count. */
WT_API wt_status wt_model_set_adam_step_count(wt_model *model, int32_t steps);

/* Replaces all parameters from a weights file image (WT_PARAM_COUNT little-endian float32) and
 * resets Adam. Refuses a wrong size or a non-finite value without touching the model. */
WT_API wt_status wt_model_load_weights(wt_model *model, const uint8_t *data, size_t bytes);

/* Logits (batch, 10) of the most recent forward pass. */
WT_API const float *wt_model_logits(const wt_model *model);

/* Forward pass on the records picked by indices[0..batch) out of `records` (record_count
 * records). Returns the summed (not mean) cross-entropy of the batch in *out_loss_sum. */
WT_API wt_status wt_model_forward(wt_model *model, const uint8_t *records, int32_t record_count,
                                  const uint32_t *indices, int32_t batch, double *out_loss_sum);

/* Zeroes the gradient buffer. */
WT_API void wt_model_zero_grads(wt_model *model);

/* Forward and backward on one (sub-)batch; ACCUMULATES loss_scale * d(sum of losses)/d(params)
 * into the gradients. A full batch of B uses loss_scale = 1/B (PyTorch's mean); data-parallel
 * workers each use 1/B for their share, and the gradients add up. */
WT_API wt_status wt_model_backward(wt_model *model, const uint8_t *records, int32_t record_count,
                                   const uint32_t *indices, int32_t batch, float loss_scale,
                                   double *out_loss_sum);

/* The gradient tree. A batch of B images is cut into ceil(B / WT_GRAD_BLOCK) blocks; block k
 * holds images [k * WT_GRAD_BLOCK, ...). The tree over blocks [lo, hi) is the block itself when
 * hi - lo == 1, else the tree over [lo, mid) plus the tree over [mid, hi), with mid from
 * wt_grad_tree_mid. The batch's gradient is the tree over [0, blocks); a worker computes the
 * nodes of that tree inside its share and the nodes are added up in the tree's order, so the
 * floats are the same for any split and any number of workers. */
WT_API int32_t wt_grad_tree_mid(int32_t lo, int32_t hi); /* lo + largest power of 2 < hi - lo */
WT_API int32_t wt_grad_block(void);                      /* WT_GRAD_BLOCK, for JavaScript */

/* Writes the tree node [lo, hi) of the batch indices[0..batch) into dst (WT_PARAM_COUNT floats,
 * e.g. wt_model_grads(), overwritten): loss_scale * d(summed loss)/d(params), and its summed
 * loss (added up in the same tree) into *out_loss_sum. */
WT_API wt_status wt_model_gradient(wt_model *model, const uint8_t *records, int32_t record_count,
                                   const uint32_t *indices, int32_t batch, int32_t lo, int32_t hi,
                                   float loss_scale, float *dst, double *out_loss_sum);

/* dst += src, WT_PARAM_COUNT floats: adds two tree nodes. */
WT_API void wt_grads_add(float *dst, const float *src);

/* One Adam update from the current gradients (PyTorch's exact formula). Fails with
 * WT_ERR_NON_FINITE, leaving parameters untouched, when a gradient is NaN or infinite. */
WT_API wt_status wt_model_adam_update(wt_model *model, const wt_adam_config *config);

/* The gradient tree's root (the mean loss's gradient) + Adam, in one call. *out_loss is the mean
 * loss. */
WT_API wt_status wt_model_train_step(wt_model *model, const uint8_t *records, int32_t record_count,
                                     const uint32_t *indices, int32_t batch,
                                     const wt_adam_config *config, float *out_loss);

/* Evaluates records[0..record_count) in chunks. Adds the number of correct predictions to
 * *correct, the summed cross-entropy to *loss_sum, and (if not NULL) counts into
 * confusion[true * 10 + predicted] and writes each prediction to predictions[i]. */
WT_API wt_status wt_model_evaluate(wt_model *model, const uint8_t *records, int32_t record_count,
                                   int32_t *correct, double *loss_sum, int32_t *confusion,
                                   uint8_t *predictions);

/* ---- checkpoints: the whole training state in one versioned, CRC-checked file ---- */

#define WT_CHECKPOINT_VERSION 1
#define WT_ARCH_SIMPLECNN 0x31434E53u /* "SNC1": SimpleCNN for 3x32x32 inputs, 10 classes */

/* Where a run is and how it was configured; everything needed to continue it exactly. The
 * shuffle is a pure function of (seed, epoch), so the position in it is (epoch, step). */
typedef struct wt_run_state {
  int32_t epoch;       /* 0-based epoch in progress */
  int32_t step;        /* steps done within that epoch */
  int32_t epochs;      /* epochs asked for */
  int32_t batch_size;
  int32_t shuffle;     /* 0 or 1 */
  int32_t workers;     /* data-parallel workers (results depend on it) */
  uint32_t seed;
  int32_t train_count; /* training records in use (after --limit-train) */
  int32_t window_count; /* steps in the running-loss window not yet reported */
  double window_sum;    /* their summed loss */
  wt_adam_config adam;
} wt_run_state;

/* Exact size of a checkpoint file. */
WT_API size_t wt_checkpoint_bytes(void);

/* Writes the checkpoint of `model` and `state` into out[0..wt_checkpoint_bytes()). */
WT_API wt_status wt_checkpoint_save(const wt_model *model, const wt_run_state *state, uint8_t *out,
                                    size_t out_bytes);

/* Validates every header field and the CRC-32 first; only then restores the parameters, Adam's
 * moments and step count into `model` and fills *state. On any error the model is untouched. */
WT_API wt_status wt_checkpoint_load(wt_model *model, wt_run_state *state, const uint8_t *data,
                                    size_t bytes);

/* CRC-32 (IEEE 802.3, as zlib's crc32) of data[0..bytes). */
WT_API uint32_t wt_crc32(const uint8_t *data, size_t bytes);

/* ---- profiling (for the benchmark's per-layer breakdown) ---- */

/* Time slots, in the order of a training step. */
typedef enum wt_profile_slot {
  WT_PROF_DECODE, WT_PROF_CONV1_FWD, WT_PROF_POOL1_FWD, WT_PROF_CONV2_FWD, WT_PROF_POOL2_FWD,
  WT_PROF_FC_FWD, WT_PROF_LOSS, WT_PROF_FC_BWD, WT_PROF_POOL2_BWD, WT_PROF_CONV2_BWD,
  WT_PROF_POOL1_BWD, WT_PROF_CONV1_BWD, WT_PROF_GRAD_TREE, WT_PROF_ADAM, WT_PROF_SLOTS
} wt_profile_slot;

/* While slots_ms is not NULL, every layer adds its wall time in milliseconds to its slot
 * (WT_PROF_SLOTS doubles). The clock is the host's (an import in Wasm). */
WT_API void wt_model_set_profile(wt_model *model, double *slots_ms);

/* ---- benchmark ---- */

/* Runs `iterations` rounds of 12 independent multiply-then-add chains on SIMD128 vectors (scalar
 * floats in the scalar build) and returns the floating-point operations done: the throughput
 * ceiling a kernel is judged against (GFLOP/s = returned / seconds / 1e9). */
WT_API double wt_bench_peak(int32_t iterations);

#ifdef __cplusplus
}
#endif
#endif /* WEBTRAIN_H */
