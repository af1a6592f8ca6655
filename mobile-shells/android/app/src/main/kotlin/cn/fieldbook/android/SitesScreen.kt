// The home screen: sync status, work sent back by a supervisor, drafts to
// continue, and the sites in the user's areas filtered by kind.
package cn.fieldbook.android

import android.text.format.DateUtils
import androidx.compose.foundation.clickable
import androidx.compose.foundation.horizontalScroll
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.Spacer
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.foundation.rememberScrollState
import androidx.compose.material.icons.Icons
import androidx.compose.material.icons.filled.Refresh
import androidx.compose.material3.Badge
import androidx.compose.material3.BadgedBox
import androidx.compose.material3.ExperimentalMaterial3Api
import androidx.compose.material3.FilterChip
import androidx.compose.material3.Icon
import androidx.compose.material3.IconButton
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.ListItem
import androidx.compose.material3.MaterialTheme
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
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.dp
import cn.fieldbook.app.AppModel
import cn.fieldbook.app.AppState
import cn.fieldbook.app.Screen
import cn.fieldbook.app.SyncStatus
import cn.fieldbook.ffi.AccountInfo
import cn.fieldbook.ffi.InspectionItem
import cn.fieldbook.ffi.InspectionStatus
import cn.fieldbook.ffi.SiteKind
import kotlinx.coroutines.launch

// The core labels each site with its kind, but a filter chip needs the
// label before any site of that kind is loaded.
private val kindLabels = mapOf(
    SiteKind.RURAL_SEWAGE to R.string.kind_rural_sewage,
    SiteKind.TOWNSHIP_SEWAGE_PLANT to R.string.kind_township_sewage_plant,
    SiteKind.HOUSEHOLD_TOILET to R.string.kind_household_toilet,
    SiteKind.GARBAGE_POINT to R.string.kind_garbage_point,
    SiteKind.TAILINGS_POND to R.string.kind_tailings_pond,
    SiteKind.SEWAGE_OUTFALL to R.string.kind_sewage_outfall,
    SiteKind.BLACK_ODOROUS_WATER to R.string.kind_black_odorous_water,
)

@OptIn(ExperimentalMaterial3Api::class)
@Composable
fun SitesScreen(
    model: AppModel,
    state: AppState,
    screen: Screen.Sites,
    onSync: () -> Unit,
    onFindings: () -> Unit,
    onRelogin: () -> Unit,
) {
    val scope = rememberCoroutineScope()
    var returned by remember { mutableStateOf<List<InspectionItem>>(emptyList()) }
    LaunchedEffect(screen) { returned = model.returned() }
    // Inspection rows carry only the site id; name them from the site list.
    val names = remember(screen.sites) { screen.sites.associate { it.id to it.name } }
    val drafts = screen.recent.filter { it.status == InspectionStatus.DRAFT }
    val waiting = state.sync.pending?.let { it.changes + it.photos }?.toLong() ?: 0L

    Scaffold(topBar = {
        TopAppBar(
            title = { Text(state.account?.user ?: stringResource(R.string.app_name)) },
            actions = {
                TextButton(onClick = onFindings) { Text(stringResource(R.string.findings)) }
                IconButton(onClick = onSync, enabled = !state.sync.running) {
                    BadgedBox(badge = { if (waiting > 0) Badge { Text("$waiting") } }) {
                        Icon(Icons.Default.Refresh, stringResource(R.string.sync))
                    }
                }
                TextButton(onClick = { scope.launch { model.logout() } }) { Text(stringResource(R.string.logout)) }
            },
        )
    }) { pad ->
        LazyColumn(Modifier.padding(pad).fillMaxSize()) {
            item { SyncPanel(state.sync, state.account, onRelogin) }
            item {
                Row(Modifier.horizontalScroll(rememberScrollState()).padding(horizontal = 8.dp)) {
                    FilterChip(
                        selected = screen.kind == null,
                        onClick = { scope.launch { model.showSites(null) } },
                        label = { Text(stringResource(R.string.all_kinds)) },
                    )
                    SiteKind.entries.forEach { kind ->
                        Spacer(Modifier.padding(4.dp))
                        FilterChip(
                            selected = screen.kind == kind,
                            onClick = { scope.launch { model.showSites(kind) } },
                            label = { Text(stringResource(kindLabels.getValue(kind))) },
                        )
                    }
                }
            }
            section(R.string.returned_to_you, returned, names) { scope.launch { model.openInspection(it) } }
            section(R.string.drafts, drafts, names) { scope.launch { model.openInspection(it) } }
            item { Header(R.string.sites) }
            items(screen.sites, key = { it.id }) { site ->
                ListItem(
                    headlineContent = { Text(site.name) },
                    supportingContent = { Text(listOfNotNull(site.kindLabel, site.place ?: site.villageCode).joinToString(" · ")) },
                    modifier = Modifier.clickable { scope.launch { model.startInspection(site.id) } },
                )
            }
        }
    }
}

private fun androidx.compose.foundation.lazy.LazyListScope.section(
    title: Int,
    rows: List<InspectionItem>,
    names: Map<String, String>,
    onOpen: (String) -> Unit,
) {
    if (rows.isEmpty()) return
    item { Header(title) }
    items(rows, key = { "$title-${it.id}" }) { i ->
        ListItem(
            headlineContent = { Text(names[i.siteId] ?: i.villageCode) },
            supportingContent = { Text("${i.statusLabel} · ${i.answered} · ${i.photos}") },
            trailingContent = {
                if (i.conflicts > 0u) Text(stringResource(R.string.conflicts_n, i.conflicts.toInt()), color = MaterialTheme.colorScheme.error)
            },
            modifier = Modifier.clickable { onOpen(i.id) },
        )
    }
}

@Composable
private fun Header(title: Int) =
    Text(stringResource(title), style = MaterialTheme.typography.titleMedium, modifier = Modifier.padding(16.dp, 12.dp, 16.dp, 4.dp))

@Composable
private fun SyncPanel(sync: SyncStatus, account: AccountInfo?, onRelogin: () -> Unit) {
    Column(Modifier.fillMaxWidth().padding(16.dp)) {
        if (account?.loginRequired == true) {
            Row(verticalAlignment = Alignment.CenterVertically) {
                Text(stringResource(R.string.login_expired), color = MaterialTheme.colorScheme.error, modifier = Modifier.weight(1f))
                TextButton(onClick = onRelogin) { Text(stringResource(R.string.log_in)) }
            }
        }
        sync.pending?.let { p ->
            Text(stringResource(R.string.pending, p.changes.toLong(), p.photos.toLong()))
            if (p.rejections > 0uL) {
                Text(stringResource(R.string.rejections, p.rejections.toLong()), color = MaterialTheme.colorScheme.error)
            }
        }
        if (sync.running) {
            LinearProgressIndicator(Modifier.fillMaxWidth().padding(vertical = 4.dp))
            sync.progress?.let {
                Text(stringResource(R.string.progress, it.recordsUp.toLong(), it.recordsDown.toLong(), it.pending.toLong()))
            }
        } else {
            sync.last?.let {
                val up = it.progress.recordsUp.toLong()
                val down = it.progress.recordsDown.toLong()
                val photos = it.photosUploaded.toInt()
                val whenText = sync.history.lastSuccessMs?.let { ms -> DateUtils.getRelativeTimeSpanString(ms).toString() } ?: ""
                Text(stringResource(R.string.last_sync, whenText, up, down, photos))
            }
        }
    }
}
