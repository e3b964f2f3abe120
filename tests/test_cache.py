from pathlib import Path

from edgesite.cache import Entry, Lookup, Purge, SiteCache


def entry(seq: int, tags: list[str], body: bytes = b"<p>hello</p>" * 40) -> Entry:
    return Entry.build(200, [("content-type", "text/html; charset=utf-8")], body, seq, tags)


def test_a_stored_entry_is_a_hit_until_one_of_its_tags_is_purged(tmp_path: Path) -> None:
    cache = SiteCache(tmp_path)
    cache.put("/a/", entry(cache.snapshot(), ["file:content/a.md", "path:/a/"]))
    cache.put("/b/", entry(cache.snapshot(), ["file:content/b.md", "path:/b/"]))
    assert cache.get("/a/")[1] is Lookup.HIT
    cache.purge(Purge(tags=("file:content/a.md",)))
    assert cache.get("/a/")[1] is Lookup.MISS
    assert cache.get("/b/")[1] is Lookup.HIT


def test_purging_by_url_prefix_and_everything(tmp_path: Path) -> None:
    cache = SiteCache(tmp_path)
    for key in ("/posts/a/", "/posts/b/", "/about/"):
        from edgesite.deps import path_tags

        cache.put(key, entry(cache.snapshot(), path_tags(key)))
    cache.purge(Purge(urls=("/posts/a/",)))
    assert [cache.get(k)[1] for k in ("/posts/a/", "/posts/b/", "/about/")] == [Lookup.MISS, Lookup.HIT, Lookup.HIT]
    cache.purge(Purge(prefixes=("/posts",)))
    assert [cache.get(k)[1] for k in ("/posts/b/", "/about/")] == [Lookup.MISS, Lookup.HIT]
    cache.purge(Purge(everything=True))
    assert cache.get("/about/")[1] is Lookup.MISS


def test_a_soft_purge_makes_entries_stale_not_missing(tmp_path: Path) -> None:
    cache = SiteCache(tmp_path)
    cache.put("/a/", entry(cache.snapshot(), ["t"]))
    cache.purge(Purge(tags=("t",), soft=True))
    found, state = cache.get("/a/")
    assert state is Lookup.STALE and found is not None
    cache.put("/a/", entry(cache.snapshot(), ["t"]))
    assert cache.get("/a/")[1] is Lookup.HIT


def test_a_render_that_began_before_a_purge_is_never_served_after_it(tmp_path: Path) -> None:
    cache = SiteCache(tmp_path)
    snapshot = cache.snapshot()  # the render starts and reads the old content
    cache.purge(Purge(tags=("file:content/a.md",)))  # the content changes; the purge returns
    stored = cache.put("/a/", entry(snapshot, ["file:content/a.md"]))  # the slow render finishes
    assert stored is False
    assert cache.get("/a/")[1] is Lookup.MISS


def test_purges_survive_a_restart_of_the_node(tmp_path: Path) -> None:
    cache = SiteCache(tmp_path)
    cache.put("/a/", entry(cache.snapshot(), ["t"]))
    cache.purge(Purge(tags=("t",)))
    cache.close()
    reopened = SiteCache(tmp_path)
    assert reopened.get("/a/")[1] is Lookup.MISS
    assert reopened.seq == 1


def test_entries_are_precompressed_for_gzip_and_brotli(tmp_path: Path) -> None:
    import gzip

    import brotli

    made = entry(0, [])
    assert made.gzip is not None and gzip.decompress(made.gzip) == made.body
    assert made.br is not None and brotli.decompress(made.br) == made.body
    small = Entry.build(200, [("content-type", "text/html")], b"tiny", 0, [])
    assert small.gzip is None and small.br is None


def test_purging_one_tag_costs_the_same_for_ten_thousand_entries(tmp_path: Path) -> None:
    cache = SiteCache(tmp_path)
    for i in range(2000):
        cache.put(f"/p{i}/", entry(cache.snapshot(), ["file:templates/base.html"], b"x"))
    seq_before = cache.seq
    cache.purge(Purge(tags=("file:templates/base.html",)))
    assert cache.seq == seq_before + 1  # one increment, no scan of entries
    assert all(cache.get(f"/p{i}/")[1] is Lookup.MISS for i in range(0, 2000, 97))
