// Waiting for a condition with a deadline (never a bare sleep): polls, and on timeout says what
// never happened and what was last seen.

export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | null | undefined | false>,
  intervalMs = 200,
  describeLast?: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== null && v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const last = describeLast?.() ?? (lastError instanceof Error ? lastError.message : '');
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last: ${last})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Resolves after `ms`: only for a fault that must last that long (the duration IS the fault). */
export function hold(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
