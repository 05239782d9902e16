/* The symmetric eigensolver of the whitening conv (model.c computes the patch matrix): cyclic
 * Jacobi in double, the same rotations in the same order everywhere, so the frozen weights are
 * the same on every machine. */
#include <math.h>
#include <string.h>

#include "internal.h"

#define WT_JACOBI_MAX_SWEEPS 100

void wt_symmetric_eigen(double *a, int n, double *values, double *vectors) {
  /* v starts as the identity; a -> V^T a V becomes diagonal; column j of V is eigenvector j. */
  double *v = vectors;
  memset(v, 0, sizeof(double) * (size_t)n * n);
  for (int i = 0; i < n; i++) v[(size_t)i * n + i] = 1.0;
  double total = 0;
  for (int i = 0; i < n * n; i++) total += a[i] * a[i];
  for (int sweep = 0; sweep < WT_JACOBI_MAX_SWEEPS; sweep++) {
    double off = 0;
    for (int p = 0; p < n; p++)
      for (int q = p + 1; q < n; q++) off += a[(size_t)p * n + q] * a[(size_t)p * n + q];
    if (off <= 1e-30 * total || off == 0) break;
    for (int p = 0; p < n; p++) {
      for (int q = p + 1; q < n; q++) {
        const double apq = a[(size_t)p * n + q];
        if (apq == 0) continue;
        const double app = a[(size_t)p * n + p], aqq = a[(size_t)q * n + q];
        /* The rotation that zeroes a[p][q] (Golub & Van Loan, the smaller angle). */
        const double theta = (aqq - app) / (2 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
        const double c = 1 / sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; k++) { /* columns p and q */
          const double akp = a[(size_t)k * n + p], akq = a[(size_t)k * n + q];
          a[(size_t)k * n + p] = c * akp - s * akq;
          a[(size_t)k * n + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; k++) { /* rows p and q */
          const double apk = a[(size_t)p * n + k], aqk = a[(size_t)q * n + k];
          a[(size_t)p * n + k] = c * apk - s * aqk;
          a[(size_t)q * n + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < n; k++) {
          const double vkp = v[(size_t)k * n + p], vkq = v[(size_t)k * n + q];
          v[(size_t)k * n + p] = c * vkp - s * vkq;
          v[(size_t)k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  /* Order by descending eigenvalue (a stable selection: ties keep their index order), as rows. */
  int order[WT_WHITEN_MAX_DIM];
  for (int i = 0; i < n; i++) order[i] = i;
  for (int i = 0; i < n; i++) {
    int best = i;
    for (int j = i + 1; j < n; j++)
      if (a[(size_t)order[j] * n + order[j]] > a[(size_t)order[best] * n + order[best]]) best = j;
    const int chosen = order[best];
    memmove(order + i + 1, order + i, sizeof(int) * (size_t)(best - i));
    order[i] = chosen;
  }
  /* Rows of the result from columns of v: copy out through a (now only its diagonal is needed). */
  for (int i = 0; i < n; i++) values[i] = a[(size_t)order[i] * n + order[i]];
  for (int i = 0; i < n; i++)
    for (int k = 0; k < n; k++) a[(size_t)i * n + k] = v[(size_t)k * n + order[i]];
  for (int i = 0; i < n; i++) {
    double *row = a + (size_t)i * n;
    int big = 0;
    for (int k = 1; k < n; k++)
      if (fabs(row[k]) > fabs(row[big])) big = k;
    const double sign = row[big] < 0 ? -1.0 : 1.0;
    for (int k = 0; k < n; k++) vectors[(size_t)i * n + k] = sign * row[k];
  }
}
