/* General 2-D convolution kernels (issue 9): any C, OC, square kernel K, stride and symmetric
 * zero padding, NCHW tensors in PyTorch's layouts. Included by internal.h.
 *
 * Each of the three passes has a scalar reference (plain loops over wt_real, so the gradient
 * check can build it in double) and a fast version, which on a SIMD128 build packs the weights
 * and a zero-padded copy of one image into `scratch` and runs register-blocked micro-kernels
 * (conv_kernels.c); on every other build it is the reference. The fast versions sum in another
 * order than the references (and 3x3 stride-1 ones with >= 16 channels use Winograd F(2x2, 3x3)):
 * they agree to float rounding (tests hold them to 1e-5 relative L2 per tensor).
 *
 * Buffer contract: out, dinp, dweight, dbias are written only inside their tensors; inputs are
 * read only inside theirs, and so are prepared weights when given; scratch (wt_conv_scratch_floats floats, allocated once by the caller,
 * no alignment needed, one buffer for all three passes, nothing kept in it between calls) is the
 * only other memory touched. Nothing is allocated. */
#ifndef WT_CONV_KERNELS_H
#define WT_CONV_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef struct wt_conv_shape {
  int32_t C, H, W;            /* input of one image */
  int32_t OC, K, stride, pad; /* pad zeros on every side */
  int32_t OH, OW;             /* (H + 2*pad - K) / stride + 1, likewise W */
} wt_conv_shape;

/* Fills OH and OW from the rest; returns 0 when the shape has no output (kernel larger than the
 * padded input) or a field is out of range, else 1. */
int wt_conv_shape_init(wt_conv_shape *s);

/* Floats of scratch one call of any of the three passes needs on B images (at most: it does not
 * grow with B). The caller allocates it once, at plan time. */
size_t wt_conv_scratch_floats(const wt_conv_shape *s, int B);

/* What the forward (pass WT_CONV_PASS_FORWARD) or the input gradient (WT_CONV_PASS_INPUT) derives
 * from the weight alone before it touches an image: Winograd's transformed weights. A caller
 * running several batches with one weight may derive them once, into `prepared` floats of its own
 * (wt_conv_prepared_floats; 0 when the pass derives nothing), and pass them to every call; the
 * results are the same, bit for bit, as deriving them in each call. */
enum { WT_CONV_PASS_FORWARD = 0, WT_CONV_PASS_INPUT = 1 };
size_t wt_conv_prepared_floats(const wt_conv_shape *s, int pass);
void wt_conv_prepare(const wt_conv_shape *s, int pass, wt_real *prepared, const wt_real *weight);

/* out (B, OC, OH, OW) = inp (B, C, H, W) convolved with weight (OC, C, K, K), plus bias (OC)
 * unless NULL. Overwrites out. prepared: wt_conv_prepare's of this weight, or NULL. */
void wt_conv_forward(const wt_conv_shape *s, int B, wt_real *out, const wt_real *inp,
                     const wt_real *weight, const wt_real *bias, const wt_real *prepared, wt_real *scratch);
void wt_conv_forward_ref(const wt_conv_shape *s, int B, wt_real *out, const wt_real *inp,
                         const wt_real *weight, const wt_real *bias);

/* dweight (OC, C, K, K) += d/dweight; dbias (OC) += dout summed over images and pixels, unless
 * NULL. */
void wt_conv_backward_params(const wt_conv_shape *s, int B, wt_real *dweight, wt_real *dbias,
                             const wt_real *dout, const wt_real *inp, wt_real *scratch);
void wt_conv_backward_params_ref(const wt_conv_shape *s, int B, wt_real *dweight, wt_real *dbias,
                                 const wt_real *dout, const wt_real *inp);

/* dbias (OC) += dout summed over each image's pixels, image by image (as the fast
 * wt_conv_backward_params sums it): for a conv whose weight is frozen. */
void wt_conv_backward_bias(const wt_conv_shape *s, int B, wt_real *dbias, const wt_real *dout);

/* dinp (B, C, H, W) += d/dinp. prepared: wt_conv_prepare's of this weight, or NULL. */
void wt_conv_backward_input(const wt_conv_shape *s, int B, wt_real *dinp, const wt_real *dout,
                            const wt_real *weight, const wt_real *prepared, wt_real *scratch);
void wt_conv_backward_input_ref(const wt_conv_shape *s, int B, wt_real *dinp, const wt_real *dout,
                                const wt_real *weight);

#endif /* WT_CONV_KERNELS_H */
