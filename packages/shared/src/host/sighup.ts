// SIGHUP (systemctl reload) while a daemon starts. The signal's default action ends the process, and
// a reload may come while the daemon is still starting (a certificate renewal right after a restart,
// the agent waiting on its PostgreSQL, the witness on its state or etcd): until the daemon is up the
// signal is only remembered, and its reload runs once the daemon is.

export interface SighupWhileStarting {
  /** From now on `reload` answers every SIGHUP; one that came while starting is answered at once. */
  ready(reload: () => void): void;
}

/** Called first thing in a daemon's main: from here on a SIGHUP no longer ends the process. */
export function rememberSighupWhileStarting(): SighupWhileStarting {
  let missed = false;
  const remember = (): void => {
    missed = true;
  };
  process.on('SIGHUP', remember);
  return {
    ready(reload) {
      process.on('SIGHUP', reload);
      process.off('SIGHUP', remember);
      if (missed) reload();
    },
  };
}
