/* Softmax cross-entropy, numerically stable (the maximum logit is subtracted first). */
#include <math.h>

#include "internal.h"

double crossentropy_forward(const wt_real *logits, const uint8_t *targets, int B, int V) {
  double total = 0;
  for (int b = 0; b < B; b++) {
    const wt_real *z = logits + (size_t)b * V;
    wt_real zmax = z[0];
    for (int i = 1; i < V; i++) zmax = z[i] > zmax ? z[i] : zmax;
    double sum = 0;
    for (int i = 0; i < V; i++) sum += exp((double)z[i] - zmax);
    total += log(sum) + zmax - z[targets[b]];
  }
  return total;
}

void crossentropy_backward(wt_real *dlogits, const wt_real *logits, const uint8_t *targets,
                           wt_real scale, int B, int V) {
  for (int b = 0; b < B; b++) {
    const wt_real *z = logits + (size_t)b * V;
    wt_real *dz = dlogits + (size_t)b * V;
    wt_real zmax = z[0];
    for (int i = 1; i < V; i++) zmax = z[i] > zmax ? z[i] : zmax;
    double sum = 0;
    for (int i = 0; i < V; i++) sum += exp((double)z[i] - zmax);
    for (int i = 0; i < V; i++) {
      const double p = exp((double)z[i] - zmax) / sum;
      dz[i] += scale * (wt_real)(p - (i == targets[b] ? 1.0 : 0.0));
    }
  }
}
