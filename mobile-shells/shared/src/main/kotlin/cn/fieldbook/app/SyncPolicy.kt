// When the app syncs on its own. Shared by the Android app (WorkManager and
// the in-app trigger), the iOS app mirrors it, and the desktop harness tests
// it.
//
// Inspectors work for weeks without signal, so the policy is about not
// wasting the moments when there is one: anything waiting goes up as soon
// as a network appears; with nothing waiting the app still pulls now and
// then so supervisors' comments arrive; after a failure it backs off
// (doubling, capped) so a flaky link does not drain the battery; and it
// never syncs while the login is known to be stale, asking for a login
// instead.
package cn.fieldbook.app

import cn.fieldbook.ffi.PendingInfo

/** What the phone knows about its situation right now. */
data class SyncConditions(
    val online: Boolean,
    /** A metered connection (mobile data). */
    val metered: Boolean,
    val batteryLow: Boolean,
    val nowMs: Long,
)

/** What happened on earlier attempts. */
data class SyncHistory(
    val lastSuccessMs: Long? = null,
    val lastAttemptMs: Long? = null,
    /** Failed attempts since the last success. */
    val failures: Int = 0,
) {
    fun succeeded(atMs: Long) = SyncHistory(lastSuccessMs = atMs, lastAttemptMs = atMs, failures = 0)
    fun failed(atMs: Long) = copy(lastAttemptMs = atMs, failures = failures + 1)
}

sealed interface SyncDecision {
    /** Sync now. */
    data object Now : SyncDecision
    /** Check again at `atMs` (or when the network comes back). */
    data class Later(val atMs: Long, val why: String) : SyncDecision
    /** Show the login screen; no sync can succeed before it. */
    data object LoginFirst : SyncDecision
}

data class SyncPolicy(
    /** With nothing waiting, pull this often for comments and approvals. */
    val pullEveryMs: Long = 15 * 60_000L,
    /** First wait after a failure; doubled each failure. */
    val backoffBaseMs: Long = 30_000L,
    val backoffMaxMs: Long = 30 * 60_000L,
    /** On low battery with photos on mobile data, wait this long between tries. */
    val lowBatteryEveryMs: Long = 60 * 60_000L,
) {
    fun backoffMs(failures: Int): Long {
        if (failures <= 0) return 0
        val shift = (failures - 1).coerceAtMost(20)
        return (backoffBaseMs shl shift).coerceAtMost(backoffMaxMs)
    }

    fun decide(
        pending: PendingInfo,
        loginRequired: Boolean,
        history: SyncHistory,
        now: SyncConditions,
    ): SyncDecision {
        if (loginRequired) return SyncDecision.LoginFirst
        if (!now.online) return SyncDecision.Later(Long.MAX_VALUE, "offline; waiting for a network")
        val last = history.lastAttemptMs
        if (history.failures > 0 && last != null) {
            val next = last + backoffMs(history.failures)
            if (now.nowMs < next) return SyncDecision.Later(next, "backing off after ${history.failures} failed attempts")
        }
        val waiting = pending.changes > 0uL || pending.photos > 0uL
        if (waiting) {
            // Photos are the only large uploads; on mobile data with a low
            // battery they wait for a better moment, at most an hour.
            if (pending.photos > 0uL && now.metered && now.batteryLow && last != null) {
                val next = last + lowBatteryEveryMs
                if (now.nowMs < next) return SyncDecision.Later(next, "photos wait for Wi-Fi or charge")
            }
            return SyncDecision.Now
        }
        val since = history.lastSuccessMs ?: return SyncDecision.Now
        val next = since + pullEveryMs
        return if (now.nowMs >= next) SyncDecision.Now else SyncDecision.Later(next, "nothing to send")
    }
}
