"""The gateway's own parameter names (the unified vocabulary of docs/registry.md) that are no client
API's: the policy stage produces them, each wire renders them in its upstream's names, and
the converters between client shapes carry them as they are."""

from __future__ import annotations

EFFORT = "reasoning_effort"  # also chat's own name; Responses nests it as reasoning.effort
# Gemini's thinking settings: dropped for an upstream that takes an effort instead.
THINKING = ("thinking_level", "thinking_budget", "include_thoughts", "include_reasoning")
# What a converter between client shapes carries across untouched.
CARRIED = ("max_output_tokens", EFFORT, "thinking_level", "thinking_budget", "include_thoughts")
