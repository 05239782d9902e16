// How often the page's timed autosaves may run. They are due every autosaveSeconds (a timer), but
// a big checkpoint is kept less often: after a save of N bytes, when N / bytesPerSecond is longer
// than the timer's interval, the next timed one waits that long. Writing fast's 3.5 MB checkpoint
// into IndexedDB every 2 s took about a tenth of a core (the page's structured clone and the
// browser's database thread) from two training workers on two cores; SimpleCNN's 728 KB one is
// still kept every 2 s.

/** The default rate: 400 KB/s of checkpoints at most (SimpleCNN: every 2 s; fast: every 9 s). */
export const AUTOSAVE_BYTES_PER_S = 400_000;

/**
 * ms from one timed save of `bytes` to the next: the timer's `seconds`, or longer for a checkpoint
 * that bytesPerSecond (Infinity: no limit) would not allow that often. The worker spaces its own
 * training-time saves by it too, so it does not serialize checkpoints the page would drop.
 */
export function autosaveGapMs(seconds, bytes, bytesPerSecond) {
  return Math.max(1000 * seconds, (1000 * bytes) / bytesPerSecond);
}

export class AutosavePacer {
  /**
   * seconds: the timer's interval; bytesPerSecond: the most checkpoint bytes to keep per second,
   * > 0 (Infinity: no limit).
   */
  constructor(seconds, bytesPerSecond = AUTOSAVE_BYTES_PER_S) {
    if (!(bytesPerSecond > 0)) throw new RangeError(`autosave rate must be > 0 bytes/s, not ${bytesPerSecond}`);
    this.seconds = seconds;
    this.bytesPerSecond = bytesPerSecond;
    this.last = { at: -Infinity, bytes: 0 };
  }

  /** Whether a timed save at `now` (ms, performance.now()) would come too soon after the last one. */
  tooSoon(now) {
    const gap = autosaveGapMs(this.seconds, this.last.bytes, this.bytesPerSecond);
    return gap > 1000 * this.seconds && now - this.last.at < gap;
  }

  /** A save (timed or not) of `bytes` was made at `now`. */
  saved(now, bytes) {
    this.last = { at: now, bytes };
  }
}
