/* Records (CIFAR-10 style: a label byte, then the image's planes): validation and the per-epoch shuffle.
 * The model decodes them (model.c). */
#include "internal.h"

/* Stream ids keep the shuffle independent of the weight initialisation for the same seed. */
#define WT_STREAM_SHUFFLE 0x5348554646ULL

wt_status wt_records_check(const uint8_t *data, size_t bytes, int32_t record_bytes, int32_t label_offset,
                           int32_t classes, int32_t *out_count) {
  if (!out_count) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_records_check: out_count is NULL");
  *out_count = 0;
  if (record_bytes < 1 || label_offset < 0 || label_offset >= record_bytes || classes < 1 || classes > WT_MAX_CLASSES) {
    return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_records_check: bad record layout (%d bytes, label at %d, %d classes)",
                   (int)record_bytes, (int)label_offset, (int)classes);
  }
  if (bytes == 0) return wt_fail(WT_ERR_BAD_DATA, "file is empty");
  if (!data) return wt_fail(WT_ERR_INVALID_ARGUMENT, "wt_records_check: data is NULL");
  if (bytes % (size_t)record_bytes != 0) {
    const size_t whole = bytes / (size_t)record_bytes, left = bytes % (size_t)record_bytes;
    return wt_fail(WT_ERR_BAD_DATA, "size %zu bytes is not a multiple of the %d-byte record (%zu whole record%s and %zu byte%s left over)",
                   bytes, (int)record_bytes, whole, whole == 1 ? "" : "s", left, left == 1 ? "" : "s");
  }
  const size_t count = bytes / (size_t)record_bytes;
  if (count > INT32_MAX) return wt_fail(WT_ERR_BAD_DATA, "too many records (%zu)", count);
  for (size_t i = 0; i < count; i++) {
    const uint8_t label = data[i * (size_t)record_bytes + (size_t)label_offset];
    if (label >= classes) {
      return wt_fail(WT_ERR_BAD_DATA, "record %zu (byte offset %zu) has label %u; labels must be 0..%d", i,
                     i * (size_t)record_bytes + (size_t)label_offset, (unsigned)label, (int)classes - 1);
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
