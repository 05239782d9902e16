/* General convolution kernels (conv_kernels.h): the scalar references, and SIMD128 paths built
 * from two register-blocked micro-kernels over a zero-padded copy of one image in scratch.
 *
 * The copy splits every row into `stride` phases (column j goes to phase j % stride, index
 * j / stride), so the input columns one tap sees for consecutive output columns are consecutive
 * floats for any stride, and each tap (c, ki, kj) is one offset from the output pixel's base:
 * an implicit GEMM with no im2col copy (XNNPACK's IGEMM idea, with one offset per tap instead of
 * one pointer per pixel and tap, since a tile's pixels are contiguous).
 *   forward:          out (OC, P)  = weight (OC, CKK) x taps (CKK, P)      conv_igemm_mrxnr
 *   backward input:   per phase of the stride (input pixels (ph, pw) mod stride), a stride-1
 *                     correlation of padded dout with the weight taps that reach those pixels,
 *                     transposed and flipped                                conv_igemm_mrxnr
 *   backward params:  dweight (CKK, OC) += taps (CKK, P) x dout^T (P, OC)   conv_dwgemm_ntx8
 * where CKK = C*K*K and P = OH*OW. 3x3 stride-1 forward and backward input with >= 16 channels
 * take Winograd F(2x2, 3x3) instead (wino_correlate), its 16 products per tile as conv_igemm GEMMs,
 * and their backward params its transpose F(3x3, 2x2) (wino_backward_params) as conv_dwgemm GEMMs.
 * Tiles are sized for V8 on x64, which allocates 15 xmm registers: at most 8 accumulators. */
#include <stddef.h>
#include <string.h>

#include "internal.h"

#if WT_SIMD
#include <wasm_simd128.h>
#endif

int wt_conv_shape_init(wt_conv_shape *s) {
  if (s->C < 1 || s->H < 1 || s->W < 1 || s->OC < 1 || s->K < 1 || s->stride < 1 || s->pad < 0) return 0;
  if (s->H + 2 * s->pad < s->K || s->W + 2 * s->pad < s->K) return 0;
  s->OH = (s->H + 2 * s->pad - s->K) / s->stride + 1;
  s->OW = (s->W + 2 * s->pad - s->K) / s->stride + 1;
  return 1;
}

/* ---- scalar references: the definitions, one term at a time ---- */

/* Index in inp (B, C, H, W) of what tap (ki, kj) of output pixel (oh, ow) sees in channel c of
 * image b, or -1 where it sees padding. */
static inline ptrdiff_t tap_input(const wt_conv_shape *s, int b, int c, int oh, int ow, int ki, int kj) {
  const int ih = oh * s->stride + ki - s->pad, iw = ow * s->stride + kj - s->pad;
  if (ih < 0 || ih >= s->H || iw < 0 || iw >= s->W) return -1;
  return (((ptrdiff_t)b * s->C + c) * s->H + ih) * s->W + iw;
}

void wt_conv_forward_ref(const wt_conv_shape *s, int B, wt_real *out, const wt_real *inp,
                         const wt_real *weight, const wt_real *bias) {
  const int C = s->C, OC = s->OC, K = s->K, OH = s->OH, OW = s->OW;
  for (int b = 0; b < B; b++)
    for (int o = 0; o < OC; o++)
      for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
          wt_real sum = bias ? bias[o] : 0;
          for (int c = 0; c < C; c++)
            for (int ki = 0; ki < K; ki++)
              for (int kj = 0; kj < K; kj++) {
                const ptrdiff_t i = tap_input(s, b, c, oh, ow, ki, kj);
                if (i >= 0) sum += weight[(((size_t)o * C + c) * K + ki) * K + kj] * inp[i];
              }
          out[(((size_t)b * OC + o) * OH + oh) * OW + ow] = sum;
        }
}

void wt_conv_backward_params_ref(const wt_conv_shape *s, int B, wt_real *dweight, wt_real *dbias,
                                 const wt_real *dout, const wt_real *inp) {
  const int C = s->C, OC = s->OC, K = s->K, OH = s->OH, OW = s->OW;
  for (int o = 0; o < OC; o++) {
    if (dbias) {
      wt_real sum = 0;
      for (int b = 0; b < B; b++)
        for (int p = 0; p < OH * OW; p++) sum += dout[((size_t)b * OC + o) * OH * OW + p];
      dbias[o] += sum;
    }
    for (int c = 0; c < C; c++)
      for (int ki = 0; ki < K; ki++)
        for (int kj = 0; kj < K; kj++) {
          wt_real sum = 0;
          for (int b = 0; b < B; b++)
            for (int oh = 0; oh < OH; oh++)
              for (int ow = 0; ow < OW; ow++) {
                const ptrdiff_t i = tap_input(s, b, c, oh, ow, ki, kj);
                if (i >= 0) sum += dout[(((size_t)b * OC + o) * OH + oh) * OW + ow] * inp[i];
              }
          dweight[(((size_t)o * C + c) * K + ki) * K + kj] += sum;
        }
  }
}

void wt_conv_backward_input_ref(const wt_conv_shape *s, int B, wt_real *dinp, const wt_real *dout,
                                const wt_real *weight) {
  const int C = s->C, OC = s->OC, K = s->K, OH = s->OH, OW = s->OW;
  for (int b = 0; b < B; b++)
    for (int o = 0; o < OC; o++)
      for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
          const wt_real d = dout[(((size_t)b * OC + o) * OH + oh) * OW + ow];
          for (int c = 0; c < C; c++)
            for (int ki = 0; ki < K; ki++)
              for (int kj = 0; kj < K; kj++) {
                const ptrdiff_t i = tap_input(s, b, c, oh, ow, ki, kj);
                if (i >= 0) dinp[i] += weight[(((size_t)o * C + c) * K + ki) * K + kj] * d;
              }
        }
}

/* ---- the fast path's layout in scratch ---- */

#define CONV_MR 4 /* output channels per forward tile (splatted weights) */
#define CONV_NR 8 /* output columns per forward tile: two vectors */
#define DW_NT 4   /* taps per backward-params tile (splatted inputs) */
#define DW_OCV 8  /* output channels per backward-params tile: two vectors */

static int round_up(int n, int m) { return (n + m - 1) / m * m; }

/* A zero-padded image in scratch: `rows` rows of `phases` phase rows of Wq floats per channel. */
typedef struct conv_image {
  int rows, phases, Wq;
  size_t row, plane; /* floats per row (phases * Wq), per channel */
} conv_image;

/* n floats rounded up to an odd number of 64-byte lines: arrays read or written together (a
 * tile reads one row from each of many channels) then fall in different cache sets, where
 * power-of-2 strides (a 16x16 plane, Winograd's 16 products) would put them all in a few. */
static size_t skew(size_t n) {
  n = (n + 15) / 16 * 16;
  return n / 16 % 2 == 0 ? n + 16 : n;
}

static conv_image make_image(int rows, int phases, int Wq) {
  conv_image g = {rows, phases, Wq, (size_t)phases * Wq, skew((size_t)rows * phases * Wq)};
  return g;
}
/* What the forward and backward-params tiles read: the input padded by `pad`, split by the
 * stride; wide enough for whole CONV_NR-column tiles past the last output column. */
static conv_image input_image(const wt_conv_shape *s) {
  return make_image((s->OH - 1) * s->stride + s->K, s->stride, round_up(s->OW, CONV_NR) + (s->K - 1) / s->stride);
}
/* Backward input, one output phase of the stride along one dimension: the input rows
 * h = (first + u) * stride + ph - pad, u < count, are what kernel rows ki = ph + stride * a,
 * a < taps, write to (from output row first + u - a). A stride-1 correlation per phase, with no
 * multiplications by the zeros a dilated dout would hold. */
typedef struct conv_phase {
  int taps, first, count;
} conv_phase;

static conv_phase phase_of(int ph, int K, int stride, int pad, int H) {
  conv_phase p = {0, 0, 0};
  if (ph >= K || H - 1 + pad - ph < 0) return p;
  p.taps = (K - ph + stride - 1) / stride;
  p.first = pad >= ph ? (pad - ph + stride - 1) / stride : 0;
  p.count = (H - 1 + pad - ph) / stride - p.first + 1;
  if (p.count < 0) p.count = 0;
  return p;
}

/* What backward input reads: dout padded by ceil(K / stride) - 1 zeros (the most taps a phase
 * has, less one), and far enough for every phase's whole CONV_NR-column tiles. Also the largest
 * phase's rows and columns. */
static conv_image dout_image(const wt_conv_shape *s, int *max_rows, int *max_cols) {
  const int pd = (s->K + s->stride - 1) / s->stride - 1;
  int rows = 1, cols = 1;
  *max_rows = *max_cols = 0;
  for (int ph = 0; ph < s->stride; ph++) {
    const conv_phase r = phase_of(ph, s->K, s->stride, s->pad, s->H), c = phase_of(ph, s->K, s->stride, s->pad, s->W);
    if (r.count + r.first > rows) rows = r.count + r.first;
    if (round_up(c.count, CONV_NR) + c.first > cols) cols = round_up(c.count, CONV_NR) + c.first;
    if (r.count > *max_rows) *max_rows = r.count;
    if (c.count > *max_cols) *max_cols = c.count;
  }
  return make_image(rows + pd, 1, cols + pd);
}

/* Winograd F(2x2, 3x3) (Lavin and Gray; NNPACK, ncnn) for 3x3 stride-1 correlations: each 2x2
 * block of outputs from a 4x4 block of input in 16 products instead of 36. Tiles are taken 4 at a
 * time along a row (one vector each), so a row of tiles is padded to a multiple of 4. */
typedef struct wino_geom {
  int TH, TW4;  /* tile rows; tiles per row, rounded up to 4 */
  size_t T;     /* TH * TW4 */
  conv_image g; /* the padded input, split into 2 phases (even and odd columns) */
} wino_geom;

static wino_geom wino_of(int OH, int OW) {
  wino_geom w;
  w.TH = (OH + 1) / 2;
  w.TW4 = round_up((OW + 1) / 2, 4);
  w.T = (size_t)w.TH * w.TW4;
  w.g = make_image(2 * w.TH + 2, 2, w.TW4 + 1);
  return w;
}

/* Winograd's scratch for M outputs from N inputs: the input, its transform V (16, N, T), the
 * products (16, M, T) (both with the 16 skewed apart), the transformed weights
 * (16, ceil(M / CONV_MR), N, CONV_MR), N offsets. */
static size_t wino_floats(int M, int N, int OH, int OW) {
  const wino_geom w = wino_of(OH, OW);
  return (size_t)N * w.g.plane + 16 * (skew(w.T * N) + skew(w.T * M)) + (size_t)16 * round_up(M, CONV_MR) * N + N;
}

/* 3x3, stride 1, padding that the backward input's correlation can express, channels enough that
 * the transforms' cost (per channel and tile) is paid back by the products (per pair), and maps of
 * at least WINO_MIN_SIDE, in and out: a smaller map's tiles overhang it too far (a 3x3 map is 4
 * tiles of 4x4, padded to 8 in a row). In direct-convolution FLOPs against the direct kernels
 * (npm run bench:kernels, 3x3 same, 8x8 to 32x32): with 16 channels 1.05-1.25x, with 32 1.0-1.4x,
 * with 64 and 96 1.3-1.7x; the weight gradient of fast's conv1 (31x31) 2.2x, conv4 (7x7) 1.35x; on
 * a 3x3 map 0.65x forward and 0.9x for the weight gradient. */
#define WINO_MIN_CHANNELS 16
#define WINO_MIN_SIDE 5
static int use_winograd(const wt_conv_shape *s) {
  return s->K == 3 && s->stride == 1 && s->pad <= 2 && s->C >= WINO_MIN_CHANNELS && s->OC >= WINO_MIN_CHANNELS &&
         s->H >= WINO_MIN_SIDE && s->W >= WINO_MIN_SIDE && s->OH >= WINO_MIN_SIDE && s->OW >= WINO_MIN_SIDE;
}

/* The weight gradient's Winograd (wino_backward_params) sums the tiles of a group of images in one
 * GEMM, at least WINO_DW_TILES of them where WINO_DW_MAX_GROUP images hold that many. */
#define WINO_DW_TILES 128
#define WINO_DW_MAX_GROUP 8
/* The 2x2 output tiles that cover an image's OH x OW (wino_of's TH by the row's tiles before the
 * rounding to 4): the tiles the weight gradient sums. */
static int wino_dw_tiles(const wt_conv_shape *s) { return ((s->OH + 1) / 2) * ((s->OW + 1) / 2); }
static int wino_dw_group(const wt_conv_shape *s) {
  const int tiles = wino_dw_tiles(s);
  const int group = (WINO_DW_TILES + tiles - 1) / tiles;
  return group < WINO_DW_MAX_GROUP ? group : WINO_DW_MAX_GROUP;
}

/* img, V, packed dout, Z, the 16 accumulators, channel and tile offsets (wino_backward_params). */
static size_t wino_dw_floats(const wt_conv_shape *s) {
  const wino_geom w = wino_of(s->OH, s->OW);
  const size_t group = (size_t)wino_dw_group(s), tiles = (size_t)wino_dw_tiles(s);
  const size_t OCr = (size_t)round_up(s->OC, DW_OCV);
  return (size_t)s->C * w.g.plane + 16 * skew((size_t)s->C * group * w.T) + (size_t)s->OH * s->OW * OCr +
         16 * skew(OCr * group * tiles) + 16 * (size_t)s->C * OCr + (size_t)s->C + group * tiles;
}

/* Maps whose rows are one short tile (OW <= 4: the micro-kernel's 4-column form, 4 accumulators,
 * lanes idle past the row) are multiplied a group of images at a time: the pixels of the group
 * gathered into the columns of one matrix, so the micro-kernel runs whole tiles of 8 (fast's
 * conv6, 3x3 maps). Scratch beyond the per-image path's: each pixel's offset in a packed image,
 * each tap's row in the matrix, the matrix (taps, ldc) and the product (M, G * P). */
#define SMALL_MAP_COLUMNS 64
typedef struct small_map {
  int G, P;   /* images per group, pixels per image */
  size_t ldc; /* floats per row of the matrix: G * P, rounded up to whole tiles */
} small_map;
/* And maps of at most SMALL_MAP_COLUMNS pixels, with at most SMALL_MAP_TAPS taps (the matrix is
 * then at most 4 MiB). */
#define SMALL_MAP_TAPS 8192
static int use_small_map(int OW, int P, size_t nk) { return OW <= 4 && P <= SMALL_MAP_COLUMNS && nk <= SMALL_MAP_TAPS; }
static small_map small_map_of(int P) {
  const int G = (SMALL_MAP_COLUMNS + P - 1) / P;
  const small_map m = {G, P, (size_t)round_up(G * P, CONV_NR)};
  return m;
}
static size_t small_map_floats(int M, int nk, int P) {
  const small_map m = small_map_of(P);
  return (size_t)P + nk + (size_t)nk * m.ldc + (size_t)M * m.G * P;
}

size_t wt_conv_scratch_floats(const wt_conv_shape *s, int B) {
  (void)B; /* images are processed one at a time (a group of at most WINO_DW_MAX_GROUP for wino_dw) */
  const size_t CKK = (size_t)s->C * s->K * s->K, OCKK = (size_t)s->OC * s->K * s->K;
  const size_t OCr = (size_t)round_up(s->OC, DW_OCV);
  int phase_rows, phase_cols;
  const size_t dout_img = (size_t)s->OC * dout_image(s, &phase_rows, &phase_cols).plane;
  const size_t in_img = (size_t)s->C * input_image(s).plane;
  /* Offsets and pixel tables are int32, one float slot each. */
  const size_t P = (size_t)s->OH * s->OW;
  size_t forward = (size_t)round_up(s->OC, CONV_MR) * CKK + CKK + in_img;
  if (use_small_map(s->OW, (int)P, CKK)) forward += small_map_floats(s->OC, (int)CKK, (int)P);
  /* Each phase's packed weights and offsets (K*K taps in all), and with a stride one phase's
   * output, added into dinp afterwards. */
  const size_t phase_out = s->stride > 1 ? (size_t)s->C * phase_rows * phase_cols : 0;
  size_t input = (size_t)round_up(s->C, CONV_MR) * OCKK + OCKK + dout_img + phase_out;
  if (s->stride == 1 && use_small_map(s->W, s->H * s->W, OCKK)) input += small_map_floats(s->C, (int)OCKK, s->H * s->W);
  const size_t params = in_img + P * OCr + CKK * OCr + CKK + P;
  size_t most = forward > input ? forward : input;
  most = most > params ? most : params;
  if (use_winograd(s)) {
    const size_t wf = wino_floats(s->OC, s->C, s->OH, s->OW), wi = wino_floats(s->C, s->OC, s->H, s->W);
    most = most > wf ? most : wf;
    most = most > wi ? most : wi;
  }
  if (use_winograd(s)) {
    const size_t wd = wino_dw_floats(s);
    most = most > wd ? most : wd;
  }
  return most;
}

/* Each (image, channel) sum is one chain of adds in pixel order; BIAS_CHAINS channels' chains run
 * side by side, so the adds' latency overlaps and the sums are the same, bit for bit. */
#define BIAS_CHAINS 8
void wt_conv_backward_bias(const wt_conv_shape *s, int B, wt_real *dbias, const wt_real *dout) {
  const size_t P = (size_t)s->OH * s->OW;
  for (int b = 0; b < B; b++) {
    const wt_real *d = dout + (size_t)b * s->OC * P;
    int o = 0;
    for (; o + BIAS_CHAINS <= s->OC; o += BIAS_CHAINS) {
      wt_real sum[BIAS_CHAINS] = {0};
      for (size_t i = 0; i < P; i++)
        for (int k = 0; k < BIAS_CHAINS; k++) sum[k] += d[(size_t)(o + k) * P + i];
      for (int k = 0; k < BIAS_CHAINS; k++) dbias[o + k] += sum[k];
    }
    for (; o < s->OC; o++) {
      wt_real sum = 0;
      for (size_t i = 0; i < P; i++) sum += d[(size_t)o * P + i];
      dbias[o] += sum;
    }
  }
}

#if !WT_SIMD

size_t wt_conv_prepared_floats(const wt_conv_shape *s, int pass) {
  (void)s, (void)pass;
  return 0;
}
void wt_conv_prepare(const wt_conv_shape *s, int pass, wt_real *prepared, const wt_real *weight) {
  (void)s, (void)pass, (void)prepared, (void)weight;
}
void wt_conv_forward(const wt_conv_shape *s, int B, wt_real *out, const wt_real *inp,
                     const wt_real *weight, const wt_real *bias, const wt_real *prepared, wt_real *scratch) {
  (void)prepared, (void)scratch;
  wt_conv_forward_ref(s, B, out, inp, weight, bias);
}
void wt_conv_backward_params(const wt_conv_shape *s, int B, wt_real *dweight, wt_real *dbias,
                             const wt_real *dout, const wt_real *inp, wt_real *scratch) {
  (void)scratch;
  wt_conv_backward_params_ref(s, B, dweight, dbias, dout, inp);
}
void wt_conv_backward_input(const wt_conv_shape *s, int B, wt_real *dinp, const wt_real *dout,
                            const wt_real *weight, const wt_real *prepared, wt_real *scratch) {
  (void)prepared, (void)scratch;
  wt_conv_backward_input_ref(s, B, dinp, dout, weight);
}

#else /* WT_SIMD */

#define WT_INLINE static inline __attribute__((always_inline))

/* Logical pixel (i, j) of channel c, j < phases * Wq, is stored at
 * c * plane + i * row + (j % phases) * Wq + j / phases and holds src[i - off][j - off] (of that
 * channel), or 0 outside src. Rows are `phases` apart for a tap too (the stride), so with K < stride
 * taps, rows and phases at K and past, mod stride, are never read and not written. */
static void pack_image(float *dst, const conv_image *g, const float *src, int C, int H, int W, int off, int K) {
  const int st = g->phases, used = K < st ? K : st, Wq = g->Wq;
  for (int c = 0; c < C; c++)
    for (int i = 0; i < g->rows; i++) {
      if (i % st >= used) continue;
      float *d = dst + (size_t)c * g->plane + (size_t)i * g->row;
      const int y = i - off;
      if (y < 0 || y >= H) {
        memset(d, 0, sizeof(float) * used * Wq);
        continue;
      }
      const float *srow = src + ((size_t)c * H + y) * W;
      for (int r = 0; r < used; r++) {
        /* Phase r, index q holds column x = q * st + r - off: inside src for q in [lo, hi). */
        float *dr = d + (size_t)r * Wq;
        int lo = off - r <= 0 ? 0 : (off - r + st - 1) / st;
        int hi = W - 1 + off - r < 0 ? 0 : (W - 1 + off - r) / st + 1;
        if (lo > Wq) lo = Wq;
        if (hi > Wq) hi = Wq;
        if (hi < lo) hi = lo;
        memset(dr, 0, sizeof(float) * lo);
        if (st == 1) {
          memcpy(dr + lo, srow + lo - off, sizeof(float) * (hi - lo));
        } else {
          for (int q = lo; q < hi; q++) dr[q] = srow[q * st + r - off];
        }
        memset(dr + hi, 0, sizeof(float) * (Wq - hi));
      }
    }
}

/* Offset of tap (c, ki, kj) from the tile's base, taps in (c, ki, kj) order. */
static void tap_offsets(int32_t *off, const conv_image *g, int C, int K) {
  for (int c = 0; c < C; c++)
    for (int ki = 0; ki < K; ki++)
      for (int kj = 0; kj < K; kj++) {
        off[(c * K + ki) * K + kj] = (int32_t)(c * g->plane + ki * g->row + (size_t)(kj % g->phases) * g->Wq + kj / g->phases);
      }
}

/* mr (1..CONV_MR) rows x 4*nv (4 or 8) columns of out (rows `plane` floats apart; nc <= 4*nv
 * columns valid): row r gets init (bias[r], or 0 when bias is NULL) + sum over k < nk of
 * w[k][r] * x[off[k] + column], and is stored, or added to out when accumulate. w is packed
 * (nk, CONV_MR). Reads x[off[k] + 0..4*nv-1] whole (the image is padded for it); writes only the
 * nc valid columns. At most 8 accumulators, 2 inputs and 4 weight splats (when LLVM hoists an
 * iteration's loads): within V8's 15 allocatable xmm registers on x64. */
WT_INLINE void conv_igemm_mrxnr(int mr, int nv, int nk, const float *x, const int32_t *off, const float *w,
                                const float *bias, float *out, size_t plane, int nc, int accumulate) {
  v128_t vacc[CONV_MR][2];
  for (int r = 0; r < mr; r++)
    for (int v = 0; v < nv; v++) vacc[r][v] = wasm_f32x4_splat(bias ? bias[r] : 0.0f);
  for (int k = 0; k < nk; k++) {
    const float *xk = x + off[k];
    v128_t vx[2];
    for (int v = 0; v < nv; v++) vx[v] = wasm_v128_load(xk + 4 * v);
    const float *wk = w + (size_t)k * CONV_MR;
    for (int r = 0; r < mr; r++) {
      const v128_t vw = wasm_v128_load32_splat(wk + r);
      for (int v = 0; v < nv; v++) vacc[r][v] = wasm_f32x4_add(vacc[r][v], wasm_f32x4_mul(vw, vx[v]));
    }
  }
  for (int r = 0; r < mr; r++) {
    float *o = out + (size_t)r * plane;
    if (nc == 4 * nv) {
      for (int v = 0; v < nv; v++) {
        if (accumulate) vacc[r][v] = wasm_f32x4_add(wasm_v128_load(o + 4 * v), vacc[r][v]);
        wasm_v128_store(o + 4 * v, vacc[r][v]);
      }
    } else {
      float tile[8];
      for (int v = 0; v < nv; v++) wasm_v128_store(tile + 4 * v, vacc[r][v]);
      for (int j = 0; j < nc; j++) o[j] = accumulate ? o[j] + tile[j] : tile[j];
    }
  }
}

/* out (M, OH, OW) (=|+=) packed weights (ceil(M / CONV_MR), nk, CONV_MR) applied to the taps of
 * img: output pixel (oh, ow)'s tap k is img[oh * row_step + ow + off[k]]. Tiles of 8 columns, and
 * of 4 for a row's last 1..4. */
static void conv_igemm(int M, int nk, const float *wpack, const int32_t *off, const float *img,
                       size_t row_step, int OH, int OW, const float *bias, float *out, int accumulate) {
  const size_t plane = (size_t)OH * OW;
  for (int oh = 0; oh < OH; oh++)
    for (int ow = 0; ow < OW; ow += CONV_NR) {
      const int nc = OW - ow < CONV_NR ? OW - ow : CONV_NR;
      const float *x = img + oh * row_step + ow;
      for (int m = 0; m < M; m += CONV_MR) {
        const float *w = wpack + (size_t)m * nk, *b = bias ? bias + m : NULL;
        float *o = out + (size_t)m * plane + (size_t)oh * OW + ow;
        const int mr = M - m < CONV_MR ? M - m : CONV_MR;
#define IGEMM(mr_, nv) conv_igemm_mrxnr(mr_, nv, nk, x, off, w, b, o, plane, nc, accumulate)
        if (nc > 4) {
          switch (mr) { case 1: IGEMM(1, 2); break; case 2: IGEMM(2, 2); break; case 3: IGEMM(3, 2); break; default: IGEMM(4, 2); break; }
        } else {
          switch (mr) { case 1: IGEMM(1, 1); break; case 2: IGEMM(2, 1); break; case 3: IGEMM(3, 1); break; default: IGEMM(4, 1); break; }
        }
#undef IGEMM
      }
    }
}

/* Column i * P + p of tap k's row of col (ldc floats a row) = img[off[k] + pix[p]]: image i's
 * pixels as conv_igemm's tiles would read them. */
static void small_map_gather(float *col, const small_map *sm, int i, const float *img, const int32_t *off, int nk,
                             const int32_t *pix) {
  for (int k = 0; k < nk; k++) {
    const float *x = img + off[k];
    float *c = col + (size_t)k * sm->ldc + (size_t)i * sm->P;
    for (int p = 0; p < sm->P; p++) c[p] = x[pix[p]];
  }
}

/* out (n, M, P) (=|+=) packed weights applied to the n images gathered in col (koff[k] = k * ldc),
 * plus bias unless NULL, through Y (M, n * P). Each output sums its taps in order from its bias
 * (or 0) and is then stored or added, as the per-image tiles do: the same floats. */
static void small_map_multiply(const small_map *sm, int n, int M, int nk, const float *wpack, const int32_t *koff,
                               const float *col, const float *bias, float *Y, float *out, int accumulate) {
  const int P = sm->P, cols = n * P;
  conv_igemm(M, nk, wpack, koff, col, 0, 1, cols, bias, Y, 0);
  for (int i = 0; i < n; i++)
    for (int m = 0; m < M; m++) {
      float *o = out + ((size_t)i * M + m) * P;
      const float *y = Y + (size_t)m * cols + (size_t)i * P;
      for (int p = 0; p < P; p++) o[p] = accumulate ? o[p] + y[p] : y[p];
    }
}

/* out (B, M, P) (=|+=) the packed weights (M rows, nk taps at off in a packed image) applied to B
 * images of src (channels x H x W each, packed into img as g with `pad` and K), pixel p of a row
 * of OW at p / OW * row_step + p % OW, plus bias unless NULL: groups of images gathered into col
 * and multiplied. Kept out of line (and out of the passes that call it), so that the compiled
 * code of the per-image passes is not changed by it. */
__attribute__((noinline)) static void small_map_conv(int B, int M, int nk, const float *wpack, const int32_t *off,
                                                     float *img, const conv_image *g, const float *src, int channels,
                                                     int H, int W, int pad, int K, int OW, size_t row_step, int P,
                                                     const float *bias, float *out, int accumulate) {
  const small_map sm = small_map_of(P);
  int32_t *pix = (int32_t *)(img + (size_t)channels * g->plane), *koff = pix + P;
  float *col = (float *)(koff + nk), *Y = col + (size_t)nk * sm.ldc;
  for (int p = 0; p < P; p++) pix[p] = (int32_t)((p / OW) * row_step + p % OW);
  for (int k = 0; k < nk; k++) koff[k] = (int32_t)(k * sm.ldc);
  for (int b0 = 0; b0 < B; b0 += sm.G) {
    const int n = B - b0 < sm.G ? B - b0 : sm.G;
    for (int i = 0; i < n; i++) {
      pack_image(img, g, src + (size_t)(b0 + i) * channels * H * W, channels, H, W, pad, K);
      small_map_gather(col, &sm, i, img, off, nk, pix);
    }
    small_map_multiply(&sm, n, M, nk, wpack, koff, col, bias, Y, out + (size_t)b0 * M * P, accumulate);
  }
}

/* U = G g G^T for every (m, n) pair, packed per element xi of the 4x4 as conv_igemm's weights:
 * (16, ceil(M / CONV_MR), N, CONV_MR). g(m, n)[ki][kj] = w[m * sm + n * sn + ki * si + kj * sj]. */
static void wino_weights(float *U, int M, int N, const float *w, ptrdiff_t sm, ptrdiff_t sn, ptrdiff_t si, ptrdiff_t sj) {
  const int Mr = round_up(M, CONV_MR);
  for (int m = 0; m < Mr; m++)
    for (int n = 0; n < N; n++) {
      float g[3][3], t[4][3], u[4][4];
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) g[i][j] = m < M ? w[m * sm + n * sn + i * si + j * sj] : 0.0f;
      for (int j = 0; j < 3; j++) {
        t[0][j] = g[0][j];
        t[1][j] = 0.5f * (g[0][j] + g[1][j] + g[2][j]);
        t[2][j] = 0.5f * (g[0][j] - g[1][j] + g[2][j]);
        t[3][j] = g[2][j];
      }
      for (int i = 0; i < 4; i++) {
        u[i][0] = t[i][0];
        u[i][1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
        u[i][2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
        u[i][3] = t[i][2];
      }
      for (int xi = 0; xi < 16; xi++) {
        U[((size_t)xi * Mr + m - m % CONV_MR) * N + (size_t)n * CONV_MR + m % CONV_MR] = u[xi / 4][xi % 4];
      }
    }
}

/* V[xi][n][t] = (B^T d B)[xi] for the 4x4 input block d of every tile t, 4 tiles a vector;
 * channel n's tiles at V + n * nstep, the V[xi] xi_step floats apart. */
static void wino_input(float *V, const wino_geom *w, const float *img, int N, size_t nstep, size_t xi_step) {
  const conv_image *g = &w->g;
  for (int n = 0; n < N; n++)
    for (int th = 0; th < w->TH; th++)
      for (int tw = 0; tw < w->TW4; tw += 4) {
        /* Column 2*tile + j of the block is phase j % 2, index tile + j / 2. */
        const float *x = img + (size_t)n * g->plane + (size_t)2 * th * g->row + tw;
        v128_t t[4][4];
        for (int j = 0; j < 4; j++) {
          const float *xj = x + (j % 2) * g->Wq + j / 2;
          const v128_t d0 = wasm_v128_load(xj), d1 = wasm_v128_load(xj + g->row);
          const v128_t d2 = wasm_v128_load(xj + 2 * g->row), d3 = wasm_v128_load(xj + 3 * g->row);
          t[0][j] = wasm_f32x4_sub(d0, d2);
          t[1][j] = wasm_f32x4_add(d1, d2);
          t[2][j] = wasm_f32x4_sub(d2, d1);
          t[3][j] = wasm_f32x4_sub(d1, d3);
        }
        float *v = V + (size_t)n * nstep + (size_t)th * w->TW4 + tw;
        for (int i = 0; i < 4; i++) {
          wasm_v128_store(v + (4 * i + 0) * xi_step, wasm_f32x4_sub(t[i][0], t[i][2]));
          wasm_v128_store(v + (4 * i + 1) * xi_step, wasm_f32x4_add(t[i][1], t[i][2]));
          wasm_v128_store(v + (4 * i + 2) * xi_step, wasm_f32x4_sub(t[i][2], t[i][1]));
          wasm_v128_store(v + (4 * i + 3) * xi_step, wasm_f32x4_sub(t[i][1], t[i][3]));
        }
      }
}

/* out (M, OH, OW) (=|+=) A^T Y A of every tile's products Y[xi][m][t] (the Y[xi] skew(M * T)
 * floats apart), plus bias (M) unless NULL. */
static void wino_output(float *out, const float *Y, const wino_geom *w, int M, int OH, int OW, const float *bias,
                        int accumulate) {
  const size_t xi_step = skew((size_t)M * w->T);
  for (int m = 0; m < M; m++) {
    const v128_t vb = wasm_f32x4_splat(bias ? bias[m] : 0.0f);
    for (int th = 0; th < w->TH; th++)
      for (int tw = 0; tw < w->TW4; tw += 4) {
        const float *y = Y + (size_t)m * w->T + (size_t)th * w->TW4 + tw;
        v128_t u[2][4];
        for (int j = 0; j < 4; j++) {
          const v128_t y0 = wasm_v128_load(y + j * xi_step), y1 = wasm_v128_load(y + (4 + j) * xi_step);
          const v128_t y2 = wasm_v128_load(y + (8 + j) * xi_step), y3 = wasm_v128_load(y + (12 + j) * xi_step);
          u[0][j] = wasm_f32x4_add(wasm_f32x4_add(y0, y1), y2);
          u[1][j] = wasm_f32x4_sub(wasm_f32x4_sub(y1, y2), y3);
        }
        const int ow = 2 * tw, nc = OW - ow < 8 ? OW - ow : 8;
        if (nc <= 0) continue;
        for (int a = 0; a < 2 && 2 * th + a < OH; a++) {
          const v128_t ye = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_add(u[a][0], u[a][1]), u[a][2]), vb);
          const v128_t yo = wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_sub(u[a][1], u[a][2]), u[a][3]), vb);
          v128_t vy[2] = {wasm_i32x4_shuffle(ye, yo, 0, 4, 1, 5), wasm_i32x4_shuffle(ye, yo, 2, 6, 3, 7)};
          float *o = out + ((size_t)m * OH + 2 * th + a) * OW + ow;
          if (nc == 8) {
            for (int v = 0; v < 2; v++) {
              if (accumulate) vy[v] = wasm_f32x4_add(wasm_v128_load(o + 4 * v), vy[v]);
              wasm_v128_store(o + 4 * v, vy[v]);
            }
          } else {
            float row[8];
            wasm_v128_store(row, vy[0]);
            wasm_v128_store(row + 4, vy[1]);
            for (int j = 0; j < nc; j++) o[j] = accumulate ? o[j] + row[j] : row[j];
          }
        }
      }
  }
}

/* out (M, OH, OW) (=|+=) the 3x3 correlation of img (N channels, padded, laid out by wino_of) with
 * the transformed weights U (wino_weights), plus bias unless NULL. work: wino_floats' V, Y, offsets. */
static void wino_correlate(float *out, const float *img, const wino_geom *w, const float *U, int M, int N, int OH,
                           int OW, const float *bias, int accumulate, float *work) {
  const size_t vstep = skew((size_t)N * w->T), ystep = skew((size_t)M * w->T);
  float *V = work, *Y = V + 16 * vstep;
  int32_t *off = (int32_t *)(Y + 16 * ystep);
  for (int n = 0; n < N; n++) off[n] = (int32_t)(n * w->T);
  wino_input(V, w, img, N, w->T, vstep);
  const int Mr = round_up(M, CONV_MR);
  for (int xi = 0; xi < 16; xi++) {
    conv_igemm(M, N, U + (size_t)xi * Mr * N, off, V + xi * vstep, 0, 1, (int)w->T, NULL, Y + xi * ystep, 0);
  }
  wino_output(out, Y, w, M, OH, OW, bias, accumulate);
}

size_t wt_conv_prepared_floats(const wt_conv_shape *s, int pass) {
  if (!use_winograd(s)) return 0;
  return (size_t)16 * (pass == WT_CONV_PASS_FORWARD ? round_up(s->OC, CONV_MR) * s->C : round_up(s->C, CONV_MR) * s->OC);
}

/* The forward correlates with the weight as it is; the input gradient with it flipped and its
 * channels swapped: g(c, o)[i][j] = weight[o][c][2 - i][2 - j]. */
void wt_conv_prepare(const wt_conv_shape *s, int pass, float *prepared, const float *weight) {
  if (!use_winograd(s)) return;
  if (pass == WT_CONV_PASS_FORWARD) {
    wino_weights(prepared, s->OC, s->C, weight, (ptrdiff_t)s->C * 9, 9, 3, 1);
  } else {
    wino_weights(prepared, s->C, s->OC, weight + 8, 9, (ptrdiff_t)s->C * 9, -3, -1);
  }
}

void wt_conv_forward(const wt_conv_shape *s, int B, float *out, const float *inp, const float *weight,
                     const float *bias, const float *prepared, float *scratch) {
  const int C = s->C, OC = s->OC, CKK = C * s->K * s->K;
  if (use_winograd(s)) {
    const wino_geom w = wino_of(s->OH, s->OW);
    float *img = scratch + wt_conv_prepared_floats(s, WT_CONV_PASS_FORWARD), *work = img + (size_t)C * w.g.plane;
    const float *U = prepared;
    if (!U) wt_conv_prepare(s, WT_CONV_PASS_FORWARD, scratch, weight), U = scratch;
    for (int b = 0; b < B; b++) {
      pack_image(img, &w.g, inp + (size_t)b * C * s->H * s->W, C, s->H, s->W, s->pad, 3);
      wino_correlate(out + (size_t)b * OC * s->OH * s->OW, img, &w, U, OC, C, s->OH, s->OW, bias, 0, work);
    }
    return;
  }
  const conv_image g = input_image(s);
  float *wpack = scratch;
  int32_t *off = (int32_t *)(wpack + (size_t)round_up(OC, CONV_MR) * CKK);
  float *img = (float *)(off + CKK);
  for (int m = 0; m < OC; m += CONV_MR)
    for (int k = 0; k < CKK; k++)
      for (int r = 0; r < CONV_MR; r++) {
        wpack[((size_t)m * CKK) + (size_t)k * CONV_MR + r] = m + r < OC ? weight[(size_t)(m + r) * CKK + k] : 0.0f;
      }
  tap_offsets(off, &g, C, s->K);
  const int P = s->OH * s->OW;
  if (use_small_map(s->OW, P, (size_t)CKK)) {
    small_map_conv(B, OC, CKK, wpack, off, img, &g, inp, C, s->H, s->W, s->pad, s->K, s->OW, s->stride * g.row, P, bias,
                   out, 0);
    return;
  }
  for (int b = 0; b < B; b++) {
    pack_image(img, &g, inp + (size_t)b * C * s->H * s->W, C, s->H, s->W, s->pad, s->K);
    conv_igemm(OC, CKK, wpack, off, img, s->stride * g.row, s->OH, s->OW, bias, out + (size_t)b * OC * P, 0);
  }
}

void wt_conv_backward_input(const wt_conv_shape *s, int B, float *dinp, const float *dout, const float *weight,
                            const float *prepared, float *scratch) {
  const int C = s->C, H = s->H, W = s->W, OC = s->OC, K = s->K, st = s->stride;
  if (use_winograd(s)) { /* dinp += dout padded by 2 - pad, correlated with the flipped weight */
    const wino_geom w = wino_of(H, W);
    float *img = scratch + wt_conv_prepared_floats(s, WT_CONV_PASS_INPUT), *work = img + (size_t)OC * w.g.plane;
    const float *U = prepared;
    if (!U) wt_conv_prepare(s, WT_CONV_PASS_INPUT, scratch, weight), U = scratch;
    for (int b = 0; b < B; b++) {
      pack_image(img, &w.g, dout + (size_t)b * OC * s->OH * s->OW, OC, s->OH, s->OW, 2 - s->pad, 3);
      wino_correlate(dinp + (size_t)b * C * H * W, img, &w, U, C, OC, H, W, NULL, 1, work);
    }
    return;
  }
  const int pd = (K + st - 1) / st - 1, Cr = round_up(C, CONV_MR);
  int phase_rows, phase_cols;
  const conv_image g = dout_image(s, &phase_rows, &phase_cols);
  float *wpack = scratch; /* per phase (Cr / CONV_MR, OC * taps, CONV_MR) */
  int32_t *off = (int32_t *)(wpack + (size_t)Cr * OC * K * K);
  float *img = (float *)(off + OC * K * K);
  float *phase_out = img + (size_t)OC * g.plane;
  /* Phase (ph, pw), tap (o, a, b) in flipped order: weight[o][c][ph + st*(A-1-a)][pw + st*(B-1-b)],
   * at dout pixel (u + first_h - (A-1-a), v + first_w - (B-1-b)) of output (u, v). */
  size_t k0 = 0;
  for (int ph = 0; ph < st; ph++)
    for (int pw = 0; pw < st; pw++) {
      const conv_phase r = phase_of(ph, K, st, s->pad, H), c = phase_of(pw, K, st, s->pad, W);
      const int nk = OC * r.taps * c.taps;
      for (int o = 0; o < OC; o++)
        for (int a = 0; a < r.taps; a++)
          for (int b = 0; b < c.taps; b++) {
            const size_t k = ((size_t)o * r.taps + a) * c.taps + b;
            const int ki = ph + st * (r.taps - 1 - a), kj = pw + st * (c.taps - 1 - b);
            off[k0 + k] = (int32_t)(o * g.plane + (size_t)(a + r.first - r.taps + 1 + pd) * g.row + b + c.first - c.taps + 1 + pd);
            for (int m = 0; m < Cr; m++) {
              wpack[(size_t)Cr * k0 + (size_t)(m / CONV_MR) * CONV_MR * nk + k * CONV_MR + m % CONV_MR] =
                  m < C ? weight[(((size_t)o * C + m) * K + ki) * K + kj] : 0.0f;
            }
          }
      k0 += nk;
    }
  if (st == 1 && use_small_map(W, H * W, (size_t)OC * K * K)) { /* one phase of all OC * K * K taps, over the whole of dinp */
    small_map_conv(B, C, OC * K * K, wpack, off, img, &g, dout, OC, s->OH, s->OW, pd, 1, W, g.row, H * W, NULL, dinp, 1);
    return;
  }
  for (int b = 0; b < B; b++) {
    float *dinp_b = dinp + (size_t)b * C * H * W;
    pack_image(img, &g, dout + (size_t)b * OC * s->OH * s->OW, OC, s->OH, s->OW, pd, 1);
    k0 = 0;
    for (int ph = 0; ph < st; ph++)
      for (int pw = 0; pw < st; pw++) {
        const conv_phase r = phase_of(ph, K, st, s->pad, H), c = phase_of(pw, K, st, s->pad, W);
        const int nk = OC * r.taps * c.taps;
        if (nk > 0 && r.count > 0 && c.count > 0) {
          if (st == 1) { /* one phase, the whole of dinp: accumulate in place */
            conv_igemm(C, nk, wpack, off, img, g.row, H, W, NULL, dinp_b, 1);
          } else {
            conv_igemm(C, nk, wpack + (size_t)Cr * k0, off + k0, img, g.row, r.count, c.count, NULL, phase_out, 0);
            for (int ch = 0; ch < C; ch++)
              for (int u = 0; u < r.count; u++) {
                float *d = dinp_b + ((size_t)ch * H + (size_t)(r.first + u) * st + ph - s->pad) * W + (size_t)c.first * st + pw - s->pad;
                const float *src = phase_out + ((size_t)ch * r.count + u) * c.count;
                for (int v = 0; v < c.count; v++) d[(size_t)v * st] += src[v];
              }
          }
        }
        k0 += nk;
      }
  }
}

/* nt (1..DW_NT) taps x 8 output channels of dweight^T: acc[t][0..7] += sum over p < P of
 * x[t][pix[p]] * dpack[p][0..7], x[t] being the tap's base in the image. 8 accumulators, 2 dout
 * vectors and 4 input splats: even with every load of an iteration hoisted (LLVM schedules wasm
 * without register pressure in mind), 15 xmm registers hold them, V8's count on x64. The loop
 * stays rolled for the same reason. */
WT_INLINE void conv_dwgemm_ntx8(int nt, const float *img, const int32_t *toff, const int32_t *pix, int P,
                                const float *dpack, float *acc, size_t lda) {
  v128_t vacc0123[DW_NT], vacc4567[DW_NT];
  const float *x[DW_NT];
  for (int t = 0; t < nt; t++) {
    vacc0123[t] = vacc4567[t] = wasm_f32x4_splat(0.0f);
    x[t] = img + toff[t];
  }
#pragma clang loop unroll(disable)
  for (int p = 0; p < P; p++) {
    const float *d = dpack + (size_t)p * DW_OCV;
    const v128_t vd0123 = wasm_v128_load(d), vd4567 = wasm_v128_load(d + 4);
    const int32_t q = pix[p];
    for (int t = 0; t < nt; t++) {
      const v128_t vx = wasm_v128_load32_splat(x[t] + q);
      vacc0123[t] = wasm_f32x4_add(vacc0123[t], wasm_f32x4_mul(vx, vd0123));
      vacc4567[t] = wasm_f32x4_add(vacc4567[t], wasm_f32x4_mul(vx, vd4567));
    }
  }
  for (int t = 0; t < nt; t++) {
    float *a = acc + (size_t)t * lda;
    wasm_v128_store(a, wasm_f32x4_add(wasm_v128_load(a), vacc0123[t]));
    wasm_v128_store(a + 4, wasm_f32x4_add(wasm_v128_load(a + 4), vacc4567[t]));
  }
}

/* dpack (ceil(OC / 8), P, 8) = dout (OC, P) transposed in blocks of 8 channels, zero past OC:
 * 4x4 blocks through registers (a 1x1 convolution does only 2*C multiply-adds per element). */
static void pack_dout(float *dpack, const float *dout, int OC, int P) {
  const v128_t vzero = wasm_f32x4_splat(0.0f);
  const int P4 = P & ~3;
  for (int o = 0; o < OC; o += 4) {
    float *d = dpack + (size_t)(o / DW_OCV) * P * DW_OCV + o % DW_OCV;
    const float *src[4];
    for (int i = 0; i < 4; i++) src[i] = o + i < OC ? dout + (size_t)(o + i) * P : NULL;
    for (int p = 0; p < P4; p += 4) {
      v128_t v[4];
      for (int i = 0; i < 4; i++) v[i] = src[i] ? wasm_v128_load(src[i] + p) : vzero;
      const v128_t t01lo = wasm_i32x4_shuffle(v[0], v[1], 0, 4, 1, 5), t01hi = wasm_i32x4_shuffle(v[0], v[1], 2, 6, 3, 7);
      const v128_t t23lo = wasm_i32x4_shuffle(v[2], v[3], 0, 4, 1, 5), t23hi = wasm_i32x4_shuffle(v[2], v[3], 2, 6, 3, 7);
      wasm_v128_store(d + (size_t)(p + 0) * DW_OCV, wasm_i32x4_shuffle(t01lo, t23lo, 0, 1, 4, 5));
      wasm_v128_store(d + (size_t)(p + 1) * DW_OCV, wasm_i32x4_shuffle(t01lo, t23lo, 2, 3, 6, 7));
      wasm_v128_store(d + (size_t)(p + 2) * DW_OCV, wasm_i32x4_shuffle(t01hi, t23hi, 0, 1, 4, 5));
      wasm_v128_store(d + (size_t)(p + 3) * DW_OCV, wasm_i32x4_shuffle(t01hi, t23hi, 2, 3, 6, 7));
    }
    for (int p = P4; p < P; p++)
      for (int i = 0; i < 4; i++) d[(size_t)p * DW_OCV + i] = src[i] ? src[i][p] : 0.0f;
  }
  if (OC % DW_OCV != 0 && OC % DW_OCV <= 4) { /* the last block's upper half */
    float *d = dpack + (size_t)(OC / DW_OCV) * P * DW_OCV + 4;
    for (int p = 0; p < P; p++) wasm_v128_store(d + (size_t)p * DW_OCV, vzero);
  }
}

/* Z[xi][ob][p][0..7] = (Â dY Â^T)[xi] for every valid tile p = th * ceil(OW / 2) + tw of one
 * image, dY its 2x2 block of dout (zero past OH, OW) read from dpack (pack_dout's layout); the
 * Z[xi] zstep floats apart, the 8-channel blocks ob ob_step. Â is F(2x2, 3x3)'s A with its last row
 * negated, [1 0; 1 1; 1 -1; 0 1], so that no lane is negated here (wino_dw_output undoes it). */
static void wino_dout(float *Z, size_t zstep, size_t ob_step, const float *dpack, int OCr, int OH, int OW) {
  const int TH = (OH + 1) / 2, TWv = (OW + 1) / 2;
  const v128_t vzero = wasm_f32x4_splat(0.0f);
  for (int ob = 0; ob < OCr / DW_OCV; ob++) {
    const float *d = dpack + (size_t)ob * OH * OW * DW_OCV;
    for (int th = 0; th < TH; th++)
      for (int tw = 0; tw < TWv; tw++) {
        float *z = Z + (size_t)ob * ob_step + (size_t)(th * TWv + tw) * DW_OCV;
        for (int half = 0; half < DW_OCV; half += 4) {
          v128_t y[2][2], r[4][2];
          for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++) {
              const int oh = 2 * th + a, ow = 2 * tw + b;
              y[a][b] = oh < OH && ow < OW ? wasm_v128_load(d + ((size_t)oh * OW + ow) * DW_OCV + half) : vzero;
            }
          for (int b = 0; b < 2; b++) {
            r[0][b] = y[0][b];
            r[1][b] = wasm_f32x4_add(y[0][b], y[1][b]);
            r[2][b] = wasm_f32x4_sub(y[0][b], y[1][b]);
            r[3][b] = y[1][b];
          }
          for (int i = 0; i < 4; i++) {
            wasm_v128_store(z + (4 * i + 0) * zstep + half, r[i][0]);
            wasm_v128_store(z + (4 * i + 1) * zstep + half, wasm_f32x4_add(r[i][0], r[i][1]));
            wasm_v128_store(z + (4 * i + 2) * zstep + half, wasm_f32x4_sub(r[i][0], r[i][1]));
            wasm_v128_store(z + (4 * i + 3) * zstep + half, r[i][1]);
          }
        }
      }
  }
}

/* dweight (OC, C, 3, 3) += Ĝ^T M Ĝ for every (oc, c), M[xi] = acc[xi][c][oc] (acc (16, C, OCr)), Ĝ
 * F(2x2, 3x3)'s G with its last row negated (the sign wino_dout left out of Â). */
static void wino_dw_output(float *dweight, const float *acc, int C, int OC, int OCr) {
  const size_t xi_step = (size_t)C * OCr;
  for (int oc = 0; oc < OC; oc++)
    for (int c = 0; c < C; c++) {
      const float *m = acc + (size_t)c * OCr + oc;
      float t[3][4];
      for (int j = 0; j < 4; j++) {
        const float m0 = m[j * xi_step], m1 = m[(4 + j) * xi_step], m2 = m[(8 + j) * xi_step], m3 = m[(12 + j) * xi_step];
        t[0][j] = m0 + 0.5f * (m1 + m2);
        t[1][j] = 0.5f * (m1 - m2);
        t[2][j] = 0.5f * (m1 + m2) - m3;
      }
      float *dw = dweight + ((size_t)oc * C + c) * 9;
      for (int k = 0; k < 3; k++) {
        dw[3 * k + 0] += t[k][0] + 0.5f * (t[k][1] + t[k][2]);
        dw[3 * k + 1] += 0.5f * (t[k][1] - t[k][2]);
        dw[3 * k + 2] += 0.5f * (t[k][1] + t[k][2]) - t[k][3];
      }
    }
}

/* The weight gradient by Winograd F(3x3, 2x2), the transpose of the forward's F(2x2, 3x3) (Lavin
 * and Gray, section 4): dg = G^T [sum over tiles t of (A dY_t A^T) .* (B^T d_t B)] G, d_t the
 * forward's 4x4 input block and dY_t the tile's 2x2 of dout. Per element xi of the 4x4 the sum is a
 * GEMM, channels (C) x tiles by tiles x output channels (OC): conv_dwgemm_ntx8, with channels for
 * its taps and tiles for its pixels. 16 products per tile and pair instead of 36. The tiles of a
 * group of images are summed in one GEMM, so that small maps still make long sums. */
static void wino_backward_params(const wt_conv_shape *s, int B, float *dweight, float *dbias, const float *dout,
                                 const float *inp, float *scratch) {
  const int C = s->C, OC = s->OC, OCr = round_up(OC, DW_OCV), P = s->OH * s->OW;
  const wino_geom w = wino_of(s->OH, s->OW);
  const int group = wino_dw_group(s), tiles = wino_dw_tiles(s), TWv = (s->OW + 1) / 2;
  const size_t vstep = skew((size_t)C * group * w.T), zstep = skew((size_t)OCr * group * tiles);
  const size_t ob_step = (size_t)group * tiles * DW_OCV;
  float *img = scratch, *V = img + (size_t)C * w.g.plane, *dpack = V + 16 * vstep, *Z = dpack + (size_t)P * OCr;
  float *acc = Z + 16 * zstep; /* (16, C, OCr) */
  int32_t *off = (int32_t *)(acc + (size_t)16 * C * OCr), *pix = off + C;
  for (int c = 0; c < C; c++) off[c] = (int32_t)((size_t)c * group * w.T);
  for (int g = 0, p = 0; g < group; g++)
    for (int th = 0; th < w.TH; th++)
      for (int tw = 0; tw < TWv; tw++) pix[p++] = (int32_t)(g * w.T + (size_t)th * w.TW4 + tw);
  memset(acc, 0, sizeof(float) * 16 * C * OCr);
  for (int b0 = 0; b0 < B; b0 += group) {
    const int n = B - b0 < group ? B - b0 : group;
    for (int g = 0; g < n; g++) {
      const float *dout_b = dout + (size_t)(b0 + g) * OC * P;
      pack_image(img, &w.g, inp + (size_t)(b0 + g) * C * s->H * s->W, C, s->H, s->W, s->pad, 3);
      wino_input(V + (size_t)g * w.T, &w, img, C, (size_t)group * w.T, vstep);
      pack_dout(dpack, dout_b, OC, P);
      wino_dout(Z + (size_t)g * tiles * DW_OCV, zstep, ob_step, dpack, OCr, s->OH, s->OW);
      if (dbias) wt_conv_backward_bias(s, 1, dbias, dout_b);
    }
    for (int xi = 0; xi < 16; xi++)
      for (int ob = 0; ob < OCr; ob += DW_OCV)
        for (int c = 0; c < C; c += DW_NT) {
          const float *z = Z + xi * zstep + (size_t)(ob / DW_OCV) * ob_step;
          float *a = acc + (size_t)xi * C * OCr + (size_t)c * OCr + ob;
          switch (C - c) {
#define DWGEMM(nt) conv_dwgemm_ntx8(nt, V + xi * vstep, off + c, pix, n * tiles, z, a, OCr)
            case 1: DWGEMM(1); break;
            case 2: DWGEMM(2); break;
            case 3: DWGEMM(3); break;
            default: DWGEMM(4); break;
#undef DWGEMM
          }
        }
  }
  wino_dw_output(dweight, acc, C, OC, OCr);
}

void wt_conv_backward_params(const wt_conv_shape *s, int B, float *dweight, float *dbias, const float *dout,
                             const float *inp, float *scratch) {
  if (use_winograd(s)) {
    wino_backward_params(s, B, dweight, dbias, dout, inp, scratch);
    return;
  }
  const int C = s->C, OC = s->OC, CKK = C * s->K * s->K, OW = s->OW, P = s->OH * s->OW;
  const int OCr = round_up(OC, DW_OCV);
  const conv_image g = input_image(s);
  float *img = scratch;
  float *dpack = img + (size_t)C * g.plane; /* (OCr / 8, P, 8), zero past OC */
  float *acc = dpack + (size_t)P * OCr;      /* dweight^T (CKK, OCr) */
  int32_t *off = (int32_t *)(acc + (size_t)CKK * OCr);
  int32_t *pix = off + CKK; /* image offset of each output pixel */
  tap_offsets(off, &g, C, s->K);
  for (int p = 0; p < P; p++) pix[p] = (int32_t)((p / OW) * s->stride * g.row + p % OW);
  memset(acc, 0, sizeof(float) * CKK * OCr);
  for (int b = 0; b < B; b++) {
    const float *dout_b = dout + (size_t)b * OC * P;
    pack_image(img, &g, inp + (size_t)b * C * s->H * s->W, C, s->H, s->W, s->pad, s->K);
    pack_dout(dpack, dout_b, OC, P);
    for (int o = 0; o < OCr; o += DW_OCV)
      for (int t = 0; t < CKK; t += DW_NT) {
        const float *d = dpack + (size_t)o * P;
        float *a = acc + (size_t)t * OCr + o;
        switch (CKK - t) {
#define DWGEMM(nt) conv_dwgemm_ntx8(nt, img, off + t, pix, P, d, a, OCr)
          case 1: DWGEMM(1); break;
          case 2: DWGEMM(2); break;
          case 3: DWGEMM(3); break;
          default: DWGEMM(4); break;
#undef DWGEMM
        }
      }
    if (dbias) wt_conv_backward_bias(s, 1, dbias, dout_b);
  }
  for (int o = 0; o < OC; o++)
    for (int t = 0; t < CKK; t++) dweight[(size_t)o * CKK + t] += acc[(size_t)t * OCr + o];
}

#endif /* WT_SIMD */
