"""The generated Python bindings, driven against a real server.

Run by bindings/tests/python_bindings.rs, which starts the server, creates
the users and hands over: SERVER_URL WORK_DIR PASSWORD. WORK_DIR holds
photo.png (a real PNG) and damaged.jpg (a truncated JPEG). Every check is
an assert; the first failure exits non-zero with its message.
"""

import asyncio
import gc
import os
import sys

import fieldbook_ffi as fb

SERVER, WORK, PASSWORD = sys.argv[1], sys.argv[2], sys.argv[3]
VILLAGE = "410324101201"

TOILET = {
    "toilet_type": fb.FieldValue.TEXT("three_chamber"),
    "usage": fb.FieldValue.TEXT("in_use"),
    "enclosure_ok": fb.FieldValue.YES_NO(True),
    "clean_no_odor": fb.FieldValue.YES_NO(True),
    "tank_condition": fb.FieldValue.TEXT("intact"),
    "pipe_condition": fb.FieldValue.TEXT("normal"),
    "lid_sealed": fb.FieldValue.YES_NO(True),
    "emptying": fb.FieldValue.TEXT("on_time"),
    "effluent_to": fb.FieldValue.TEXT("field_reuse"),
    "old_toilet_removed": fb.FieldValue.YES_NO(True),
    "aftercare_arranged": fb.FieldValue.YES_NO(True),
    "satisfaction": fb.FieldValue.TEXT("satisfied"),
}


class Counter(fb.SyncListener):
    def __init__(self):
        self.calls = []

    def on_progress(self, progress):
        self.calls.append(progress)


def expect(error_type, what, call):
    try:
        call()
    except error_type as e:
        return e
    except fb.ApiError as e:
        raise AssertionError(f"{what}: expected {error_type.__name__}, got {type(e).__name__}: {e}")
    raise AssertionError(f"{what}: expected {error_type.__name__}, but it succeeded")


async def expect_async(error_type, what, coro):
    try:
        await coro
    except error_type as e:
        return e
    except fb.ApiError as e:
        raise AssertionError(f"{what}: expected {error_type.__name__}, got {type(e).__name__}: {e}")
    raise AssertionError(f"{what}: expected {error_type.__name__}, but it succeeded")


async def main():
    phone = os.path.join(WORK, "phone")
    desk = os.path.join(WORK, "supervisor")

    assert fb.saved_user(phone) is None
    expect(fb.ApiError.LoginRequired, "resume before any login",
           lambda: fb.Fieldbook.resume(phone, fb.Language.EN))
    wrong = await expect_async(fb.ApiError.InvalidInput, "wrong password",
                               fb.login(phone, SERVER, "li.wei", "nope", fb.Language.EN))
    assert [p.field for p in wrong.problems] == ["password"], wrong.problems
    await expect_async(fb.ApiError.RetryLater, "server down",
                       fb.login(phone, "http://127.0.0.1:9", "li.wei", PASSWORD, fb.Language.EN))

    app = await fb.login(phone, SERVER, "li.wei", PASSWORD, fb.Language.EN)
    account = app.account()
    assert account.user == "li.wei" and account.role == fb.Role.INSPECTOR, account
    assert account.areas == ["410324"] and not account.login_required, account
    assert fb.saved_user(phone).user == "li.wei"

    expect(fb.ApiError.NotAllowed, "a site outside the user's area",
           lambda: app.add_site(fb.SiteKind.HOUSEHOLD_TOILET, "外县户厕", "410327100201", None))
    site = app.add_site(fb.SiteKind.HOUSEHOLD_TOILET, "李家户厕", VILLAGE,
                        fb.Position(lat=33.95, lon=111.62))
    sites = app.list_sites(None, fb.SiteKind.HOUSEHOLD_TOILET, 0, 0)
    assert [s.id for s in sites] == [site], sites
    assert sites[0].found_in_field and sites[0].kind_label == "Household toilet", sites[0]

    template = app.site_template(site)
    keys = [f.key for f in template.fields]
    assert set(TOILET) <= set(keys), keys
    kinds = {f.kind for f in template.fields}
    assert fb.FieldKind.CHOICE in kinds and fb.FieldKind.YES_NO in kinds, kinds
    choice = next(f for f in template.fields if f.key == "toilet_type")
    assert any(o.key == "three_chamber" for o in choice.options), choice.options

    insp = app.start_inspection(site)
    bad = expect(fb.ApiError.InvalidInput, "a yes/no field given a number",
                 lambda: app.set_answer(insp, "lid_sealed", fb.FieldValue.NUMBER(3.0)))
    assert bad.problems and bad.problems[0].field == "lid_sealed", bad.problems
    expect(fb.ApiError.InvalidInput, "an option that does not exist",
           lambda: app.set_answer(insp, "toilet_type", fb.FieldValue.TEXT("gold_plated")))
    assert all(f.value is None for f in app.inspection(insp).fields), "refused answers are not stored"

    for key, value in TOILET.items():
        app.set_answer(insp, key, value)
    app.set_location(insp, fb.Location(lat=33.9501, lon=111.6201, accuracy_m=5.0,
                                       at_ms=1_790_000_000_000, mock=False))
    view = app.inspection(insp)
    assert view.location is not None and view.location.accuracy_m == 5.0
    by_key = {f.key: f for f in view.fields}
    assert by_key["toilet_type"].value == fb.FieldValue.TEXT("three_chamber")
    assert by_key["toilet_type"].value_label, by_key["toilet_type"]

    with open(os.path.join(WORK, "damaged.jpg"), "rb") as f:
        damaged = f.read()
    await expect_async(fb.ApiError.InvalidInput, "a damaged photo",
                       app.add_photo(insp, damaged, None))
    assert app.inspection(insp).photos == [], "a refused photo stores nothing"

    photo_fields = [f for f in template.fields if f.photos_min > 0 or f.kind == fb.FieldKind.PHOTO]
    shots = iter(range(1, 6))
    for f in photo_fields:
        for _ in range(max(1, f.photos_min)):
            with open(os.path.join(WORK, f"photo{next(shots)}.png"), "rb") as p:
                item = await app.add_photo(insp, p.read(), f.key)
            assert item.field == f.key and os.path.getsize(item.path) == item.bytes, item
            assert item.width <= 1600 and item.height <= 1600, (item.width, item.height)
    extra = await app.add_photo_file(insp, os.path.join(WORK, "photo6.png"), None)
    assert len(extra.hash) == 64

    view = app.inspection(insp)
    assert view.problems == [], [(p.field, p.message) for p in view.problems]
    app.submit(insp)
    assert app.inspection(insp).status == fb.InspectionStatus.SUBMITTED
    expect(fb.ApiError.NotAllowed, "editing a submitted inspection",
           lambda: app.set_answer(insp, "lid_sealed", fb.FieldValue.YES_NO(False)))

    pending = app.pending()
    assert pending.changes > 0 and pending.photos >= 1, pending
    counter = Counter()
    report = await app.sync(counter, None)
    assert counter.calls, "progress reported"
    assert report.progress.records_up >= 2 and report.rejected == [], report
    assert app.pending().changes == 0 and app.pending().photos == 0

    desk_app = await fb.login(desk, SERVER, "zhang.min", PASSWORD, fb.Language.ZH)
    await desk_app.sync(None, None)
    seen = desk_app.inspection(insp)
    assert seen.status == fb.InspectionStatus.SUBMITTED and seen.status_label == "待审核", seen.status_label
    jpeg = await desk_app.download_photo(seen.photos[0].hash)
    assert jpeg[:2] == b"\xff\xd8" and len(jpeg) == seen.photos[0].bytes
    desk_app.return_inspection(insp, "化粪池盖板照片不清楚")
    await desk_app.sync(None, None)

    finding = app.raise_finding(fb.NewFindingInput(
        inspection_id=insp, site_id=site, title="化粪池渗漏", description="池体开裂，粪液外渗",
        deadline=None))
    assert app.finding(finding).next_steps == [], "an inspector cannot assign"
    await app.sync(None, None)
    back = app.inspection(insp)
    assert back.status == fb.InspectionStatus.RETURNED and back.editable, back.status
    assert any(t.comment == "化粪池盖板照片不清楚" for t in back.timeline), back.timeline

    await desk_app.sync(None, None)
    steps = desk_app.finding(finding).next_steps
    assert steps == [fb.FindingStep.ASSIGNED, fb.FindingStep.ESCALATED], steps
    expect(fb.ApiError.InvalidInput, "assigning without a deadline",
           lambda: desk_app.advance_finding(finding, fb.FindingStep.ASSIGNED, None, "村委会", None))
    desk_app.advance_finding(finding, fb.FindingStep.ASSIGNED, "月底前修复", "村委会", "2026-12-31")
    await desk_app.sync(None, None)
    await app.sync(None, None)
    mine = app.finding(finding)
    assert mine.status == fb.FindingStatus.ASSIGNED and mine.responsible == "村委会", mine.status
    assert mine.next_steps == [fb.FindingStep.RECTIFYING, fb.FindingStep.CLOSURE_REQUESTED], mine.next_steps
    # The township's coverage, computed on the phone from what it holds.
    cover = app.coverage(None)
    toilets = [r for r in cover if r.indicator == "sanitary_toilet_rate" and r.area_code == VILLAGE]
    assert len(toilets) == 1 and (toilets[0].numerator, toilets[0].denominator) == (0, 1), toilets
    assert toilets[0].not_inspected == 1 and toilets[0].level == "village", toilets[0]
    assert toilets[0].indicator_name == "Sanitary toilet rate", toilets[0].indicator_name
    fixed = [r for r in cover if r.indicator == "problem_toilet_fixed" and r.area_code == VILLAGE]
    assert (fixed[0].numerator, fixed[0].denominator, fixed[0].rate) == (0, 1, 0.0), fixed
    names = {r.indicator_name for r in desk_app.coverage(None) if r.indicator == "sanitary_toilet_rate"}
    assert names == {"卫生厕所普及率"}, names
    expect(fb.ApiError.InvalidInput, "a year out of range", lambda: app.coverage(1900))
    with open(os.path.join(WORK, "photo5.png"), "rb") as p:
        evidence = await app.add_finding_photo(finding, p.read())
    assert app.finding(finding).photos[0].hash == evidence.hash

    cancel = fb.CancelToken()
    cancel.cancel()
    await expect_async(fb.ApiError.Other, "a cancelled sync", app.sync(None, cancel))

    app.logout()
    assert app.account().login_required
    await expect_async(fb.ApiError.LoginRequired, "sync after logout", app.sync(None, None))
    await app.relogin(PASSWORD)
    await app.sync(None, None)

    again = fb.Fieldbook.resume(phone, fb.Language.EN)
    assert [i.id for i in again.list_inspections(None, None, 0, 0)] == [insp]

    # The phone's database file is destroyed (its header zeroed and its
    # write-ahead log gone, as a restore of a broken backup leaves it): a
    # clear error, then recovery and a sync bring the records back from the
    # server; the damaged file is kept aside.
    del app, again
    gc.collect()
    for suffix in ("-wal", "-shm"):
        if os.path.exists(os.path.join(phone, "fieldbook.db" + suffix)):
            os.remove(os.path.join(phone, "fieldbook.db" + suffix))
    with open(os.path.join(phone, "fieldbook.db"), "r+b") as db:
        db.write(b"\0" * 100)
    expect(fb.ApiError.Damaged, "a damaged database",
           lambda: fb.Fieldbook.resume(phone, fb.Language.EN).list_inspections(None, None, 0, 0))
    gc.collect()
    info = fb.recover_store(phone, fb.Language.EN)
    assert os.path.exists(info.kept_at) and info.photos >= 1, info
    healed = fb.Fieldbook.resume(phone, fb.Language.EN)
    assert healed.account().login_required, "a rebuilt store logs in again"
    await healed.relogin(PASSWORD)
    await healed.sync(None, None)
    back = healed.inspection(insp)
    assert back.status == fb.InspectionStatus.RETURNED, back.status
    assert any(t.comment == "化粪池盖板照片不清楚" for t in back.timeline), back.timeline
    print("python bindings: all checks passed")


asyncio.run(main())
# The core's threads call back into Python (waking futures) and may still be
# inside such a callback when the script ends; CPython ends any thread that
# wants the interpreter lock during finalization with pthread_exit, which
# aborts the process when the thread has Rust frames. Nothing is left to
# clean up, so skip finalization.
sys.stdout.flush()
os._exit(0)
