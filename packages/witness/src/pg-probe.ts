// The witness's direct check of a node's PostgreSQL port, independent of the agent
// (docs/design.md, Terms, leases, votes: failure is judged on two signals, never on the agent alone).
//
// A bare TCP connect is not enough: the kernel completes the handshake into the listen backlog
// even while the postmaster is frozen (a paused host, SIGSTOP, the cgroup freezer), so a frozen
// server would look alive forever and the witness would never vote. So the probe makes PostgreSQL
// itself do something: it sends a CancelRequest for process 0 (the wire protocol's 16-byte packet,
// code 80877102). A live server reads it, finds no such backend and closes the connection, logging
// nothing above DEBUG2 — unlike an SSLRequest, which with ssl=on leaves "could not accept SSL
// connection: EOF detected" in the server log on every probe. The probe counts the server as alive
// when it closes (or answers) within the timeout, and as unreachable when the connection is
// refused, reset before connecting, or nothing happens in time.
import { connect } from 'node:net';

/** Protocol code of a CancelRequest (1234 << 16 | 5678). */
const CANCEL_REQUEST_CODE = 80877102;

function cancelRequestForNobody(): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32BE(16, 0);
  b.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  // Process id 0 and key 0: no backend has pid 0, so nothing is cancelled and nothing logged.
  b.writeInt32BE(0, 8);
  b.writeInt32BE(0, 12);
  return b;
}

const PACKET = cancelRequestForNobody();

/** True when a PostgreSQL server at host:port processed a request within timeoutMs. */
export function probePostgres(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    let connected = false;
    const socket = connect({ host, port });
    const finish = (alive: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(alive);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.once('connect', () => {
      connected = true;
      socket.write(PACKET);
    });
    // The server closing the connection after reading the packet is the expected answer; any bytes
    // back also prove a live server.
    socket.on('data', () => finish(true));
    socket.once('end', () => finish(connected));
    // A reset after the connection was up also comes from a live process; before it, it means refused.
    socket.once('error', () => finish(connected));
  });
}
