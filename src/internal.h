/* Internal declarations shared by the engine's source files: the scalar type, the kernels and the
 * forward/backward pair of every layer. Not part of the public API. */
#ifndef WT_INTERNAL_H
#define WT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "webtrain.h"

/* The layers are written once for wt_real. The engine uses float; the gradient-check test builds
 * the same sources with -DWT_REAL=double so finite differences are not drowned by rounding. */
#ifndef WT_REAL
#define WT_REAL float
#endif
typedef WT_REAL wt_real;

/* SIMD only for the float engine built with -msimd128; everything else takes the scalar path. */
#if defined(__wasm_simd128__) && !defined(WT_REAL_IS_DOUBLE)
#define WT_SIMD 1
#else
#define WT_SIMD 0
#endif

/* ---- errors ---- */
wt_status wt_fail(wt_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- seeded PRNG (PCG32), identical in Node, browsers and native builds ---- */
typedef struct wt_rng {
  uint64_t state, inc;
} wt_rng;
void wt_rng_seed(wt_rng *rng, uint64_t seed, uint64_t stream);
uint32_t wt_rng_u32(wt_rng *rng);
float wt_rng_uniform(wt_rng *rng);                  /* [0, 1), 24 random bits */
uint32_t wt_rng_below(wt_rng *rng, uint32_t bound); /* unbiased in [0, bound) */

/* ---- kernels (kernels.c): a fast path and the scalar reference it is tested against ---- */

/* C[i][j] (+)= sum_k A[i*a_row + k*a_col] * B[k*ldb + j]. A is addressed by strides so the same
 * kernel serves A and A-transposed; B and C are row-major. accumulate=0 overwrites C. */
void wt_gemm_nn(int M, int N, int K, const wt_real *A, int a_row, int a_col, const wt_real *B,
                int ldb, wt_real *C, int ldc, int accumulate);
void wt_gemm_nn_ref(int M, int N, int K, const wt_real *A, int a_row, int a_col,
                    const wt_real *B, int ldb, wt_real *C, int ldc, int accumulate);

/* C[i][j] (+)= sum_k A[i*lda + k] * B[j*ldb + k]: dot products of rows (A times B-transposed). */
void wt_gemm_nt(int M, int N, int K, const wt_real *A, int lda, const wt_real *B, int ldb,
                wt_real *C, int ldc, int accumulate);
void wt_gemm_nt_ref(int M, int N, int K, const wt_real *A, int lda, const wt_real *B, int ldb,
                    wt_real *C, int ldc, int accumulate);

/* y[i] = max(y[i], 0) and its backward gate d[i] = out[i] > 0 ? d[i] : 0. */
void wt_relu(wt_real *y, size_t n);
void wt_relu_ref(wt_real *y, size_t n);
void wt_relu_gate(wt_real *d, const wt_real *out, size_t n);
void wt_relu_gate_ref(wt_real *d, const wt_real *out, size_t n);

/* Valid convolution, stride 1, of one image computed directly (no im2col): out (OC, OH, OW) =
 * weight (OC, C*K*K) applied to inp (C, H, W), plus bias (OC). The SIMD build uses it where the
 * im2col copy costs more memory traffic than it saves (conv1). */
void wt_conv2d_direct(wt_real *out, const wt_real *inp, const wt_real *weight, const wt_real *bias,
                      int C, int H, int W, int OC, int K);
void wt_conv2d_direct_ref(wt_real *out, const wt_real *inp, const wt_real *weight,
                          const wt_real *bias, int C, int H, int W, int OC, int K);

/* dweight (OC, C*K*K) += correlation of dout (OC, OH, OW) with inp (C, H, W), for one image,
 * without im2col: the weight gradient of wt_conv2d_direct. */
void wt_conv2d_dweight_direct(wt_real *dweight, const wt_real *dout, const wt_real *inp, int C,
                              int H, int W, int OC, int K);
void wt_conv2d_dweight_direct_ref(wt_real *dweight, const wt_real *dout, const wt_real *inp, int C,
                                  int H, int W, int OC, int K);

/* wt_conv2d_direct vectorized over output channels instead of columns, for OC = 8 or 16
 * (conv2): no im2col copy, and the same sums, bit for bit. wt is the weight transposed to
 * (C*K*K, OC) (wt_conv2d_transpose_weight); its reference is wt_conv2d_direct_ref. */
void wt_conv2d_direct_oc(wt_real *out, const wt_real *inp, const wt_real *wt, const wt_real *bias,
                         int C, int H, int W, int OC, int K);
void wt_conv2d_transpose_weight(wt_real *wt, const wt_real *weight, int OC, int CKK);

/* Inference, one image: pooled (OC, OH/2, OW/2) = 2x2 max-pool of ReLU(convolution), the same
 * values as wt_conv2d_direct_ref, wt_relu_ref and maxpool2_forward_ref in turn, without the
 * full-size activations or the argmax; OH and OW even. The _oc form takes the transposed weight
 * as wt_conv2d_direct_oc does. */
void wt_conv2d_relu_pool(wt_real *pooled, const wt_real *inp, const wt_real *weight,
                         const wt_real *bias, int C, int H, int W, int OC, int K);
void wt_conv2d_relu_pool_oc(wt_real *pooled, const wt_real *inp, const wt_real *wt,
                            const wt_real *bias, int C, int H, int W, int OC, int K);
void wt_conv2d_relu_pool_ref(wt_real *pooled, const wt_real *inp, const wt_real *weight,
                             const wt_real *bias, int C, int H, int W, int OC, int K);

/* col (C*K*K, OH*OW): row (c, ki, kj) holds the input pixels that kernel tap sees. */
void wt_im2col(wt_real *col, const wt_real *inp, int C, int H, int W, int K);
void wt_im2col_ref(wt_real *col, const wt_real *inp, int C, int H, int W, int K);
/* Its adjoint: dinp (C, H, W) += the columns of dcol scattered back to their pixels. */
void wt_col2im_add(wt_real *dinp, const wt_real *dcol, int C, int H, int W, int K);
void wt_col2im_add_ref(wt_real *dinp, const wt_real *dcol, int C, int H, int W, int K);

/* y[i] += x[i] */
void wt_add(float *y, const float *x, size_t n);
void wt_add_ref(float *y, const float *x, size_t n);

/* ---- layers: outputs first, dimensions last; backward ACCUMULATES into every d-buffer ---- */

/* Valid convolution, stride 1: direct (SIMD) or via im2col. col is scratch of (C*K*K, OH*OW)
 * for one image. */
void conv2d_forward(wt_real *out, wt_real *col, const wt_real *inp, const wt_real *weight,
                    const wt_real *bias, int B, int C, int H, int W, int OC, int K);
/* Inference: pooled (B, OC, OH/2, OW/2) = maxpool2(relu(conv)), the values conv2d_forward,
 * wt_relu and maxpool2_forward give, computed in one pass. scratch as col. */
void conv2d_relu_pool_forward(wt_real *pooled, wt_real *scratch, const wt_real *inp,
                              const wt_real *weight, const wt_real *bias, int B, int C, int H,
                              int W, int OC, int K);
/* dinp may be NULL (the first layer needs no input gradient). dcol: scratch like col. */
void conv2d_backward(wt_real *dinp, wt_real *dweight, wt_real *dbias, wt_real *col,
                     wt_real *dcol, const wt_real *dout, const wt_real *inp,
                     const wt_real *weight, int B, int C, int H, int W, int OC, int K);

/* 2x2 max-pool, stride 2, any sides (floor mode); argmax (0..3 within the window, first maximum
 * wins, a NaN wins) is kept. */
void maxpool2_forward(wt_real *out, uint8_t *argmax, const wt_real *inp, int B, int C, int H,
                      int W);
void maxpool2_forward_ref(wt_real *out, uint8_t *argmax, const wt_real *inp, int B, int C, int H,
                          int W);
void maxpool2_backward(wt_real *dinp, const wt_real *dout, const uint8_t *argmax, int B, int C,
                       int H, int W);
/* Any window: kernel k, stride s, padding p, output (OH, OW); argmax the window cell row * k + col
 * of the first maximum in scan order (a NaN wins). maxpool2_forward is its k = s = 2, p = 0 case. */
void maxpool_forward(wt_real *out, uint8_t *argmax, const wt_real *inp, int B, int C, int H, int W, int k, int s,
                     int p, int OH, int OW);

/* GELU, exact (erf) or with tanh_approx; backward: dinp += dout * GELU'(x). The _ref loops work
 * in double; the SIMD build's float kernels are held to them by tests/native/test_gelu.c. */
void gelu_forward(wt_real *y, const wt_real *x, size_t n, int tanh_approx);
void gelu_forward_ref(wt_real *y, const wt_real *x, size_t n, int tanh_approx);
void gelu_backward(wt_real *dinp, const wt_real *dout, const wt_real *x, size_t n, int tanh_approx);
void gelu_backward_ref(wt_real *dinp, const wt_real *dout, const wt_real *x, size_t n, int tanh_approx);
/* gelu_forward that also writes g = GELU'(x), and the backward from it: dinp += dout * g (the
 * scalar and double builds ignore g and recompute, in double, from x). */
void gelu_forward_grad(wt_real *y, wt_real *g, const wt_real *x, size_t n, int tanh_approx);
void gelu_backward_saved(wt_real *dinp, const wt_real *dout, const wt_real *g, const wt_real *x, size_t n, int tanh_approx);
double gelu_ref(double v, int tanh_approx);      /* GELU(v), accurate in double for every v */
double gelu_grad_ref(double v, int tanh_approx); /* GELU'(v) */

/* out (B, O) = inp (B, I) x weight (O, I)^T + bias (O). */
void linear_forward(wt_real *out, const wt_real *inp, const wt_real *weight,
                    const wt_real *bias, int B, int I, int O);
void linear_backward(wt_real *dinp, wt_real *dweight, wt_real *dbias, const wt_real *dout,
                     const wt_real *inp, const wt_real *weight, int B, int I, int O);

/* Softmax cross-entropy over (B, V) logits; returns the SUM of the B losses. */
double crossentropy_forward(const wt_real *logits, const uint8_t *targets, double smoothing, int B, int V);
/* dlogits += scale * (softmax - target), the target one-hot, or with label smoothing s
 * (1 - s) * onehot + s / V, as nn.CrossEntropyLoss(label_smoothing=s). */
void crossentropy_backward(wt_real *dlogits, const wt_real *logits, const uint8_t *targets, double smoothing,
                           wt_real scale, int B, int V);

/* PyTorch's Adam on flat buffers; t is the step number after increment (1 for the first). */
void adam_update(float *params, const float *grads, float *m, float *v, size_t n,
                 const wt_adam_config *config, int32_t t);
void adam_update_ref(float *params, const float *grads, float *m, float *v, size_t n,
                     const wt_adam_config *config, int32_t t);
/* Adam with weight decay: coupled (torch.optim.Adam's weight_decay) or decoupled (AdamW). */
void adam_update_decay(float *params, const float *grads, float *m, float *v, size_t n, const wt_adam_config *config,
                       int32_t t, double weight_decay, int decoupled);
/* torch.optim.SGD on flat buffers (buf: the momentum buffer); first_step: buf is still unset. */
void sgd_update(float *params, const float *grads, float *buf, size_t n, double lr, double momentum, double dampening,
                int nesterov, double weight_decay, int decoupled, int first_step);
/* ema = lerp(ema, weights, 1 - decay) as torch's lerp_; then weights = ema when copy_back. */
void ema_update(float *ema, float *weights, size_t n, double decay, int copy_back);


/* ---- general convolution kernels: any C, OC, square K, stride and zero padding ---- */
#include "conv_kernels.h"

/* ---- the plan: layers wired from a description (model.c), each op in its own file ---- */

/* Node kinds of a description (the int32 spec JavaScript encodes, see spec.c). */
enum {
  WT_OP_CONV = 1, WT_OP_LINEAR, WT_OP_RELU, WT_OP_GELU, WT_OP_MAXPOOL, WT_OP_AVGPOOL, WT_OP_GLOBALAVG,
  WT_OP_GLOBALMAX, WT_OP_BATCHNORM, WT_OP_DROPOUT, WT_OP_FLATTEN, WT_OP_SCALE,
  WT_OP_RESIDUAL = 20, WT_OP_SHORTCUT, WT_OP_END,
};

/* One image's activation: channels x height x width; `flat` marks a vector (after flatten). */
typedef struct wt_shape {
  int32_t c, h, w, flat;
} wt_shape;

static inline size_t wt_shape_size(wt_shape s) { return (size_t)s.c * s.h * s.w; }

typedef struct wt_layer wt_layer;
typedef struct wt_ctx wt_ctx;
typedef struct wt_planner wt_planner;

/* What an op does. plan() checks the layer's arguments against its input shape and declares what
 * it needs (output shape, tensors, saved state, scratch, FLOPs); forward() and backward() run it
 * on one block. Backward ACCUMULATES into the input's gradient and into the parameter gradients. */
typedef struct wt_op {
  const char *name;
  wt_status (*plan)(wt_layer *layer, wt_planner *planner);
  void (*forward)(const wt_layer *layer, wt_ctx *ctx);
  void (*backward)(const wt_layer *layer, wt_ctx *ctx);
  int output_free; /* backward never reads the op's output: a ReLU may overwrite it */
} wt_op;

/* A conv's init (spec i6): PyTorch's default; then torch.nn.init.dirac_ on the first
 * min(out, in) output channels; or computed by wt_model_init_whitening and frozen. */
enum { WT_CONV_INIT_DEFAULT = 0, WT_CONV_INIT_DIRAC = 1, WT_CONV_INIT_WHITEN = 2 };
/* The largest patch (in_channels x kernel^2) a whitening conv whitens: its eigenproblem is this
 * big (a Jacobi solve in double). */
#define WT_WHITEN_MAX_DIM 192

/* Tensor roles, for JavaScript's state_dict names (layer path + "." + role). */
enum { WT_ROLE_WEIGHT = 0, WT_ROLE_BIAS, WT_ROLE_RUNNING_MEAN, WT_ROLE_RUNNING_VAR };

struct wt_layer {
  const wt_op *op;
  int32_t node;        /* index in the description (errors, the summary, profiling) */
  int32_t kind;        /* WT_OP_* */
  int32_t arg[7];      /* the node's integer arguments, as spec.c documents them */
  float farg[2];       /* and its float ones */
  wt_shape in, out;    /* per image */
  int32_t x, x2, y;    /* activation slots: input, second input (residual add) or -1, output */
  int32_t in_place;    /* y == x: the output overwrote the input */
  size_t param_offset; /* floats into params (and grads, and the optimizer state) */
  int32_t first_tensor, tensor_count;
  size_t stat_offset;   /* floats into the gradient vector past the parameters (batch norm) */
  size_t running_offset; /* floats into the running statistics (batch norm) */
  size_t aux_per_image;  /* floats saved for backward, per image */
  size_t aux_extra;      /* floats saved for backward, per block (batch norm's 1/std) */
  size_t aux8_per_image; /* bytes saved for backward, per image (max-pool argmax) */
  size_t scratch_floats; /* for a whole block, shared with every other layer */
  double flops;          /* forward, per image */
  size_t prepared_floats[2]; /* derived from the parameters, kept for a call's blocks (a conv's per pass) */
  float *aux;            /* (block, aux_per_image) */
  float *prepared[2];    /* (prepared_floats[i]) */
  uint8_t *aux8;         /* (block, aux8_per_image) */
  wt_conv_shape conv;    /* convolutions */
  int32_t fast_path;     /* op-specific kernel choice, made at plan time */
  int32_t fused_eval;    /* conv: evaluation runs conv + ReLU + 2x2 max-pool as one pass (2 layers follow) */
};

/* Everything a layer's forward or backward reads and writes for one block. */
struct wt_ctx {
  wt_model *model;
  int B;               /* images in the block */
  int train;           /* batch statistics and dropout masks */
  int32_t first_image; /* the block's first image in its batch (dropout masks) */
  int32_t step;        /* training step (dropout masks) */
  uint32_t model_seed; /* the model's seed (dropout masks) */
  float *grads;        /* gradient target: parameter layout, then the statistics; NULL: forward only */
  int want_dx;         /* the input's gradient is wanted too (per-layer tests) */
  const uint8_t *need_dslot; /* per slot: its gradient is wanted (NULL: every slot's but the input's) */
  float *scratch;
};

/* Planning state: declare tensors and statistics while layers are planned. */
struct wt_planner {
  wt_model *model;     /* NULL while only sizing */
  int32_t block;       /* images per block */
  int32_t tensors;     /* declared so far */
  size_t params, stats, running;
  int too_big; /* a tensor over the size limit was declared */
  wt_status (*fail)(const wt_layer *layer, const char *fmt, ...);
};

/* Declares a parameter tensor of the layer (in state_dict order): shape (up to 4 dims), the
 * fan-in of PyTorch's default init (0: constant init: `fill`), its role. */
void wt_plan_tensor(wt_planner *p, wt_layer *l, int32_t role, int ndim, const int32_t *shape, int32_t fan_in,
                    float fill, int trainable);
wt_status wt_plan_fail(const wt_layer *layer, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Accessors the ops use. */
float *wt_layer_param(const wt_layer *l, wt_ctx *ctx, int index);      /* tensor `index` of the layer */
float *wt_layer_grad(const wt_layer *l, wt_ctx *ctx, int index);
float *wt_layer_running(const wt_layer *l, wt_ctx *ctx);               /* running statistics */
float *wt_slot(wt_ctx *ctx, int32_t slot);                            /* activation */
float *wt_dslot(wt_ctx *ctx, int32_t slot);                           /* its gradient */
float *wt_layer_stats(const wt_layer *l, wt_ctx *ctx);                 /* batch statistics, or NULL */
/* The layer's prepared buffer `which` (NULL if it has none), and in *stale whether it must be
 * derived again. The parameters change only between calls of the API, so what a layer derives
 * from them in the first block of a call serves every block after it in the call. */
float *wt_layer_prepared(const wt_layer *l, wt_ctx *ctx, int which, int *stale);
/* Whether backward must produce the gradient of slot `slot` (the net's input needs none). */
static inline int wt_wants_dslot(const wt_ctx *ctx, int32_t slot) {
  return ctx->want_dx || (slot != 0 && (!ctx->need_dslot || ctx->need_dslot[slot]));
}

/* conv2d.c: whether a conv's evaluation can run with its ReLU and 2x2 max-pool as one pass, and
 * that pass (writing the pool layer's output). */
int conv2d_fusable(const wt_layer *conv);
void conv2d_relu_pool_eval(const wt_layer *conv, const wt_layer *pool, wt_ctx *ctx);

extern const wt_op wt_op_conv, wt_op_linear, wt_op_relu, wt_op_gelu, wt_op_maxpool, wt_op_avgpool,
    wt_op_globalavg, wt_op_globalmax, wt_op_batchnorm, wt_op_dropout, wt_op_flatten, wt_op_scale, wt_op_add;

/* Batch norm: folds a step's summed statistics (groups = blocks in the batch) into the running ones. */
void batchnorm_update_running(const wt_layer *l, float *running, const float *stats, int32_t groups);

/* ---- augmentation (augment.c): how one image is read from its record ---- */

/* out(y, x) = in(y + dy, x') with x' = (flip ? W-1-x : x) + dx; outside the image: reflected
 * (pad WT_PAD_REFLECT) or the black pixel (WT_PAD_ZERO); then rows [cut_y0, cut_y1) x columns
 * [cut_x0, cut_x1) set to 0. */
typedef struct wt_view {
  int32_t flip, dy, dx, pad;
  int32_t cut_y0, cut_y1, cut_x0, cut_x1;
} wt_view;

int wt_view_is_identity(const wt_view *v);
/* The view of training record `record` in `epoch` under `config` for H x W images. */
void wt_augment_view(const wt_augment *config, int32_t epoch, uint32_t record, int H, int W, wt_view *out);
/* One image (C planes of H x W bytes at px) through a view into img (C, H, W), normalised by lut. */
void wt_decode_view(float *img, const uint8_t *px, const float (*lut)[256], int C, int H, int W, const wt_view *v);

/* ---- whitening (whiten.c) ---- */

/* Eigen-decomposition of the symmetric n x n matrix a (row-major, destroyed) by cyclic Jacobi
 * rotations in a fixed order: eigenvalues in descending order into values, eigenvector i into
 * row i of vectors (n x n), each with its largest-magnitude component positive (the first such
 * on ties). Deterministic on every platform. */
void wt_symmetric_eigen(double *a, int n, double *values, double *vectors);

/* Decodes records into normalised NCHW floats (format from the model) and their labels. */
void wt_decode_batch(float *images, uint8_t *labels, const wt_records *records, const uint32_t *indices, int batch,
                     const wt_data_format *format);

#endif /* WT_INTERNAL_H */
