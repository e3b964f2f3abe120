"""edgesite check: every route rendered, broken things reported, a non-zero exit when broken."""

from pathlib import Path

from click.testing import CliRunner

from edgesite.check import check_site
from edgesite.cli import main

REPO = Path(__file__).parent.parent


def kinds(site: Path) -> list[str]:
    return sorted(str(p) for p in check_site(site).problems)


def test_a_clean_site_passes_and_lists_orphans_as_warnings(mini: Path) -> None:
    report = check_site(mini)
    assert report.ok and report.pages == 18
    assert [str(w) for w in report.warnings] == ["orphan: /about/: no other page links to it (content/about.md)"]


def test_broken_links_anchors_and_missing_static_files_are_reported(mini: Path) -> None:
    (mini / "content/about.md").write_text(
        "+++\ntitle = \"About\"\n+++\n[a](/posts/nope/) [b](/posts/post-1/#heading-1) [c](/posts/post-1/#nope) "
        "[d](../posts/post-2/) [e](/posts/post-3) [f](#here) ![g](/static/img/gone.png) [h](https://example.org/x)\n")
    assert kinds(mini) == [
        "broken-anchor: /about/: links to #here, but /about/ has no id 'here'",
        "broken-anchor: /about/: links to /posts/post-1/#nope, but /posts/post-1/ has no id 'nope'",
        "broken-link: /about/: links to /posts/nope/, which this site does not serve",
        "missing-static: /about/: links to /static/img/gone.png, which this site does not serve",
    ]


def test_failed_pages_and_missing_templates_name_file_and_line(mini: Path) -> None:
    (mini / "templates/page.html").write_text(
        "{% extends 'base.html' %}\n{% block main %}\n{{ page.title }}\n{{ nope.x }}\n{% endblock %}\n")
    (mini / "content/fancy.md").write_text("---\ntitle: Fancy\ntemplate: fancy\n---\nx\n")
    (mini / "content/posts/bad.md").write_text("---\ntitle: [\n---\nx\n")
    problems = kinds(mini)
    yaml_error = next(p for p in problems if p.startswith("compile-error: invalid YAML front matter: "))
    assert yaml_error.endswith("(content/posts/bad.md, line 3)")  # the message itself is PyYAML's
    assert "template-missing: /fancy/: template 'fancy.html' not found in templates/ (content/fancy.md)" in problems
    assert "render-error: /posts/post-1/: undefined variable: 'nope' is undefined (templates/page.html, line 4)" in problems


def test_the_command_exits_1_when_something_is_broken_and_0_when_not(mini: Path) -> None:
    ok = CliRunner().invoke(main, ["check", str(mini)])
    assert ok.exit_code == 0 and "18 routes rendered" in ok.output and "0 problems, 1 warnings" in ok.output
    (mini / "content/about.md").write_text("+++\ntitle = \"About\"\n+++\n[x](/nowhere/)\n")
    broken = CliRunner().invoke(main, ["check", str(mini)])
    assert broken.exit_code == 1
    assert "error: broken-link: /about/: links to /nowhere/, which this site does not serve" in broken.output


def test_both_example_sites_pass() -> None:
    for name in ("blog", "docs"):
        report = check_site(REPO / "sites" / name)
        assert report.ok, [str(p) for p in report.problems]
