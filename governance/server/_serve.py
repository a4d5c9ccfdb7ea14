"""``serve``: run the app on uvicorn until SIGINT/SIGTERM: stop accepting, finish in-flight requests,
run the shutdown (the lineage inbox imports what it holds, for up to 20 s; the rest waits on disk for the
next start), then return normally (exit 0)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from governance.catalog import Catalog
from governance.errors import ConfigError
from governance.server._config import LOOPBACK, ServerConfig

__all__ = ["serve"]


def serve(catalog: Catalog, config: ServerConfig, *, host: str = "127.0.0.1", port: int = 5000,
          say: Callable[[str], None] = print) -> None:
    """Serve ``catalog`` at ``http://host:port`` until a signal stops the server."""
    if not 0 < port < 65536:
        raise ConfigError(f"--port: expected 1 to 65535, got {port}")
    if config.open_access and host not in LOOPBACK:
        raise ConfigError(f"--host {host}: no tokens and no proxy_header are configured, so the server only "
                          "listens on 127.0.0.1; add [server] tokens (gov serve-token NAME) or a proxy_header")
    import uvicorn

    from governance.server._app import create_app

    app = create_app(catalog, config)
    inbox = app.state.server.inbox
    inbox.start()  # here, not at start-up, so a held or unusable inbox is a one-line ConfigError
    mode = ("open (local only: no tokens configured)" if config.open_access else
            ", ".join(filter(None, [f"{len(config.tokens)} token(s)" if config.tokens else "",
                                    f"identity header {config.proxy_header}" if config.proxy_header else ""])))
    shown = f"[{host}]" if ":" in host else host
    say(f"gov serve: {catalog.display_url} at http://{shown}:{port}/ (auth: {mode}); Ctrl+C or SIGTERM stops")
    class _Server(uvicorn.Server):
        """uvicorn's server, but a signal ends it like a normal return (uvicorn re-raises it, so the
        process would die of SIGTERM after a clean shutdown and report -15)."""

        received: list[int] = []  # noqa: RUF012 - set per instance below

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            self.received = []

            def on_signal(sig: int, frame: Any) -> None:
                self.received.append(sig)
                self.handle_exit(sig, frame)

            previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                    lifespan="on", server_header=False, timeout_graceful_shutdown=10))
    try:
        server.run()
    finally:
        inbox.close()
    if not server.started:
        raise ConfigError(f"--host/--port: could not listen on {shown}:{port} (in use, or not an address here)")
    names = ", ".join(signal.Signals(s).name for s in server.received) or "shutdown"
    say(f"gov serve: stopped cleanly ({names})")
