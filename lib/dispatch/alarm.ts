/**
 * The loop's sleep and its wake-ups. The loop sleeps until the poll interval passes, a circuit may change
 * (its cool-down ends), or something wakes it: a local commit, a NOTIFY, freed capacity, or a rescheduled
 * row coming due (`wakeAt`, one timer for the earliest). A wake-up while the loop is busy is remembered, so
 * the next sleep returns at once.
 */
export class Alarm {
  private wakeUp: (() => void) | null = null;
  private woken = false;
  private dueTimer: NodeJS.Timeout | null = null;
  private dueAt = Infinity;

  /** Something may be due: end the current (or next) sleep. */
  wake(): void {
    this.woken = true;
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  /** The loop starts a round: forget wake-ups it is about to act on. */
  reset(): void {
    this.woken = false;
  }

  /** Sleep `ms`, or until `changeAt` (a circuit's cool-down end), or until woken. */
  sleep(ms: number, changeAt: number | null): Promise<void> {
    if (this.woken) return Promise.resolve();
    const wait = changeAt === null ? ms : Math.max(0, Math.min(ms, changeAt - Date.now()));
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wakeUp = null;
        resolve();
      }, wait);
      this.wakeUp = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** Wake at `at` (a rescheduled row comes due), unless a wake-up is already set for earlier. */
  wakeAt(at: number): void {
    if (at >= this.dueAt) return;
    if (this.dueTimer) clearTimeout(this.dueTimer);
    this.dueAt = at;
    this.dueTimer = setTimeout(
      () => {
        this.dueTimer = null;
        this.dueAt = Infinity;
        this.wake();
      },
      Math.max(0, at - Date.now()),
    );
    this.dueTimer.unref?.();
  }

  /** Cancel the timer set by `wakeAt`. */
  clear(): void {
    if (this.dueTimer) clearTimeout(this.dueTimer);
  }
}
