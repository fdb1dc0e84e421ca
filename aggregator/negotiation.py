"""Content negotiation for `/metrics`: exposition format and compression.

OpenMetrics 1.0 is served when the Accept header asks for
`application/openmetrics-text` (Prometheus does so unless told otherwise) with a q
value at least that of text; everything else gets the text format 0.0.4. gzip is used
when Accept-Encoding allows it (Prometheus always sends `gzip`).
"""

from __future__ import annotations

from panopticon.render.exposition import Format


def _media_ranges(header: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        if not fields[0]:
            continue
        params: dict[str, str] = {}
        for field in fields[1:]:
            key, _, value = field.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 0.0
        out.append((fields[0].lower(), params, q))
    return out


def choose_format(accept: str | None) -> Format:
    if not accept:
        return Format.TEXT
    om_q = text_q = -1.0
    for media, params, q in _media_ranges(accept):
        if media == "application/openmetrics-text":
            version = params.get("version", "1.0.0")
            if version.startswith("1.0") or version == "0.0.1":
                om_q = max(om_q, q)
        elif media in ("text/plain", "text/*", "*/*"):
            text_q = max(text_q, q)
    return Format.OPENMETRICS if om_q > 0 and om_q >= text_q else Format.TEXT


def wants_gzip(accept_encoding: str | None) -> bool:
    if not accept_encoding:
        return False
    for coding in accept_encoding.split(","):
        name, _, params = coding.strip().partition(";")
        if name.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip()
            if q.startswith("q="):
                try:
                    return float(q[2:]) > 0
                except ValueError:
                    return False
            return True
    return False
