// When the app syncs on its own. This mirrors
// mobile-shells/shared/src/main/kotlin/cn/fieldbook/app/SyncPolicy.kt
// rule for rule (that one is tested by the desktop harness); change both
// together.
//
// Inspectors work for weeks without signal: anything waiting goes up as
// soon as a network appears; with nothing waiting the app still pulls now
// and then so comments arrive; failures back off, doubling up to a cap; a
// stale login asks for a login instead of syncing.
import Foundation

struct SyncConditions {
    var online: Bool
    /// A metered connection (mobile data, Low Data Mode).
    var metered: Bool
    var batteryLow: Bool
    var nowMs: Int64
}

struct SyncHistory: Equatable {
    var lastSuccessMs: Int64? = nil
    var lastAttemptMs: Int64? = nil
    /// Failed attempts since the last success.
    var failures = 0

    func succeeded(atMs: Int64) -> SyncHistory {
        SyncHistory(lastSuccessMs: atMs, lastAttemptMs: atMs, failures: 0)
    }

    func failed(atMs: Int64) -> SyncHistory {
        SyncHistory(lastSuccessMs: lastSuccessMs, lastAttemptMs: atMs, failures: failures + 1)
    }
}

enum SyncDecision: Equatable {
    case now
    /// Check again at `atMs` (`Int64.max`: when a network appears).
    case later(atMs: Int64, why: String)
    case loginFirst
}

struct SyncPolicy {
    var pullEveryMs: Int64 = 15 * 60_000
    var backoffBaseMs: Int64 = 30_000
    var backoffMaxMs: Int64 = 30 * 60_000
    var lowBatteryEveryMs: Int64 = 60 * 60_000

    func backoffMs(failures: Int) -> Int64 {
        if failures <= 0 { return 0 }
        return min(backoffBaseMs << min(failures - 1, 20), backoffMaxMs)
    }

    func decide(pending: PendingInfo, loginRequired: Bool, history: SyncHistory, now: SyncConditions) -> SyncDecision {
        if loginRequired { return .loginFirst }
        if !now.online { return .later(atMs: .max, why: "offline; waiting for a network") }
        let last = history.lastAttemptMs
        if history.failures > 0, let last {
            let next = last + backoffMs(failures: history.failures)
            if now.nowMs < next { return .later(atMs: next, why: "backing off after \(history.failures) failed attempts") }
        }
        if pending.changes > 0 || pending.photos > 0 {
            // Photos are the only large uploads; on mobile data with a low
            // battery they wait for a better moment, at most an hour.
            if pending.photos > 0, now.metered, now.batteryLow, let last {
                let next = last + lowBatteryEveryMs
                if now.nowMs < next { return .later(atMs: next, why: "photos wait for Wi-Fi or charge") }
            }
            return .now
        }
        guard let since = history.lastSuccessMs else { return .now }
        let next = since + pullEveryMs
        return now.nowMs >= next ? .now : .later(atMs: next, why: "nothing to send")
    }
}

func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
