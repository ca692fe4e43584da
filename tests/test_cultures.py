"""Culture registry: lookups, suggestions, countries.csv registration and similarity."""

from __future__ import annotations

import pytest

from culturealign import cultures
from culturealign.cultures import (
    all_cultures,
    get_culture,
    load_similarity,
    parse_cultures,
    register_countries_csv,
    related_cultures,
)
from culturealign.errors import UserError

WVS7_CODES = (
    "AND ARG ARM AUS BGD BOL BRA CAN CHL CHN COL CYP CZE DEU ECU EGY ETH GBR GRC GTM HKG IDN IND IRN IRQ JOR JPN "
    "KAZ KEN KGZ KOR LBN LBY MAC MAR MDV MEX MMR MNG MYS NGA NIC NLD NZL PAK PER PHL PRI ROU RUS SGP SRB SVK THA "
    "TJK TUN TUR TWN UKR URY USA UZB VEN VNM ZWE"
).split()


@pytest.mark.parametrize("key", ["DEU", "deu", " Deu ", "Germany", "germany", " GERMANY "])
def test_lookup_by_code_or_name(key):
    c = get_culture(key)
    assert (c.code, c.name, c.adjective, c.region) == ("DEU", "Germany", "German", "Europe")


def test_unknown_code_suggests_closest():
    with pytest.raises(UserError) as info:
        get_culture("DEX")
    msg = str(info.value)
    assert "'DEX'" in msg
    assert "DEU" in msg
    assert "closest" in msg


def test_unknown_name_suggests_country_code():
    with pytest.raises(UserError, match="DEU"):
        get_culture("Germny")


def test_parse_cultures():
    assert [c.code for c in parse_cultures("DEU,CHN")] == ["DEU", "CHN"]
    assert [c.code for c in parse_cultures(" deu , chn ,")] == ["DEU", "CHN"]
    assert [c.code for c in parse_cultures(["JPN", "Germany"])] == ["JPN", "DEU"]
    assert parse_cultures("") == []
    with pytest.raises(UserError, match="'XXQ'"):
        parse_cultures("DEU,XXQ,CHN")


def test_register_countries_csv_adds_and_overrides(tmp_path):
    path = tmp_path / "countries.csv"
    path.write_text(
        "code,name,culture,region\nxat,Atlantis,Atlantean,Myth\nDEU,Germany,Teutonic,Europe\n", encoding="utf-8"
    )
    assert register_countries_csv(path) == ["XAT", "DEU"]
    assert get_culture("xat") == cultures.Culture("XAT", "Atlantis", "Atlantean", "Myth")
    assert get_culture("Atlantis").code == "XAT"
    assert get_culture("DEU").adjective == "Teutonic"
    assert "XAT" in {c.code for c in all_cultures()}


def test_register_countries_csv_without_region(tmp_path):
    path = tmp_path / "countries.csv"
    path.write_text("code,name,culture\nXAT,Atlantis,Atlantean\n", encoding="utf-8")
    register_countries_csv(path)
    assert get_culture("XAT").region == ""


def test_register_countries_csv_errors(tmp_path):
    with pytest.raises(UserError, match="cannot read cultures"):
        register_countries_csv(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("iso,name\nXAT,Atlantis\n", encoding="utf-8")
    with pytest.raises(UserError, match="code,name,culture,region"):
        register_countries_csv(bad)


SIMILARITY = {
    "DEU": {"DEU": 100.0, "AUT": 90.0, "NLD": 80.0, "USA": 60.0, "JPN": 30.0, "CHN": 20.0},
    "CHN": {"DEU": 20.0, "VNM": 85.0},
}


def test_related_cultures_most_similar_and_most_different():
    similar, different = related_cultures("DEU", SIMILARITY, k=2)
    assert similar == ["AUT", "NLD"]
    assert different == ["CHN", "JPN"]


def test_related_cultures_excludes_self_and_accepts_lower_case():
    similar, different = related_cultures("deu", SIMILARITY)
    assert similar == ["AUT", "NLD", "USA"]
    assert different == ["CHN", "JPN", "USA"]
    assert "DEU" not in similar + different
    assert related_cultures("DEU", SIMILARITY, k=10)[0] == ["AUT", "NLD", "USA", "JPN", "CHN"]


def test_related_cultures_unknown_code():
    assert related_cultures("XXX", SIMILARITY) == ([], [])


def test_load_similarity(tmp_path):
    path = tmp_path / "sim.json"
    path.write_text('{"deu": {"aut": 90, "chn": "20.5"}}', encoding="utf-8")
    assert load_similarity(path) == {"DEU": {"AUT": 90.0, "CHN": 20.5}}
    path.write_text("{broken", encoding="utf-8")
    with pytest.raises(UserError, match="cannot read culture similarity"):
        load_similarity(path)
    with pytest.raises(UserError, match="cannot read culture similarity"):
        load_similarity(tmp_path / "missing.json")


def test_builtin_table_covers_wvs_wave7():
    codes = {c.code: c for c in all_cultures()}
    missing = [code for code in WVS7_CODES if code not in codes]
    assert not missing, f"built-in culture table lacks WVS wave 7 codes {missing}"
    for code in WVS7_CODES:
        c = codes[code]
        assert c.name and c.adjective and c.region, code
        assert get_culture(code.lower()) is c


def test_all_cultures_sorted_by_code():
    codes = [c.code for c in all_cultures()]
    assert codes == sorted(codes)
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize("code", ["../../../../../ESCAPED", "DE", "D3U", "", "ÄÖÜ"])
def test_register_countries_csv_refuses_a_code_that_is_not_alpha3(tmp_path, code):
    # codes name per-culture files: "../../x" would write outside the run folder
    path = tmp_path / "countries.csv"
    path.write_text(f"code,name,culture,region\nXAT,Atlantis,Atlantean,Myth\n{code},X,X,X\n", encoding="utf-8")
    with pytest.raises(UserError) as info:
        register_countries_csv(path)
    assert str(info.value) == (
        f"line 3 of {path}: culture code {code!r} is not an ISO 3166 alpha-3 code (three letters A-Z, e.g. DEU); "
        "fix or remove that line"
    )
    assert "XAT" not in {c.code for c in all_cultures()}  # nothing of a refused file is registered


def test_register_countries_csv_bad_bytes_and_quotes_name_the_line(tmp_path):
    path = tmp_path / "countries.csv"
    path.write_bytes(b"code,name,culture,region\nXAT,Atlantis,Atlantean,Myth\nXBT,B\xe9t,B,M\n")
    with pytest.raises(UserError, match=r"^line 3 of .*countries\.csv is not UTF-8 text .*re-save countries\.csv"):
        register_countries_csv(path)
    path.write_text('code,name,culture,region\nXAT,"Atlantis,Atlantean,Myth\n' + "XBT,B,B,M\n" * 20, encoding="utf-8")
    with pytest.raises(UserError, match=r"^line 2 of .*countries\.csv: a quoted field is never closed"):
        register_countries_csv(path)
    path.write_text("code,name,culture,region\nXAT,Atlantis\n", encoding="utf-8")  # a short row
    with pytest.raises(UserError, match=r"^line 2 of .*countries\.csv: culture 'XAT' has no name or no culture"):
        register_countries_csv(path)
