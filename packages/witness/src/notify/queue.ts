// A bounded delivery queue with one worker: items go out one at a time and in order (a receiver
// sees events in the order they happened), and a receiver that is down or slow can hold back at
// most `capacity` items. When the queue is full the OLDEST waiting item is dropped: the newest
// events describe the cluster as it is now, which is what an operator paged at 3 a.m. needs.

export interface DeliveryQueueOptions<T> {
  readonly capacity: number;
  /** Sends one item; rejects when it could not (after its own retries). Must honour `signal`. */
  readonly deliver: (item: T, signal: AbortSignal) => Promise<void>;
  /** An item that will not be delivered: `deliver` failed, or it was pushed out of a full queue. */
  readonly onFailed: (item: T, err: Error) => void;
  /** Items still waiting, or in flight, when close() gave up on them. */
  readonly onAbandoned: (items: readonly T[]) => void;
}

export class DeliveryQueue<T> {
  readonly #options: DeliveryQueueOptions<T>;
  readonly #waiting: T[] = [];
  readonly #abort = new AbortController();
  #inFlight: T | undefined;
  #worker: Promise<void> | undefined;
  #closing = false;
  #idleWaiters: Array<() => void> = [];

  constructor(options: DeliveryQueueOptions<T>) {
    if (!(Number.isInteger(options.capacity) && options.capacity >= 1)) throw new RangeError(`queue capacity must be an integer ≥ 1, got ${options.capacity}`);
    this.#options = options;
  }

  get length(): number {
    return this.#waiting.length + (this.#inFlight === undefined ? 0 : 1);
  }

  /** Queues an item and returns at once; the worker starts on a later turn of the event loop. */
  push(item: T): void {
    if (this.#closing) {
      this.#options.onAbandoned([item]);
      return;
    }
    if (this.#waiting.length >= this.#options.capacity) {
      const dropped = this.#waiting.shift()!;
      this.#options.onFailed(dropped, new Error(`dropped: ${this.#options.capacity} newer events were waiting for this channel (it is down or too slow)`));
    }
    this.#waiting.push(item);
    // setImmediate, not a direct call: the caller (the daemon's loop) must not even pay for the
    // first synchronous part of an HTTP request or a process spawn.
    this.#worker ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#run());
  }

  /** Resolves when nothing is waiting or in flight. */
  idle(): Promise<void> {
    if (this.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Stops accepting items, lets the queue drain for up to `graceMs`, then aborts the delivery in
   * flight and abandons the rest. Resolves once the worker has stopped.
   */
  async close(graceMs: number): Promise<void> {
    this.#closing = true;
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      this.idle().then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
    ]);
    clearTimeout(timer);
    if (!drained) {
      const abandoned = [...(this.#inFlight === undefined ? [] : [this.#inFlight]), ...this.#waiting.splice(0)];
      this.#abort.abort(new Error('the notifier is shutting down'));
      if (abandoned.length > 0) this.#options.onAbandoned(abandoned);
    }
    await this.#worker;
  }

  async #run(): Promise<void> {
    for (let item = this.#waiting.shift(); item !== undefined; item = this.#waiting.shift()) {
      if (this.#abort.signal.aborted) break;
      this.#inFlight = item;
      try {
        await this.#options.deliver(item, this.#abort.signal);
      } catch (err) {
        // After close() gave up on it, the item was already reported as abandoned.
        if (!this.#abort.signal.aborted) {
          this.#options.onFailed(item, err instanceof Error ? err : new Error(String(err)));
        }
      } finally {
        this.#inFlight = undefined;
      }
    }
    this.#worker = undefined;
    const waiters = this.#idleWaiters.splice(0);
    for (const wake of waiters) wake();
  }
}
