"""The shipped UNESCO taxonomy: enough subdomains, unique ids, known domains, the CulturaX class table."""

from __future__ import annotations

from culturealign.data.unesco import by_culturax_class, load_domains, load_taxonomy


def test_taxonomy_shape():
    subs = load_taxonomy()
    domains = load_domains()
    assert len(subs) >= 30
    assert len({s.id for s in subs}) == len(subs) and len({s.name for s in subs}) == len(subs)
    assert {d.id for d in domains} == {"A", "B", "C", "D", "E", "F", "ICH", "G", "H"}
    assert {d.kind for d in domains} == {"cultural", "transversal", "related"}
    assert all(s.domain in {d.name for d in domains} for s in subs)
    assert {s.domain for s in subs} == {d.name for d in domains}  # every domain has subdomains
    assert all(s.description.endswith(".") and len(s.description) > 30 for s in subs)


def test_subdomains_the_recipe_names_are_there():
    names = {s.name for s in load_taxonomy()}
    for name in [
        "Festivals",
        "Culinary Arts",
        "Crafts",
        "Language",
        "Folk Sports",
        "Theatrical Performance",
        "Dance",
        "Social Networks",
        "Fashion Design",
        "Museums",
        "Libraries",
        "Video Games",
        "Heritage Tourism",
    ]:
        assert name in names


def test_culturax_class_table():
    table = by_culturax_class()
    assert table[15].name == "Festivals" and table[19].name == "Festivals and Markets"
    assert table[11].domain == "Intangible cultural heritage" and table[14].domain == "Sports and recreation"
    assert set(table) == set(range(0, 40)) - {5, 18, 30, 31, 36}
