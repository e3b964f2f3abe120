"""The blog's own routes, run in its isolate: a JSON search over the posts.

``GET /api/search?q=cache`` answers the posts whose title, summary or tags contain every word
of ``q`` (case-insensitive), best first: title matches, then tag matches, then newest; with
no ``q``, every post, newest first (so a static export holds the whole index). Each
distinct query is cached like a page and purged with the list of posts (``list:all``).
"""

import re

from edgesite.worker import Response, route


def _text(markup):
    return " ".join(re.sub(r"<[^>]+>", " ", str(markup)).split())


@route("/api/search")
def search(request, site):
    words = request.query.get("q", "").lower().split()
    results = []
    for page in site.pages:
        if not page.url.startswith("/posts/"):
            continue
        title, tags = page.title.lower(), [t.name.lower() for t in page.tags]
        summary = _text(page.summary)
        haystack = " ".join([title, summary.lower(), *tags])
        if all(word in haystack for word in words):
            score = (sum(w in title for w in words), sum(any(w in t for t in tags) for w in words))
            results.append((score, page, summary))
    results.sort(key=lambda r: (-r[0][0], -r[0][1]))  # stable: site.pages is newest first
    return Response.json({
        "query": request.query.get("q", ""),
        "results": [{"title": p.title, "url": p.url, "date": p.date.date().isoformat() if p.date else None,
                     "summary": s, "tags": [t.name for t in p.tags]} for _, p, s in results[:20]],
    })
