// The one activity: renders AppModel.state and layers the shell-only
// screens (camera, findings) over it.
package cn.fieldbook.android

import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.material3.AlertDialog
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Surface
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.SideEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.res.stringResource
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import cn.fieldbook.app.AppModel
import cn.fieldbook.app.Screen
import cn.fieldbook.app.SyncDecision
import cn.fieldbook.ffi.SiteKind
import kotlinx.coroutines.launch
import java.io.File

class MainActivity : ComponentActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val app = application as FieldbookApp
        setContent {
            MaterialTheme {
                Surface(Modifier.fillMaxSize()) { Root(app) }
            }
        }
    }
}

/** Where a photo being taken will go. */
private sealed interface PhotoTarget {
    data class Field(val key: String?) : PhotoTarget
    data class Finding(val id: String) : PhotoTarget
}

@Composable
private fun Root(app: FieldbookApp) {
    val model = app.model
    val context = LocalContext.current
    var started by remember { mutableStateOf(false) }
    LaunchedEffect(Unit) { app.ready(); started = true }
    val state by model.state.collectAsStateWithLifecycle()
    var camera by remember { mutableStateOf<PhotoTarget?>(null) }
    var findings by rememberSaveable { mutableStateOf(false) }
    var relogin by remember { mutableStateOf(false) }
    var photoError by remember { mutableStateOf<String?>(null) }
    var lastKind by rememberSaveable { mutableStateOf<SiteKind?>(null) }

    val target = camera
    when {
        !started -> Box(Modifier.fillMaxSize(), contentAlignment = Alignment.Center) { CircularProgressIndicator() }
        // Photos attach in the app scope: compression must finish even if
        // the user leaves the screen meanwhile.
        target != null -> CameraCapture { path ->
            camera = null
            if (path != null) app.scope.launch { photoError = attach(model, target, path) }
        }
        findings && state.screen !is Screen.Login -> FindingsScreen(
            model,
            onPhoto = { camera = PhotoTarget.Finding(it) },
            onBack = { findings = false },
        )
        else -> when (val s = state.screen) {
            is Screen.Login -> LoginScreen(s, state.message) { server, user, password -> model.login(server, user, password) }
            is Screen.Sites -> {
                SideEffect { lastKind = s.kind }
                SitesScreen(
                    model, state, s,
                    onSync = {
                        // A tap is the user's decision to sync now; the policy
                        // only says whether a login must come first.
                        app.scope.launch {
                            if (model.syncDecision(SyncWork.conditions(context)) == SyncDecision.LoginFirst) relogin = true
                            else model.syncNow()
                        }
                    },
                    onFindings = { findings = true },
                    onRelogin = { relogin = true },
                )
            }
            is Screen.Inspection -> ChecklistScreen(
                model, s,
                onPhoto = { camera = PhotoTarget.Field(it) },
                onBack = { app.scope.launch { model.showSites(lastKind) } },
            )
        }
    }

    val message = state.message
    if (message != null && state.screen !is Screen.Login) {
        MessageDialog(message, onDismiss = model::dismissMessage, onRelogin = { relogin = true })
    }
    if (relogin) ReloginDialog(onRelogin = { model.relogin(it) }, onDone = { relogin = false })
    photoError?.let {
        AlertDialog(
            onDismissRequest = { photoError = null },
            text = { Text(it) },
            confirmButton = { TextButton(onClick = { photoError = null }) { Text(stringResource(R.string.ok)) } },
        )
    }
}

/** Hands the camera file to the core, then removes it: the core keeps its
 *  own compressed copy. Returns a message when a finding refused it (the
 *  form's refusals arrive through AppModel's state). */
private suspend fun attach(model: AppModel, target: PhotoTarget, path: String): String? = try {
    when (target) {
        is PhotoTarget.Field -> { model.attachPhotoFile(path, target.key); null }
        is PhotoTarget.Finding -> attachFindingPhoto(model, target.id, path).exceptionOrNull()?.message
    }
} finally {
    File(path).delete()
}
