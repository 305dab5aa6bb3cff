"""Admission: a virtual key's rate limits and budget reservation before the upstream call,
and its settlement after (gateway.admission.stage)."""
