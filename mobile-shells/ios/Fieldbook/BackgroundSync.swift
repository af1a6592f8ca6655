// Background sync with BGAppRefreshTask, following the same policy as the
// app (SyncPolicy.swift). iOS picks the moment a refresh runs; each run
// asks the policy, syncs if due, and books the next earliest time the
// policy names. iOS has no "wake me when a network appears", so offline
// waits fall back to the regular pull interval.
import BackgroundTasks
import Network
import UIKit

enum BackgroundSync {
    static let taskId = "cn.fieldbook.sync"

    /// Must run before the app finishes launching.
    static func register(model: AppModel) {
        BGTaskScheduler.shared.register(forTaskWithIdentifier: taskId, using: nil) { task in
            guard let task = task as? BGAppRefreshTask else { return }
            Task { @MainActor in await run(task, model: model) }
        }
    }

    static func schedule(_ decision: SyncDecision, policy: SyncPolicy) {
        var afterMs = policy.pullEveryMs
        if case let .later(atMs, _) = decision, atMs != .max { afterMs = max(atMs - nowMs(), 60_000) }
        let request = BGAppRefreshTaskRequest(identifier: taskId)
        request.earliestBeginDate = Date(timeIntervalSinceNow: TimeInterval(afterMs) / 1000)
        try? BGTaskScheduler.shared.submit(request)
    }

    @MainActor
    private static func run(_ task: BGAppRefreshTask, model: AppModel) async {
        await model.start()
        var ok = true
        if model.syncDecision(Conditions.current()) == .now {
            // When iOS ends the window, the core stops at its next step and
            // keeps everything applied so far.
            let cancel = CancelToken()
            task.expirationHandler = { cancel.cancel() }
            ok = await model.syncNow(cancel: cancel) != nil
        }
        schedule(model.syncDecision(Conditions.current()), policy: model.policy)
        task.setTaskCompleted(success: ok)
    }
}

/// What the phone knows about its situation, for the policy.
@MainActor
enum Conditions {
    private static let path: NWPathMonitor = {
        let monitor = NWPathMonitor()
        monitor.start(queue: DispatchQueue(label: "cn.fieldbook.network"))
        return monitor
    }()

    static func current() -> SyncConditions {
        let net = path.currentPath
        let device = UIDevice.current
        device.isBatteryMonitoringEnabled = true
        let charging = device.batteryState == .charging || device.batteryState == .full
        let low = ProcessInfo.processInfo.isLowPowerModeEnabled || (device.batteryLevel >= 0 && device.batteryLevel <= 0.2)
        return SyncConditions(
            online: net.status == .satisfied,
            metered: net.isExpensive || net.isConstrained,
            batteryLow: low && !charging,
            nowMs: nowMs()
        )
    }
}
