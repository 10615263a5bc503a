/*
 * pgvip_commit_guard: a primary that was paused must not commit after its lease.
 *
 * The pgvip agent holds a lease while its server is the primary, and writes its end here on every
 * renewal, as a deadline on this host's CLOCK_MONOTONIC kept in shared memory. Once the deadline
 * has passed, every commit of a transaction that wrote (one with a transaction id) is refused, and
 * so is every new INSERT/UPDATE/DELETE/MERGE and COMMIT PREPARED. The check runs inside each
 * backend, so it holds the moment PostgreSQL runs again after a freeze (a frozen cgroup, a paused
 * VM, SIGSTOP), before the agent beside it has run a single instruction. The agent's read-only
 * fence still follows; this closes the window before it.
 *
 * The clocks: the agent passes the deadline on CLOCK_MONOTONIC, the clock it measures its lease on
 * (Node's process.hrtime): it keeps counting while a cgroup is frozen or a process stopped (the time
 * in which the new primary was elected) and never jumps with the wall clock. The guard converts it
 * once, when armed, to CLOCK_BOOTTIME and checks on that: the same clock, except that it also
 * counts a suspend of the whole system, which CLOCK_MONOTONIC (and so the agent) would not see.
 * Counting more can only end a lease sooner, never later.
 *
 * States of the deadline (one 64-bit word, read lock-free on every commit):
 *   0            never armed since the server started: no guard (a server pgvip does not run yet,
 *                or term 0). The agent arms it at its first lease; a restart clears it.
 *   any other    microseconds on CLOCK_BOOTTIME; writes may commit strictly before it.
 * A standby (recovery) ignores the guard: it writes nothing, and the agent arms it before a
 * promotion, so a promoted server is guarded from its first write. Walsenders, the checkpointer and
 * other processes that commit nothing are unaffected; only commits with a transaction id are checked.
 *
 * The window left: the check runs just before the commit record is written; a freeze landing
 * between the two (microseconds, plus the local WAL flush) lets that one commit finish. A commit
 * that reaches the check after the deadline never does.
 */
#include "postgres.h"

#include <time.h>

#include "access/parallel.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(pgvip_guard_set_deadline_at);
PG_FUNCTION_INFO_V1(pgvip_guard_set_deadline);
PG_FUNCTION_INFO_V1(pgvip_guard_disarm);
PG_FUNCTION_INFO_V1(pgvip_guard_status);

void		_PG_init(void);

/* A deadline further ahead than this is a caller on another clock (e.g. wall-clock microseconds). */
#define MAX_AHEAD_US ((uint64) 24 * 3600 * 1000000)

typedef struct GuardShared
{
	pg_atomic_uint64 deadline_us;	/* CLOCK_BOOTTIME microseconds; 0 = never armed */
	pg_atomic_uint64 refused;		/* commits and statements refused since start */
} GuardShared;

static GuardShared *guard = NULL;
static bool guard_enabled = true;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ExecutorStart_hook_type prev_executor_start = NULL;
static ProcessUtility_hook_type prev_process_utility = NULL;

static uint64
clock_now_us(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64) ts.tv_sec * 1000000 + (uint64) ts.tv_nsec / 1000;
}

#define monotonic_now_us() clock_now_us(CLOCK_MONOTONIC)
#define boottime_now_us() clock_now_us(CLOCK_BOOTTIME)

/* How far CLOCK_BOOTTIME is ahead of CLOCK_MONOTONIC (the time this host spent suspended). */
static uint64
boot_offset_us(uint64 *monotonic_now)
{
	uint64		mono = monotonic_now_us();
	uint64		boot = boottime_now_us();

	if (monotonic_now)
		*monotonic_now = mono;
	return boot > mono ? boot - mono : 0;
}

/*
 * How far past the deadline this server is, in microseconds, or -1 while writes may commit. The
 * cheap tests come first: one atomic read and one vDSO clock read per write commit.
 */
static int64
guard_lateness_us(void)
{
	uint64		deadline;
	uint64		now;

	if (!guard_enabled || guard == NULL)
		return -1;
	deadline = pg_atomic_read_u64(&guard->deadline_us);
	if (deadline == 0)
		return -1;
	now = boottime_now_us();
	if (now < deadline)
		return -1;
	if (RecoveryInProgress())
		return -1;
	return (int64) (now - deadline);
}

static void
refuse(const char *what, int64 late_us)
{
	pg_atomic_fetch_add_u64(&guard->refused, 1);
	ereport(ERROR,
			(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
			 errmsg("pgvip commit guard: cannot %s: this server's pgvip lease ended %.1f ms ago",
					what, (double) late_us / 1000.0),
			 errdetail("Another node may be the primary now; a write committed here could be discarded by the failover."),
			 errhint("Connect through the cluster's virtual IP. The pgvip agent re-arms the guard when this server holds the lease again.")));
}

static void
guard_xact_callback(XactEvent event, void *arg)
{
	int64		late;

	if (event != XACT_EVENT_PRE_COMMIT && event != XACT_EVENT_PRE_PREPARE)
		return;
	/* Only a transaction that wrote has a transaction id (nextval and row locks take one too). */
	if (!TransactionIdIsValid(GetTopTransactionIdIfAny()))
		return;
	late = guard_lateness_us();
	if (late >= 0)
		refuse(event == XACT_EVENT_PRE_COMMIT ? "commit a transaction that wrote" : "prepare a transaction that wrote", late);
}

/*
 * Fails a write statement at its start, not after its work (the commit check is the guarantee). A
 * plain EXPLAIN runs nothing and is let through.
 */
static void
guard_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (!IsParallelWorker() && (eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0 &&
		(queryDesc->operation != CMD_SELECT || queryDesc->plannedstmt->hasModifyingCTE))
	{
		int64		late = guard_lateness_us();

		if (late >= 0)
			refuse("start a write", late);
	}
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/* COMMIT PREPARED commits another transaction's writes from a transaction that has no id itself. */
static void
guard_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					  ProcessUtilityContext context, ParamListInfo params,
					  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (IsA(parsetree, TransactionStmt) && ((TransactionStmt *) parsetree)->kind == TRANS_STMT_COMMIT_PREPARED)
	{
		int64		late = guard_lateness_us();

		if (late >= 0)
			refuse("commit a prepared transaction", late);
	}
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

static void
guard_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(GuardShared)));
}

static void
guard_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	guard = ShmemInitStruct("pgvip_commit_guard", sizeof(GuardShared), &found);
	if (!found)
	{
		pg_atomic_init_u64(&guard->deadline_us, 0);
		pg_atomic_init_u64(&guard->refused, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgvip_commit_guard must be loaded through shared_preload_libraries"),
				 errhint("Add pgvip_commit_guard to shared_preload_libraries in postgresql.conf and restart the server.")));

	DefineCustomBoolVariable("pgvip_commit_guard.enabled",
							 "Refuse write commits once the pgvip lease deadline has passed.",
							 "Turning it off (superuser, reload) disables the guard for emergencies; the deadline is kept.",
							 &guard_enabled, true, PGC_SIGHUP, 0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("pgvip_commit_guard");

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = guard_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = guard_shmem_startup;
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = guard_executor_start;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = guard_process_utility;
	RegisterXactCallback(guard_xact_callback, NULL);
}

static void
require_loaded(void)
{
	if (guard == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgvip_commit_guard is not loaded"),
				 errhint("Add pgvip_commit_guard to shared_preload_libraries and restart the server.")));
}

/* Arms the guard with a deadline given on CLOCK_MONOTONIC. */
static void
arm(uint64 monotonic_deadline, uint64 offset)
{
	uint64		deadline = monotonic_deadline + offset;

	/* 0 means "never armed"; a deadline at the clock's origin is simply already past. */
	pg_atomic_write_u64(&guard->deadline_us, deadline == 0 ? 1 : deadline);
}

Datum
pgvip_guard_set_deadline_at(PG_FUNCTION_ARGS)
{
	int64		deadline = PG_GETARG_INT64(0);
	uint64		now;
	uint64		offset;

	require_loaded();
	offset = boot_offset_us(&now);
	if (deadline < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("deadline_monotonic_us must not be negative (got " INT64_FORMAT ")", deadline)));
	if ((uint64) deadline > now && (uint64) deadline - now > MAX_AHEAD_US)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("deadline_monotonic_us " INT64_FORMAT " is %.0f s ahead of this host's CLOCK_MONOTONIC (" UINT64_FORMAT ")",
						deadline, (double) ((uint64) deadline - now) / 1e6, now),
				 errhint("Pass microseconds on CLOCK_MONOTONIC of this host, not wall-clock time.")));
	arm((uint64) deadline, offset);
	PG_RETURN_VOID();
}

Datum
pgvip_guard_set_deadline(PG_FUNCTION_ARGS)
{
	int64		ms = PG_GETARG_INT64(0);
	uint64		now;
	uint64		offset;

	require_loaded();
	if (ms < 0)
		ms = 0;
	if ((uint64) ms * 1000 > MAX_AHEAD_US)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ms_from_now " INT64_FORMAT " is more than 24 hours", ms)));
	offset = boot_offset_us(&now);
	arm(now + (uint64) ms * 1000, offset);
	PG_RETURN_VOID();
}

Datum
pgvip_guard_disarm(PG_FUNCTION_ARGS)
{
	require_loaded();
	pg_atomic_write_u64(&guard->deadline_us, 0);
	PG_RETURN_VOID();
}

Datum
pgvip_guard_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[11];
	bool		nulls[11] = {0};
	uint64		now;
	uint64		offset = boot_offset_us(&now);
	uint64		boot_deadline = guard == NULL ? 0 : pg_atomic_read_u64(&guard->deadline_us);
	bool		armed = boot_deadline != 0;
	/* Reported on CLOCK_MONOTONIC, the clock the agent passed it on. */
	uint64		deadline = armed ? boot_deadline - Min(offset, boot_deadline) : 0;
	bool		recovery = RecoveryInProgress();
	double		remaining_ms = armed ? ((double) deadline - (double) now) / 1000.0 : 0;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	values[0] = BoolGetDatum(guard != NULL);
	values[1] = BoolGetDatum(guard_enabled);
	values[2] = BoolGetDatum(armed);
	values[3] = BoolGetDatum(recovery);
	values[4] = BoolGetDatum(guard != NULL && guard_enabled && armed && !recovery);
	values[5] = BoolGetDatum(armed && now >= deadline);
	values[6] = Float8GetDatum(remaining_ms);
	nulls[6] = !armed;
	/* The deadline in wall-clock terms, as of this call (for logs and for judging by the server's clock). */
	values[7] = TimestampTzGetDatum(GetCurrentTimestamp() + (TimestampTz) ((int64) deadline - (int64) now));
	nulls[7] = !armed;
	values[8] = Int64GetDatum((int64) now);
	values[9] = Int64GetDatum((int64) deadline);
	nulls[9] = !armed;
	values[10] = Int64GetDatum(guard == NULL ? 0 : (int64) pg_atomic_read_u64(&guard->refused));

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
