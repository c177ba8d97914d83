"""The files a user saves from stooq.com, made from what the project's server serves."""

import re
from pathlib import Path

import requests

from market_assets.sources import followed_indices
from stooq_server import StooqServer
from stooq_server.bulk import write_bulk_archive
from stooq_server.server import DataStore

ARCHIVES = {"XNYS": "d_us_txt.zip", "XHKG": "d_hk_txt.zip"}


def saved_csv_symbol(universe) -> str:
    """A DJI member kept out of the archive and saved as a CSV from `/q/d/l/` instead."""
    return universe.members("DJI")[2]


def save_like_a_user(folder: Path, synthetic_universe) -> Path:
    """Fill `folder` as a user does: the market archives, the index pages, one symbol's CSV."""
    served = DataStore(synthetic_universe.data_dir)
    on_its_own = saved_csv_symbol(synthetic_universe)
    for calendar, name in ARCHIVES.items():
        symbols = [s for s in synthetic_universe.symbols[calendar] if s != on_its_own]
        write_bulk_archive(folder / name, {symbol: served.history(symbol, None) for symbol in symbols})
    (folder / "pages").mkdir()
    with StooqServer(synthetic_universe.data_dir) as server:
        for index in followed_indices().values():
            url = f"{server.url}/t/?i={index.stooq_id}"
            first = requests.get(url, timeout=30).text
            (folder / "pages" / f"{index.name}.html").write_text(first)
            for page in sorted(set(re.findall(rf"/t/\?i={index.stooq_id}&l=(\d+)", first)) - {"1"}):
                text = requests.get(f"{url}&l={page}", timeout=30).text
                (folder / "pages" / f"{index.name.lower()}_{page}.html").write_text(text)
        download = requests.get(f"{server.url}/q/d/l/?s={on_its_own.lower()}&i=d", timeout=30)
        saved_as = download.headers["Content-Disposition"].split("filename=")[1]
        (folder / saved_as).write_bytes(download.content)
    return folder
