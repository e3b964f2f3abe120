import pytest

from edgesite.errors import SiteConfigError
from edgesite.site import parse_config


def test_a_minimal_config_gets_workers_like_isolate_defaults() -> None:
    config = parse_config('title = "X"')
    assert config.isolate.memory_mb == 128
    assert config.taxonomies == {"tags": "tag"}
    assert config.base_url.endswith("/")


def test_invalid_toml_names_the_line() -> None:
    with pytest.raises(SiteConfigError) as err:
        parse_config('title = "X"\nbroken = = 1\n')
    assert err.value.file == "site.toml" and err.value.line == 2


def test_missing_title_and_wrong_types_are_clear_errors() -> None:
    with pytest.raises(SiteConfigError, match="missing required key 'title'"):
        parse_config("")
    with pytest.raises(SiteConfigError, match="per_page must be int"):
        parse_config('title = "X"\n[pagination]\nper_page = "ten"\n')
    with pytest.raises(SiteConfigError, match="at least 32"):
        parse_config('title = "X"\n[isolate]\nmemory_mb = 8\n')
