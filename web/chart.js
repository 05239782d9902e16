// The two live charts, drawn by uPlot (vendored into web/vendor/ by the build): training loss every
// 100 steps and test accuracy after each epoch, both against epochs so they line up.
import uPlot from './vendor/uPlot.esm.js';

const FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const LABEL_FONT = `600 ${FONT}`;

function axis(label, values) {
  return { label, font: FONT, labelFont: LABEL_FONT, labelSize: 20, stroke: '#4b5563', grid: { stroke: '#e5e7eb', width: 1 }, ticks: { stroke: '#d1d5db', width: 1 }, ...(values ? { values } : {}) };
}

/** A line chart of y against epochs in `container`, sized to it; points are appended. */
class LiveChart {
  constructor(container, { yLabel, seriesLabel, color, yRange, format, valueFormat = format, points }) {
    this.container = container;
    this.xs = [];
    this.ys = [];
    this.plot = new uPlot({
      width: Math.max(container.clientWidth, 200),
      height: 220,
      scales: {
        x: { time: false, range: (u, min, max) => [0, Math.max(this.epochs ?? 1, max ?? 1)] },
        y: { range: yRange },
      },
      axes: [axis('Epoch'), axis(yLabel, (u, ticks) => ticks.map(format))],
      series: [
        { label: 'Epoch', value: (u, v) => (v == null ? '—' : v.toFixed(2)) },
        { label: seriesLabel, stroke: color, width: 2, points: points ? { show: true, size: 7, fill: color } : { size: 5, fill: color }, value: (u, v) => (v == null ? '—' : valueFormat(v)) },
      ],
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
    }, [[], []], container);
    this.resizer = new ResizeObserver(() => this.plot.setSize({ width: Math.max(container.clientWidth, 200), height: 220 }));
    this.resizer.observe(container);
  }

  /** Sets the x range to the run's length before its first point arrives. */
  reset(epochs) {
    this.epochs = epochs;
    this.xs = [];
    this.ys = [];
    this.plot.setData([this.xs, this.ys]);
  }

  add(x, y) {
    this.xs.push(x);
    this.ys.push(y);
    this.plot.setData([this.xs, this.ys]);
  }

  get points() { return this.xs.length; }
}

export function createCharts(lossContainer, accuracyContainer) {
  const loss = new LiveChart(lossContainer, {
    yLabel: 'Training loss', seriesLabel: 'Loss', color: '#2563eb',
    yRange: (u, min, max) => [0, Math.max(max ?? 2.5, 0.5) * 1.05], format: (v) => v.toFixed(2), valueFormat: (v) => v.toFixed(4), points: false,
  });
  const accuracy = new LiveChart(accuracyContainer, {
    yLabel: 'Test accuracy (%)', seriesLabel: 'Accuracy', color: '#059669',
    yRange: () => [0, 100], format: (v) => `${v.toFixed(0)}%`, valueFormat: (v) => `${v.toFixed(2)}%`, points: true,
  });
  return {
    reset(epochs) { loss.reset(epochs); accuracy.reset(epochs); },
    /** A LOSS event: x is the fraction of epochs done at that step. */
    addLoss(e) { loss.add(e.epoch - 1 + e.step / e.steps, e.loss); },
    addAccuracy(e) { accuracy.add(e.epoch, 100 * e.test_accuracy); },
    get lossPoints() { return loss.points; },
    get accuracyPoints() { return accuracy.points; },
  };
}
