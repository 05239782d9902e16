// The two live charts, drawn by uPlot (vendored into web/vendor/ by the build): training loss every
// 100 steps and test accuracy after each epoch, both against epochs so they line up: the same
// x range, ticks at whole epochs and y axes of one width. Each container carries a text summary
// (aria) of what it shows, and the legend shows the latest point until the pointer picks another.
import uPlot from './vendor/uPlot.esm.js';

const FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const LABEL_FONT = `600 ${FONT}`;

const Y_AXIS_SIZE = 56;

function axis(label, extra) {
  return { label, font: FONT, labelFont: LABEL_FONT, labelSize: 20, stroke: '#4b5563', grid: { stroke: '#e5e7eb', width: 1 }, ticks: { stroke: '#d1d5db', width: 1 }, ...extra };
}

/** Whole epochs from 0 to the end, at most about ten of them. */
function epochTicks(max) {
  const last = Math.ceil(max);
  const every = Math.max(1, Math.ceil(last / 10));
  const ticks = [];
  for (let e = 0; e <= last; e += every) ticks.push(e);
  return ticks;
}

/** A line chart of y against epochs in `container`, sized to it; points are appended. */
class LiveChart {
  constructor(container, { yLabel, seriesLabel, color, yRange, format, valueFormat = format, points }) {
    this.container = container;
    this.seriesLabel = seriesLabel;
    this.valueFormat = valueFormat;
    this.xs = [];
    this.ys = [];
    this.plot = new uPlot({
      width: Math.max(container.clientWidth, 200),
      height: 220,
      scales: {
        x: { time: false, range: (u, min, max) => [0, Math.max(this.epochs ?? 1, max ?? 1)] },
        y: { range: yRange },
      },
      axes: [
        axis('Epoch', { splits: (u, i, min, max) => epochTicks(max), values: (u, ticks) => ticks.map((t) => String(t)) }),
        axis(yLabel, { size: Y_AXIS_SIZE, values: (u, ticks) => ticks.map(format) }),
      ],
      series: [
        { label: 'Epoch', value: (u, v) => this.#legend(v, 0, (x) => x.toFixed(2)) },
        { label: seriesLabel, stroke: color, width: 2, points: points ? { show: true, size: 7, fill: color } : { size: 5, fill: color }, value: (u, v) => this.#legend(v, 1, valueFormat) },
      ],
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
    }, [[], []], container);
    this.resizer = new ResizeObserver(() => this.plot.setSize({ width: Math.max(container.clientWidth, 200), height: 220 }));
    this.resizer.observe(container);
  }

  /** The value under the pointer, else the latest point's, else a plain "none yet". */
  #legend(v, series, format) {
    if (v != null) return format(v);
    const latest = (series === 0 ? this.xs : this.ys).at(-1);
    return latest == null ? 'none yet' : format(latest);
  }

  /** Sets the x range to the run's length before its first point arrives. */
  reset(epochs) {
    this.epochs = epochs;
    this.xs = [];
    this.ys = [];
    this.update();
  }

  add(x, y) {
    this.xs.push(x);
    this.ys.push(y);
    this.update();
  }

  update() {
    this.plot.setData([this.xs, this.ys]);
    const { dataset } = this.container;
    dataset.points = String(this.xs.length);
    dataset.xTicks = epochTicks(Math.max(this.epochs ?? 1, this.xs.at(-1) ?? 1)).join(',');
  }

  get points() { return this.xs.length; }

  /** What the chart shows, in words: for screen readers (the canvas itself says nothing). */
  get summary() {
    const n = this.xs.length;
    if (!n) return `No points yet; the x axis runs to epoch ${this.epochs ?? 1}.`;
    const first = this.valueFormat(this.ys[0]);
    const last = this.valueFormat(this.ys[n - 1]);
    return `${n} point${n === 1 ? '' : 's'} up to epoch ${this.xs[n - 1].toFixed(2)} of ${this.epochs}: ${this.seriesLabel.toLowerCase()} ${n === 1 ? last : `from ${first} to ${last}`}.`;
  }
}

export function createCharts(lossContainer, accuracyContainer) {
  const loss = new LiveChart(lossContainer, {
    yLabel: 'Training loss', seriesLabel: 'Loss', color: '#2563eb',
    yRange: (u, min, max) => [0, Math.max(max ?? 2.5, 0.5) * 1.05], format: (v) => v.toFixed(2), valueFormat: (v) => v.toFixed(4), points: false,
  });
  const accuracy = new LiveChart(accuracyContainer, {
    yLabel: 'Test accuracy (%)', seriesLabel: 'Accuracy', color: '#047857',
    yRange: () => [0, 100], format: (v) => `${v.toFixed(0)}%`, valueFormat: (v) => `${v.toFixed(2)}%`, points: true,
  });
  return {
    reset(epochs) { loss.reset(epochs); accuracy.reset(epochs); },
    /** A LOSS event (or an epoch's partial window): x is the fraction of epochs done at that step. */
    addLoss(e) { loss.add(e.epoch - 1 + e.step / e.steps, e.loss); },
    addAccuracy(e) { accuracy.add(e.epoch, 100 * e.test_accuracy); },
    get lossPoints() { return loss.points; },
    get accuracyPoints() { return accuracy.points; },
    get lossSummary() { return loss.summary; },
    get accuracySummary() { return accuracy.summary; },
  };
}
