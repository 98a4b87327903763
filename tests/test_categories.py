"""Which site categories a post is in, what subscribers may choose, and the error naming the
choices (syndicate/categories.py), with [site] categories set and left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from syndicate.categories import SiteCategories, UnknownCategory, pick
from syndicate.config import Settings, load_settings

MINIMAL = '[site]\ntitle = "T"\nurl = "https://example.org/"\n'
SOURCES = (
    '[[sources]]\nname = "news"\nurl = "https://e.org/1"\n'
    '[[sources]]\nname = "partner"\nurl = "https://e.org/2"\ncategory = "Partners"\n'
)


def settings_of(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


@pytest.fixture
def listed(tmp_path: Path) -> SiteCategories:
    text = MINIMAL + 'categories = ["Rivers", "Wildlife", "Partners"]\n' + SOURCES
    text += '[categories.Rivers]\ntags = ["drought", "Flood resilience"]\n'
    text += '[categories.Wildlife]\ntags = ["otters", "DROUGHT"]\n'
    return SiteCategories.of(settings_of(tmp_path, text))


def test_a_post_is_in_the_categories_its_tags_name_or_map_to(listed: SiteCategories) -> None:
    assert listed.of_post("news", ("rivers",)) == ("Rivers",)  # by name, any case
    assert listed.of_post("news", ("Drought",)) == ("Rivers", "Wildlife")  # two tables list it
    assert listed.of_post("news", ("otters", "flood RESILIENCE")) == ("Wildlife", "Rivers")
    assert listed.of_post("news", ("maps", "Mill Weir")) == ()
    assert listed.of_post("partner", ("maps",)) == ("Partners",)  # its source's category
    assert listed.of_post("gone", ()) == ()


def test_the_choices_are_the_list_in_its_order(listed: SiteCategories) -> None:
    assert listed.offered(["maps", "drought"]) == ["Rivers", "Wildlife", "Partners"]
    assert not listed.needs_posts


def test_without_the_list_every_category_a_source_names_or_a_post_has(tmp_path: Path) -> None:
    site = SiteCategories.of(settings_of(tmp_path, MINIMAL + SOURCES))
    assert site.needs_posts
    assert site.offered(["wildlife", "Rivers", "Wildlife", " ", "partners"]) == [
        "Partners",
        "Rivers",
        "Wildlife",
    ]
    assert site.of_post("news", ("Rivers", "rivers", "drought")) == ("Rivers", "drought")
    assert site.of_post("partner", ("Rivers",)) == ("Rivers", "Partners")


def test_pick_spells_choices_as_the_site_and_names_the_choices() -> None:
    offered = ["Rivers", "Field notes"]
    assert pick([" rivers", "FIELD NOTES", "Rivers", ""], offered) == ("Rivers", "Field notes")
    with pytest.raises(UnknownCategory) as caught:
        pick(["Rivers", "drought"], offered)
    assert str(caught.value) == "unknown category 'drought'; choose from: Rivers, Field notes"
    assert caught.value.exit_code == 2
    with pytest.raises(UnknownCategory, match=r"offers no categories \(list them in \[site\]"):
        pick(["News"], [])
    with pytest.raises(UnknownCategory) as caught:
        pick(["a\x1b[2Jb\nc"], offered)
    assert "\x1b" not in str(caught.value) and "\n" not in str(caught.value)
