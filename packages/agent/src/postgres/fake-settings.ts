// The server settings of a FakePostgres, as current_setting() shows them: ALTER SYSTEM and reload
// are instant here, and settings PostgreSQL applies only at server start wait for the next start.
import { managedSettings } from './managed-settings.js';

/** Managed settings PostgreSQL only applies at server start (context 'postmaster'). */
const restartOnlySettings = new Set(['hot_standby', 'wal_log_hints', 'recovery_target_timeline']);

export class FakeSettings extends Map<string, string> {
  /** Restart-only settings changed since the last start, with their new value. */
  readonly #pendingRestart = new Map<string, string>();

  constructor() {
    super([
      ['synchronous_standby_names', ''],
      ['default_transaction_read_only', 'off'],
      ['wal_retrieve_retry_interval', '5s'],
      ['wal_receiver_status_interval', '10s'],
      ['hot_standby', 'on'],
      ['recovery_target_timeline', 'latest'],
      ['full_page_writes', 'on'],
      ['wal_log_hints', 'off'],
    ]);
  }

  /** Sets every managed setting not set yet (restart-only ones for the next start); returns their names. */
  applyManaged(): string[] {
    const changed: string[] = [];
    for (const setting of managedSettings) {
      if (setting.notNeededWhen?.(this)) continue;
      if ((this.get(setting.name) ?? '') === setting.value || this.#pendingRestart.has(setting.name)) continue;
      if (restartOnlySettings.has(setting.name)) this.#pendingRestart.set(setting.name, setting.value);
      else this.set(setting.name, setting.value);
      changed.push(setting.name);
    }
    return changed;
  }

  /** Names of the settings waiting for a restart, sorted. */
  pendingRestart(): string[] {
    return [...this.#pendingRestart.keys()].sort();
  }

  /** The server started: what waited for it takes effect. */
  applyPendingRestart(): void {
    for (const [name, value] of this.#pendingRestart) this.set(name, value);
    this.#pendingRestart.clear();
  }
}
