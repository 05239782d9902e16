/* webtrain public C API: convolutional networks described as data, with their loss, optimizer,
 * data decoding and checkpoints.
 *
 * A model is built from a description: the int32 "spec" that web/model-spec.js encodes from the
 * parsed text (layout in src/spec.c). The engine plans everything from it once (shapes, tensors,
 * one arena for parameters, gradients, the optimizer state, activations and scratch); a training
 * step only runs the plan. Every call that can fail returns a wt_status; wt_last_error() then
 * holds a one-line message for the user. The same API is exported from the Wasm module (see
 * WT_API) and linked natively for tests. Nothing here allocates inside a training step.
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

#define WT_MAX_BATCH 4096
/* Images per block of the gradient tree when a description does not say (@ghost_batch). */
#define WT_GRAD_BLOCK 8
#define WT_MAX_CLASSES 256 /* labels are one byte */

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

/* Records in memory: each `record_bytes` long, with its label byte at `label_offset` and the
 * image's bytes (planar: C planes of H x W, as CIFAR stores R, G, B) from `pixel_offset`. */
typedef struct wt_records {
  const uint8_t *data;
  int32_t count;
  int32_t record_bytes, label_offset, pixel_offset;
} wt_records;

/* Validates a buffer of records: non-empty, a whole number of records of `record_bytes`, every
 * label below `classes`. On success *out_count is the number of records. */
WT_API wt_status wt_records_check(const uint8_t *data, size_t bytes, int32_t record_bytes, int32_t label_offset,
                                  int32_t classes, int32_t *out_count);

/* Writes the permutation of 0..n-1 used for `epoch` of a run seeded with `seed`. It is a pure
 * function of (seed, epoch, n), so a run can resume anywhere from those three numbers. */
WT_API wt_status wt_epoch_permutation(uint32_t *perm, int32_t n, uint32_t seed, int32_t epoch);

/* ---- model ---- */

typedef struct wt_model wt_model;

/* What the data set gives the net: its shape, its class count, and the normalisation of its
 * pixels (ToTensor() then Normalize(mean, std), per channel). Part of the spec's header. */
typedef struct wt_data_format {
  int32_t channels, height, width, classes;
  float mean[4], std[4];
} wt_data_format;

/* Doubles, as PyTorch keeps its hyperparameters as Python floats. */
typedef struct wt_adam_config {
  double lr, beta1, beta2, eps; /* PyTorch defaults: 0.001, 0.9, 0.999, 1e-8 */
} wt_adam_config;

/* The optimizers, each as torch.optim computes it (see src/optim.c). */
typedef enum wt_optimizer { WT_OPTIM_ADAM = 0, WT_OPTIM_ADAMW = 1, WT_OPTIM_SGD = 2 } wt_optimizer;
#define WT_MAX_PARAM_GROUPS 8

/* A parameter group (torch's param_groups entry): this step's learning rate (its schedule
 * applied), its weight decay, and whether its tensors are frozen (not updated at all). */
typedef struct wt_param_group {
  double lr, weight_decay;
  int32_t frozen, reserved; /* reserved: 0 */
} wt_param_group;

/* One optimizer step's settings. Weight decay wd of a group with learning rate lr:
 *   coupled (decoupled = 0): the gradient becomes g + wd * p before anything else (torch's
 *     SGD and Adam `weight_decay`);
 *   decoupled (decoupled = 1, and always for AdamW): p *= 1 - lr * wd before the step (torch's
 *     AdamW; for SGD this is "SGDW": the reference applies p.mul_(1 - lr * wd), then SGD).
 * SGD keeps its momentum buffer in adam_m: set to the gradient on the first step (no
 * dampening), then buf = momentum * buf + (1 - dampening) * g; Nesterov steps along
 * g + momentum * buf. Frozen groups (and tensors the description froze) are skipped. */
typedef struct wt_optim_config {
  int32_t kind;        /* wt_optimizer */
  int32_t nesterov;    /* SGD: 0 or 1 */
  int32_t decoupled;   /* weight decay: 0 coupled, 1 decoupled */
  int32_t group_count; /* 1..WT_MAX_PARAM_GROUPS; every tensor starts in group 0 */
  double beta1, beta2, eps;   /* Adam, AdamW (PyTorch defaults 0.9, 0.999, 1e-8) */
  double momentum, dampening; /* SGD */
  wt_param_group groups[WT_MAX_PARAM_GROUPS];
} wt_optim_config;

/* Checks a spec (shapes included) without allocating the model. On failure the message starts
 * with "node N: " where N is the index of the offending node in the spec. */
WT_API wt_status wt_spec_check(const int32_t *spec, size_t words);

/* Creates a model from a spec whose gradient tree holds batches up to max_batch images.
 * Parameters are initialised as PyTorch does by default, from `seed`. `text` (may be NULL) is the
 * description as the user wrote it, kept for checkpoints. */
WT_API wt_status wt_model_create(wt_model **out, const int32_t *spec, size_t spec_words, const uint8_t *text,
                                 size_t text_bytes, int32_t max_batch, uint32_t seed);
WT_API void wt_model_destroy(wt_model *model);
WT_API int32_t wt_model_max_batch(const wt_model *model);
/* Images per block of the gradient tree (the description's ghost batch). */
WT_API int32_t wt_model_block(const wt_model *model);
/* The seed the model was created with (it also keys the dropout masks). */
WT_API uint32_t wt_model_seed(const wt_model *model);
WT_API const wt_data_format *wt_model_data_format(const wt_model *model);
/* The spec and text the model was made from. */
WT_API const int32_t *wt_model_spec(const wt_model *model, size_t *out_words);
WT_API const uint8_t *wt_model_text(const wt_model *model, size_t *out_bytes);

/* Floats in the flat parameter buffer (state_dict order, trainable and frozen tensors); the
 * gradient vector is that plus the batch statistics of a step (batch norm); the running
 * statistics are separate. */
WT_API int32_t wt_model_param_count(const wt_model *model);
WT_API int32_t wt_model_grad_count(const wt_model *model);
WT_API int32_t wt_model_running_count(const wt_model *model);

/* The tensor table: tensor i's layer (index into the layer table), role (0 weight, 1 bias,
 * 2 running_mean, 3 running_var), dims, shape (4 int32, unused = 1), offset in floats into the
 * parameters (roles 0-1) or the running statistics (roles 2-3), and count. Returns 0 past the end. */
typedef struct wt_tensor_info {
  int32_t layer, role, ndim, shape[4], offset, count, trainable;
} wt_tensor_info;
WT_API int32_t wt_model_tensor_count(const wt_model *model);
WT_API int32_t wt_model_tensor_info(const wt_model *model, int32_t index, wt_tensor_info *out);

/* The layer table, for the summary: layer i's spec node, kind (the spec's node kind), output
 * shape per image (c, h, w, flat), parameter count, forward FLOPs per image. */
typedef struct wt_layer_info {
  int32_t node, kind, c, h, w, flat, params;
  double flops;
} wt_layer_info;
WT_API int32_t wt_model_layer_count(const wt_model *model);
WT_API int32_t wt_model_layer_info(const wt_model *model, int32_t index, wt_layer_info *out);

/* Re-initialises the parameters (PyTorch's defaults: conv and linear U(-1/sqrt(fan_in),
 * +1/sqrt(fan_in)); batch norm weight 1, bias 0, running mean 0, variance 1) and resets the
 * optimizer state and step counts. */
WT_API void wt_model_init(wt_model *model, uint32_t seed);

/* Flat buffers: parameters, gradients (grad_count floats), Adam's moments (param_count), running
 * statistics (running_count). */
WT_API float *wt_model_params(wt_model *model);
WT_API float *wt_model_grads(wt_model *model);
WT_API float *wt_model_adam_m(wt_model *model);
WT_API float *wt_model_adam_v(wt_model *model);
WT_API float *wt_model_running(wt_model *model);
WT_API int32_t wt_model_adam_step_count(const wt_model *model);
/* Sets Adam's step count (restoring a saved optimizer state); refuses a negative count. */
WT_API wt_status wt_model_set_adam_step_count(wt_model *model, int32_t steps);
/* Steps that updated the running statistics (PyTorch's num_batches_tracked). */
WT_API int32_t wt_model_stat_steps(const wt_model *model);
WT_API wt_status wt_model_set_stat_steps(wt_model *model, int32_t steps);

/* Replaces all parameters from a raw weights file (param_count little-endian float32, state_dict
 * order) and resets the optimizer. Refuses a wrong size, a non-finite value, or a net with
 * running statistics (they are not in the file), without touching the model. */
WT_API wt_status wt_model_load_weights(wt_model *model, const uint8_t *data, size_t bytes);

/* Logits (block, classes) of the most recent forward block (of an evaluation block, averaged
 * over the test-time augmentation's views). */
WT_API const float *wt_model_logits(const wt_model *model);

/* Training-mode forward pass on the records picked by indices[0..batch), block by block; the
 * summed (not mean) cross-entropy in *out_loss_sum. wt_model_logits() then holds the last block. */
WT_API wt_status wt_model_forward(wt_model *model, const wt_records *records, const uint32_t *indices,
                                  int32_t batch, double *out_loss_sum);

/* The gradient tree. A batch of B images is cut into ceil(B / block) blocks; block k holds images
 * [k * block, ...). The tree over blocks [lo, hi) is the block itself when hi - lo == 1, else the
 * tree over [lo, mid) plus the tree over [mid, hi), with mid from wt_grad_tree_mid. The batch's
 * gradient is the tree over [0, blocks); a worker computes the nodes of that tree inside its
 * share and the nodes are added up in the tree's order, so the floats are the same for any split
 * and any number of workers. Batch-norm statistics are those of each block (a ghost batch). */
WT_API int32_t wt_grad_tree_mid(int32_t lo, int32_t hi); /* lo + largest power of 2 < hi - lo */

/* Writes the tree node [lo, hi) of the batch indices[0..batch) into dst (grad_count floats, e.g.
 * wt_model_grads(), overwritten): loss_scale * d(summed loss)/d(params), then the node's summed
 * batch statistics; its summed loss (added up in the same tree) into *out_loss_sum. `step` keys
 * the dropout masks (with the model's seed and each image's place in the batch). The images are
 * augmented as wt_model_set_augment and wt_model_set_epoch say (by default not at all). */
WT_API wt_status wt_model_gradient(wt_model *model, const wt_records *records, const uint32_t *indices,
                                   int32_t batch, int32_t lo, int32_t hi, float loss_scale, int32_t step,
                                   float *dst, double *out_loss_sum);

/* dst += src, grad_count floats: adds two tree nodes. */
WT_API void wt_model_add_grads(const wt_model *model, float *dst, const float *src);

/* Puts tensor `tensor` (of the tensor table) in parameter group `group` (0..WT_MAX_PARAM_GROUPS-1). */
WT_API wt_status wt_model_set_tensor_group(wt_model *model, int32_t tensor, int32_t group);
WT_API int32_t wt_model_tensor_group(const wt_model *model, int32_t tensor);

/* Label smoothing of the training loss (0 <= s < 1; 0, the default, is plain cross-entropy).
 * Evaluation always reports the plain cross-entropy. */
WT_API wt_status wt_model_set_label_smoothing(wt_model *model, double smoothing);

/* The optimizer the model's state belongs to (wt_optimizer; set by the last update or checkpoint). */
WT_API int32_t wt_model_optimizer(const wt_model *model);
WT_API wt_status wt_model_set_optimizer(wt_model *model, int32_t kind);

/* One optimizer update from the current gradients (torch.optim's exact formulas), and the
 * running statistics from the gradient vector's statistics (`groups` = blocks in the batch).
 * Fails with WT_ERR_NON_FINITE, leaving parameters untouched, when a gradient is NaN or infinite. */
WT_API wt_status wt_model_update(wt_model *model, const wt_optim_config *config, int32_t groups);

/* The exponential moving average of the weights: a copy of the parameters then the running
 * statistics (param_count + running_count floats), absent until wt_model_ema_reset. */
WT_API float *wt_model_ema(wt_model *model);
WT_API int32_t wt_model_ema_active(const wt_model *model);
/* Starts the average from the current weights (active = 1), or drops it (active = 0). */
WT_API void wt_model_ema_reset(wt_model *model, int32_t active);
/* ema = lerp(ema, weights, 1 - decay) as torch's lerp_ (parameters and running statistics);
 * with copy_back the weights become the average (airbench's lookahead). */
WT_API wt_status wt_model_ema_update(wt_model *model, double decay, int32_t copy_back);
/* Swaps the weights with the average (evaluate with the average, then swap back). */
WT_API wt_status wt_model_ema_swap(wt_model *model);

/* The gradient tree's root (the mean loss's gradient) + the update, in one call. *out_loss is the
 * mean loss. */
WT_API wt_status wt_model_train_step(wt_model *model, const wt_records *records, const uint32_t *indices,
                                     int32_t batch, int32_t step, const wt_optim_config *config, float *out_loss);

/* Evaluates records [first, first + count) in eval mode (running statistics, no dropout), block by
 * block. Adds the number of correct predictions to *correct, the summed cross-entropy to
 * *loss_sum, and (if not NULL) counts into confusion[true * classes + predicted] and writes each
 * prediction to predictions[i]. All of them are of the test-time augmentation's averaged logits
 * (wt_model_set_tta); *plain_correct (if not NULL) gets the correct predictions of the image
 * itself, its first view, which costs nothing more (with WT_TTA_NONE, the same as *correct). */
WT_API wt_status wt_model_evaluate(wt_model *model, const wt_records *records, int32_t first, int32_t count,
                                   int32_t *correct, double *loss_sum, int32_t *confusion, uint8_t *predictions,
                                   int32_t *plain_correct);

/* Runs the net on n already-normalised images x (n, C, H, W) and writes the logits (n, classes) to
 * y; train = 0 for eval mode. With activations != NULL, also copies every layer's output for image
 * 0 there, layer after layer (the sum of the layers' output sizes): the activation view. */
WT_API wt_status wt_model_run(wt_model *model, const float *x, int32_t n, int32_t train, float *y,
                              float *activations);

/* For the per-layer tests: forward in train or eval mode on n <= block normalised images (as
 * wt_model_run, the output of the last layer, not through the loss: y holds n times the last
 * layer's output size), then backward of the upstream gradient dy: dx (n, C, H, W) and the
 * parameter gradients into wt_model_grads() (overwritten). */
WT_API wt_status wt_model_run_backward(wt_model *model, const float *x, int32_t n, int32_t train, float *y,
                                       const float *dy, float *dx);

/* ---- augmentation and test-time augmentation ---- */

/* Training images are augmented as they are decoded, with no extra pass: each training image is
 * translated by (dy, dx) (out(y, x) = in(y + dy, x + dx), the pixels from outside the image
 * reflected as PyTorch's 'reflect' padding does, or black as torchvision's RandomCrop pads),
 * then mirrored left-right if flipped, then a cutout square is set to 0 (the mean, after
 * normalisation). The draws are a pure function of (seed, epoch, record index), so a resumed run
 * and any number of workers see the same pixels. */
enum { WT_FLIP_NONE = 0, WT_FLIP_RANDOM = 1, WT_FLIP_ALTERNATE = 2 };
enum { WT_PAD_REFLECT = 0, WT_PAD_ZERO = 1 };
typedef struct wt_augment {
  uint32_t seed;      /* the run's seed */
  int32_t flip;       /* WT_FLIP_NONE; _RANDOM: a coin per image and epoch; _ALTERNATE (airbench):
                         epoch 0's coin, and every image flipped once more on odd epochs */
  int32_t translate;  /* dy and dx uniform in [-translate, translate]; 0: none */
  int32_t padding;    /* WT_PAD_REFLECT or WT_PAD_ZERO: what comes in from outside the image */
  int32_t cutout;     /* side of the square; 0: none. Its centre is uniform over the image */
} wt_augment;

/* Sets the augmentation of training images (NULL or all zero: none, the default). Refuses
 * values out of range (translate must be below the image's sides) and leaves the model as it was. */
WT_API wt_status wt_model_set_augment(wt_model *model, const wt_augment *config);
/* The epoch (0-based) whose augmentation the next training blocks get. */
WT_API wt_status wt_model_set_epoch(wt_model *model, int32_t epoch);

/* Test-time augmentation of wt_model_evaluate: the logits averaged over views of each image.
 * FLIP: 0.5 (image) + 0.5 (mirrored). FLIP_TRANSLATE (airbench): 0.5 FLIP(image) + 0.5 the mean
 * of FLIP(image translated by (-1, -1)) and FLIP(translated by (+1, +1)), reflect-padded. */
enum { WT_TTA_NONE = 0, WT_TTA_FLIP = 1, WT_TTA_FLIP_TRANSLATE = 2 };
WT_API wt_status wt_model_set_tta(wt_model *model, int32_t tta);

/* Writes the images the net would see for records indices[0..n) into out (n, C, H, W):
 * normalised, and with train != 0 augmented as the current epoch's training blocks are. */
WT_API wt_status wt_model_decode(wt_model *model, const wt_records *records, const uint32_t *indices, int32_t n,
                                 int32_t train, float *out);

/* Computes the weights of every whitening conv (init = whiten, see src/spec.c) from the first
 * images of `records` (normalised, not augmented): the eigenvectors of the k x k x C patch
 * second-moment matrix, scaled by 1 / sqrt(eigenvalue + eps) and stacked with their negatives.
 * Deterministic (double precision, a fixed-order Jacobi solver). *out_layers (may be NULL) is the
 * number of layers whitened. Call it at the start of a run, not on resume (the checkpoint holds
 * the weights). */
WT_API wt_status wt_model_init_whitening(wt_model *model, const wt_records *records, int32_t *out_layers);

/* ---- checkpoints: the whole training state in one versioned, CRC-checked file ---- */

/* Version 3 adds the run's recipe (JSON text), the optimizer's kind and the weights' average to
 * version 2, which embeds the model's spec and description text; version 1 files (SimpleCNN,
 * 744,204 bytes) and version 2 files still load. See src/checkpoint.c for the layout. */
#define WT_CHECKPOINT_VERSION 3
#define WT_CHECKPOINT_MAX_BYTES ((uint64_t)1 << 30) /* 1 GiB: nothing larger is read */

/* Where a run is and how it was configured; everything needed to continue it exactly. The
 * shuffle is a pure function of (seed, epoch), so the position in it is (epoch, step). */
typedef struct wt_run_state {
  int32_t epoch;       /* 0-based epoch in progress */
  int32_t step;        /* steps done within that epoch */
  int32_t epochs;      /* epochs asked for */
  int32_t batch_size;
  int32_t shuffle;     /* 0 or 1 */
  int32_t workers;     /* data-parallel workers (recorded; results do not depend on it) */
  uint32_t seed;
  int32_t train_count; /* training records in use (after --limit-train) */
  int32_t window_count; /* steps in the running-loss window not yet reported */
  double window_sum;    /* their summed loss */
  wt_adam_config adam;
} wt_run_state;

/* Exact size of the checkpoint of `model` with a recipe of `recipe_bytes`. */
WT_API size_t wt_checkpoint_bytes(const wt_model *model, size_t recipe_bytes);

/* Writes the checkpoint of `model`, `state` and the recipe text (opaque here; may be empty) into
 * out[0..wt_checkpoint_bytes(model, recipe_bytes)). */
WT_API wt_status wt_checkpoint_save(const wt_model *model, const wt_run_state *state, const uint8_t *recipe,
                                    size_t recipe_bytes, uint8_t *out, size_t out_bytes);

/* The recipe text of a checkpoint, validating it as wt_checkpoint_describe does (versions 1 and
 * 2: none, 0 bytes). The pointer is into `data`. */
WT_API wt_status wt_checkpoint_recipe(const uint8_t *data, size_t bytes, const uint8_t **recipe, size_t *recipe_bytes);

/* Reads what model a checkpoint is for, validating its header, sizes and CRC-32 (not its values):
 * it gives its spec (version 1: SimpleCNN's) and its description text (version 1: none, 0 bytes).
 * The pointers are into `data` or static storage (valid until the next call). */
WT_API wt_status wt_checkpoint_describe(const uint8_t *data, size_t bytes, const int32_t **spec, size_t *spec_words,
                                        const uint8_t **text, size_t *text_bytes);

/* Validates every header field and the CRC-32 first, and that the checkpoint's spec is the
 * model's; only then restores the parameters, running statistics, the optimizer's buffers, kind
 * and step counts, and the weights' average (or its absence) into `model` and fills *state. On
 * any error the model is untouched. */
WT_API wt_status wt_checkpoint_load(wt_model *model, wt_run_state *state, const uint8_t *data,
                                    size_t bytes);

/* CRC-32 (IEEE 802.3, as zlib's crc32) of data[0..bytes). */
WT_API uint32_t wt_crc32(const uint8_t *data, size_t bytes);

/* ---- profiling (for the benchmark's per-layer breakdown) ---- */

/* Time slots: 0 decode, 1 loss, 2 gradient tree, 3 update, then for each layer i its forward
 * (4 + 2i) and backward (5 + 2i). */
WT_API int32_t wt_model_profile_slots(const wt_model *model);

/* While slots_ms is not NULL, every layer adds its wall time in milliseconds to its slot. The
 * clock is the host's (an import in Wasm). */
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
