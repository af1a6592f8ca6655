// The checklist of one inspection, drawn from the shared FormState. Which
// rows exist, what is wrong with them and whether the form can be
// submitted all come from the core; this file only picks a widget per
// field kind and passes what the user entered back to AppModel.answer.
package cn.fieldbook.android

import androidx.activity.compose.BackHandler
import androidx.compose.foundation.horizontalScroll
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.Spacer
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.height
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.rememberScrollState
import androidx.compose.foundation.selection.selectable
import androidx.compose.foundation.text.KeyboardActions
import androidx.compose.foundation.text.KeyboardOptions
import androidx.compose.foundation.verticalScroll
import androidx.compose.material.icons.Icons
import androidx.compose.material.icons.automirrored.filled.ArrowBack
import androidx.compose.material3.Button
import androidx.compose.material3.DatePicker
import androidx.compose.material3.DatePickerDialog
import androidx.compose.material3.ExperimentalMaterial3Api
import androidx.compose.material3.HorizontalDivider
import androidx.compose.material3.Icon
import androidx.compose.material3.IconButton
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.RadioButton
import androidx.compose.material3.Scaffold
import androidx.compose.material3.SegmentedButton
import androidx.compose.material3.SegmentedButtonDefaults
import androidx.compose.material3.SingleChoiceSegmentedButtonRow
import androidx.compose.material3.SuggestionChip
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.material3.TopAppBar
import androidx.compose.material3.rememberDatePickerState
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.rememberCoroutineScope
import androidx.compose.runtime.setValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.focus.onFocusChanged
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.semantics.Role
import androidx.compose.ui.text.input.ImeAction
import androidx.compose.ui.text.input.KeyboardType
import androidx.compose.ui.unit.dp
import cn.fieldbook.app.AppModel
import cn.fieldbook.app.FormRow
import cn.fieldbook.app.Screen
import cn.fieldbook.ffi.FieldKind
import cn.fieldbook.ffi.TemplateField
import kotlinx.coroutines.launch
import java.time.Instant
import java.time.LocalDate
import java.time.ZoneOffset

@OptIn(ExperimentalMaterial3Api::class)
@Composable
fun ChecklistScreen(model: AppModel, screen: Screen.Inspection, onPhoto: (field: String?) -> Unit, onBack: () -> Unit) {
    val form = screen.form
    val detail = screen.detail
    val scope = rememberCoroutineScope()
    var gps by remember { mutableStateOf(false) }
    var raising by remember { mutableStateOf(false) }
    BackHandler(onBack = onBack)
    if (gps) GpsDialog(onUse = { fix -> gps = false; scope.launch { model.setLocation(fix) } }, onDismiss = { gps = false })
    if (raising) RaiseFindingDialog(model, detail.siteId, detail.id, onDone = { raising = false })

    Scaffold(topBar = {
        TopAppBar(
            title = { Text(form.title) },
            navigationIcon = {
                IconButton(onClick = onBack) { Icon(Icons.AutoMirrored.Filled.ArrowBack, stringResource(R.string.back)) }
            },
        )
    }) { pad ->
        // A plain scrolling column, not a lazy list: a row scrolled away
        // must keep its focus handler so a typed answer is still saved.
        Column(Modifier.padding(pad).fillMaxSize().verticalScroll(rememberScrollState()).padding(16.dp)) {
            Text(listOfNotNull(detail.siteName, detail.statusLabel).joinToString(" · "))
            Row(verticalAlignment = Alignment.CenterVertically) {
                Text(
                    detail.location?.let { stringResource(R.string.accuracy_m, it.accuracyM) }
                        ?: stringResource(R.string.no_location),
                    modifier = Modifier.weight(1f),
                )
                OutlinedButton(onClick = { gps = true }, enabled = form.editable) { Text(stringResource(R.string.locate)) }
            }
            Row {
                OutlinedButton(onClick = { onPhoto(null) }, enabled = form.editable) {
                    Text(stringResource(R.string.photo_count, detail.photos.size))
                }
                Spacer(Modifier.padding(4.dp))
                OutlinedButton(onClick = { raising = true }) { Text(stringResource(R.string.raise_finding)) }
            }
            detail.timeline.filter { it.comment != null }.forEach {
                Text("${it.label} · ${it.author}: ${it.comment}", color = MaterialTheme.colorScheme.tertiary)
            }
            form.recordProblems.forEach { Text(it, color = MaterialTheme.colorScheme.error) }
            form.rows.forEach { row ->
                HorizontalDivider(Modifier.padding(vertical = 8.dp))
                FieldRow(row, form.editable, onAnswer = { text -> scope.launch { model.answer(row.key, text) } }, onPhoto = onPhoto)
            }
            HorizontalDivider(Modifier.padding(vertical = 8.dp))
            detail.notes.forEach { Text("${it.author}: ${it.text}") }
            if (form.editable) NoteInput { scope.launch { model.addNote(it) } }
            Spacer(Modifier.height(16.dp))
            Button(onClick = { scope.launch { model.submit() } }, enabled = form.canSubmit, modifier = Modifier.fillMaxWidth()) {
                Text(stringResource(R.string.submit))
            }
        }
    }
}

@OptIn(ExperimentalMaterial3Api::class)
@Composable
private fun FieldRow(row: FormRow, editable: Boolean, onAnswer: (String) -> Unit, onPhoto: (String) -> Unit) {
    val f = row.field
    Text(if (f.required) "${f.label} *" else f.label, style = MaterialTheme.typography.titleSmall)
    f.help?.let { Text(it, style = MaterialTheme.typography.bodySmall) }
    when (f.kind) {
        FieldKind.YES_NO -> SingleChoiceSegmentedButtonRow {
            listOf("yes" to R.string.yes, "no" to R.string.no).forEachIndexed { i, (value, label) ->
                SegmentedButton(
                    selected = row.text == value,
                    onClick = { onAnswer(value) },
                    shape = SegmentedButtonDefaults.itemShape(index = i, count = 2),
                    enabled = editable,
                ) { Text(stringResource(label)) }
            }
        }
        FieldKind.CHOICE -> f.options.forEach { o ->
            Row(
                Modifier.fillMaxWidth().selectable(row.text == o.key, editable, Role.RadioButton) { onAnswer(o.key) },
                verticalAlignment = Alignment.CenterVertically,
            ) {
                RadioButton(selected = row.text == o.key, onClick = null, enabled = editable)
                Text(o.label, Modifier.padding(start = 8.dp))
            }
        }
        FieldKind.NUMBER -> CommitField(
            row.text, editable, onAnswer, singleLine = true, suffix = f.unit,
            keyboard = if (f.integer) KeyboardType.Number else KeyboardType.Decimal,
        )
        FieldKind.TEXT -> CommitField(row.text, editable, onAnswer, singleLine = false, maxLen = f.maxLen)
        FieldKind.DATE -> {
            var picking by remember { mutableStateOf(false) }
            OutlinedButton(onClick = { picking = true }, enabled = editable) {
                Text(row.text.ifEmpty { stringResource(R.string.choose_date) })
            }
            if (picking) DateDialog(row.text, onPick = { picking = false; onAnswer(it) }, onDismiss = { picking = false })
        }
        FieldKind.PHOTO -> {
            f.photoHint?.let { Text(it, style = MaterialTheme.typography.bodySmall) }
            OutlinedButton(onClick = { onPhoto(row.key) }, enabled = editable) {
                Text(stringResource(R.string.take_photo, row.photos, row.photosWanted))
            }
        }
    }
    if (row.conflicts.isNotEmpty()) {
        Text(stringResource(R.string.conflict_pick), color = MaterialTheme.colorScheme.error)
        Row(Modifier.horizontalScroll(rememberScrollState())) {
            (listOf(row.text) + row.conflicts).distinct().forEach { value ->
                SuggestionChip(onClick = { onAnswer(value) }, label = { Text(shown(f, value)) }, enabled = editable)
                Spacer(Modifier.padding(4.dp))
            }
        }
    }
    row.problem?.let { Text(it, color = MaterialTheme.colorScheme.error) }
}

/** How a stored value reads to the inspector. */
@Composable
private fun shown(f: TemplateField, value: String): String = when (f.kind) {
    FieldKind.YES_NO -> stringResource(if (value == "yes") R.string.yes else R.string.no)
    FieldKind.CHOICE -> f.options.firstOrNull { it.key == value }?.label ?: value
    else -> value
}

/** A text input that saves when the user leaves it or presses Done, not
 *  on every keystroke: each save is a durable write and a form reload. */
@Composable
private fun CommitField(
    saved: String,
    enabled: Boolean,
    onCommit: (String) -> Unit,
    singleLine: Boolean,
    suffix: String? = null,
    keyboard: KeyboardType = KeyboardType.Text,
    maxLen: UInt? = null,
) {
    // Keyed on the saved value: a refused input stays visible to correct,
    // an accepted one shows as the core normalised it.
    var text by remember(saved) { mutableStateOf(saved) }
    var focused by remember { mutableStateOf(false) }
    OutlinedTextField(
        value = text,
        onValueChange = { text = it },
        enabled = enabled,
        singleLine = singleLine,
        minLines = if (singleLine) 1 else 3,
        suffix = if (suffix != null) { { Text(suffix) } } else null,
        supportingText = if (maxLen != null) { { Text("${text.length} / $maxLen") } } else null,
        keyboardOptions = KeyboardOptions(
            keyboardType = keyboard,
            imeAction = if (singleLine) ImeAction.Done else ImeAction.Default,
        ),
        keyboardActions = KeyboardActions(onDone = { if (text != saved) onCommit(text) }),
        modifier = Modifier.fillMaxWidth().onFocusChanged {
            if (focused && !it.isFocused && text != saved) onCommit(text)
            focused = it.isFocused
        },
    )
}

@Composable
private fun NoteInput(onAdd: (String) -> Unit) {
    var text by remember { mutableStateOf("") }
    Row(verticalAlignment = Alignment.CenterVertically) {
        OutlinedTextField(text, { text = it }, Modifier.weight(1f), label = { Text(stringResource(R.string.note)) })
        TextButton(onClick = { onAdd(text); text = "" }, enabled = text.isNotBlank()) { Text(stringResource(R.string.add)) }
    }
}

/** Picks a day and hands it back as `YYYY-MM-DD`, the form the core stores. */
@OptIn(ExperimentalMaterial3Api::class)
@Composable
fun DateDialog(initial: String, onPick: (String) -> Unit, onDismiss: () -> Unit) {
    // The picker works in UTC midnights, so convert in UTC both ways.
    val initialMs = runCatching { LocalDate.parse(initial).atStartOfDay(ZoneOffset.UTC).toInstant().toEpochMilli() }.getOrNull()
    val state = rememberDatePickerState(initialSelectedDateMillis = initialMs)
    DatePickerDialog(
        onDismissRequest = onDismiss,
        confirmButton = {
            TextButton(onClick = {
                val ms = state.selectedDateMillis
                if (ms == null) onDismiss() else onPick(Instant.ofEpochMilli(ms).atOffset(ZoneOffset.UTC).toLocalDate().toString())
            }) { Text(stringResource(R.string.ok)) }
        },
        dismissButton = { TextButton(onClick = onDismiss) { Text(stringResource(R.string.cancel)) } },
    ) { DatePicker(state) }
}
