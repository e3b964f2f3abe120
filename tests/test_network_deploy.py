"""Versions and bundles: content-addressed blobs, bundles a node materialises, per-version pools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgesite.contract import RenderRequest
from edgesite.deploy import BlobStore, VersionedPool, materialise, open_deployed, package, switch
from edgesite.errors import EdgesiteError
from edgesite.isolate import InlinePool
from edgesite.routes import Compiler
from edgesite.site import Site


def inline(site, versions, manifest):  # type: ignore[no-untyped-def]
    return InlinePool(site.name, site.root, versions, manifest.config.isolate)


def test_a_blob_is_named_by_its_content(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(EdgesiteError, match="does not match"):
        store.put("0" * 16, b"data")


def test_an_edit_of_one_file_adds_one_blob(mini: Path, tmp_path: Path) -> None:
    store, compiler = BlobStore(tmp_path / "blobs"), Compiler(Site.open(mini))
    first, new = package(compiler, store)
    assert new == len(first.blobs)
    (mini / "content/about.md").write_text((mini / "content/about.md").read_text() + "\nMore.\n")
    second, new = package(compiler, store)
    assert new == 1 and second.version != first.version


def test_a_bundle_holds_exactly_the_versions_files(mini: Path, tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    version, _ = package(Compiler(Site.open(mini)), store)
    bundle = materialise(version, store, tmp_path / "bundles")
    files = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file())
    assert files == sorted(version.manifest["inputs"])
    assert (bundle / "content/about.md").read_bytes() == (mini / "content/about.md").read_bytes()


def test_a_node_renders_from_its_bundle_and_a_switch_purges_exactly_what_changed(mini: Path, tmp_path: Path) -> None:
    store, compiler = BlobStore(tmp_path / "blobs"), Compiler(Site.open(mini))
    root = tmp_path / "node" / "sites" / "mini"
    v1, _ = package(compiler, store)
    materialise(v1, store, root / "bundles")
    runtime = open_deployed(v1, root, inline)
    (mini / "content/about.md").write_text("+++\ntitle = \"About\"\n+++\nChanged.\n")  # the author's folder moves on
    req = RenderRequest(method="GET", url="/about/", headers=[], route=json.dumps(runtime.manifest.routes["/about/"]), version=v1.version)
    assert "About <em>us</em>" in runtime.pool.render(req).body  # rendered from the bundle, not the live folder
    v2, _ = package(compiler, store)
    materialise(v2, store, root / "bundles")
    tags = switch(runtime, v2, root)
    assert "file:content/about.md" in tags and "file:content/posts/post-1.md" not in tags
    assert runtime.cache.note("version") == v2.version
    assert "About <em>us</em>" in runtime.pool.render(req).body  # a render of the old version still sees the old files
    new = RenderRequest(method="GET", url="/about/", headers=[], route=req.route, version=v2.version)
    assert "Changed." in runtime.pool.render(new).body
    assert isinstance(runtime.pool, VersionedPool)
    runtime.pool.close()
    runtime.cache.close()
