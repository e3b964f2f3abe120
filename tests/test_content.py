import pytest

from edgesite.content import normalise, parse_front_matter, slugify, split_body
from edgesite.errors import FrontMatterError


def test_yaml_and_toml_front_matter_parse_to_the_same_keys() -> None:
    yaml_meta = parse_front_matter("---\ntitle: Hi\ntags: [a, b]\ndate: 2024-05-01\n---\nbody\n", "a.md")
    toml_meta = parse_front_matter('+++\ntitle = "Hi"\ntags = ["a", "b"]\ndate = 2024-05-01\n+++\nbody\n', "b.md")
    a = normalise(yaml_meta, "a.md", {"tags": "tag"})
    b = normalise(toml_meta, "b.md", {"tags": "tag"})
    assert a == b
    assert a["date"] == "2024-05-01T00:00:00+00:00" and a["terms"] == {"tags": ["a", "b"]}


def test_malformed_yaml_front_matter_names_file_and_line() -> None:
    with pytest.raises(FrontMatterError) as err:
        parse_front_matter("---\ntitle: ok\ntags: [a, b\nweight: 2\n---\nbody", "content/x.md")
    assert err.value.file == "content/x.md"
    assert err.value.line == 4


def test_unclosed_front_matter_and_wrong_types_are_errors() -> None:
    with pytest.raises(FrontMatterError, match="never closed"):
        parse_front_matter("---\ntitle: x\n", "x.md")
    with pytest.raises(FrontMatterError, match="draft must be true or false"):
        normalise({"draft": "yes"}, "x.md", {})
    with pytest.raises(FrontMatterError, match="is not a date"):
        normalise({"date": "last tuesday"}, "x.md", {})


def test_hugo_and_jekyll_spellings_are_understood() -> None:
    meta = normalise({"layout": "wide", "updated": "2024-01-02", "publishDate": "2024-01-01", "extra": 1}, "x.md", {"tags": "tag"})
    assert meta["template"] == "wide.html"
    assert meta["lastmod"].startswith("2024-01-02") and meta["date"].startswith("2024-01-01")
    assert meta["params"] == {"extra": 1}


def test_split_body_and_slugify() -> None:
    assert split_body("---\na: 1\n---\nhello\n") == ("hello\n", 3)
    assert split_body("no front matter") == ("no front matter", 0)
    assert slugify("Hello, World! Ünïcode") == "hello-world-ünïcode"
