// The desktop harness: the generated Kotlin bindings and the shared app
// logic, driven as the Android app drives them, against a real Fieldbook
// server on 127.0.0.1. An inspector fills in and submits an inspection with
// two real JPEG photos, edits offline, syncs when the network is back; a
// supervisor returns the record with a comment; the inspector sees it,
// fixes, resubmits; the supervisor approves. Every step is asserted, and
// so is the error mapping (bad input, wrong password, server down, expired
// login). Exits non-zero on the first failed check.
//
//   java ... cn.fieldbook.harness.MainKt SERVER_URL
// with FIELDBOOK_ADMIN_USER / FIELDBOOK_ADMIN_PASSWORD naming an admin.
package cn.fieldbook.harness

import cn.fieldbook.app.AppModel
import cn.fieldbook.app.Answers
import cn.fieldbook.app.FormRow
import cn.fieldbook.app.NextStep
import cn.fieldbook.app.Screen
import cn.fieldbook.app.SyncConditions
import cn.fieldbook.app.SyncDecision
import cn.fieldbook.ffi.ApiException
import cn.fieldbook.ffi.CancelToken
import cn.fieldbook.ffi.FieldKind
import cn.fieldbook.ffi.FieldValue
import cn.fieldbook.ffi.Fieldbook
import cn.fieldbook.ffi.InspectionStatus
import cn.fieldbook.ffi.Language
import cn.fieldbook.ffi.Location
import cn.fieldbook.ffi.SiteKind
import cn.fieldbook.ffi.SyncListener
import cn.fieldbook.ffi.SyncProgress
import cn.fieldbook.ffi.login
import kotlinx.coroutines.runBlocking
import java.awt.Color
import java.awt.image.BufferedImage
import java.io.ByteArrayOutputStream
import java.net.URI
import java.nio.file.Files
import java.util.concurrent.atomic.AtomicInteger
import javax.imageio.ImageIO
import kotlin.system.exitProcess

private var steps = 0

private fun step(what: String) {
    steps++
    println("ok $steps - $what")
}

/** A camera-sized JPEG with a pattern that differs per `seed`. */
fun cameraJpeg(seed: Int, width: Int = 2000, height: Int = 1500): ByteArray {
    val img = BufferedImage(width, height, BufferedImage.TYPE_INT_RGB)
    val g = img.createGraphics()
    val rnd = java.util.Random(seed.toLong())
    for (i in 0 until 400) {
        g.color = Color(rnd.nextInt(256), rnd.nextInt(256), rnd.nextInt(256))
        g.fillOval(rnd.nextInt(width), rnd.nextInt(height), 40 + rnd.nextInt(300), 40 + rnd.nextInt(300))
    }
    g.dispose()
    val out = ByteArrayOutputStream()
    check(ImageIO.write(img, "jpg", out)) { "no JPEG writer in this JDK" }
    return out.toByteArray()
}

/** A valid answer for a row, as a user would type it. */
fun plausible(row: FormRow): String = when (row.field.kind) {
    FieldKind.YES_NO -> "yes"
    FieldKind.CHOICE -> row.field.options.first().key
    FieldKind.NUMBER -> {
        val min = row.field.min ?: 0.0
        val max = row.field.max ?: (min + 100.0)
        Answers.text(FieldValue.Number(if (row.field.integer) Math.ceil(min + (max - min) / 10) else min + (max - min) / 10))
    }
    FieldKind.TEXT -> "checked on site"
    FieldKind.DATE -> "2026-11-28"
    FieldKind.PHOTO -> ""
}

inline fun <reified E : ApiException> expectError(what: String, block: () -> Unit): E {
    try {
        block()
    } catch (e: ApiException) {
        check(e is E) { "$what: expected ${E::class.simpleName}, got ${e::class.simpleName}: ${e.message}" }
        return e
    }
    error("$what: expected ${E::class.simpleName}, but it succeeded")
}

fun main(args: Array<String>) {
    val server = args.getOrNull(0) ?: error("usage: harness SERVER_URL")
    val adminUser = System.getenv("FIELDBOOK_ADMIN_USER") ?: "admin"
    val adminPassword = System.getenv("FIELDBOOK_ADMIN_PASSWORD") ?: error("FIELDBOOK_ADMIN_PASSWORD is not set")
    try {
        runBlocking { scenario(server, adminUser, adminPassword) }
    } catch (e: Throwable) {
        System.err.println("not ok ${steps + 1} - ${e.message}")
        e.printStackTrace()
        exitProcess(1)
    }
    println("1..$steps all passed")
    exitProcess(0)
}

suspend fun scenario(server: String, adminUser: String, adminPassword: String) {
    val uri = URI.create(server)
    val proxy = Proxy(uri.host, if (uri.port > 0) uri.port else 80)
    val run = java.lang.Long.toString(System.nanoTime() % 1_000_000_000L, 36)
    val inspectorName = "li.wei.$run"
    val supervisorName = "zhang.min.$run"
    val password = "correct horse battery $run"
    val village = "410324103220" // 栾川县潭头镇官地村, a rural village
    val admin = Admin(server, adminUser, adminPassword)
    admin.addUser(inspectorName, password, "inspector", listOf("410324"))
    admin.addUser(supervisorName, password, "supervisor", listOf("410324"))
    admin.importSites(
        "kind,name,village_code,lat,lon\n" +
            "rural_sewage,官地村污水处理站 $run,$village,33.95,111.62\n" +
            "rural_sewage,官地村二组一体化设备 $run,$village,33.951,111.621\n",
    )
    step("admin provisioned an inspector, a supervisor and two sites over the admin API")

    val root = Files.createTempDirectory("fieldbook-harness")
    val phoneDir = root.resolve("inspector").toString()
    val supervisorDir = root.resolve("supervisor").toString()

    // ---- error mapping before any login ------------------------------------
    expectError<ApiException.LoginRequired>("resume with no saved login") {
        Fieldbook.resume(phoneDir, Language.EN)
    }
    val wrong = expectError<ApiException.InvalidInput>("wrong password") {
        runBlocking { login(phoneDir, proxy.url, inspectorName, "not the password", Language.EN) }
    }
    check(wrong.problems.any { it.field == "password" }) { "wrong password names the field: ${wrong.problems}" }
    proxy.online = false
    expectError<ApiException.RetryLater>("login with the server unreachable") {
        runBlocking { login(phoneDir, proxy.url, inspectorName, password, Language.EN) }
    }
    proxy.online = true
    step("errors before login: no saved login -> LoginRequired, wrong password -> InvalidInput(password), server down -> RetryLater")

    // ---- the inspector logs in through the shared app model ----------------
    val app = AppModel(phoneDir, Language.EN)
    check(!app.start()) { "a fresh phone starts at the login screen" }
    check(app.state.value.screen is Screen.Login)
    check(app.login(proxy.url, inspectorName, password)) { "login: ${app.state.value.message}" }
    check(app.state.value.account?.user == inspectorName)
    val first = app.syncNow() ?: error("first sync: ${app.state.value.message}")
    check(first.progress.recordsDown >= 2uL) { "sites arrive on first sync: $first" }
    app.showSites(SiteKind.RURAL_SEWAGE)
    val sites = (app.state.value.screen as Screen.Sites).sites.filter { it.name.endsWith(run) }
    check(sites.size == 2) { "both imported sites are listed: ${sites.map { it.name }}" }
    check(sites.all { it.place?.contains("官地村") == true }) { "sites carry their place name" }
    step("inspector logged in, synced, lists ${sites.size} sites of the kind in their area")

    // ---- fill in a checklist from the template ------------------------------
    val site = sites.minBy { it.name }
    val template = app.fieldbook!!.siteTemplate(site.id)
    check(template.fields.isNotEmpty() && template.kind == SiteKind.RURAL_SEWAGE)
    val inspectionId = app.startInspection(site.id) ?: error("start: ${app.state.value.message}")
    app.setLocation(Location(33.9501, 111.6201, 6.0, System.currentTimeMillis(), false))

    // Bad input: a number field given text is refused by the form, a number
    // out of range by the core; neither is stored.
    val numberRow = (app.state.value.screen as Screen.Inspection).form.rows
        .first { it.field.kind == FieldKind.NUMBER && it.field.max != null }
    check(!app.answer(numberRow.key, "lots")) { "text in a number field is refused" }
    check(!app.answer(numberRow.key, (numberRow.field.max!! * 10 + 1).toString())) { "out of range is refused" }
    val refusedRow = (app.state.value.screen as Screen.Inspection).form.rows.first { it.key == numberRow.key }
    check(refusedRow.problem != null && refusedRow.text == "") { "refusal shown beside the field, nothing stored: $refusedRow" }
    check(app.state.value.message?.next == NextStep.FIX_INPUT)
    val direct = expectError<ApiException.InvalidInput>("wrong type through the bindings") {
        app.fieldbook!!.setAnswer(inspectionId, numberRow.key, FieldValue.Text("lots"))
    }
    check(direct.problems.any { it.field == numberRow.key }) { "problem names the field: ${direct.problems}" }
    expectError<ApiException.InvalidInput>("unknown field") {
        app.fieldbook!!.setAnswer(inspectionId, "no_such_field", FieldValue.YesNo(true))
    }
    step("bad input refused with the field named and nothing stored (${direct.problems.first().message})")

    check(!app.submit()) { "an empty checklist cannot be submitted" }
    check(app.state.value.message?.next == NextStep.FIX_INPUT)

    // Answer what the core asks for until nothing blocks submitting; the
    // visible rows change as answers reveal conditional fields.
    var photosTaken = 0
    for (round in 0 until 20) {
        val form = (app.state.value.screen as Screen.Inspection).form
        if (form.canSubmit && photosTaken >= 2) break
        val row = form.rows.firstOrNull { it.field.kind != FieldKind.PHOTO && it.text.isEmpty() && (it.field.required || it.problem != null) }
        if (row != null) {
            check(app.answer(row.key, plausible(row))) { "answer ${row.key}: ${app.state.value.message}" }
            continue
        }
        val photoRow = form.rows.firstOrNull { it.needsMorePhotos } ?: form.rows.first { it.field.photosMin > 0u || it.field.kind == FieldKind.PHOTO }
        check(app.attachPhoto(cameraJpeg(photosTaken + 1), photoRow.key)) { "photo: ${app.state.value.message}" }
        photosTaken++
    }
    val filled = app.state.value.screen as Screen.Inspection
    check(filled.form.canSubmit) { "form complete: ${filled.form.recordProblems} ${filled.detail.problems}" }
    check(photosTaken >= 2 && filled.detail.photos.size == photosTaken) { "every photo taken is attached: ${filled.detail.photos.size} of $photosTaken" }
    check(filled.detail.photos.all { it.width <= 1600u && it.height <= 1600u && Files.size(java.nio.file.Path.of(it.path)) == it.bytes.toLong() }) {
        "photos compressed by the core to at most 1600 px: ${filled.detail.photos}"
    }
    check(app.submit()) { "submit: ${app.state.value.message}" }
    check((app.state.value.screen as Screen.Inspection).detail.status == InspectionStatus.SUBMITTED)
    check(!(app.state.value.screen as Screen.Inspection).detail.editable) { "a submitted inspection is read-only" }
    step("checklist of ${template.fields.size} fields filled from the template, $photosTaken JPEG photos compressed and attached, submitted")

    val progressCalls = AtomicInteger()
    val listener = object : SyncListener {
        override fun onProgress(progress: SyncProgress) { progressCalls.incrementAndGet() }
    }
    val pushed = app.fieldbook!!.sync(listener, null)
    check(pushed.progress.recordsUp >= 1uL && pushed.photosUploaded == photosTaken.toUInt()) { "record and photos go up: $pushed" }
    check(progressCalls.get() >= 1) { "progress reported" }
    check(app.fieldbook!!.pending().changes == 0uL && app.fieldbook!!.pending().photos == 0uL)
    step("synced: ${pushed.progress.recordsUp} record(s) and ${pushed.photosUploaded} photos up in ${pushed.progress.requests} requests, progress reported ${progressCalls.get()} times")

    // ---- offline work --------------------------------------------------------
    proxy.online = false
    app.openInspection(inspectionId)
    check(app.comment("pump house door was locked; caretaker phoned")) { "comment offline: ${app.state.value.message}" }
    val second = sites.maxBy { it.name }
    val draftId = app.startInspection(second.id) ?: error("offline start: ${app.state.value.message}")
    val draftRow = (app.state.value.screen as Screen.Inspection).form.rows.first { it.field.kind == FieldKind.CHOICE }
    check(app.answer(draftRow.key, draftRow.field.options.first().key))
    val offline = app.syncNow()
    check(offline == null && app.state.value.message?.next == NextStep.RETRY_LATER) { "offline sync asks to retry later: ${app.state.value.message}" }
    val pendingOffline = app.fieldbook!!.pending()
    check(pendingOffline.changes >= 3uL) { "offline edits wait in the outbox: $pendingOffline" }
    val conditionsOffline = SyncConditions(online = false, metered = false, batteryLow = false, nowMs = System.currentTimeMillis())
    check(app.syncDecision(conditionsOffline) is SyncDecision.Later)
    step("offline: a comment and a new draft saved, sync says retry later, ${pendingOffline.changes} changes wait")

    proxy.online = true
    // Right after a failure the policy backs off; a user's tap syncs anyway.
    val back = SyncConditions(online = true, metered = false, batteryLow = false, nowMs = System.currentTimeMillis())
    check(app.syncDecision(back) is SyncDecision.Later) { "policy backs off right after a failure" }
    check(app.syncDecision(back.copy(nowMs = back.nowMs + 31_000)) == SyncDecision.Now) { "and syncs once the backoff passed" }
    val online = app.syncNow() ?: error("sync back online: ${app.state.value.message}")
    check(app.fieldbook!!.pending().changes == 0uL) { "outbox empty after sync: $online" }
    step("back online: ${online.progress.recordsUp} records up, outbox empty")

    // ---- the supervisor returns the record ---------------------------------
    val sup = login(supervisorDir, proxy.url, supervisorName, password, Language.ZH)
    sup.sync(null, null)
    val toReview = sup.listInspections(null, InspectionStatus.SUBMITTED, 0u, 0u).filter { it.id == inspectionId }
    check(toReview.size == 1) { "supervisor sees the submitted inspection" }
    val seen = sup.inspection(inspectionId)
    check(seen.photos.size == photosTaken && seen.timeline.any { it.comment?.contains("caretaker") == true }) { "supervisor sees photos and the offline comment" }
    check(seen.title.any { it.code > 0x2E80 }) { "labels in the supervisor's language (zh): ${seen.title}" }
    val jpeg = sup.downloadPhoto(seen.photos.first().hash)
    check(jpeg.size.toULong() == seen.photos.first().bytes && jpeg[0] == 0xFF.toByte() && jpeg[1] == 0xD8.toByte()) {
        "supervisor downloads the uploaded JPEG"
    }
    expectError<ApiException.NotAllowed>("supervisor approving a draft") { sup.approve(draftId, null) }
    val comment = "出水照片不清楚，请重拍并核实处理量 / effluent photo unclear, retake"
    sup.returnInspection(inspectionId, comment)
    sup.sync(null, null)
    step("supervisor synced, saw $photosTaken photos and the comment, downloaded a photo (${jpeg.size} B), returned the record")

    // ---- the inspector gets it back, fixes, resubmits -----------------------
    app.syncNow() ?: error("sync after return: ${app.state.value.message}")
    val returned = app.returned()
    check(returned.any { it.id == inspectionId }) { "returned record listed for the inspector" }
    app.openInspection(inspectionId)
    val back2 = app.state.value.screen as Screen.Inspection
    check(back2.detail.status == InspectionStatus.RETURNED && back2.detail.editable) { "returned record is editable again" }
    check(back2.detail.timeline.any { it.comment == comment }) { "the supervisor's comment arrives: ${back2.detail.timeline}" }
    val fixRow = back2.form.rows.first { it.field.kind == FieldKind.PHOTO || it.field.photosMin > 0u }
    check(app.attachPhoto(cameraJpeg(99), fixRow.key)) { "retake: ${app.state.value.message}" }
    check(app.answer(numberRow.key, plausible(numberRow))) { "fix: ${app.state.value.message}" }
    check(app.submit()) { "resubmit: ${app.state.value.message}" }
    val resubmitted = app.state.value.screen as Screen.Inspection
    check(resubmitted.detail.status == InspectionStatus.SUBMITTED && resubmitted.detail.revision == 2u) {
        "resubmitted as revision 2: ${resubmitted.detail.revision}"
    }
    app.syncNow() ?: error("sync resubmission: ${app.state.value.message}")
    step("inspector received the comment, retook a photo, fixed an answer and resubmitted revision 2")

    sup.sync(null, null)
    sup.approve(inspectionId, "合格")
    sup.sync(null, null)
    app.syncNow() ?: error("sync after approval: ${app.state.value.message}")
    app.openInspection(inspectionId)
    check((app.state.value.screen as Screen.Inspection).detail.status == InspectionStatus.APPROVED) { "approval reaches the phone" }
    step("supervisor approved; the phone shows the record approved")

    // ---- the township's coverage, computed on the phone ---------------------
    proxy.online = false
    val cover = app.fieldbook!!.coverage(null)
    val villageRow = cover.single { it.indicator == "rural_sewage_rate" && it.areaCode == site.villageCode }
    check(villageRow.denominator == 1uL && villageRow.notInspected == 0uL) { "the approved village counts: $villageRow" }
    check(villageRow.indicatorName == "Rural domestic sewage treatment rate" && villageRow.level == "village")
    val above = cover.filter { it.indicator == "rural_sewage_rate" && site.villageCode.startsWith(it.areaCode) }
    check(above.all { it.denominator >= villageRow.denominator && it.numerator >= villageRow.numerator }) { "roll-ups add up: $above" }
    expectError<ApiException.InvalidInput>("a year out of range") { app.fieldbook!!.coverage(1900) }
    proxy.online = true
    step("offline coverage of the inspector's area: ${cover.size} rows, the approved village counted (${villageRow.numerator}/${villageRow.denominator})")

    // ---- login expiry, cancel, restart offline ------------------------------
    app.logout()
    check(app.state.value.screen is Screen.Login && app.state.value.account?.loginRequired == true)
    check(app.syncDecision(back) == SyncDecision.LoginFirst)
    val noLogin = expectError<ApiException.LoginRequired>("sync after logout") {
        runBlocking { app.fieldbook!!.sync(null, null) }
    }
    check(noLogin.reason.contains("log in"))
    check(app.relogin(password)) { "relogin: ${app.state.value.message}" }
    val cancel = CancelToken()
    cancel.cancel()
    expectError<ApiException.Other>("cancelled sync") { runBlocking { app.fieldbook!!.sync(null, cancel) } }
    check(app.syncNow() != null) { "sync after relogin: ${app.state.value.message}" }
    step("logout -> LoginRequired, relogin keeps everything, a cancelled sync stops cleanly")

    val count = app.fieldbook!!.listInspections(null, null, 0u, 0u).size
    app.fieldbook!!.close()
    val reopened = AppModel(phoneDir, Language.EN)
    proxy.online = false
    check(reopened.start()) { "the saved session opens offline: ${reopened.state.value.message}" }
    check(reopened.fieldbook!!.listInspections(null, null, 0u, 0u).size == count)
    check(reopened.state.value.sync.history.lastSuccessMs != null) { "the last sync time survives a restart" }
    proxy.close()
    step("the app reopens its saved session with no network and sees all $count inspections")
}
