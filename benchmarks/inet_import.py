"""Benchmark of the card holders' import (CSV + ZIP of photos) at 1,000 holders.

    .venv/bin/python benchmarks/inet_import.py [--holders 1000] \
        [--database-url postgresql://postgres@127.0.0.1:5432/inet_bench]

1. Generates `--holders` holders (Japanese names, CP932 CSV as Excel saves it) and as many
   distinct photos made here with Pillow (600 x 800 JPEGs of 30-60 KB, a face-shaped
   placeholder with noise, like tests.factories.sample_jpeg), zipped in a folder.
2. On SQLite (a temporary file) and, with a PostgreSQL URL (--database-url or
   PORTAL_BENCH_DATABASE_URL), on PostgreSQL: builds the schema with the migrations, an
   organisation with an open I-NET SERVICE registration and its administrator, then times the
   three steps as the pages run them: `card_imports.stage` (+ commit), `card_imports.preview`,
   `card_imports.run` (+ commit).
3. Runs the same again for a second organisation under tracemalloc, for the peak of Python's
   own allocations per step (Pillow's pixel buffers are not Python allocations), and prints the
   process's peak resident size (ru_maxrss) at the end.

The PostgreSQL database named in the URL is dropped and created fresh: the script refuses a
name without "bench" in it. Targets (exit 1 when missed): preview and import of 1,000 holders
each under 60 s (a web request), and the process's peak resident size under 1 GB.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import sqlalchemy as sa  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from portal import create_app  # noqa: E402
from portal.clock import clock  # noqa: E402
from portal.config import database_url  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import CardHolder, CustomerRole, StoredPhoto, UserKind  # noqa: E402
from portal.permissions import Actor  # noqa: E402
from portal.services import card_imports  # noqa: E402

APP_CONFIG = {  # as the test suite passes it (tests/conftest.py)
    "TESTING": True,
    "SECRET_KEY": "benchmark-secret-key-that-is-long-enough-0123456789",
    "WTF_CSRF_ENABLED": False,
    "RATELIMIT_ENABLED": False,
    "SERVER_NAME": None,
}
STEP_TARGET_S = 60.0
RSS_TARGET_MB = 1024.0
SURNAMES = ["山田", "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "中村", "小林", "加藤"]
SURNAMES_KANA = [
    "ヤマダ",
    "サトウ",
    "スズキ",
    "タカハシ",
    "タナカ",
    "イトウ",
    "ワタナベ",
    "ナカムラ",
    "コバヤシ",
    "カトウ",
]
GIVEN = ["太郎", "花子", "一郎", "美咲", "健太", "陽子", "大輔", "由美", "翔太", "真由美"]
GIVEN_KANA = [
    "タロウ",
    "ハナコ",
    "イチロウ",
    "ミサキ",
    "ケンタ",
    "ヨウコ",
    "ダイスケ",
    "ユミ",
    "ショウタ",
    "マユミ",
]
DEPARTMENTS = ["総務部", "経理部", "営業部", "開発部", "人事部"]


def log(message: str) -> None:
    print(message, flush=True)


# --- the files ---------------------------------------------------------------------------------


def photo(seed: int) -> bytes:
    """A distinct 600 x 800 JPEG of 30-60 KB: a face-shaped placeholder over noise."""
    rng = random.Random(seed)
    noise = Image.effect_noise((600, 800), 28).convert("RGB")
    background = Image.new("RGB", (600, 800), (rng.randint(200, 245),) * 3)
    image = Image.blend(background, noise, 0.18)
    draw = ImageDraw.Draw(image)
    color = (rng.randint(40, 160), rng.randint(60, 160), rng.randint(80, 200))
    dx, dy = rng.randint(-40, 40), rng.randint(-30, 30)
    draw.ellipse((180 + dx, 150 + dy, 420 + dx, 440 + dy), fill=color)
    draw.rectangle((110, 480, 490, 800), fill=color)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def files(holders: int) -> tuple[bytes, bytes, int]:
    """The CSV (CP932, as Excel saves "CSV") and the ZIP of photos; the photos' total size."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(["氏名", "フリガナ", "社員番号", "部署", "役職", "写真"])
    archive = io.BytesIO()
    total = 0
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zipped:
        for i in range(holders):
            s, g = i % len(SURNAMES), (i // len(SURNAMES)) % len(GIVEN)
            name = f"photos/{i:05d}.jpg"
            writer.writerow(
                [
                    f"{SURNAMES[s]} {GIVEN[g]}",
                    f"{SURNAMES_KANA[s]} {GIVEN_KANA[g]}",
                    f"B{i:06d}",
                    DEPARTMENTS[i % len(DEPARTMENTS)],
                    "",
                    name,
                ]
            )
            data = photo(i)
            total += len(data)
            zipped.writestr(name, data)
    return text.getvalue().encode("cp932"), archive.getvalue(), total


# --- one database --------------------------------------------------------------------------------


def prepare(url: str) -> None:
    from flask_migrate import upgrade

    if url.startswith("postgresql"):
        import psycopg
        from psycopg import sql
        from sqlalchemy.engine import make_url

        target = make_url(url)
        if "bench" not in (target.database or ""):
            raise SystemExit(f"refusing to drop {target.database!r}: its name has no 'bench'")
        admin = target.set(drivername="postgresql", database="postgres").render_as_string(
            hide_password=False
        )
        with psycopg.connect(admin, autocommit=True) as conn:
            name = sql.Identifier(target.database)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    app = create_app({**APP_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        db.engine.dispose()


def organisation(n: int) -> int:
    from tests.factories import add_inet_registration, add_organisation, add_user

    org = add_organisation(f"Bench {n} K.K.", f"bench{n}.example")
    admin = add_user(
        f"admin@bench{n}.example",
        organisation=org,
        kind=UserKind.CUSTOMER,
        customer_role=CustomerRole.ADMINISTRATOR,
    )
    add_inet_registration(org)
    db.session.commit()
    return admin.id


def steps(app, user_id: int, csv_bytes: bytes, zip_bytes: bytes, *, traced: bool) -> dict:
    from portal.models import User

    figures: dict[str, float] = {}
    with app.test_request_context():

        def actor() -> Actor:
            return Actor(db.session.get(User, user_id))

        def step(name, fn):
            if traced:
                tracemalloc.start()
            started = time.perf_counter()
            result = fn()
            figures[f"{name}_s"] = time.perf_counter() - started
            if traced:
                figures[f"{name}_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
            return result

        def stage():
            staged = card_imports.stage(
                actor(),
                csv_name="holders.csv",
                csv_bytes=csv_bytes,
                zip_name="photos.zip",
                zip_bytes=zip_bytes,
            )
            db.session.commit()
            return staged.id

        staged_id = step("stage", stage)

        def preview():
            who = actor()
            result = card_imports.preview(who, card_imports.get_staged(who, staged_id))
            db.session.rollback()
            return result

        result = step("preview", preview)
        assert result.ok, [p for r in result.rows for p in r.problems][:5]

        def run():
            who = actor()
            count = card_imports.run(who, card_imports.get_staged(who, staged_id))
            db.session.commit()
            return count

        count = step("import", run)
        org_id = actor().organisation_id
        holders = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(CardHolder)
            .where(CardHolder.organisation_id == org_id)
        )
        photos = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(StoredPhoto)
            .where(StoredPhoto.organisation_id == org_id)
        )
        assert count == holders == photos, (count, holders, photos)
    return figures


def bench(label: str, url: str, csv_bytes: bytes, zip_bytes: bytes, holders: int) -> dict:
    prepare(url)
    app = create_app({**APP_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        first, second = organisation(1), organisation(2)
    timed = steps(app, first, csv_bytes, zip_bytes, traced=False)
    traced = steps(app, second, csv_bytes, zip_bytes, traced=True)
    with app.app_context():
        db.engine.dispose()
    log(f"\n{label}: {holders:,} holders with photos")
    for name in ("stage", "preview", "import"):
        log(
            f"  {name:8s} {timed[f'{name}_s']:6.2f} s   "
            f"(under tracemalloc {traced[f'{name}_s']:6.2f} s, "
            f"Python peak {traced[f'{name}_peak_mb']:6.1f} MB)"
        )
    return timed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--holders", type=int, default=1_000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("PORTAL_BENCH_DATABASE_URL", ""),
        help="a PostgreSQL URL (its database is dropped and created fresh)",
    )
    args = parser.parse_args()
    clock.set(None)
    log(f"CPUs: {os.cpu_count()}, load average at start: {os.getloadavg()}")
    started = time.perf_counter()
    csv_bytes, zip_bytes, photo_bytes = files(args.holders)
    log(
        f"files: CSV {len(csv_bytes) / 1024:.0f} KB (CP932), ZIP {len(zip_bytes) / 2**20:.1f} MB, "
        f"photos {photo_bytes / args.holders / 1024:.0f} KB on average, "
        f"generated in {time.perf_counter() - started:.1f} s"
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.sqlite"
        results.append(bench("SQLite", url, csv_bytes, zip_bytes, args.holders))
    if args.database_url:
        url = database_url(args.database_url)
        results.append(bench("PostgreSQL", url, csv_bytes, zip_bytes, args.holders))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log(f"\npeak resident size of the process (ru_maxrss): {rss_mb:.0f} MB")
    log(f"load average at end: {os.getloadavg()}")
    missed = [
        f"{name} took {figures[f'{name}_s']:.1f} s (target < {STEP_TARGET_S:.0f} s)"
        for figures in results
        for name in ("preview", "import")
        if figures[f"{name}_s"] >= STEP_TARGET_S
    ]
    if rss_mb >= RSS_TARGET_MB:
        missed.append(f"peak resident size {rss_mb:.0f} MB (target < {RSS_TARGET_MB:.0f} MB)")
    for line in missed:
        log(f"MISSED: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
