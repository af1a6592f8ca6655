// Findings: the open ones in the user's areas, evidence photos for them,
// the lifecycle steps the core offers this user (`FindingItem.nextSteps`),
// and the dialog that raises one from an inspection. These call the open
// Fieldbook directly, off the UI thread, and show refusals the same way
// (Messages.of).
package cn.fieldbook.android

import androidx.activity.compose.BackHandler
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material.icons.Icons
import androidx.compose.material.icons.automirrored.filled.ArrowBack
import androidx.compose.material3.AlertDialog
import androidx.compose.material3.ExperimentalMaterial3Api
import androidx.compose.material3.Icon
import androidx.compose.material3.IconButton
import androidx.compose.material3.ListItem
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Scaffold
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.material3.TopAppBar
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.rememberCoroutineScope
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.dp
import cn.fieldbook.app.AppModel
import cn.fieldbook.app.Messages
import cn.fieldbook.ffi.ApiException
import cn.fieldbook.ffi.Fieldbook
import cn.fieldbook.ffi.FindingItem
import cn.fieldbook.ffi.NewFindingInput
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import cn.fieldbook.ffi.FindingStep
import androidx.compose.foundation.layout.Row

/** Runs `block` on the open session off the UI thread; a refusal comes
 *  back as the core's message. */
suspend fun <T> withCore(model: AppModel, block: suspend (Fieldbook) -> T): Result<T> = withContext(Dispatchers.IO) {
    val fb = model.fieldbook ?: return@withContext Result.failure(IllegalStateException())
    try {
        Result.success(block(fb))
    } catch (e: ApiException) {
        Result.failure(IllegalStateException(Messages.of(e).text))
    }
}

/** Attaches the camera file to a finding; the core compresses it. */
suspend fun attachFindingPhoto(model: AppModel, findingId: String, path: String): Result<Unit> =
    withCore(model) { fb -> fb.addFindingPhotoFile(findingId, path); Unit }

@OptIn(ExperimentalMaterial3Api::class)
@Composable
fun FindingsScreen(model: AppModel, onPhoto: (findingId: String) -> Unit, onBack: () -> Unit) {
    var findings by remember { mutableStateOf<List<FindingItem>>(emptyList()) }
    var error by remember { mutableStateOf<String?>(null) }
    var reload by remember { mutableStateOf(0) }
    var stepping by remember { mutableStateOf<Pair<FindingItem, FindingStep>?>(null) }
    LaunchedEffect(reload) {
        withCore(model) { it.listFindings(null, true, 0u, 0u) }
            .onSuccess { findings = it }
            .onFailure { error = it.message }
    }
    stepping?.let { (f, step) ->
        StepDialog(model, f, step, onDone = { stepping = null; reload++ })
    }
    BackHandler(onBack = onBack)
    Scaffold(topBar = {
        TopAppBar(
            title = { Text(stringResource(R.string.findings)) },
            navigationIcon = {
                IconButton(onClick = onBack) { Icon(Icons.AutoMirrored.Filled.ArrowBack, stringResource(R.string.back)) }
            },
        )
    }) { pad ->
        LazyColumn(Modifier.padding(pad).fillMaxSize()) {
            error?.let { item { Text(it, color = MaterialTheme.colorScheme.error, modifier = Modifier.padding(16.dp)) } }
            items(findings, key = { it.id }) { f ->
                ListItem(
                    headlineContent = { Text(f.title) },
                    supportingContent = {
                        Column {
                            f.description?.let { Text(it) }
                            Text(listOfNotNull(f.statusLabel, f.deadline, f.responsible).joinToString(" · "))
                            if (f.overdue) Text(stringResource(R.string.overdue), color = MaterialTheme.colorScheme.error)
                            Row {
                                f.nextSteps.forEach { step ->
                                    TextButton(onClick = { stepping = f to step }) { Text(stepLabel(step)) }
                                }
                            }
                        }
                    },
                    trailingContent = {
                        OutlinedButton(onClick = { onPhoto(f.id) }) {
                            Text(stringResource(R.string.photo_count, f.photos.size))
                        }
                    },
                )
            }
        }
    }
}

@Composable
fun RaiseFindingDialog(model: AppModel, siteId: String, inspectionId: String?, onDone: () -> Unit) {
    var title by remember { mutableStateOf("") }
    var description by remember { mutableStateOf("") }
    var deadline by remember { mutableStateOf("") }
    var picking by remember { mutableStateOf(false) }
    var error by remember { mutableStateOf<String?>(null) }
    val scope = rememberCoroutineScope()
    if (picking) DateDialog(deadline, onPick = { deadline = it; picking = false }, onDismiss = { picking = false })
    AlertDialog(
        onDismissRequest = onDone,
        title = { Text(stringResource(R.string.raise_finding)) },
        text = {
            Column {
                OutlinedTextField(title, { title = it }, label = { Text(stringResource(R.string.finding_title)) })
                OutlinedTextField(
                    description, { description = it },
                    label = { Text(stringResource(R.string.finding_description)) }, minLines = 3,
                )
                OutlinedButton(onClick = { picking = true }, modifier = Modifier.fillMaxWidth()) {
                    Text(deadline.ifEmpty { stringResource(R.string.finding_deadline) })
                }
                error?.let { Text(it, color = MaterialTheme.colorScheme.error) }
            }
        },
        confirmButton = {
            TextButton(onClick = {
                val input = NewFindingInput(inspectionId, siteId, title, description, deadline.ifEmpty { null })
                scope.launch {
                    withCore(model) { it.raiseFinding(input) }
                        .onSuccess { onDone() }
                        .onFailure { error = it.message }
                }
            }) { Text(stringResource(R.string.raise)) }
        },
        dismissButton = { TextButton(onClick = onDone) { Text(stringResource(R.string.cancel)) } },
    )
}

@Composable
fun stepLabel(step: FindingStep): String = stringResource(
    when (step) {
        FindingStep.ASSIGNED -> R.string.step_assign
        FindingStep.RECTIFYING -> R.string.step_rectifying
        FindingStep.CLOSURE_REQUESTED -> R.string.step_request_closure
        FindingStep.CLOSED -> R.string.step_close
        FindingStep.SENT_BACK -> R.string.step_send_back
        FindingStep.ESCALATED -> R.string.step_escalate
    },
)

/** One lifecycle step with its comment; assigning also names who fixes it
 *  and by when. What each step needs is checked by the core. */
@Composable
fun StepDialog(model: AppModel, finding: FindingItem, step: FindingStep, onDone: () -> Unit) {
    var comment by remember { mutableStateOf("") }
    var responsible by remember { mutableStateOf(finding.responsible ?: "") }
    var deadline by remember { mutableStateOf(finding.deadline ?: "") }
    var picking by remember { mutableStateOf(false) }
    var error by remember { mutableStateOf<String?>(null) }
    val scope = rememberCoroutineScope()
    if (picking) DateDialog(deadline, onPick = { deadline = it; picking = false }, onDismiss = { picking = false })
    AlertDialog(
        onDismissRequest = onDone,
        title = { Text(stepLabel(step)) },
        text = {
            Column {
                Text(finding.title)
                if (step == FindingStep.ASSIGNED) {
                    OutlinedTextField(responsible, { responsible = it }, label = { Text(stringResource(R.string.responsible)) })
                    OutlinedButton(onClick = { picking = true }, modifier = Modifier.fillMaxWidth()) {
                        Text(deadline.ifEmpty { stringResource(R.string.finding_deadline) })
                    }
                }
                OutlinedTextField(comment, { comment = it }, label = { Text(stringResource(R.string.comment)) }, minLines = 2)
                error?.let { Text(it, color = MaterialTheme.colorScheme.error) }
            }
        },
        confirmButton = {
            TextButton(onClick = {
                scope.launch {
                    withCore(model) {
                        it.advanceFinding(
                            finding.id, step, comment.ifBlank { null },
                            responsible.ifBlank { null }, deadline.ifBlank { null },
                        )
                    }
                        .onSuccess { onDone() }
                        .onFailure { error = it.message }
                }
            }) { Text(stringResource(R.string.ok)) }
        },
        dismissButton = { TextButton(onClick = onDone) { Text(stringResource(R.string.cancel)) } },
    )
}
