// The app's screen state and the actions behind its buttons, in plain
// Kotlin over the generated bindings. The Android app renders `state` with
// Compose and calls these functions from its coroutines; the desktop
// harness drives the same functions and asserts on the same state, so the
// app's logic is compiled and tested without an Android device.
//
// Every action runs core calls on `io` (quick store calls, milliseconds) or
// awaits the core's own background threads (login, photos, sync), so none
// of it blocks the UI thread. Failures never throw out of an action: they
// land in `state.message` with the next step the user should take.
package cn.fieldbook.app

import cn.fieldbook.ffi.AccountInfo
import cn.fieldbook.ffi.ApiException
import cn.fieldbook.ffi.CancelToken
import cn.fieldbook.ffi.Fieldbook
import cn.fieldbook.ffi.InspectionDetail
import cn.fieldbook.ffi.InspectionItem
import cn.fieldbook.ffi.InspectionStatus
import cn.fieldbook.ffi.Language
import cn.fieldbook.ffi.Location
import cn.fieldbook.ffi.PendingInfo
import cn.fieldbook.ffi.SiteItem
import cn.fieldbook.ffi.SiteKind
import cn.fieldbook.ffi.SyncListener
import cn.fieldbook.ffi.SyncProgress
import cn.fieldbook.ffi.SyncReport
import cn.fieldbook.ffi.TemplateInfo
import cn.fieldbook.ffi.savedUser
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.withContext

sealed interface Screen {
    /** `server` and `user` are prefilled from the last login on this phone. */
    data class Login(val server: String, val user: String, val userFixed: Boolean) : Screen

    data class Sites(val kind: SiteKind?, val sites: List<SiteItem>, val recent: List<InspectionItem>) : Screen

    data class Inspection(
        val detail: InspectionDetail,
        val template: TemplateInfo,
        val form: FormState,
    ) : Screen
}

data class SyncStatus(
    val running: Boolean = false,
    val progress: SyncProgress? = null,
    val pending: PendingInfo? = null,
    val last: SyncReport? = null,
    val history: SyncHistory = SyncHistory(),
)

data class AppState(
    val screen: Screen,
    val account: AccountInfo? = null,
    val sync: SyncStatus = SyncStatus(),
    /** The last refusal or failure, for a snackbar or dialog. */
    val message: UserMessage? = null,
)

class AppModel(
    private val dataDir: String,
    private val language: Language,
    private val io: CoroutineDispatcher = Dispatchers.IO,
    private val clock: () -> Long = System::currentTimeMillis,
    private val policy: SyncPolicy = SyncPolicy(),
) {
    private val _state = MutableStateFlow(AppState(Screen.Login("", "", false)))
    val state: StateFlow<AppState> = _state

    /** The open session, once logged in or resumed. */
    var fieldbook: Fieldbook? = null
        private set

    /** Field key -> the core's message for the last refused input. */
    private var refused: Map<String, String> = emptyMap()

    private fun fail(e: ApiException) {
        val m = Messages.of(e)
        _state.update { it.copy(message = m) }
    }

    fun dismissMessage() = _state.update { it.copy(message = null) }

    /** Opens the saved session offline, or shows the login screen. */
    suspend fun start(): Boolean = withContext(io) {
        try {
            val fb = Fieldbook.resume(dataDir, language)
            opened(fb)
            true
        } catch (e: ApiException.LoginRequired) {
            val saved = try { savedUser(dataDir) } catch (e: ApiException) { null }
            _state.update {
                it.copy(screen = Screen.Login(saved?.server ?: "", saved?.user ?: "", saved != null))
            }
            false
        } catch (e: ApiException) {
            fail(e)
            false
        }
    }

    suspend fun login(server: String, user: String, password: String): Boolean {
        // After a logout the same user may log in from the login screen:
        // close the old handle first so one store is open once.
        fieldbook?.let { old ->
            fieldbook = null
            old.close()
        }
        return try {
            val fb = cn.fieldbook.ffi.login(dataDir, server, user, password, language)
            withContext(io) { opened(fb) }
            true
        } catch (e: ApiException) {
            fail(e)
            false
        }
    }

    /** After `NextStep.LOG_IN`: the same user logs in again; nothing is lost. */
    suspend fun relogin(password: String): Boolean {
        val fb = fieldbook ?: return false
        return try {
            fb.relogin(password)
            withContext(io) { refreshStatus() }
            true
        } catch (e: ApiException) {
            fail(e)
            false
        }
    }

    private fun opened(fb: Fieldbook) {
        fieldbook = fb
        _state.update { it.copy(account = fb.account(), message = null) }
        showSitesNow(null)
        refreshStatus()
    }

    private fun refreshStatus() {
        val fb = fieldbook ?: return
        try {
            val pending = fb.pending()
            _state.update {
                // A fresh process (a background job) learns when the last
                // sync finished from the store, so its pacing survives.
                val history = if (it.sync.history.lastSuccessMs == null && pending.lastSyncedMs != null) {
                    it.sync.history.copy(lastSuccessMs = pending.lastSyncedMs)
                } else {
                    it.sync.history
                }
                it.copy(account = fb.account(), sync = it.sync.copy(pending = pending, history = history))
            }
        } catch (e: ApiException) {
            fail(e)
        }
    }

    suspend fun showSites(kind: SiteKind?) = withContext(io) { showSitesNow(kind) }

    private fun showSitesNow(kind: SiteKind?) {
        val fb = fieldbook ?: return
        try {
            val sites = fb.listSites(null, kind, 0u, 0u)
            val recent = fb.listInspections(null, null, 50u, 0u)
            _state.update { it.copy(screen = Screen.Sites(kind, sites, recent)) }
        } catch (e: ApiException) {
            fail(e)
        }
    }

    /** Inspections a supervisor sent back, with their comments, to fix first. */
    suspend fun returned(): List<InspectionItem> = withContext(io) {
        try {
            fieldbook?.listInspections(null, InspectionStatus.RETURNED, 0u, 0u).orEmpty()
        } catch (e: ApiException) {
            fail(e)
            emptyList()
        }
    }

    suspend fun startInspection(siteId: String): String? = withContext(io) {
        val fb = fieldbook ?: return@withContext null
        try {
            val id = fb.startInspection(siteId)
            openNow(id)
            id
        } catch (e: ApiException) {
            fail(e)
            null
        }
    }

    suspend fun openInspection(id: String) = withContext(io) {
        refused = emptyMap()
        openNow(id)
    }

    private fun openNow(id: String) {
        val fb = fieldbook ?: return
        try {
            val detail = fb.inspection(id)
            val template = fb.template(detail.siteKind)
            _state.update {
                it.copy(screen = Screen.Inspection(detail, template, Forms.build(template, detail, refused)))
            }
        } catch (e: ApiException) {
            fail(e)
        }
    }

    private fun current(): Screen.Inspection? = _state.value.screen as? Screen.Inspection

    /** Saves what the user typed into field `key`. Returns whether it was
     *  accepted; a refusal is shown beside the field. */
    suspend fun answer(key: String, text: String): Boolean = withContext(io) {
        val fb = fieldbook ?: return@withContext false
        val screen = current() ?: return@withContext false
        val field = screen.template.fields.firstOrNull { it.key == key }
            ?: return@withContext false
        val ok = Answers.parse(field, text).fold(
            onSuccess = { value ->
                try {
                    if (text.isBlank() && field.kind != cn.fieldbook.ffi.FieldKind.TEXT) {
                        fb.clearAnswer(screen.detail.id, key)
                    } else {
                        fb.setAnswer(screen.detail.id, key, value)
                    }
                    refused = refused - key
                    true
                } catch (e: ApiException) {
                    val m = Messages.of(e)
                    refused = refused + (key to (m.fields[key] ?: m.text))
                    _state.update { it.copy(message = m) }
                    false
                }
            },
            onFailure = { err ->
                if (text.isBlank()) {
                    try {
                        fb.clearAnswer(screen.detail.id, key)
                        refused = refused - key
                        true
                    } catch (e: ApiException) {
                        fail(e)
                        false
                    }
                } else {
                    refused = refused + (key to (err.message ?: "invalid"))
                    false
                }
            },
        )
        openNow(screen.detail.id)
        refreshStatus()
        ok
    }

    suspend fun setLocation(fix: Location): Boolean = edit { fb, id -> fb.setLocation(id, fix) }

    suspend fun addNote(text: String): Boolean = edit { fb, id -> fb.addNote(id, text) }

    /** Comments on the open inspection, in any status (a note needs it editable). */
    suspend fun comment(text: String): Boolean = edit { fb, id -> fb.comment(id, text) }

    suspend fun submit(): Boolean = edit { fb, id -> fb.submit(id) }

    private suspend fun edit(action: (Fieldbook, String) -> Unit): Boolean = withContext(io) {
        val fb = fieldbook ?: return@withContext false
        val screen = current() ?: return@withContext false
        val ok = try {
            action(fb, screen.detail.id)
            true
        } catch (e: ApiException) {
            fail(e)
            false
        }
        openNow(screen.detail.id)
        refreshStatus()
        ok
    }

    /** Attaches a photo (camera bytes); compression runs in the core off
     *  the UI thread. */
    suspend fun attachPhoto(bytes: ByteArray, field: String?): Boolean =
        attach { fb, id -> fb.addPhoto(id, bytes, field) }

    /** Attaches the photo in a file the camera wrote. */
    suspend fun attachPhotoFile(path: String, field: String?): Boolean =
        attach { fb, id -> fb.addPhotoFile(id, path, field) }

    private suspend fun attach(add: suspend (Fieldbook, String) -> Unit): Boolean {
        val fb = fieldbook ?: return false
        val screen = current() ?: return false
        val ok = try {
            add(fb, screen.detail.id)
            true
        } catch (e: ApiException) {
            fail(e)
            false
        }
        withContext(io) {
            openNow(screen.detail.id)
            refreshStatus()
        }
        return ok
    }

    /** What the policy says about syncing now. */
    suspend fun syncDecision(conditions: SyncConditions): SyncDecision = withContext(io) { decideNow(conditions) }

    private fun decideNow(conditions: SyncConditions): SyncDecision {
        val fb = fieldbook ?: return SyncDecision.LoginFirst
        val pending = try { fb.pending() } catch (e: ApiException) { return SyncDecision.Later(conditions.nowMs + policy.backoffBaseMs, e.message ?: "") }
        return policy.decide(pending, fb.account().loginRequired, _state.value.sync.history, conditions)
    }

    /** Syncs now. Progress shows in `state.sync.progress`; the result in
     *  `state.sync.last`, a failure in `state.message`. */
    suspend fun syncNow(cancel: CancelToken? = null): SyncReport? {
        val fb = fieldbook ?: return null
        // A tap while the background job syncs is not a failure: the
        // running sync carries the same work.
        if (withContext(io) { fb.pending().syncing }) return null
        _state.update { it.copy(sync = it.sync.copy(running = true, progress = null)) }
        val listener = object : SyncListener {
            override fun onProgress(progress: SyncProgress) {
                _state.update { it.copy(sync = it.sync.copy(progress = progress)) }
            }
        }
        val report = try {
            fb.sync(listener, cancel)
        } catch (e: ApiException) {
            _state.update {
                it.copy(
                    message = Messages.of(e),
                    sync = it.sync.copy(running = false, history = it.sync.history.failed(clock())),
                )
            }
            withContext(io) { refreshStatus() }
            return null
        }
        _state.update {
            it.copy(sync = it.sync.copy(running = false, last = report, history = it.sync.history.succeeded(clock())))
        }
        withContext(io) {
            refreshStatus()
            when (val s = _state.value.screen) {
                is Screen.Inspection -> openNow(s.detail.id)
                is Screen.Sites -> showSitesNow(s.kind)
                else -> {}
            }
        }
        return report
    }

    /** Forgets the token; records stay on the phone. */
    suspend fun logout() = withContext(io) {
        val fb = fieldbook ?: return@withContext
        try {
            fb.logout()
            val a = fb.account()
            _state.update { it.copy(account = a, screen = Screen.Login(a.server, a.user, true)) }
        } catch (e: ApiException) {
            fail(e)
        }
    }
}
