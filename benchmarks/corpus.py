"""A seeded corpus generator: N pages of ~800 words as an edgesite site (or the same pages as a
Hugo site, for the anchor comparison).

    python benchmarks/corpus.py --pages 1000 --out benchmarks/corpus/c1000
    python benchmarks/corpus.py --pages 10000 --out benchmarks/corpus/c10000
    python benchmarks/corpus.py --pages 1000 --format hugo --out benchmarks/corpus/c1000-hugo

Every page has YAML front matter (title, date, tags from a pool of 50, a summary on some),
two or three headings, a table, a fenced code block (python, js or bash), internal links to
other pages of the corpus and lists. The same seed gives the same bytes; the edgesite and Hugo
variants of one seed hold the same Markdown.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
from pathlib import Path

SECTIONS = ("posts", "guides", "notes", "reference")
WORDS = (
    "cache edge node render route purge template markdown site page section tag version "
    "request response header latency throughput worker isolate memory disk index manifest "
    "compile input output content static asset feed sitemap alias draft build deploy "
    "origin client server network packet socket buffer stream queue thread process signal "
    "config option value key record table column row field schema query filter sort "
    "the a an of to in on for with by from at as is are was be this that it its their "
    "fast slow small large quiet busy stale fresh warm cold clean dirty exact rough simple "
    "careful early late every each some many few most first last next previous other same "
    "reads writes serves stores keeps drops sends takes gives finds builds checks counts "
    "runs waits starts stops opens closes moves holds turns shows means needs wants "
    "river mountain garden window morning evening winter summer harbour library market "
    "letter number story picture question answer reason moment journey pattern "
).split()
TAGS = [f"topic-{n:02d}" for n in range(50)]
CODE = {
    "python": (
        "def handle(request, cache):\n"
        "    key = request.path\n"
        "    entry = cache.get(key)\n"
        "    if entry is None:\n"
        "        entry = render(request)\n"
        "        cache[key] = entry  # store for next time\n"
        "    return entry.body\n"
    ),
    "js": (
        "export async function fetchPage(url) {\n"
        "  const res = await fetch(url, { headers: { accept: 'text/html' } });\n"
        "  if (!res.ok) throw new Error(`status ${res.status}`);\n"
        "  return res.headers.get('x-cache') + ' ' + (await res.text()).length;\n"
        "}\n"
    ),
    "bash": (
        "for url in /posts/ /guides/ /notes/; do\n"
        "  curl -s -o /dev/null -w '%{http_code} %{time_total}\\n' \"http://127.0.0.1:8000$url\"\n"
        "done\n"
        "echo \"done: $(date +%s)\"\n"
    ),
}


def _sentence(rng: random.Random, low: int = 8, high: int = 18) -> str:
    words = rng.choices(WORDS, k=rng.randint(low, high))
    return words[0].capitalize() + " " + " ".join(words[1:]) + "."


def _paragraph(rng: random.Random, sentences: int, links: list[tuple[str, str]]) -> str:
    parts = [_sentence(rng) for _ in range(sentences)]
    if links:
        title, url = links.pop()
        i = rng.randrange(len(parts))
        parts[i] = parts[i][:-1] + f", as [{title}]({url}) explains."
    return " ".join(parts)


def _slug(section: str, n: int) -> str:
    return f"{section}-{n:05d}"


def page_plan(pages: int) -> list[tuple[str, int]]:
    """(section, number) of every page, numbered across the corpus."""
    return [(SECTIONS[n % len(SECTIONS)], n) for n in range(pages)]


def _title(rng: random.Random, n: int) -> str:
    return " ".join(w.capitalize() for w in rng.choices(WORDS, k=rng.randint(3, 6))) + f" {n}"


def page_text(seed: int, pages: int, section: str, n: int) -> str:
    """The Markdown file (front matter and body) of page ``n``: ~800 words."""
    rng = random.Random(f"{seed}:{n}")
    title = _title(rng, n)
    date = dt.datetime(2012, 1, 1) + dt.timedelta(hours=n, minutes=rng.randrange(60))  # all in the past
    tags = sorted(rng.sample(TAGS, rng.randint(1, 4)))
    lines = ["---", f'title: "{title}"', f"date: {date.isoformat()}Z", f"tags: [{', '.join(tags)}]"]
    if rng.random() < 0.3:
        lines.append(f'summary: "{_sentence(rng, 10, 16)}"')
    lines += ["---", ""]
    links = []
    for _ in range(4):
        other = rng.randrange(pages)
        links.append((f"page {other}", f"/{SECTIONS[other % len(SECTIONS)]}/{_slug(SECTIONS[other % len(SECTIONS)], other)}/"))
    body = [_paragraph(rng, 5, links), ""]
    lang = rng.choice(sorted(CODE))
    headings = rng.choice((2, 3))
    for h in range(headings):
        body += [f"## {_sentence(rng, 2, 5)[:-1]}", "", _paragraph(rng, 6, links), ""]
        if h == 0:
            body += ["| name | value | note |", "|---|---:|---|"]
            for _ in range(5):
                body.append(f"| {rng.choice(WORDS)} | {rng.randint(1, 9999)} | {' '.join(rng.choices(WORDS, k=4))} |")
            body += ["", _paragraph(rng, 4, links), ""]
        elif h == 1:
            body += [f"```{lang}", CODE[lang].rstrip("\n"), "```", ""]
            body += [f"- {_sentence(rng, 4, 9)}" for _ in range(4)] + [""]
            body += [f"{i}. {_sentence(rng, 4, 9)}" for i in range(1, 4)] + [""]
        else:
            body += ["### " + _sentence(rng, 2, 4)[:-1], "", _paragraph(rng, 5, links), ""]
    while len(" ".join(body).split()) < 780:
        body += [_paragraph(rng, 4, links), ""]
    return "\n".join(lines + body)


def _section_index(section: str) -> str:
    return f'---\ntitle: "{section.capitalize()}"\n---\nAll {section}.\n'


EDGESITE_TEMPLATES = {
    "base.html": """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{% block title %}{{ site.title }}{% endblock %}</title>
<link rel="stylesheet" href="{{ static('css/site.css') }}"></head>
<body>{% include "partials/header.html" %}
<main>{% block main %}{% endblock %}</main>
<footer>{{ site.params.footer }}</footer></body></html>
""",
    "partials/header.html": """<header><a href="/">{{ site.title }}</a><nav>{% for item in site.menus.main %}<a href="{{ item.url }}">{{ item.name }}</a> {% endfor %}</nav></header>
""",
    "page.html": """{% extends "base.html" %}{% block title %}{{ page.title }} · {{ site.title }}{% endblock %}
{% block main %}<article><h1>{{ page.title }}</h1>
<p class="meta">{{ page.date | date("%-d %B %Y") }} · {{ page.reading_time }} min · {% for t in page.tags %}<a href="{{ t.url }}">{{ t.name }}</a> {% endfor %}</p>
<nav class="toc">{{ page.toc }}</nav>
{{ page.content }}</article>{% endblock %}
""",
    "section.html": """{% extends "base.html" %}{% block title %}{{ section.title }} · {{ site.title }}{% endblock %}
{% block main %}<h1>{{ section.title }}</h1>{% for p in paginator.pages %}<article><h2><a href="{{ p.url }}">{{ p.title }}</a></h2>{{ p.summary }}</article>{% endfor %}
{% if paginator.prev_url %}<a rel="prev" href="{{ paginator.prev_url }}">newer</a>{% endif %}{% if paginator.next_url %}<a rel="next" href="{{ paginator.next_url }}">older</a>{% endif %}{% endblock %}
""",
    "term.html": """{% extends "base.html" %}{% block title %}{{ term.name }} · {{ site.title }}{% endblock %}
{% block main %}<h1>{{ term.name }}</h1><ul>{% for p in paginator.pages %}<li><a href="{{ p.url }}">{{ p.title }}</a></li>{% endfor %}</ul>
{% if paginator.next_url %}<a rel="next" href="{{ paginator.next_url }}">more</a>{% endif %}{% endblock %}
""",
    "taxonomy.html": """{% extends "base.html" %}
{% block main %}<h1>{{ taxonomy.name }}</h1><ul>{% for t in taxonomy.terms %}<li><a href="{{ t.url }}">{{ t.name }}</a> ({{ t.count }})</li>{% endfor %}</ul>{% endblock %}
""",
    "404.html": """{% extends "base.html" %}
{% block main %}<h1>Not found</h1><p>Nothing at {{ url }}.</p>{% endblock %}
""",
}

HUGO_LAYOUTS = {
    "_default/baseof.html": """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ block "title" . }}{{ .Site.Title }}{{ end }}</title>
<link rel="stylesheet" href="/css/site.css"></head>
<body>{{ partial "header.html" . }}
<main>{{ block "main" . }}{{ end }}</main>
<footer>{{ .Site.Params.footer }}</footer></body></html>
""",
    "partials/header.html": """<header><a href="/">{{ .Site.Title }}</a><nav>{{ range .Site.Menus.main }}<a href="{{ .URL }}">{{ .Name }}</a> {{ end }}</nav></header>
""",
    "_default/single.html": """{{ define "title" }}{{ .Title }} · {{ .Site.Title }}{{ end }}
{{ define "main" }}<article><h1>{{ .Title }}</h1>
<p class="meta">{{ .Date.Format "2 January 2006" }} · {{ .ReadingTime }} min · {{ range .Params.tags }}<a href="{{ "/tags/" | relURL }}{{ . | urlize }}/">{{ . }}</a> {{ end }}</p>
<nav class="toc">{{ .TableOfContents }}</nav>
{{ .Content }}</article>{{ end }}
""",
    "_default/list.html": """{{ define "title" }}{{ .Title }} · {{ .Site.Title }}{{ end }}
{{ define "main" }}<h1>{{ .Title }}</h1>{{ range .Paginator.Pages }}<article><h2><a href="{{ .RelPermalink }}">{{ .Title }}</a></h2>{{ .Summary }}</article>{{ end }}
{{ with .Paginator.Prev }}<a rel="prev" href="{{ .URL }}">newer</a>{{ end }}{{ with .Paginator.Next }}<a rel="next" href="{{ .URL }}">older</a>{{ end }}{{ end }}
""",
    "404.html": """{{ define "main" }}<h1>Not found</h1>{{ end }}
""",
}

CSS = "body{font:16px/1.5 system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}pre{overflow:auto}\n"
MENU = [("Posts", "/posts/"), ("Guides", "/guides/"), ("Notes", "/notes/"), ("Reference", "/reference/")]


def write_corpus(out: Path, pages: int, seed: int = 1, fmt: str = "edgesite") -> None:
    """Write the site to ``out`` (replacing what was there)."""
    if out.exists():
        shutil.rmtree(out)
    content = out / "content"
    for section in SECTIONS:
        (content / section).mkdir(parents=True)
        (content / section / "_index.md").write_text(_section_index(section), encoding="utf-8")
    (content / "_index.md").write_text('---\ntitle: "Home"\n---\nA generated corpus.\n', encoding="utf-8")
    for section, n in page_plan(pages):
        (content / section / f"{_slug(section, n)}.md").write_text(page_text(seed, pages, section, n), encoding="utf-8")
    menu = "".join(f'[[menu.main]]\nname = "{name}"\nurl = "{url}"\nweight = {i}\n' for i, (name, url) in enumerate(MENU))
    if fmt == "edgesite":
        (out / "site.toml").write_text(
            f'title = "Corpus {pages}"\nbase_url = "http://127.0.0.1:8000/"\n[pagination]\nper_page = 10\n'
            f'[taxonomies]\ntags = "tag"\n[params]\nfooter = "generated, seed {seed}"\n{menu}', encoding="utf-8")
        for name, text in EDGESITE_TEMPLATES.items():
            path = out / "templates" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        (out / "static" / "css").mkdir(parents=True)
        (out / "static" / "css" / "site.css").write_text(CSS, encoding="utf-8")
        (out / "data").mkdir()
    elif fmt == "hugo":
        (out / "config.toml").write_text(
            f'baseURL = "http://127.0.0.1:1313/"\ntitle = "Corpus {pages}"\npaginate = 10\n'
            'disableKinds = ["RSS"]\n[taxonomies]\ntag = "tags"\n'
            f'[params]\nfooter = "generated, seed {seed}"\n'
            + menu.replace("[[menu.main]]", "[[menus.main]]").replace("url =", "url ="), encoding="utf-8")
        for name, text in HUGO_LAYOUTS.items():
            path = out / "layouts" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        (out / "static" / "css").mkdir(parents=True)
        (out / "static" / "css" / "site.css").write_text(CSS, encoding="utf-8")
    else:
        raise ValueError(f"unknown format {fmt!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--format", choices=("edgesite", "hugo"), default="edgesite")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    write_corpus(args.out, args.pages, args.seed, args.format)
    print(f"wrote {args.pages} pages ({args.format}) to {args.out}")


if __name__ == "__main__":
    main()
