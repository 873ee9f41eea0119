"""The UI speaks the customer's language: every marked string has its Japanese translation."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}


def _extracted_msgids() -> set[str]:
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    ids = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        ids.add(message[0] if isinstance(message, tuple) else message)
    return ids


def _catalog():
    with (ROOT / "portal/translations/ja/LC_MESSAGES/messages.po").open("rb") as po:
        return read_po(po, locale="ja")


def test_every_marked_string_has_a_japanese_translation():
    catalog = _catalog()
    missing = []
    for msgid in sorted(_extracted_msgids()):
        message = catalog.get(msgid)
        translated = message is not None and (
            all(message.string) if isinstance(message.string, tuple) else message.string
        )
        if not translated or message.fuzzy:
            missing.append(msgid)
    assert not missing, "untranslated (run `make extract-messages` and translate): " + repr(missing)


def test_placeholders_survive_translation():
    for message in _catalog():
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = _placeholders(ids[-1])
        for string in strings:
            assert _placeholders(string) == wanted, (message.id, string)


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"%\((\w+)\)[sd]", text))
