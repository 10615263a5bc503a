-- pgvip_commit_guard 1.0: the functions the pgvip agent calls; the guard itself lives in the library,
-- which must be loaded through shared_preload_libraries (it keeps the deadline in shared memory).
\echo Use "CREATE EXTENSION pgvip_commit_guard" to load this file. \quit

-- Arms (or re-arms) the guard: write commits are refused once this host's CLOCK_MONOTONIC reaches
-- deadline_monotonic_us. Absolute on purpose: a call delayed in transit (a frozen host, a slow
-- connection) still ends the lease when the agent said, never later.
CREATE FUNCTION pgvip_guard_set_deadline_at(deadline_monotonic_us bigint) RETURNS void
  AS 'MODULE_PATHNAME', 'pgvip_guard_set_deadline_at' LANGUAGE C STRICT VOLATILE;

-- The same, relative to the moment the server runs the call (operators and tests).
CREATE FUNCTION pgvip_guard_set_deadline(ms_from_now bigint) RETURNS void
  AS 'MODULE_PATHNAME', 'pgvip_guard_set_deadline' LANGUAGE C STRICT VOLATILE;

-- Back to "never armed": writes are allowed with no deadline (until the next arm).
CREATE FUNCTION pgvip_guard_disarm() RETURNS void
  AS 'MODULE_PATHNAME', 'pgvip_guard_disarm' LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION pgvip_guard_status(
    OUT loaded boolean,
    OUT enabled boolean,
    OUT armed boolean,
    OUT in_recovery boolean,
    OUT active boolean,
    OUT expired boolean,
    OUT remaining_ms double precision,
    OUT deadline_at timestamptz,
    OUT now_monotonic_us bigint,
    OUT deadline_monotonic_us bigint,
    OUT refused_commits bigint)
  RETURNS record
  AS 'MODULE_PATHNAME', 'pgvip_guard_status' LANGUAGE C STRICT VOLATILE;

-- Only superusers (the agent connects as one) move the deadline; a DBA may GRANT EXECUTE to a
-- dedicated role. The status is harmless and readable by everyone (clients and probes use it).
REVOKE ALL ON FUNCTION pgvip_guard_set_deadline_at(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgvip_guard_set_deadline(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgvip_guard_disarm() FROM PUBLIC;
