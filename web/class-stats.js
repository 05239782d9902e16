// What a confusion matrix says per class, for any number of classes: each class's accuracy, and
// the pairs of classes most often confused. The CLI prints them; the page draws them (visuals.js).

/** [{ index, correct, total, accuracy }] per true class; confusion[true * classes + predicted]. */
export function perClassAccuracy(confusion, classes) {
  const rows = [];
  for (let t = 0; t < classes; t++) {
    let total = 0;
    for (let p = 0; p < classes; p++) total += confusion[t * classes + p];
    const correct = confusion[t * classes + t];
    rows.push({ index: t, correct, total, accuracy: total ? correct / total : null });
  }
  return rows;
}

/**
 * The `limit` most frequent mistakes, most first: [{ truth, predicted, count, share }] where
 * share is the part of the true class's images that went to `predicted`.
 */
export function confusedPairs(confusion, classes, limit = 10) {
  const totals = perClassAccuracy(confusion, classes).map((r) => r.total);
  const pairs = [];
  for (let t = 0; t < classes; t++) {
    for (let p = 0; p < classes; p++) {
      const count = confusion[t * classes + p];
      if (t !== p && count > 0) pairs.push({ truth: t, predicted: p, count, share: count / totals[t] });
    }
  }
  pairs.sort((a, b) => b.count - a.count || a.truth - b.truth || a.predicted - b.predicted);
  return pairs.slice(0, limit);
}

/** The CLI's text: each class's accuracy (worst first beyond 20 classes), then the top mistakes. */
export function formatClassReport(confusion, classNames, { pairs = 5 } = {}) {
  const classes = classNames.length;
  const rows = perClassAccuracy(confusion, classes);
  const width = Math.max(...classNames.map((n) => n.length));
  const percent = (x) => (x === null ? '—' : `${(100 * x).toFixed(1)}%`);
  let shown = rows;
  let title = 'Per-class accuracy:';
  if (classes > 20) {
    shown = rows.filter((r) => r.total).sort((a, b) => a.accuracy - b.accuracy || a.index - b.index).slice(0, 10);
    title = `Per-class accuracy, the 10 lowest of ${classes} classes:`;
  }
  const lines = [title, ...shown.map((r) => `  ${classNames[r.index].padEnd(width)}  ${percent(r.accuracy).padStart(6)}  (${r.correct}/${r.total})`)];
  const mistakes = confusedPairs(confusion, classes, pairs);
  if (mistakes.length) {
    lines.push('Most confused (true -> predicted):');
    for (const m of mistakes) lines.push(`  ${classNames[m.truth]} -> ${classNames[m.predicted]}: ${m.count} (${percent(m.share)} of ${classNames[m.truth]})`);
  }
  return lines.join('\n');
}
