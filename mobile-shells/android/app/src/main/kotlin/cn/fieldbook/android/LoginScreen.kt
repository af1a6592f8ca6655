// Logging in, logging in again after the token went stale, and the dialog
// that shows a refusal with the next step the core's error calls for.
package cn.fieldbook.android

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.text.KeyboardOptions
import androidx.compose.material3.AlertDialog
import androidx.compose.material3.Button
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.rememberCoroutineScope
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.text.input.KeyboardType
import androidx.compose.ui.text.input.PasswordVisualTransformation
import androidx.compose.ui.unit.dp
import cn.fieldbook.app.NextStep
import cn.fieldbook.app.Screen
import cn.fieldbook.app.UserMessage
import kotlinx.coroutines.launch

@Composable
fun LoginScreen(screen: Screen.Login, message: UserMessage?, onLogin: suspend (String, String, String) -> Unit) {
    var server by rememberSaveable(screen.server) { mutableStateOf(screen.server) }
    var user by rememberSaveable(screen.user) { mutableStateOf(screen.user) }
    var password by remember { mutableStateOf("") }
    var busy by remember { mutableStateOf(false) }
    val scope = rememberCoroutineScope()
    Column(
        Modifier.fillMaxSize().padding(24.dp),
        verticalArrangement = Arrangement.spacedBy(12.dp),
    ) {
        Text(stringResource(R.string.app_name), style = MaterialTheme.typography.headlineSmall)
        OutlinedTextField(
            server, { server = it }, Modifier.fillMaxWidth(),
            label = { Text(stringResource(R.string.server)) }, singleLine = true,
            keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.Uri),
        )
        // The phone's store belongs to the user who last logged in on it.
        OutlinedTextField(
            user, { user = it }, Modifier.fillMaxWidth(), readOnly = screen.userFixed,
            label = { Text(stringResource(R.string.user)) }, singleLine = true,
        )
        PasswordField(password) { password = it }
        message?.let { Text(it.text, color = MaterialTheme.colorScheme.error) }
        Button(
            onClick = {
                busy = true
                scope.launch {
                    onLogin(server.trim(), user.trim(), password)
                    busy = false
                }
            },
            enabled = !busy && server.isNotBlank() && user.isNotBlank() && password.isNotEmpty(),
            modifier = Modifier.fillMaxWidth(),
        ) { Text(stringResource(R.string.log_in)) }
    }
}

@Composable
private fun PasswordField(value: String, onChange: (String) -> Unit) = OutlinedTextField(
    value, onChange, Modifier.fillMaxWidth(),
    label = { Text(stringResource(R.string.password)) }, singleLine = true,
    visualTransformation = PasswordVisualTransformation(),
    keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.Password),
)

/** Same user, fresh token: nothing on the phone is lost. */
@Composable
fun ReloginDialog(onRelogin: suspend (String) -> Boolean, onDone: () -> Unit) {
    var password by remember { mutableStateOf("") }
    var busy by remember { mutableStateOf(false) }
    val scope = rememberCoroutineScope()
    AlertDialog(
        onDismissRequest = onDone,
        title = { Text(stringResource(R.string.login_expired)) },
        text = { PasswordField(password) { password = it } },
        confirmButton = {
            TextButton(enabled = !busy && password.isNotEmpty(), onClick = {
                busy = true
                scope.launch {
                    if (onRelogin(password)) onDone()
                    busy = false
                }
            }) { Text(stringResource(R.string.log_in)) }
        },
        dismissButton = { TextButton(onClick = onDone) { Text(stringResource(R.string.cancel)) } },
    )
}

private val nextStepTitles = mapOf(
    NextStep.FIX_INPUT to R.string.next_fix_input,
    NextStep.NOT_ALLOWED to R.string.next_not_allowed,
    NextStep.LOG_IN to R.string.next_log_in,
    NextStep.RETRY_LATER to R.string.next_retry_later,
    NextStep.FREE_SPACE to R.string.next_free_space,
    NextStep.RECOVER to R.string.next_recover,
    NextStep.REPORT to R.string.next_report,
)

@Composable
fun MessageDialog(message: UserMessage, onDismiss: () -> Unit, onRelogin: () -> Unit) = AlertDialog(
    onDismissRequest = onDismiss,
    title = { Text(stringResource(nextStepTitles.getValue(message.next))) },
    text = { Text(message.text) },
    confirmButton = {
        if (message.next == NextStep.LOG_IN) {
            TextButton(onClick = { onDismiss(); onRelogin() }) { Text(stringResource(R.string.log_in)) }
        } else {
            TextButton(onClick = onDismiss) { Text(stringResource(R.string.ok)) }
        }
    },
)
