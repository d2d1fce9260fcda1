"""`vidsearch serve`: the search page and its JSON API on this machine, over one archive kept loaded.

Importing this package loads neither FastAPI nor uvicorn; create_app (in .app) does.
"""

from __future__ import annotations

import ipaddress

from ..errors import ConfigError

__all__ = ["check_bind", "serve"]


def check_bind(host: str, token: str | None) -> None:
    """Loopback needs nothing; any other address lets other machines in, so it needs a token."""
    if token is not None and not token.strip():
        raise ConfigError("the token is empty")
    if token is None and not _loopback(host):
        raise ConfigError(
            f"serving on {host} lets other machines search this archive: give --token TOKEN "
            "(or set VIDSEARCH_TOKEN), or serve on 127.0.0.1"
        )


def serve(archive, host: str = "127.0.0.1", port: int = 8765, token: str | None = None, on_ready=None) -> None:
    """Load the models and indexes once, then answer until interrupted; `on_ready(url)` runs before serving."""
    import uvicorn

    from .app import create_app

    check_bind(host, token)
    app = create_app(archive, token=token)
    archive.embedder()
    archive.indexes()
    if on_ready is not None:
        shown = f"[{host}]" if ":" in host else host
        on_ready(f"http://{shown}:{port}/" + (f"?token={token}" if token else ""))
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
