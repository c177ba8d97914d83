"""HTML pages shaped like stooq.com's, so that a client's parsing is tested on realistic markup.

The composition page keeps the parts a client relies on exactly as Stooq has them (the `fth1`
table, symbol links, the `&l=` pager) and surrounds them with the kind of unrelated markup and
tables a real page has, so that a parser that grabs "the first table" fails here as it would there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class MemberRow:
    """One constituent as the composition table shows it; values are already formatted."""

    symbol: str
    name: str
    last: str
    change: str
    volume: str


def _document(title: str, brand: str, body: str, head: str = "") -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n'
        f'<head>\n<meta charset="utf-8">\n<title>{escape(title)}</title>\n{head}</head>\n'
        "<body>\n"
        '<table id="hdr" width="100%"><tr>'
        f'<td><a href="/">{escape(brand)}</a></td>'
        '<td><form action="/q/" method="get"><input name="s" size="12"></form></td>'
        "</tr></table>\n"
        f"{body}"
        f'<div id="footer"><p>{escape(brand)}: not affiliated with stooq.com.</p></div>\n'
        "</body>\n</html>\n"
    )


def composition_page(
    *,
    brand: str,
    stooq_id: int,
    title: str,
    quote: str,
    rows: Sequence[MemberRow],
    page: int,
    pages: int,
) -> str:
    """The constituents page `/t/?i=<id>&l=<page>`: one page of members and, if needed, a pager."""
    body_rows = "".join(
        "<tr>"
        f'<td><a href="/q/?s={escape(row.symbol.lower())}">{escape(row.symbol)}</a></td>'
        f"<td>{escape(row.name)}</td><td>{row.last}</td><td>{row.change}</td><td>{row.volume}</td>"
        "</tr>\n"
        for row in rows
    )
    pager = ""
    if pages > 1:
        links = " ".join(f'<a href="/t/?i={stooq_id}&l={n}">{n}</a>' for n in range(1, pages + 1))
        pager = f'<div id="pager">Page {page} of {pages}: {links}</div>\n'
    body = (
        f"<h1>{escape(title)}: components</h1>\n"
        '<table id="quote"><tr><td>Index</td>'
        f"<td>{escape(quote)}</td></tr></table>\n"
        '<table id="fth1">\n'
        "<thead><tr><th>Symbol</th><th>Name</th><th>Last</th><th>Change</th><th>Volume</th></tr>"
        "</thead>\n"
        f"<tbody>\n{body_rows}</tbody>\n"
        "</table>\n"
        f"{pager}"
    )
    return _document(f"{title} - components - {brand}", brand, body)


def unknown_index_page(brand: str, stooq_id: str) -> str:
    """What Stooq answers for an id it does not know: an ordinary page without a member table."""
    body = f"<p>No index with id {escape(stooq_id)}.</p>\n"
    return _document(f"Components - {brand}", brand, body)


def api_key_required_page(brand: str) -> str:
    """Stooq's answer to a CSV download without a valid API key (HTTP 200, HTML, no CSV)."""
    body = (
        "<h1>API key required</h1>\n"
        "<p>An API key is required for CSV downloads. "
        '<a href="/q/d/?s=spy.us&get_apikey">Get your API key</a> '
        "and add <code>&amp;apikey=YOUR_KEY</code> to the download link.</p>\n"
    )
    return _document(f"API key required - {brand}", brand, body)


def api_key_page(brand: str, api_key: str | None) -> str:
    """The page `/q/d/?s=...&get_apikey`, which shows the key to add to download links."""
    if api_key is None:
        text = "<p>This server needs no API key for CSV downloads.</p>\n"
    else:
        text = (
            f'<p>Your API key: <code id="apikey">{escape(api_key)}</code></p>\n'
            f"<p>Add <code>&amp;apikey={escape(api_key)}</code> to CSV download links.</p>\n"
        )
    return _document(f"API key - {brand}", brand, f"<h1>API key</h1>\n{text}")


def challenge_page(token: str, difficulty: int = 4) -> str:
    """The proof-of-work page stooq.com sends to clients it takes for scripts.

    A browser runs the script, finds a nonce whose SHA-256 (with the token) starts with
    `difficulty` zero hex digits, posts it to `/__verify` and reloads; a plain HTTP client only
    ever sees this HTML where it expected CSV, which is what a client has to recognise.
    """
    script = f"""
<script>
(async () => {{
  const token = "{token}";
  const prefix = "0".repeat({difficulty});
  const encoder = new TextEncoder();
  for (let nonce = 0; ; nonce++) {{
    const digest = await crypto.subtle.digest("SHA-256", encoder.encode(token + ":" + nonce));
    const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
    if (hex.startsWith(prefix)) {{
      await fetch("/__verify", {{
        method: "POST",
        headers: {{"Content-Type": "application/json"}},
        body: JSON.stringify({{token: token, nonce: nonce}}),
      }});
      location.reload();
      return;
    }}
  }}
}})();
</script>
"""
    body = (
        "<h1>Checking your browser before accessing the site</h1>\n"
        "<p>This takes a few seconds and happens automatically.</p>\n"
        "<noscript><p>Please enable JavaScript to continue.</p></noscript>\n"
    )
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<title>Checking your browser...</title>{script}</head>\n<body>\n{body}</body>\n</html>\n"
    )
