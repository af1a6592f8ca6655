// The process-wide app: one AppModel (one open store) shared by the
// screens and the background sync worker.
package cn.fieldbook.android

import android.app.Application
import cn.fieldbook.app.AppModel
import cn.fieldbook.ffi.Language
import kotlinx.coroutines.MainScope
import kotlinx.coroutines.flow.distinctUntilChanged
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.launch
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import java.util.Locale

class FieldbookApp : Application() {
    val model: AppModel by lazy {
        val dir = filesDir.resolve("fieldbook").apply { mkdirs() }
        val language = if (Locale.getDefault().language == "zh") Language.ZH else Language.EN
        AppModel(dir.absolutePath, language)
    }

    val scope = MainScope()
    private val opening = Mutex()
    private var started = false

    /** Opens the saved session once per process. The activity and a worker
     *  woken in a fresh process may both ask; only one may open the store. */
    suspend fun ready(): Boolean = opening.withLock {
        if (!started) {
            model.start()
            started = true
        }
        model.fieldbook != null
    }

    override fun onCreate() {
        super.onCreate()
        SyncWork.schedulePeriodic(this)
        // Whatever the inspector saves goes up at the next network, even if
        // the app is closed before then.
        scope.launch {
            model.state.map { it.sync.pending }.distinctUntilChanged().collect { p ->
                if (p != null && (p.changes > 0uL || p.photos > 0uL)) SyncWork.soon(this@FieldbookApp)
            }
        }
    }
}
