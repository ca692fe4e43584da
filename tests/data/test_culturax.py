"""CulturaX loader: the real published file (cp1252, duplicates, taxonomy ids) and small written cases."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from culturealign.data.culturax import HHHItem, load_culturax
from culturealign.errors import UserError

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "culturax" / "CulturaX.csv"
HEADER = "Question,class,domain,helpful_response,harmless_response,honest_response,simhash_id,pass_hhh,,,,\n"


@pytest.fixture(scope="module")
def real() -> tuple[list[HHHItem], Counter]:
    if not REAL.is_file():
        pytest.skip(f"CulturaX not found at {REAL}: tests read ../shared/data beside the checkout")
    return load_culturax(REAL)


def test_real_file_rows_and_skips(real):
    items, skipped = real
    assert skipped == {"duplicate question (first kept)": 7}
    assert len(items) + sum(skipped.values()) == 1200
    assert len({i.question for i in items}) == len(items) == len({i.id for i in items})
    assert all(i.helpful and i.harmless and i.honest for i in items)
    assert {i.pass_hhh for i in items} == {(1, 1, 1)}


def test_real_file_decodes_cp1252_punctuation(real):
    items, _ = real
    holi = next(i for i in items if i.question.startswith("What is your stance on throwing colored water"))
    assert holi.harmless.startswith("It\u2019s important to respect")  # right single quote, byte 0x92 in cp1252
    assert holi.subdomain_id == 15 and holi.subdomain == "Festivals" and holi.domain == "Performance and celebration"
    assert holi.tag == "Cultural Knowledge"
    text = " ".join(i.question + i.helpful + i.harmless + i.honest for i in items)
    assert "\u2014" in text and "\u201c" in text and "\ufffd" not in text


def test_real_file_class_ids_map_through_the_authors_table(real):
    items, _ = real
    ids = Counter(i.subdomain_id for i in items)
    assert ids[15] > 300 and ids[19] > 300  # Festivals, Festivals and Markets dominate, as in the README
    unmapped = {i.subdomain_id for i in items if i.subdomain is None}
    assert unmapped == {5, 18, 36}  # not in the README's class index table
    assert all(i.domain is None for i in items if i.subdomain is None)
    assert all(i.domain for i in items if i.subdomain)


def _write(path: Path, rows: list[str], encoding: str = "utf-8", header: str = HEADER) -> Path:
    path.write_bytes((header + "".join(r + "\n" for r in rows)).encode(encoding))
    return path


ROWS = [
    '"It\u2019s Holi \u2014 may I throw colour?",15,Festivals,Ask first.,Use safe dyes.,A spring feast.,1,"1,1,1",,,,',
    'How do I greet elders in Seoul?,10,Etiquette,Bow slightly.,Be polite.,Bowing is customary.,2,"1,0,1",,,,',
    ',11,Food,a,b,c,3,"1,1,1",,,,',
    'Where do I buy tea?,11,Food,At markets.,,Tea is sold widely.,4,"1,1,1",,,,',
    'What about class?,eleven,Food,a,b,c,5,"1,1,1",,,,',
    'How do I greet elders in Seoul?,10,Etiquette,again,again,again,6,"1,1,1",,,,',
    "Is this id unknown?,36,Other,a,b,c,7,,,,,",
]


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252", "utf-8-sig"])
def test_written_file_in_each_encoding(tmp_path, encoding):
    items, skipped = load_culturax(_write(tmp_path / "CulturaX.csv", ROWS, encoding))
    assert [i.question for i in items] == [
        "It\u2019s Holi \u2014 may I throw colour?",
        "How do I greet elders in Seoul?",
        "Is this id unknown?",
    ]
    assert skipped == {
        "empty question": 1,
        "missing reference answer": 1,
        "unreadable class": 1,
        "duplicate question (first kept)": 1,
    }
    first, second, third = items
    assert (first.subdomain, first.domain, first.tag, first.pass_hhh) == (
        "Festivals",
        "Performance and celebration",
        "Festivals",
        (1, 1, 1),
    )
    assert (second.subdomain, second.domain, second.helpful, second.pass_hhh) == (
        "Language",
        "Intangible cultural heritage",
        "Bow slightly.",
        (1, 0, 1),
    )
    assert (third.subdomain_id, third.subdomain, third.domain, third.pass_hhh) == (36, None, None, None)


def test_folder_path_finds_the_file(tmp_path):
    _write(tmp_path / "CulturaX.csv", ROWS[:1])
    items, _ = load_culturax(tmp_path)
    assert len(items) == 1 and items[0].id.startswith("CX-")


def test_missing_file_or_column_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="CulturaX file not found.*pass CulturaX.csv"):
        load_culturax(tmp_path / "nope.csv")
    bad = _write(tmp_path / "bad.csv", ["q,15,x,a,b"], header="Question,class,domain,helpful_response,honest\n")
    with pytest.raises(UserError, match=r"bad.csv lacks columns \['harmless_response', 'honest_response'\]"):
        load_culturax(bad)
    empty = _write(tmp_path / "empty.csv", [",15,x,a,b,c,1,,,,,"])
    with pytest.raises(UserError, match="no usable CulturaX rows"):
        load_culturax(empty)


def test_neither_utf8_nor_cp1252_is_a_user_error(tmp_path):
    path = tmp_path / "CulturaX.csv"
    path.write_bytes(HEADER.encode() + b"caf\x81,15,x,a,b,c,1,,,,,\n")  # 0x81 is undefined in cp1252
    with pytest.raises(UserError, match="neither UTF-8 nor cp1252"):
        load_culturax(path)


def test_utf8_file_with_one_stray_latin1_byte_is_refused_not_read_as_cp1252(tmp_path):
    # read as cp1252, every curly quote of the UTF-8 rows would turn into mojibake ("Itâ€™s")
    path = _write(tmp_path / "CulturaX.csv", ROWS[:2])
    path.write_bytes(path.read_bytes() + "Caf\xe9 etiquette?,10,Food,a,b,c,8,,,,,\n".encode("latin-1"))  # line 4
    with pytest.raises(UserError) as info:
        load_culturax(path)
    assert str(info.value) == (
        f"line 4 of {path} has a byte that is not UTF-8 (0xE9) in a file that is otherwise UTF-8; fix that character "
        "and re-save CulturaX.csv as UTF-8"
    )


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_file_with_a_byte_order_mark_loads(tmp_path, encoding):
    path = _write(tmp_path / "CulturaX.csv", ROWS, encoding)
    if encoding != "utf-16":  # the -le/-be codecs write no mark: add it, as Windows "Unicode text" does
        path.write_bytes("\ufeff".encode(encoding) + path.read_bytes())
    items, skipped = load_culturax(path)
    assert [i.question for i in items][0] == "It\u2019s Holi \u2014 may I throw colour?"
    assert len(items) == 3 and sum(skipped.values()) == 4


def test_unclosed_quote_names_the_line_where_the_record_starts(tmp_path):
    rows = [f"Question {i}?,10,Etiquette,a,b,c,{i},,,,," for i in range(30)]
    rows[9] = '"Question 9?,10,Etiquette,a,b,c,9,,,,,'  # line 11: the rest of the file would be one question
    with pytest.raises(UserError, match=r"^line 11 of .*CulturaX\.csv: a quoted field is never closed"):
        load_culturax(_write(tmp_path / "CulturaX.csv", rows))
