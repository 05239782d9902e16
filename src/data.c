/* CIFAR-10 binary records: validation, the per-epoch shuffle, and decoding into the float batch. */
#include "internal.h"

/* Stream ids keep the shuffle independent of the weight initialisation for the same seed. */
#define WT_STREAM_SHUFFLE 0x5348554646ULL

wt_status wt_records_check(const uint8_t *data, size_t bytes, int32_t *out_count) {
  if (!out_count) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_records_check: out_count is NULL");
  *out_count = 0;
  if (bytes == 0) return wt_fail(WT_ERR_BAD_DATA, "file is empty");
  if (!data) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_records_check: data is NULL");
  if (bytes % WT_RECORD_BYTES != 0) {
    return wt_fail(WT_ERR_BAD_DATA,
                   "size %zu bytes is not a multiple of the %d-byte CIFAR-10 record "
                   "(%zu whole record%s and %zu byte%s left over)",
                   bytes, WT_RECORD_BYTES, bytes / WT_RECORD_BYTES, bytes / WT_RECORD_BYTES == 1 ? "" : "s",
                   bytes % WT_RECORD_BYTES, bytes % WT_RECORD_BYTES == 1 ? "" : "s");
  }
  const size_t count = bytes / WT_RECORD_BYTES;
  if (count > INT32_MAX) return wt_fail(WT_ERR_BAD_DATA, "too many records (%zu)", count);
  for (size_t i = 0; i < count; i++) {
    const uint8_t label = data[i * WT_RECORD_BYTES];
    if (label >= WT_NUM_CLASSES) {
      return wt_fail(WT_ERR_BAD_DATA, "record %zu (byte offset %zu) has label %u; labels must be 0..9",
                     i, i * WT_RECORD_BYTES, (unsigned)label);
    }
  }
  *out_count = (int32_t)count;
  return WT_OK;
}

wt_status wt_epoch_permutation(uint32_t *perm, int32_t n, uint32_t seed, int32_t epoch) {
  if (!perm || n < 0 || epoch < 0) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_epoch_permutation: bad arguments (n=%d, epoch=%d)",
                   (int)n, (int)epoch);
  }
  wt_rng rng;
  wt_rng_seed(&rng, ((uint64_t)seed << 32) | (uint32_t)epoch, WT_STREAM_SHUFFLE);
  for (int32_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
  for (int32_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
    const uint32_t j = wt_rng_below(&rng, (uint32_t)i + 1);
    const uint32_t tmp = perm[i];
    perm[i] = perm[j];
    perm[j] = tmp;
  }
  return WT_OK;
}

/* ToTensor() then Normalize(0.5, 0.5) in float32, as PyTorch rounds it: ((p / 255) - 0.5) / 0.5. */
static float pixel_value(uint8_t p) { return ((float)p / 255.0f - 0.5f) / 0.5f; }

void cifar_decode_batch(float *images, uint8_t *labels, const uint8_t *records,
                        const uint32_t *indices, int batch) {
  /* images (batch, 3, 32, 32); records are 1 label byte then the R, G, B planes (CHW already) */
  static float lut[256];
  static int lut_ready = 0;
  if (!lut_ready) {
    for (int p = 0; p < 256; p++) lut[p] = pixel_value((uint8_t)p);
    lut_ready = 1;
  }
  for (int b = 0; b < batch; b++) {
    const uint8_t *rec = records + (size_t)indices[b] * WT_RECORD_BYTES;
    labels[b] = rec[0];
    float *img = images + (size_t)b * WT_IMAGE_BYTES;
    for (int i = 0; i < WT_IMAGE_BYTES; i++) img[i] = lut[rec[1 + i]];
  }
}
