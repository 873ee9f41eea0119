"""I-NET SERVICE in the browser (R-80..R-85): an administrator imports three card holders from a
CP932 CSV and a ZIP of photos, crops one photo in the page, orders cards; production staff
confirm the order; the administrator cancels it inside the window; a second order is accepted
and its Cancel is refused with the reason. Every page is checked by axe-core (conftest).

Org A of the world is registered for I-NET SERVICE; the users read English, the clock stands
at 2027-03-01 10:00 Tokyo.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image
from playwright.sync_api import Page, expect

from portal.domain.inet import OrderState
from portal.extensions import db
from portal.models import CardHolder, CardOrder, OutboxEmail, PhotoDeletion, StoredPhoto, User
from tests.browser.helpers import expect_error_page, screenshot_at_widths, sign_in, sign_out
from tests.factories import (
    World,
    add_card_holder,
    add_card_order,
    add_inet_registration,
    build_world,
)

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
HOLDERS = (
    # name, kana (the last one half-width, as old Excel sheets have it), number, department
    ("山田 太郎", "ヤマダ タロウ", "E-101", "総務部"),
    ("佐藤 花子", "サトウ ハナコ", "E-102", "製造部"),
    ("鈴木 一郎", "ｽｽﾞｷ ｲﾁﾛｳ", "E-103", "営業部"),
)


def _photo(colour: tuple[int, int, int], size: tuple[int, int] = (600, 800)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=90)
    return out.getvalue()


def _files(tmp_path: Path) -> tuple[Path, Path]:
    """The CSV as Excel saves it in Japan (CP932, CRLF) and a ZIP of the photos it names."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(["氏名", "フリガナ", "社員番号", "部署", "役職", "写真"])
    for name, kana, number, department in HOLDERS:
        writer.writerow([name, kana, number, department, "", f"photos/{number}.jpg"])
    csv_path = tmp_path / "holders.csv"
    csv_path.write_bytes(text.getvalue().encode("cp932"))
    zip_path = tmp_path / "photos.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        for index, (_name, _kana, number, _department) in enumerate(HOLDERS):
            archive.writestr(f"photos/{number}.jpg", _photo((60 + 60 * index, 90, 140)))
    return csv_path, zip_path


def _half_red_half_blue(tmp_path: Path) -> Path:
    """A landscape photo: red on the left, blue on the right (1200 x 800)."""
    image = Image.new("RGB", (1200, 800), (220, 20, 20))
    image.paste((20, 40, 220), (600, 0, 1200, 800))
    path = tmp_path / "landscape.jpg"
    image.save(path, "JPEG", quality=92)
    return path


@pytest.fixture
def world(live_server) -> World:
    world = build_world(live_server.app)
    with live_server.app.app_context():
        from portal.models import Organisation

        add_inet_registration(db.session.get(Organisation, world.org_a))
        db.session.commit()
    return world


def _holder(app, number: str) -> CardHolder:
    with app.app_context():
        return db.session.scalar(sa.select(CardHolder).where(CardHolder.employee_number == number))


def _stored_photo(app, holder_id: int) -> Image.Image:
    with app.app_context():
        holder = db.session.get(CardHolder, holder_id)
        content = db.session.scalar(
            sa.select(StoredPhoto.content).where(StoredPhoto.id == int(holder.photo_key))
        )
    return Image.open(io.BytesIO(content))


def _as_production(page: Page, world: World) -> None:
    sign_out(page)
    sign_in(page, world.emails["production"])


def _as_admin(page: Page, world: World) -> None:
    sign_out(page)
    sign_in(page, world.emails["admin"])


def test_import_crop_order_confirm_cancel_and_a_refused_cancel(
    page: Page, live_server, world: World, tmp_path: Path, browser_errors
):
    app = live_server.app
    sign_in(page, world.emails["admin"])

    # 1. Three holders from a CP932 CSV and a ZIP: the preview first, then all of them.
    page.goto("/id-cards/holders/import")
    csv_path, zip_path = _files(tmp_path)
    page.set_input_files("#csv_file", str(csv_path))
    page.set_input_files("#zip_file", str(zip_path))
    page.get_by_role("button", name="Check the files").click()
    expect(page.get_by_test_id("import-ready")).to_be_visible()
    expect(page.get_by_test_id("preview-rows")).to_contain_text("スズキ イチロウ")  # full-width
    page.get_by_test_id("run-import").click()
    for name, _kana, number, _department in HOLDERS:
        expect(page.get_by_role("main")).to_contain_text(name)
        assert _holder(app, number).photo_key is not None, number
    assert _holder(app, "E-103").name_kana == "スズキ イチロウ"

    # 2. A new photo for 山田 太郎, cropped in the page: the frame moved to the right half.
    yamada = _holder(app, "E-101")
    page.goto(f"/id-cards/holders/{yamada.id}/photo/change")
    page.set_input_files("#photo", str(_half_red_half_blue(tmp_path)))
    frame = page.locator("[data-crop-frame]")
    expect(frame).to_be_visible()
    frame.focus()
    for _ in range(40):
        page.keyboard.press("ArrowRight")
    crop_x = int(page.locator("[name=crop_x]").input_value())
    crop_width = int(page.locator("[name=crop_width]").input_value())
    crop_height = int(page.locator("[name=crop_height]").input_value())
    assert crop_x >= 600 and crop_x + crop_width <= 1200, (crop_x, crop_width)
    assert abs(crop_width * 4 - crop_height * 3) <= 4  # the card's 3:4
    page.get_by_role("button", name="Save the photo").click()
    expect(page.locator(".flash")).to_be_visible()
    stored = _stored_photo(app, yamada.id)
    assert stored.size == (600, 800)
    red, _green, blue = stored.convert("RGB").getpixel((300, 400))
    assert blue > 150 and red < 100, "the part inside the frame (blue) was kept"
    with app.app_context():
        assert db.session.scalar(
            sa.select(sa.func.count())
            .select_from(PhotoDeletion)
            .where(PhotoDeletion.holder_id == yamada.id, PhotoDeletion.reason == "replaced")
        )

    # 3. Cards for the three: a draft, checked, then sent.
    page.goto("/id-cards/orders/new")
    for _name, _kana, number, _department in HOLDERS:
        page.locator(f"#holder-{_holder(app, number).id}").check()
    page.locator("#design-navy").check()
    # The world's organisation has no registered address: the delivery is typed in.
    page.fill("#delivery_name", "総務部 山田")
    page.fill("#delivery_postal_code", "100-0001")
    page.fill("#delivery_address", "東京都千代田区千代田1-1")
    page.fill("#delivery_phone", "03-1234-5678")
    page.get_by_test_id("save-draft").click()
    expect(page.get_by_test_id("draft")).to_be_visible()
    page.get_by_test_id("send-order").click()
    expect(page.get_by_test_id("progress")).to_be_visible()
    order_id = int(re.search(r"/id-cards/orders/(\d+)", page.url).group(1))
    screenshot_at_widths(page, ARTIFACTS / "inet-order-submitted")

    # 4. Production staff confirm it (the order confirmation e-mail: a contract, R-81).
    _as_production(page, world)
    page.goto("/staff/production/orders")
    page.get_by_role("link", name=re.compile(f"IC-{order_id:06d}")).first.click()
    proof = page.request.get(f"/staff/production/orders/{order_id}/proof.pdf")
    assert proof.status == 200 and proof.body().startswith(b"%PDF")
    page.get_by_test_id("step-confirm").get_by_role("button").click()
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("progress")).to_be_visible()
    with app.app_context():
        assert db.session.get(CardOrder, order_id).state == OrderState.CONFIRMED

    # 5. The administrator cancels it inside the window, after a confirmation step.
    _as_admin(page, world)
    page.goto(f"/id-cards/orders/{order_id}")
    expect(page.get_by_test_id("cancel-window")).to_be_visible()
    page.get_by_test_id("cancel-order").click()
    page.get_by_test_id("confirm").click()
    expect(page.get_by_role("main")).to_contain_text("Cancelled")
    with app.app_context():
        assert db.session.get(CardOrder, order_id).state == OrderState.CANCELLED
        subjects = list(db.session.scalars(sa.select(OutboxEmail.subject)))
        assert any(f"IC-{order_id:06d}" in subject for subject in subjects)

    # 6. A second order, accepted by production: its Cancel is refused with the reason.
    with app.app_context():
        from portal.models import InetRegistration

        registration = db.session.scalar(
            sa.select(InetRegistration).where(InetRegistration.organisation_id == world.org_a)
        )
        holders = list(
            db.session.scalars(
                sa.select(CardHolder).where(CardHolder.organisation_id == world.org_a)
            )
        )
        admin = db.session.get(User, world.ids["admin"])
        second = add_card_order(registration, admin, holders[:1]).id
        db.session.commit()
    _as_production(page, world)
    page.goto(f"/staff/production/orders/{second}")
    page.get_by_test_id("step-accept").get_by_role("button").click()
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("progress")).to_be_visible()

    _as_admin(page, world)
    page.goto(f"/id-cards/orders/{second}")
    expect(page.get_by_test_id("cancel-order")).to_have_count(0)
    expect(page.get_by_test_id("why-not-cancellable")).to_contain_text("can no longer be cancelled")
    # Straight to the cancel address (an old tab, a bookmark): refused, with the reason.
    expect_error_page(page, browser_errors, f"/id-cards/orders/{second}/cancel", 409)
    expect(page.get_by_role("main")).to_contain_text("can no longer be cancelled")
    with app.app_context():
        assert db.session.get(CardOrder, second).state == OrderState.ACCEPTED


def test_a_photo_taken_with_the_camera_is_cropped_and_kept(page: Page, live_server, world):
    """IN 2: a photo taken with the device's camera in the browser (Chromium's fake camera)."""
    app = live_server.app
    with app.app_context():
        from portal.models import Organisation

        holder = add_card_holder(db.session.get(Organisation, world.org_a), "E-201", photo=False)
        db.session.commit()
        holder_id = holder.id
    sign_in(page, world.emails["admin"])
    page.context.grant_permissions(["camera"])
    page.goto(f"/id-cards/holders/{holder_id}/photo/change")
    page.get_by_role("button", name="Take a photo").click()
    expect(page.locator("[data-photo-video]")).to_be_visible()
    page.get_by_role("button", name="Take the photo").click()
    expect(page.locator("[data-crop-frame]")).to_be_visible()
    page.get_by_role("button", name="Save the photo").click()
    expect(page.locator(".flash")).to_be_visible()
    assert _stored_photo(app, holder_id).size == (600, 800)
