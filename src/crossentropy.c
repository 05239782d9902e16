/* Softmax cross-entropy, numerically stable (the maximum logit is subtracted first), with
 * optional label smoothing as nn.CrossEntropyLoss(label_smoothing=s): the target is
 * (1 - s) * onehot + s / V, so a sample's loss is (1 - s) * (-log p_y) + s / V * sum_i (-log p_i).
 * Smoothing 0 takes the plain path, unchanged. */
#include <math.h>

#include "internal.h"

double crossentropy_forward(const wt_real *logits, const uint8_t *targets, double smoothing, int B, int V) {
  double total = 0, smooth_total = 0;
  for (int b = 0; b < B; b++) {
    const wt_real *z = logits + (size_t)b * V;
    wt_real zmax = z[0];
    for (int i = 1; i < V; i++) zmax = z[i] > zmax ? z[i] : zmax;
    double sum = 0;
    for (int i = 0; i < V; i++) sum += exp((double)z[i] - zmax);
    const double log_sum = log(sum) + zmax;
    total += log_sum - z[targets[b]];
    if (smoothing != 0) {
      for (int i = 0; i < V; i++) smooth_total += log_sum - z[i];
    }
  }
  return smoothing == 0 ? total : (1.0 - smoothing) * total + smoothing / V * smooth_total;
}

void crossentropy_backward(wt_real *dlogits, const wt_real *logits, const uint8_t *targets, double smoothing,
                           wt_real scale, int B, int V) {
  const double off = smoothing / V, on = 1.0 - smoothing + off;
  for (int b = 0; b < B; b++) {
    const wt_real *z = logits + (size_t)b * V;
    wt_real *dz = dlogits + (size_t)b * V;
    wt_real zmax = z[0];
    for (int i = 1; i < V; i++) zmax = z[i] > zmax ? z[i] : zmax;
    double sum = 0;
    for (int i = 0; i < V; i++) sum += exp((double)z[i] - zmax);
    for (int i = 0; i < V; i++) {
      const double p = exp((double)z[i] - zmax) / sum;
      if (smoothing == 0) {
        dz[i] += scale * (wt_real)(p - (i == targets[b] ? 1.0 : 0.0));
      } else {
        dz[i] += scale * (wt_real)(p - (i == targets[b] ? on : off));
      }
    }
  }
}
