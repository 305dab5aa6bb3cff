"""Gemini model names: the API's resource name (`models/gemini-2.5-flash`) and the bare id
its compat surface, paths and telemetry use. The registry may hold either form."""

from __future__ import annotations

PREFIX = "models/"


def bare_model(model: str) -> str:
    return model.removeprefix(PREFIX)


def resource_model(model: str) -> str:
    return model if model.startswith(PREFIX) else PREFIX + model
