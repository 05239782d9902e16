/* Each SIMD kernel against its scalar reference on every tail size, built with -msimd128 and run
 * under Node. Outputs sit between guard words: a kernel may never write outside C.
 * Exits non-zero and prints the first mismatches on failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if !WT_SIMD
#error "test_kernels checks the SIMD kernels: build it with -msimd128"
#endif

#define GUARD 16
#define GUARD_VALUE 12345.0f

static uint32_t rng = 12345;
static float uniform(void) {
  rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
  return (float)(rng >> 8) / 8388608.0f - 1.0f;
}
static float *guarded(size_t n) { /* n floats with GUARD sentinel floats on both sides */
  float *p = malloc(sizeof(float) * (n + 2 * GUARD));
  for (size_t i = 0; i < n + 2 * GUARD; i++) p[i] = GUARD_VALUE;
  return p + GUARD;
}
static void fill(float *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = uniform();
}
static int guards_intact(const float *p, size_t n) {
  for (int i = 1; i <= GUARD; i++)
    if (p[-i] != GUARD_VALUE || p[n - 1 + i] != GUARD_VALUE) return 0;
  return 1;
}

static int failures = 0, cases = 0;

/* exact: the SIMD kernel must reproduce the reference bit for bit (same summation order). */
static void compare(const char *what, int M, int N, int K, int acc, const float *got, const float *want,
                    size_t n, float tol) {
  cases++;
  int shown = 0;
  for (size_t i = 0; i < n; i++) {
    const float err = fabsf(got[i] - want[i]) / fmaxf(1.0f, fabsf(want[i]));
    if (!(err <= tol)) {
      if (shown++ < 3) {
        printf("MISMATCH %s M=%d N=%d K=%d acc=%d at %zu: simd %.9g ref %.9g\n", what, M, N, K, acc, i, got[i], want[i]);
      }
    }
  }
  if (shown) failures++;
}

static void test_gemm(int M, int N, int K, int acc, int transposed_a) {
  const int ldb = N + 3, ldc = N + 1; /* row strides wider than the rows */
  float *A = guarded((size_t)M * K), *B = guarded((size_t)K * ldb), *C1 = guarded((size_t)M * ldc), *C2 = guarded((size_t)M * ldc);
  fill(A, (size_t)M * K), fill(B, (size_t)K * ldb), fill(C1, (size_t)M * ldc);
  memcpy(C2, C1, sizeof(float) * M * ldc);
  const int a_row = transposed_a ? 1 : K, a_col = transposed_a ? M : 1;
  wt_gemm_nn(M, N, K, A, a_row, a_col, B, ldb, C1, ldc, acc);
  wt_gemm_nn_ref(M, N, K, A, a_row, a_col, B, ldb, C2, ldc, acc);
  compare(transposed_a ? "gemm_nn(A^T)" : "gemm_nn", M, N, K, acc, C1, C2, (size_t)M * ldc, 0.0f);
  if (!guards_intact(C1, (size_t)M * ldc)) printf("OVERWRITE gemm_nn M=%d N=%d K=%d\n", M, N, K), failures++;

  /* nt: B is (N, K) */
  const int lda = K + 2, ldbt = K + 1;
  float *At = guarded((size_t)M * lda), *Bt = guarded((size_t)N * ldbt);
  fill(At, (size_t)M * lda), fill(Bt, (size_t)N * ldbt);
  memcpy(C2, C1, sizeof(float) * M * ldc);
  wt_gemm_nt(M, N, K, At, lda, Bt, ldbt, C1, ldc, acc);
  wt_gemm_nt_ref(M, N, K, At, lda, Bt, ldbt, C2, ldc, acc);
  /* Lanes are summed in another order: agreement to float rounding of a K-term sum. */
  compare("gemm_nt", M, N, K, acc, C1, C2, (size_t)M * ldc, 4e-6f * (K + 1));
  if (!guards_intact(C1, (size_t)M * ldc)) printf("OVERWRITE gemm_nt M=%d N=%d K=%d\n", M, N, K), failures++;
  free(A - GUARD), free(B - GUARD), free(C1 - GUARD), free(C2 - GUARD), free(At - GUARD), free(Bt - GUARD);
}

static void test_elementwise(size_t n) {
  float *y1 = guarded(n), *y2 = guarded(n), *out = guarded(n), *d1 = guarded(n), *d2 = guarded(n);
  fill(y1, n), fill(out, n), fill(d1, n);
  if (n > 2) y1[1] = NAN, out[2] = 0.0f; /* NaN passes through ReLU; 0 closes the gate */
  memcpy(y2, y1, sizeof(float) * n), memcpy(d2, d1, sizeof(float) * n);
  wt_relu(y1, n), wt_relu_ref(y2, n);
  cases++;
  if (memcmp(y1, y2, sizeof(float) * n) != 0 || !guards_intact(y1, n)) printf("MISMATCH relu n=%zu\n", n), failures++;
  wt_relu_gate(d1, out, n), wt_relu_gate_ref(d2, out, n);
  cases++;
  if (memcmp(d1, d2, sizeof(float) * n) != 0 || !guards_intact(d1, n)) printf("MISMATCH relu_gate n=%zu\n", n), failures++;

  float *a1 = guarded(n), *a2 = guarded(n);
  fill(a1, n), fill(out, n);
  memcpy(a2, a1, sizeof(float) * n);
  wt_add(a1, out, n), wt_add_ref(a2, out, n);
  cases++;
  if (memcmp(a1, a2, sizeof(float) * n) != 0 || !guards_intact(a1, n)) printf("MISMATCH add n=%zu\n", n), failures++;

  float *p1 = guarded(n), *p2 = guarded(n), *g = guarded(n), *m1 = guarded(n), *m2 = guarded(n), *v1 = guarded(n), *v2 = guarded(n);
  fill(p1, n), fill(g, n), fill(m1, n);
  for (size_t i = 0; i < n; i++) v1[i] = fabsf(uniform());
  memcpy(p2, p1, sizeof(float) * n), memcpy(m2, m1, sizeof(float) * n), memcpy(v2, v1, sizeof(float) * n);
  const wt_adam_config cfg = {0.001, 0.9, 0.999, 1e-8};
  for (int t = 1; t <= 3; t++) {
    adam_update(p1, g, m1, v1, n, &cfg, t);
    adam_update_ref(p2, g, m2, v2, n, &cfg, t);
  }
  compare("adam params", 0, (int)n, 0, 0, p1, p2, n, 0.0f);
  compare("adam m", 0, (int)n, 0, 0, m1, m2, n, 0.0f);
  compare("adam v", 0, (int)n, 0, 0, v1, v2, n, 0.0f);
  if (!guards_intact(p1, n) || !guards_intact(m1, n) || !guards_intact(v1, n)) printf("OVERWRITE adam n=%zu\n", n), failures++;
}

static void test_conv_direct(int C, int H, int W, int OC, int K) {
  const int OH = H - K + 1, OW = W - K + 1;
  const size_t ni = (size_t)C * H * W, nw = (size_t)OC * C * K * K, no = (size_t)OC * OH * OW;
  float *inp = guarded(ni), *w = guarded(nw), *b = guarded(OC), *o1 = guarded(no), *o2 = guarded(no);
  fill(inp, ni), fill(w, nw), fill(b, OC);
  wt_conv2d_direct(o1, inp, w, b, C, H, W, OC, K);
  wt_conv2d_direct_ref(o2, inp, w, b, C, H, W, OC, K);
  /* Same terms in the same order: bias, then (c, ki, kj). */
  compare("conv2d_direct", OC, OW, C * K * K, 0, o1, o2, no, 0.0f);
  if (!guards_intact(o1, no)) printf("OVERWRITE conv2d_direct C=%d H=%d W=%d OC=%d K=%d\n", C, H, W, OC, K), failures++;
  free(inp - GUARD), free(w - GUARD), free(b - GUARD), free(o1 - GUARD), free(o2 - GUARD);
}

static void test_dweight_direct(int C, int H, int W, int OC, int K) {
  const int OH = H - K + 1, OW = W - K + 1;
  const size_t ni = (size_t)C * H * W, nw = (size_t)OC * C * K * K, no = (size_t)OC * OH * OW;
  float *inp = guarded(ni), *d = guarded(no), *w1 = guarded(nw), *w2 = guarded(nw);
  fill(inp, ni), fill(d, no), fill(w1, nw);
  memcpy(w2, w1, sizeof(float) * nw);
  wt_conv2d_dweight_direct(w1, d, inp, C, H, W, OC, K);
  wt_conv2d_dweight_direct_ref(w2, d, inp, C, H, W, OC, K);
  compare("conv2d_dweight_direct", OC, OW, OH * OW, 1, w1, w2, nw, 4e-6f * (OH * OW + 1));
  if (!guards_intact(w1, nw)) printf("OVERWRITE conv2d_dweight_direct C=%d H=%d W=%d OC=%d K=%d\n", C, H, W, OC, K), failures++;
  free(inp - GUARD), free(d - GUARD), free(w1 - GUARD), free(w2 - GUARD);
}

static void test_maxpool(int C, int H, int W, int with_ties) {
  const size_t ni = (size_t)C * H * W, no = (size_t)C * (H / 2) * (W / 2);
  float *inp = guarded(ni), *o1 = guarded(no), *o2 = guarded(no);
  uint8_t *a1 = malloc(no + 8), *a2 = malloc(no + 8);
  fill(inp, ni);
  if (with_ties)
    for (size_t i = 0; i < ni; i++) inp[i] = (float)((int)(inp[i] * 2)); /* -1, 0, 1: many ties */
  /* NaNs win, the last one in scan order: one alone, and two (of either sign) in one window */
  if (ni > 5) inp[5] = NAN;
  if (ni > (size_t)W + 9) inp[8] = NAN, inp[W + 9] = -NAN;
  memset(a1, 0xEE, no + 8), memset(a2, 0xEE, no + 8);
  maxpool2_forward(o1, a1, inp, 1, C, H, W);
  maxpool2_forward_ref(o2, a2, inp, 1, C, H, W);
  cases++;
  if (memcmp(o1, o2, sizeof(float) * no) != 0 || memcmp(a1, a2, no + 8) != 0 || !guards_intact(o1, no)) {
    printf("MISMATCH maxpool2 C=%d H=%d W=%d ties=%d\n", C, H, W, with_ties);
    failures++;
  }
  /* the general window at k = s = 2 (what odd sides took before) gives the same, argmax included */
  float *o3 = guarded(no);
  uint8_t *a3 = malloc(no + 8);
  memset(a3, 0xEE, no + 8);
  maxpool_forward(o3, a3, inp, 1, C, H, W, 2, 2, 0, H / 2, W / 2);
  cases++;
  if (memcmp(o3, o2, sizeof(float) * no) != 0 || memcmp(a3, a2, no + 8) != 0) {
    printf("MISMATCH maxpool2_forward_ref vs maxpool_forward(k=2, s=2) C=%d H=%d W=%d ties=%d\n", C, H, W, with_ties);
    failures++;
  }
  free(inp - GUARD), free(o1 - GUARD), free(o2 - GUARD), free(o3 - GUARD), free(a1), free(a2), free(a3);
}

/* Channel-vectorized direct convolution (transposed weights) against the column-order reference. */
static void test_conv_direct_oc(int C, int H, int W, int OC, int K) {
  const int OH = H - K + 1, OW = W - K + 1, CKK = C * K * K;
  const size_t ni = (size_t)C * H * W, nw = (size_t)OC * CKK, no = (size_t)OC * OH * OW;
  float *inp = guarded(ni), *w = guarded(nw), *wt = guarded(nw), *b = guarded(OC), *o1 = guarded(no), *o2 = guarded(no);
  fill(inp, ni), fill(w, nw), fill(b, OC);
  wt_conv2d_transpose_weight(wt, w, OC, CKK);
  wt_conv2d_direct_oc(o1, inp, wt, b, C, H, W, OC, K);
  wt_conv2d_direct_ref(o2, inp, w, b, C, H, W, OC, K);
  compare("conv2d_direct_oc", OC, OW, CKK, 0, o1, o2, no, 0.0f);
  if (!guards_intact(o1, no) || !guards_intact(wt, nw)) printf("OVERWRITE conv2d_direct_oc C=%d H=%d W=%d OC=%d K=%d\n", C, H, W, OC, K), failures++;
  free(inp - GUARD), free(w - GUARD), free(wt - GUARD), free(b - GUARD), free(o1 - GUARD), free(o2 - GUARD);
}

/* The fused inference kernels against their reference, and the reference against the training
 * path's three steps (convolution, ReLU, max-pool): the same values, bit for bit. */
static void test_conv_relu_pool(int C, int H, int W, int OC, int K) {
  const int OH = H - K + 1, OW = W - K + 1, CKK = C * K * K;
  const size_t ni = (size_t)C * H * W, nw = (size_t)OC * CKK, no = (size_t)OC * OH * OW, np = (size_t)OC * (OH / 2) * (OW / 2);
  float *inp = guarded(ni), *w = guarded(nw), *wt = guarded(nw), *b = guarded(OC), *conv = guarded(no);
  float *p1 = guarded(np), *p2 = guarded(np), *p3 = guarded(np);
  uint8_t *argmax = malloc(np + 1);
  fill(inp, ni), fill(w, nw), fill(b, OC);
  wt_conv2d_direct_ref(conv, inp, w, b, C, H, W, OC, K);
  wt_relu_ref(conv, no);
  maxpool2_forward_ref(p3, argmax, conv, OC, 1, OH, OW);
  wt_conv2d_relu_pool_ref(p2, inp, w, b, C, H, W, OC, K);
  compare("conv2d_relu_pool_ref vs conv, relu, pool", OC, OW, CKK, 0, p2, p3, np, 0.0f);
  wt_conv2d_relu_pool(p1, inp, w, b, C, H, W, OC, K);
  compare("conv2d_relu_pool", OC, OW, CKK, 0, p1, p2, np, 0.0f);
  if (!guards_intact(p1, np)) printf("OVERWRITE conv2d_relu_pool C=%d H=%d W=%d OC=%d K=%d\n", C, H, W, OC, K), failures++;
  if (OC == 8 || OC == 16) {
    wt_conv2d_transpose_weight(wt, w, OC, CKK);
    for (size_t i = 0; i < np; i++) p1[i] = GUARD_VALUE;
    wt_conv2d_relu_pool_oc(p1, inp, wt, b, C, H, W, OC, K);
    compare("conv2d_relu_pool_oc", OC, OW, CKK, 0, p1, p2, np, 0.0f);
    if (!guards_intact(p1, np)) printf("OVERWRITE conv2d_relu_pool_oc C=%d H=%d W=%d OC=%d K=%d\n", C, H, W, OC, K), failures++;
  }
  free(inp - GUARD), free(w - GUARD), free(wt - GUARD), free(b - GUARD), free(conv - GUARD);
  free(p1 - GUARD), free(p2 - GUARD), free(p3 - GUARD), free(argmax);
}

static void test_im2col(int C, int H, int W, int K) {
  const size_t n = (size_t)C * K * K * (H - K + 1) * (W - K + 1), ni = (size_t)C * H * W;
  float *inp = guarded(ni), *c1 = guarded(n), *c2 = guarded(n);
  fill(inp, ni);
  wt_im2col(c1, inp, C, H, W, K);
  wt_im2col_ref(c2, inp, C, H, W, K);
  cases++;
  if (memcmp(c1, c2, sizeof(float) * n) != 0 || !guards_intact(c1, n)) printf("MISMATCH im2col C=%d H=%d W=%d K=%d\n", C, H, W, K), failures++;
  /* col2im_add: the input pixels each column reads get its values added back. */
  float *d1 = guarded(ni), *d2 = guarded(ni);
  fill(d1, ni), fill(c1, n);
  memcpy(d2, d1, sizeof(float) * ni);
  wt_col2im_add(d1, c1, C, H, W, K);
  wt_col2im_add_ref(d2, c1, C, H, W, K);
  cases++;
  if (memcmp(d1, d2, sizeof(float) * ni) != 0 || !guards_intact(d1, ni)) printf("MISMATCH col2im_add C=%d H=%d W=%d K=%d\n", C, H, W, K), failures++;
  free(inp - GUARD), free(c1 - GUARD), free(c2 - GUARD), free(d1 - GUARD), free(d2 - GUARD);
}

int main(void) {
  /* Every output-width tail of the fused kernels: pooled columns from whole vectors (OW % 8),
   * half vectors (OW % 8 = 4..7) and single pixels, odd widths and heights, odd channel counts. */
  for (int OC = 1; OC <= 7; OC++)
    for (int W = 4; W <= 15; W++) test_conv_relu_pool(2, W % 5 + 4, W, OC, 3);
  for (int W = 4; W <= 11; W++) {
    test_conv_relu_pool(3, 7, W, 8, 3);
    test_conv_relu_pool(2, 6, W, 16, 2);
  }
  test_conv_relu_pool(3, 32, 32, 6, 5);
  test_conv_relu_pool(6, 14, 14, 16, 5);
  /* Pixel pairs and a single last pixel (odd OW), both channel counts. */
  for (int W = 3; W <= 10; W++) {
    test_conv_direct_oc(2, 5, W, 8, 3);
    test_conv_direct_oc(3, 4, W, 16, 2);
  }
  test_conv_direct_oc(6, 14, 14, 16, 5);
  for (int W = 1; W <= 14; W++) test_im2col(2, 4, W, W < 3 ? W : 3);
  test_im2col(6, 14, 14, 5);
  for (int W = 2; W <= 21; W++)
    for (int ties = 0; ties <= 1; ties++) test_maxpool(3, 5, W, ties), test_maxpool(2, 4, W, ties);
  /* the fast net's odd sides */
  test_maxpool(32, 31, 31, 0), test_maxpool(96, 15, 15, 0), test_maxpool(96, 7, 7, 1);
  test_maxpool(6, 28, 28, 0);
  test_maxpool(16, 10, 10, 1);
  /* Channel pairs and tap groups (K = 1..6) with every output-width tail. */
  for (int OC = 1; OC <= 5; OC++)
    for (int K = 1; K <= 6; K++)
      for (int W = K; W <= K + 9; W++) test_dweight_direct(2, K + 3, W, OC, K);
  test_dweight_direct(3, 32, 32, 6, 5);
  /* Every output-channel block (1..6, and 6+r) and output-width tail (OW % 4 = 0..3). */
  for (int OC = 1; OC <= 13; OC++)
    for (int W = 5; W <= 12; W++) test_conv_direct(2, 7, W, OC, 3);
  test_conv_direct(3, 32, 32, 6, 5);
  test_conv_direct(6, 14, 14, 16, 5);
  /* The forward kernels' own copies for K = 5 (WT_BY_KERNEL_SIZE in kernels.c), on the same tails. */
  for (int OC = 1; OC <= 7; OC++)
    for (int W = 6; W <= 17; W++) test_conv_relu_pool(2, W % 5 + 6, W, OC, 5);
  for (int W = 5; W <= 12; W++) {
    test_conv_relu_pool(3, 9, W + 4, 8, 5);
    test_conv_relu_pool(2, 8, W + 4, 16, 5);
    test_conv_direct_oc(2, 7, W, 8, 5);
    test_conv_direct_oc(3, 6, W, 16, 5);
  }
  for (int OC = 1; OC <= 13; OC++)
    for (int W = 7; W <= 14; W++) test_conv_direct(2, 9, W, OC, 5);
  for (int M = 1; M <= 13; M++)
    for (int N = 1; N <= 19; N++)
      for (int K = 1; K <= 11; K += 2)
        for (int acc = 0; acc <= 1; acc++)
          for (int tr = 0; tr <= 1; tr++) test_gemm(M, N, K, acc, tr);
  /* The network's own shapes. */
  const int shapes[][3] = {{6, 784, 75}, {16, 100, 150}, {6, 75, 784}, {16, 150, 100}, {150, 100, 16},
                           {64, 120, 400}, {120, 400, 64}, {64, 400, 120}, {64, 10, 84}, {10, 84, 64}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int acc = 0; acc <= 1; acc++) test_gemm(shapes[s][0], shapes[s][1], shapes[s][2], acc, 0);
  for (size_t n = 0; n <= 21; n++) test_elementwise(n);
  test_elementwise(62006);
  printf("kernels: %d cases, %d failed\n", cases, failures);
  return failures ? 1 : 0;
}
