"""Card holders' pages (R-83, R-85): the organisation's own administrators add, change and
remove holders and their photos, and import them from a CSV and a ZIP of photos; bad input
gets a clear message and nothing is stored; photos are served only to them, never cached.

One world for the module (tests/web/conftest.py `shared`); each test uses employee numbers of
its own, so what one test adds never meets another's."""

from __future__ import annotations

import io
import re
import struct
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from html import unescape

import pytest
import sqlalchemy as sa
from PIL import Image

from portal.clock import clock
from portal.extensions import db
from portal.models import CardHolder, InetRegistration, PhotoDeletion, StoredPhoto
from portal.models.inet import CardImport
from tests.conftest import DEFAULT_NOW
from tests.factories import sample_jpeg, signed_in_client
from tests.web.routes import inet_world

# --- helpers --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(shared):
    inet_world(shared.app, shared.world, "a")
    inet_world(shared.app, shared.world, "b")
    return shared


def browser(shared, who: str = "admin"):
    client = signed_in_client(shared.app, shared.world.emails[who])
    with client.session_transaction() as session:
        session["locale"] = "en"
    return client


def text(response) -> str:
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", response.get_data(as_text=True), flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", page)).split())


def holders_of(shared, org: str = "a", prefix: str = "") -> list[CardHolder]:
    org_id = getattr(shared.world, f"org_{org}")
    with shared.app.app_context():
        found = list(
            db.session.scalars(
                sa.select(CardHolder)
                .where(
                    CardHolder.organisation_id == org_id,
                    CardHolder.employee_number.startswith(prefix),
                )
                .order_by(CardHolder.employee_number)
            )
        )
        db.session.expunge_all()
        return found


def count(shared, model) -> int:
    with shared.app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def stored(shared, holder: CardHolder) -> bytes:
    with shared.app.app_context():
        return db.session.scalar(
            sa.select(StoredPhoto.content).where(StoredPhoto.id == int(holder.photo_key))
        )


def png(size=(750, 1000)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (20, 140, 60)).save(out, "PNG")
    return out.getvalue()


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (600, 800), (20, 140, 60)).save(out, "GIF")
    return out.getvalue()


def jpeg_bomb() -> bytes:
    data = bytearray(sample_jpeg(300, 400))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 60_000, 60_000)
    return bytes(data)


def truncated() -> bytes:
    data = sample_jpeg()
    return data[: len(data) // 2]


def thirty_mb() -> bytes:
    return sample_jpeg() + b"\x00" * (30 * 1024 * 1024)


def holder_form(number: str, **changes) -> dict[str, object]:
    return {
        "name": "佐藤 花子",
        "name_kana": "サトウ ハナコ",
        "employee_number": number,
        "department": "経理部",
        "title": "",
        **changes,
    }


def add(client, number: str, photo: bytes | None = None, filename="photo.jpg", **changes):
    data = holder_form(number, **changes)
    if photo is not None:
        data["photo"] = (io.BytesIO(photo), filename, "image/jpeg")
    return client.post("/id-cards/holders/new", data=data, content_type="multipart/form-data")


# --- the list ---------------------------------------------------------------------------------


def test_the_list_shows_each_holder_with_a_thumbnail_or_a_no_photo_flag(world):
    """R-85: A's administrator sees A's holders only."""
    client = browser(world)
    assert add(client, "L-001", sample_jpeg()).status_code == 302
    assert add(client, "L-002", name_kana="ｽｽﾞｷ ｼﾞﾛｳ").status_code == 302
    page = client.get("/id-cards/holders?q=L-")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    with_photo, without = holders_of(world, prefix="L-")
    assert f"/id-cards/holders/{with_photo.id}/photo" in body
    assert f'data-testid="holder-{without.id}"' in body
    assert 'data-testid="no-photo"' in body
    assert "E-B-001" not in text(client.get("/id-cards/holders"))  # B's holder


def test_the_search_finds_by_half_width_kana_as_typed_in_older_systems(world):
    client = browser(world)
    assert add(client, "S-001", name="検索 太郎", name_kana="ケンサク タロウ").status_code == 302
    found = text(client.get("/id-cards/holders", query_string={"q": "ｹﾝｻｸ"}))
    assert "検索 太郎" in found
    none = text(client.get("/id-cards/holders", query_string={"q": "100%_\x00"}))
    assert "No card holder matches" in none


def test_after_the_registration_ends_the_list_shows_when_the_photos_are_deleted(world):
    """R-83: the administrators see the day their photos will be deleted; adding is refused
    and the page points to the ID cards page to register again."""
    app, org_b = world.app, world.world.org_b
    with app.app_context():
        registration = db.session.scalar(
            sa.select(InetRegistration).where(InetRegistration.organisation_id == org_b)
        )
        registration.ended_at = clock.now()
        registration.ended_on = date(2027, 3, 1)
        registration.photos_delete_on = date(2027, 4, 1)
        db.session.commit()
        registration_id = registration.id
    try:
        client = browser(world, "other_admin")
        page = client.get("/id-cards/holders")
        assert page.status_code == 200
        assert "will be deleted on April 1, 2027" in text(page)
        assert "/id-cards/holders/new" not in page.get_data(as_text=True)
        new = client.get("/id-cards/holders/new")
        assert new.status_code == 200
        assert 'data-testid="not-registered"' in new.get_data(as_text=True)
        assert 'href="/id-cards/"' in new.get_data(as_text=True)
        refused = add(client, "B-NEW")
        assert refused.status_code == 409
        assert "not registered for I-NET SERVICE" in text(refused)
        assert holders_of(world, "b", "B-NEW") == []
    finally:
        with app.app_context():
            registration = db.session.get(InetRegistration, registration_id)
            registration.ended_at = registration.ended_on = registration.photos_delete_on = None
            db.session.commit()


# --- one holder ---------------------------------------------------------------------------------


def test_a_holder_is_added_with_a_png_named_jpg_stored_as_a_600_by_800_jpeg(world):
    """R-83 reading: JPEG or PNG by content; the stored photo is the portal's own JPEG."""
    client = browser(world)
    response = add(client, "A-001", png(), filename="photo.jpg", name_kana="ｻﾄｳ ﾊﾅｺ")
    assert response.status_code == 302
    (holder,) = holders_of(world, prefix="A-001")
    assert holder.name_kana == "サトウ ハナコ"
    image = Image.open(io.BytesIO(stored(world, holder)))
    assert (image.format, image.size) == ("JPEG", (600, 800))


@pytest.mark.parametrize(
    ("photo", "message"),
    [
        (gif(), "This file is not a JPEG or PNG photo."),
        (b"just text, named .jpg", "This file is not a JPEG or PNG photo."),
        (jpeg_bomb(), "The photo has too many pixels (max 40 megapixels)."),
        (truncated(), "The photo could not be read: the file is damaged or incomplete."),
        (thirty_mb(), "The photo is too large (max 10 MB)."),
    ],
    ids=["gif", "text", "bomb", "truncated", "30mb"],
)
def test_a_bad_photo_is_refused_with_a_clear_message_and_nothing_is_stored(world, photo, message):
    client = browser(world)
    photos_before = count(world, StoredPhoto)
    response = add(client, "BAD-1", photo)
    assert response.status_code == 422
    assert message in text(response)
    assert 'value="佐藤 花子"' in response.get_data(as_text=True)  # what was typed stays
    assert holders_of(world, prefix="BAD-") == []
    assert count(world, StoredPhoto) == photos_before


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": '=HYPERLINK("http://evil")'}, "Name cannot start with = + - or @"),
        ({"department": "  ＠SUM(A1)"}, "Department cannot start with = + - or @"),
        # Every form's text fields refuse control characters (portal/forms.py).
        ({"name": "山田\x00太郎"}, "Remove the control characters from this field."),
        ({"name": ""}, "Enter the holder's name."),
        ({"title": "長" * 101}, "Job title: use at most 100 characters."),
    ],
)
def test_bad_text_is_refused_next_to_its_field_and_nothing_is_stored(world, changes, message):
    client = browser(world)
    response = add(client, "TXT-1", **changes)
    assert response.status_code == 422
    assert message in text(response)
    assert holders_of(world, prefix="TXT-") == []


def test_an_employee_number_is_unique_in_the_organisation_in_any_width(world):
    client = browser(world)
    assert add(client, "U-001").status_code == 302
    again = add(client, "Ｕ－００１".replace("－", "-"))
    assert again.status_code == 409
    assert "Employee number U-001 is already registered for 佐藤 花子." in text(again)
    assert len(holders_of(world, prefix="U-")) == 1


def test_the_same_employee_number_added_twice_at_once_is_stored_once(world):
    clients = [browser(world) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(lambda c: add(c, "RACE-1").status_code, clients))
    assert statuses[0] == 302 and set(statuses[1:]) == {409}
    assert len(holders_of(world, prefix="RACE-")) == 1


def test_a_holder_is_changed_and_its_photo_replaced_the_old_one_deleted_on_the_record(world):
    """R-83: the replaced photo is deleted from storage; the record keeps its SHA-256."""
    client = browser(world)
    assert add(client, "P-001", sample_jpeg()).status_code == 302
    (holder,) = holders_of(world, prefix="P-001")
    old_key = holder.photo_key
    changed = client.post(
        f"/id-cards/holders/{holder.id}/edit", data=holder_form("P-001", title="部長")
    )
    assert changed.status_code == 302
    page = client.get(f"/id-cards/holders/{holder.id}/photo/change")
    assert page.status_code == 200
    assert page.headers["Permissions-Policy"].startswith("camera=(self)")
    assert 'src="/static/js/photo.js' in page.get_data(as_text=True)
    # A 1200 x 1600 photo, its top-left quarter white; the crop box keeps that quarter.
    image = Image.new("RGB", (1200, 1600), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 600, 800))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    replaced = client.post(
        f"/id-cards/holders/{holder.id}/photo/change",
        data={
            "photo": (io.BytesIO(out.getvalue()), "new.jpg"),
            "crop_x": "0",
            "crop_y": "0",
            "crop_width": "600",
            "crop_height": "800",
        },
        content_type="multipart/form-data",
    )
    assert replaced.status_code == 302
    (holder,) = holders_of(world, prefix="P-001")
    assert holder.title == "部長" and holder.photo_key != old_key
    kept = Image.open(io.BytesIO(stored(world, holder)))
    assert min(kept.getpixel((300, 400))) > 240
    with world.app.app_context():
        assert db.session.get(StoredPhoto, int(old_key)) is None
        (deletion,) = db.session.scalars(
            sa.select(PhotoDeletion).where(PhotoDeletion.holder_id == holder.id)
        )
        assert deletion.reason == "replaced" and len(deletion.photo_sha256) == 64


def test_the_photo_is_served_never_cached_never_sniffed_to_its_administrators_only(world):
    """R-85: A's administrator; not A's member, an agent, staff viewing, nor B."""
    holder_id = inet_world(world.app, world.world, "a")["holder"]
    response = browser(world).get(f"/id-cards/holders/{holder_id}/photo")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.data.startswith(b"\xff\xd8")
    for who in ("member", "other_admin"):
        assert browser(world, who).get(f"/id-cards/holders/{holder_id}/photo").status_code == 404


def test_removing_a_holder_asks_first_then_deletes_its_photo_on_the_record(world):
    client = browser(world)
    assert add(client, "R-001", sample_jpeg()).status_code == 302
    (holder,) = holders_of(world, prefix="R-001")
    asked = client.post(f"/id-cards/holders/{holder.id}/removal")
    assert asked.status_code == 200
    assert "Their photo is deleted at once" in text(asked)
    assert len(holders_of(world, prefix="R-001")) == 1
    done = client.post(f"/id-cards/holders/{holder.id}/removal", data={"confirmed": "yes"})
    assert done.status_code == 302
    assert holders_of(world, prefix="R-001") == []
    with world.app.app_context():
        assert db.session.get(StoredPhoto, int(holder.photo_key)) is None
        deletion = db.session.scalar(sa.select(PhotoDeletion).order_by(PhotoDeletion.id.desc()))
        assert deletion.reason == "holder_removed" and deletion.holder_id is None
        assert deletion.organisation_id == world.world.org_a


def test_a_holder_whose_cards_are_not_yet_shipped_cannot_be_removed(world):
    holder_id = inet_world(world.app, world.world, "a")["holder"]  # on a confirmed order
    refused = browser(world).post(
        f"/id-cards/holders/{holder_id}/removal", data={"confirmed": "yes"}
    )
    assert refused.status_code == 409
    assert "whose cards are not yet shipped" in text(refused)
    with world.app.app_context():
        assert db.session.get(CardHolder, holder_id) is not None


# --- the import ---------------------------------------------------------------------------------


def make_zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def csv_of(rows: list[tuple[str, ...]], header="氏名,フリガナ,社員番号,部署,役職,写真") -> str:
    return header + "\r\n" + "".join(",".join(row) + "\r\n" for row in rows)


def upload(client, csv_bytes: bytes, zip_bytes: bytes | None = None):
    data: dict[str, object] = {"csv_file": (io.BytesIO(csv_bytes), "holders.csv")}
    if zip_bytes is not None:
        data["zip_file"] = (io.BytesIO(zip_bytes), "photos.zip")
    return client.post("/id-cards/holders/import", data=data, content_type="multipart/form-data")


def staged_id(response) -> int:
    assert response.status_code == 302, text(response)[:500]
    return int(re.search(r"staged=(\d+)", response.headers["Location"])[1])


def preview(client, response):
    return client.get(response.headers["Location"])


def run(client, staged: int):
    return client.post("/id-cards/holders/import/run", data={"staged": str(staged)})


THREE = [
    ("山田 太郎", "ヤマダ タロウ", "IMP-001", "総務部", "課長", "yamada.jpg"),
    ("佐藤 花子", "サトウ ハナコ", "IMP-002", "経理部", "", "photos/sato.png"),
    ("鈴木 次郎", "スズキ ジロウ", "IMP-003", "開発部", "主任", "suzuki.jpg"),
]


def three_photos() -> bytes:
    return make_zip(
        {
            "yamada.jpg": sample_jpeg(900, 1200),
            "photos/sato.png": png(),
            "suzuki.jpg": png(),  # a PNG named .jpg: accepted as the PNG it is
        }
    )


def test_three_holders_with_photos_are_imported_from_a_utf8_bom_csv(world):
    client = browser(world)
    staged_before = count(world, CardImport)
    uploaded = upload(client, b"\xef\xbb\xbf" + csv_of(THREE).encode(), three_photos())
    shown = preview(client, uploaded)
    assert shown.status_code == 200
    assert 'data-testid="import-ready"' in shown.get_data(as_text=True)
    assert "Import 3 holders" in text(shown)
    assert holders_of(world, prefix="IMP-") == []  # the preview stores nothing
    done = run(client, staged_id(uploaded))
    assert done.status_code == 302 and done.headers["Location"] == "/id-cards/holders"
    imported = holders_of(world, prefix="IMP-")
    assert [h.name for h in imported] == ["山田 太郎", "佐藤 花子", "鈴木 次郎"]
    for holder in imported:
        image = Image.open(io.BytesIO(stored(world, holder)))
        assert (image.format, image.size) == ("JPEG", (600, 800))
    assert count(world, CardImport) == staged_before  # the upload went with the import
    assert "3 card holders were imported." in text(client.get("/id-cards/holders"))


def test_a_cp932_csv_from_excel_with_a_half_width_kana_name_is_imported_normalised(world):
    client = browser(world)
    rows = [("ﾀﾅｶ ｲﾁﾛｳ", "ﾀﾅｶ ｲﾁﾛｳ", "SJ-001", "営業部", "", "")]
    uploaded = upload(client, csv_of(rows).encode("cp932"))
    assert "Import 1 holder" in text(preview(client, uploaded))
    assert run(client, staged_id(uploaded)).status_code == 302
    (holder,) = holders_of(world, prefix="SJ-")
    assert holder.name == holder.name_kana == "タナカ イチロウ"
    assert holder.photo_key is None


def test_a_utf8_csv_without_bom_with_english_headers_is_imported(world):
    client = browser(world)
    csv_text = "name,kana,employee_number,department,title\nJohn Smith,ジョン スミス,EN-001,IT,\n"
    uploaded = upload(client, csv_text.encode())
    assert run(client, staged_id(uploaded)).status_code == 302
    assert [h.name for h in holders_of(world, prefix="EN-")] == ["John Smith"]


def _refused_preview(world, rows, zip_bytes, expected: list[tuple[int, str]]):
    """The preview lists each row's problems; no Import button; running it anyway imports
    nothing (409) and keeps the upload for another look."""
    client = browser(world)
    uploaded = upload(client, csv_of(rows).encode(), zip_bytes)
    staged = staged_id(uploaded)
    shown = preview(client, uploaded)
    body = shown.get_data(as_text=True)
    assert shown.status_code == 200
    assert 'data-testid="import-problems"' in body and "run-import" not in body
    for row, message in expected:
        cell = re.search(rf'data-testid="row-{row}".*?</tr>', body, re.S)[0]
        assert message in unescape(cell), (row, message)
    photos_before = count(world, StoredPhoto)
    forced = run(client, staged)
    assert forced.status_code == 409
    assert "nothing was imported" in text(forced)
    prefix = rows[0][2].split("-")[0] + "-"
    assert holders_of(world, prefix=prefix) == []
    assert count(world, StoredPhoto) == photos_before
    return client, staged


def test_a_formula_in_a_name_cell_is_refused_and_nothing_is_stored(world):
    rows = [
        ("山田 太郎", "", "F-001", "", "", ""),
        ('=HYPERLINK("http://evil.example","click")', "", "F-002", "", "", ""),
        ("佐藤", "", "F-003", "＋81", "", ""),
    ]
    _refused_preview(
        world,
        rows,
        None,
        [(3, "Name cannot start with = + - or @"), (4, "Department cannot start with")],
    )


def test_a_row_whose_photo_is_missing_from_the_zip_is_refused_and_nothing_is_stored(world):
    rows = [
        ("山田 太郎", "", "M-001", "", "", "yamada.jpg"),
        ("佐藤 花子", "", "M-002", "", "", "sato.jpg"),
        ("鈴木 次郎", "", "M-003", "", "", "suzuki.jpg"),
    ]
    zip_bytes = make_zip({"yamada.jpg": sample_jpeg(), "photos/suzuki.jpg": sample_jpeg()})
    _refused_preview(
        world,
        rows,
        zip_bytes,
        [
            (3, "sato.jpg is not in the ZIP file."),
            (4, "it has photos/suzuki.jpg. Write that name in the CSV."),
        ],
    )


@pytest.mark.parametrize(
    ("photo", "message"),
    [
        (truncated(), "The photo could not be read: the file is damaged or incomplete."),
        (thirty_mb(), "The photo is too large (max 10 MB)."),
        (jpeg_bomb(), "The photo has too many pixels (max 40 megapixels)."),
        (gif(), "This file is not a JPEG or PNG photo."),
    ],
    ids=["truncated", "30mb", "bomb", "gif"],
)
def test_a_bad_photo_in_the_zip_is_a_problem_of_its_row_and_nothing_is_stored(
    world, photo, message
):
    rows = [
        ("山田 太郎", "", "Z-001", "", "", "good.jpg"),
        ("佐藤 花子", "", "Z-002", "", "", "bad.jpg"),
    ]
    zip_bytes = make_zip({"good.jpg": sample_jpeg(), "bad.jpg": photo})
    _refused_preview(world, rows, zip_bytes, [(3, message)])


def test_duplicate_and_already_registered_employee_numbers_are_problems_of_their_rows(world):
    client = browser(world)
    assert add(client, "D-001").status_code == 302
    rows = [
        ("山田 太郎", "", "D-001", "", "", ""),
        ("佐藤 花子", "", "D-002", "", "", ""),
        ("鈴木 次郎", "", "Ｄ-002", "", "", ""),
    ]
    _refused_preview_keeping(world, rows)


def _refused_preview_keeping(world, rows):
    client = browser(world)
    uploaded = upload(client, csv_of(rows).encode())
    body = unescape(preview(client, uploaded).get_data(as_text=True))
    assert "Employee number D-001 is already registered for 佐藤 花子." in body
    assert "Employee number D-002 is also on row 3." in body
    assert [h.employee_number for h in holders_of(world, prefix="D-")] == ["D-001"]


def test_a_zip_with_a_path_like_dot_dot_is_refused_at_upload_and_nothing_is_kept(world):
    client = browser(world)
    before = count(world, CardImport)
    rows = [("山田 太郎", "", "ZIP-001", "", "", "yamada.jpg")]
    zip_bytes = make_zip({"yamada.jpg": sample_jpeg(), "../../x": b"owned"})
    response = upload(client, csv_of(rows).encode(), zip_bytes)
    assert response.status_code == 422
    assert "The ZIP file contains a file with an unsafe path (../../x)" in text(response)
    assert count(world, CardImport) == before
    assert holders_of(world, prefix="ZIP-") == []


@pytest.mark.parametrize(
    ("csv_bytes", "message"),
    [
        (b"", "Choose the CSV file of holders."),
        ("氏名,社員番号\n山田,E1\n".encode("utf-16"), "neither UTF-8 nor Shift_JIS"),
        ("名前だけ\n山田\n".encode(), "must name the columns"),
    ],
)
def test_a_csv_the_import_cannot_read_is_refused_at_upload(world, csv_bytes, message):
    before = count(world, CardImport)
    response = upload(browser(world), csv_bytes)
    assert response.status_code == 422
    assert message in text(response)
    assert count(world, CardImport) == before


def test_the_same_upload_imported_twice_imports_once(world):
    """A double click, or the same preview open in two tabs: one import."""
    client = browser(world)
    rows = [("山田 太郎", "", "TWICE-001", "", "", ""), ("佐藤 花子", "", "TWICE-002", "", "", "")]
    staged = staged_id(upload(client, csv_of(rows).encode()))
    assert run(client, staged).status_code == 302
    again = run(client, staged)
    assert again.status_code == 302
    follow = client.get(again.headers["Location"])
    assert "already imported, cancelled, or has expired" in text(follow)
    assert len(holders_of(world, prefix="TWICE-")) == 2


def test_the_same_upload_imported_from_four_tabs_at_once_imports_once(world):
    client = browser(world)
    rows = [("山田 太郎", "", "RUN4-001", "", "", ""), ("佐藤 花子", "", "RUN4-002", "", "", "")]
    staged = staged_id(upload(client, csv_of(rows).encode()))
    tabs = [browser(world) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda c: run(c, staged), tabs))
    assert len(holders_of(world, prefix="RUN4-")) == 2


def test_another_organisations_upload_cannot_be_seen_imported_or_cancelled(world):
    client = browser(world)
    staged = staged_id(upload(client, csv_of([("山田", "", "OTHER-001", "", "", "")]).encode()))
    other = browser(world, "other_admin")
    assert other.get(f"/id-cards/holders/import/preview?staged={staged}").status_code == 302
    assert run(other, staged).status_code == 302
    cancelled = other.post("/id-cards/holders/import/cancel", data={"staged": str(staged)})
    assert cancelled.status_code == 302
    assert holders_of(world, prefix="OTHER-") == [] and holders_of(world, "b", "OTHER-") == []
    assert (
        browser(world).get(f"/id-cards/holders/import/preview?staged={staged}").status_code == 200
    )


def test_a_cancelled_upload_is_deleted(world):
    client = browser(world)
    staged = staged_id(upload(client, csv_of([("山田", "", "CAN-001", "", "", "")]).encode()))
    assert (
        client.post("/id-cards/holders/import/cancel", data={"staged": str(staged)}).status_code
        == 302
    )
    with world.app.app_context():
        assert db.session.get(CardImport, staged) is None
    assert run(client, staged).status_code == 302
    assert holders_of(world, prefix="CAN-") == []


def test_an_upload_expires_after_24_hours_and_is_deleted_at_the_next_upload(world):
    client = browser(world)
    staged = staged_id(upload(client, csv_of([("山田", "", "EXP-001", "", "", "")]).encode()))
    clock.set(DEFAULT_NOW + timedelta(hours=24, minutes=1))
    try:
        client = browser(world)  # signed in again: the first session ended while idle
        assert run(client, staged).status_code == 302
        assert holders_of(world, prefix="EXP-") == []
        staged_id(upload(client, csv_of([("山田", "", "EXP-002", "", "", "")]).encode()))
        with world.app.app_context():
            assert db.session.get(CardImport, staged) is None
    finally:
        clock.set(DEFAULT_NOW)
