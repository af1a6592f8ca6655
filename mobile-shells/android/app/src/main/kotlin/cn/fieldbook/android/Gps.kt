// GPS fixes from the platform LocationManager (no Google services on many
// county phones). The dialog shows the accuracy as it improves and the
// inspector decides when the fix is good enough to record.
package cn.fieldbook.android

import android.Manifest
import android.annotation.SuppressLint
import android.content.Context
import android.content.pm.PackageManager
import android.location.LocationListener
import android.location.LocationManager
import android.os.Build
import android.os.Bundle
import android.os.Looper
import androidx.activity.compose.rememberLauncherForActivityResult
import androidx.activity.result.contract.ActivityResultContracts
import androidx.compose.foundation.layout.Column
import androidx.compose.material3.AlertDialog
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.res.stringResource
import androidx.core.content.ContextCompat
import cn.fieldbook.ffi.Location
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.callbackFlow

/** Fixes from every enabled provider, as the core records them. */
@SuppressLint("MissingPermission") // checked by the caller before collecting
fun fixes(context: Context): Flow<Location> = callbackFlow {
    val lm = context.getSystemService(LocationManager::class.java)
    // An object, not a lambda: before API 30 the provider callbacks are
    // abstract, and a lambda listener crashes when GPS is switched on or off.
    val listener = object : LocationListener {
        override fun onLocationChanged(l: android.location.Location) {
            // A fix without an accuracy cannot say how far off it is.
            if (!l.hasAccuracy()) return
            val mock = if (Build.VERSION.SDK_INT >= 31) l.isMock else @Suppress("DEPRECATION") l.isFromMockProvider
            trySend(Location(lat = l.latitude, lon = l.longitude, accuracyM = l.accuracy.toDouble(), atMs = l.time, mock = mock))
        }

        override fun onProviderEnabled(provider: String) {}

        override fun onProviderDisabled(provider: String) {}

        @Deprecated("Deprecated in Java")
        override fun onStatusChanged(provider: String?, status: Int, extras: Bundle?) {}
    }
    // The network provider answers indoors and fast; GPS refines it outside.
    for (provider in listOf(LocationManager.GPS_PROVIDER, LocationManager.NETWORK_PROVIDER)) {
        if (lm.isProviderEnabled(provider)) {
            lm.requestLocationUpdates(provider, 1_000L, 0f, listener, Looper.getMainLooper())
        }
    }
    awaitClose { lm.removeUpdates(listener) }
}

@Composable
fun GpsDialog(onUse: (Location) -> Unit, onDismiss: () -> Unit) {
    val context = LocalContext.current
    var granted by remember {
        mutableStateOf(
            ContextCompat.checkSelfPermission(context, Manifest.permission.ACCESS_FINE_LOCATION) ==
                PackageManager.PERMISSION_GRANTED,
        )
    }
    val ask = rememberLauncherForActivityResult(ActivityResultContracts.RequestPermission()) { granted = it }
    var best by remember { mutableStateOf<Location?>(null) }
    LaunchedEffect(granted) {
        if (!granted) ask.launch(Manifest.permission.ACCESS_FINE_LOCATION)
        else fixes(context).collect { fix -> if (best.let { it == null || fix.accuracyM <= it.accuracyM }) best = fix }
    }
    val fix = best
    AlertDialog(
        onDismissRequest = onDismiss,
        title = { Text(stringResource(R.string.location)) },
        text = {
            Column {
                if (!granted) Text(stringResource(R.string.location_permission))
                if (fix == null) {
                    Text(stringResource(R.string.waiting_fix))
                    LinearProgressIndicator()
                } else {
                    Text("%.6f, %.6f".format(fix.lat, fix.lon))
                    Text(stringResource(R.string.accuracy_m, fix.accuracyM))
                    if (fix.mock) Text(stringResource(R.string.mock_location), color = MaterialTheme.colorScheme.error)
                }
            }
        },
        confirmButton = {
            TextButton(onClick = { fix?.let(onUse) }, enabled = fix != null) { Text(stringResource(R.string.use_fix)) }
        },
        dismissButton = { TextButton(onClick = onDismiss) { Text(stringResource(R.string.cancel)) } },
    )
}
