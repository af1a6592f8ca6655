// Background sync with WorkManager. Every run asks the shared SyncPolicy
// (through AppModel.syncDecision) whether to sync, so the app, the worker
// and the desktop harness follow one rule.
package cn.fieldbook.android

import android.content.Context
import android.net.ConnectivityManager
import android.net.NetworkCapabilities
import android.os.BatteryManager
import androidx.work.Constraints
import androidx.work.CoroutineWorker
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.ExistingWorkPolicy
import androidx.work.NetworkType
import androidx.work.OneTimeWorkRequestBuilder
import androidx.work.PeriodicWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import cn.fieldbook.app.SyncConditions
import cn.fieldbook.app.SyncDecision
import cn.fieldbook.ffi.CancelToken
import kotlinx.coroutines.Job
import java.util.concurrent.TimeUnit
import kotlin.coroutines.coroutineContext

object SyncWork {
    private const val PERIODIC = "fieldbook-sync-periodic"
    private const val SOON = "fieldbook-sync-soon"
    private const val RETRY = "fieldbook-sync-retry"

    /** A burst of answers goes up in one exchange instead of one each. */
    private const val BATCH_DELAY_MS = 20_000L

    // The worker only wakes with a network, which is exactly when waiting
    // changes should go up.
    private val online = Constraints.Builder().setRequiredNetworkType(NetworkType.CONNECTED).build()

    fun schedulePeriodic(context: Context) {
        val request = PeriodicWorkRequestBuilder<SyncWorker>(15, TimeUnit.MINUTES)
            .setConstraints(online)
            .build()
        WorkManager.getInstance(context)
            .enqueueUniquePeriodicWork(PERIODIC, ExistingPeriodicWorkPolicy.KEEP, request)
    }

    /** Something is waiting: sync at the next network. KEEP, so repeated
     *  saves do not push the run further away. */
    fun soon(context: Context) = oneTime(context, SOON, BATCH_DELAY_MS, ExistingWorkPolicy.KEEP)

    /** The policy said "not before `delayMs`". A separate name, so a running
     *  worker can book its successor without cancelling itself. */
    fun retry(context: Context, delayMs: Long) =
        oneTime(context, RETRY, delayMs.coerceAtLeast(0), ExistingWorkPolicy.REPLACE)

    private fun oneTime(context: Context, name: String, delayMs: Long, policy: ExistingWorkPolicy) {
        val request = OneTimeWorkRequestBuilder<SyncWorker>()
            .setConstraints(online)
            .setInitialDelay(delayMs, TimeUnit.MILLISECONDS)
            .build()
        WorkManager.getInstance(context).enqueueUniqueWork(name, policy, request)
    }

    fun conditions(context: Context): SyncConditions {
        val cm = context.getSystemService(ConnectivityManager::class.java)
        val caps = cm.getNetworkCapabilities(cm.activeNetwork)
        val battery = context.getSystemService(BatteryManager::class.java)
        val level = battery.getIntProperty(BatteryManager.BATTERY_PROPERTY_CAPACITY)
        return SyncConditions(
            online = caps?.hasCapability(NetworkCapabilities.NET_CAPABILITY_INTERNET) == true,
            metered = cm.isActiveNetworkMetered,
            batteryLow = level in 0..20 && !battery.isCharging,
            nowMs = System.currentTimeMillis(),
        )
    }

    /** Books the next run the policy asks for. "Offline" needs no booking:
     *  the network constraint wakes a worker when a network appears. "Now"
     *  right after a sync is left to the periodic run and the next save, so
     *  a change the server keeps refusing cannot spin the radio. */
    fun followUp(context: Context, decision: SyncDecision) {
        if (decision is SyncDecision.Later && decision.atMs != Long.MAX_VALUE) {
            retry(context, decision.atMs - System.currentTimeMillis())
        }
    }
}

class SyncWorker(context: Context, params: WorkerParameters) : CoroutineWorker(context, params) {
    override suspend fun doWork(): Result {
        val app = applicationContext as FieldbookApp
        if (!app.ready()) return Result.success()
        val model = app.model
        // A sync the user started is already doing this run's work.
        if (model.state.value.sync.running) return Result.success()
        val decision = model.syncDecision(SyncWork.conditions(applicationContext))
        if (decision != SyncDecision.Now) {
            SyncWork.followUp(applicationContext, decision)
            return Result.success()
        }
        // When the system stops the worker, the core stops at its next step
        // and keeps everything applied so far.
        CancelToken().use { cancel ->
            val stop = coroutineContext[Job]?.invokeOnCompletion { if (it != null) cancel.cancel() }
            try {
                model.syncNow(cancel)
            } finally {
                stop?.dispose()
            }
        }
        // Failures are counted in the sync history; the policy turns them
        // into a backoff, so WorkManager's own retry is not used.
        SyncWork.followUp(applicationContext, model.syncDecision(SyncWork.conditions(applicationContext)))
        return Result.success()
    }
}
