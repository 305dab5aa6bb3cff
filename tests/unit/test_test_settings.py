"""tests/settings.py's Overrides name exactly Settings' fields, with the same types, so a
test's override is checked by mypy and a new setting cannot be missed."""

from __future__ import annotations

import dataclasses
from typing import get_type_hints

from gateway.settings import Settings
from tests.settings import Overrides, gateway_settings


def test_overrides_are_the_settings_fields_with_their_types() -> None:
    fields = get_type_hints(Settings)
    assert get_type_hints(Overrides) == {
        f.name: fields[f.name] for f in dataclasses.fields(Settings)
    }


def test_the_test_settings_watch_nothing_unless_asked() -> None:
    assert gateway_settings("reg") == Settings(registry="reg", watch=False)
    assert gateway_settings("reg", registry="other", watch=True, master_key="m") == Settings(
        registry="other", watch=True, master_key="m"
    )
