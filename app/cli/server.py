"""``lantern serve``, ``lantern worker`` and ``lantern users``: the web server, the
ingestion workers and the accounts."""

from __future__ import annotations

import getpass
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from app.cli.common import console, err_console, open_container
from app.container import Container
from app.db.identity import Role, User
from app.errors import LanternError
from app.services.actor import Actor
from app.settings import get_settings

users_app = typer.Typer(help="User accounts.", no_args_is_help=True)


def serve_container(c: Container | None, host: str | None, port: int | None) -> None:
    """Run the API and UI with uvicorn until interrupted (on ``c`` if given, else a new one)."""
    import uvicorn

    from app.main import build_app

    settings = c.settings if c else get_settings()
    settings.check_secrets()
    probe = c or Container(settings)
    try:
        probe.ingestion.check_serving()  # before listening: a clear message, no traceback
        probe.rate_limiter  # noqa: B018  (a bad limits storage address, said here)
    finally:
        if c is None:
            probe.close()
    host = host or settings.server.host
    port = port or settings.server.port
    app = build_app(settings, container=c)
    console.print(
        f"Lantern API on [bold]http://{host}:{port}[/] "
        f"(OpenAPI docs: http://{host}:{port}/api/v1/docs); Ctrl+C stops it"
    )
    proxies = settings.server.forwarded_allow_ips
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=proxies is not None,
        forwarded_allow_ips=proxies,
    )


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address (default LANTERN_SERVER__HOST).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default LANTERN_SERVER__PORT).")] = None,
) -> None:
    """Serve the REST API and the browser UI (migrations run at start-up; ingestion
    workers run inside)."""
    serve_container(None, host, port)


def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(help="Jobs run at once (default LANTERN_JOBS__CELERY__CONCURRENCY)."),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve this worker's Prometheus metrics at http://HOST:PORT/metrics "
            "(behind LANTERN_SERVER__METRICS_TOKEN where set); default: not served."
        ),
    ] = None,
    metrics_host: Annotated[
        str | None,
        typer.Option(help="Address of the metrics endpoint (default LANTERN_SERVER__HOST)."),
    ] = None,
) -> None:
    """Run an ingestion worker (LANTERN_JOBS__KIND=celery) until SIGTERM or Ctrl+C:
    it runs the jobs that the API processes queue."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with open_container() as c, _metrics_endpoint(c, metrics_host, metrics_port):
        where = c.settings.data_dir.resolve()
        c.ingestion.work(
            concurrency,
            stop,
            on_ready=lambda: console.print(
                f"Lantern worker ready for {where}; Ctrl+C stops it after the running jobs"
            ),
        )


@contextmanager
def _metrics_endpoint(c: Container, host: str | None, port: int | None) -> Iterator[None]:
    """The worker's /metrics while it runs, where a port is given."""
    if port is None:
        yield
        return
    from app.metrics_server import MetricsServer

    host = host or c.settings.server.host
    token = c.settings.server.metrics_token
    try:
        server = MetricsServer(
            c.metrics, host=host, port=port, token=token.get_secret_value() if token else None
        )
    except OSError as e:
        err_console.print(f"[red]cannot serve metrics on {host}:{port}: {e.strerror or e}[/]")
        raise typer.Exit(2) from e
    console.print(f"worker metrics on http://{host}:{server.port}/metrics")
    try:
        yield
    finally:
        server.close()


@users_app.command("create-admin")
def create_admin(
    email: Annotated[
        str | None, typer.Option(help="E-mail (default LANTERN_SERVER__ADMIN_EMAIL).")
    ] = None,
    name: Annotated[str, typer.Option(help="Display name.")] = "Admin",
    password_from_env: Annotated[
        bool,
        typer.Option(
            "--password-from-env",
            help="Take the password from LANTERN_SERVER__ADMIN_PASSWORD instead of asking.",
        ),
    ] = False,
) -> None:
    """Create the first admin (asks for a password)."""
    with open_container() as c:
        email = email or c.settings.server.admin_email
        if password_from_env:
            c.settings.check_secrets()
            password = c.settings.server.admin_password.get_secret_value()
        else:
            password = getpass.getpass("Password for the new admin: ")
            if getpass.getpass("Again: ") != password:
                err_console.print("[red]the passwords differ[/]")
                raise typer.Exit(1)
        user = c.identity.ensure_admin(Actor.cli(), email, password, name=name)
        if user is None:
            err_console.print(
                f"[yellow]{email} already exists; nothing changed "
                f"(`lantern users promote {email}` makes it an admin)[/]"
            )
            raise typer.Exit(1)
        console.print(f"admin {user.email} created")


@users_app.command("list")
def list_users() -> None:
    """Every user, with role and status."""
    from rich.table import Table

    with open_container() as c:
        table = Table()
        for col in ("email", "name", "role", "active", "last login"):
            table.add_column(col)
        for u in c.identity.list_users(Actor.cli()):
            table.add_row(
                u.email, u.name, u.role, "yes" if u.is_active else "no", str(u.last_login_at or "")
            )
        console.print(table)


@users_app.command("promote")
def promote(email: Annotated[str, typer.Argument(help="The user's e-mail.")]) -> None:
    """Make a user an admin (and active again): the way back in when no admin is left."""
    with open_container() as c:
        user = _user(c, email)
        if user.role == Role.ADMIN and user.is_active:
            console.print(f"{user.email} is already an active admin")
            return
        user = c.identity.update_user(Actor.cli(), user.id, role=Role.ADMIN, is_active=True)
        console.print(f"{user.email} is now an admin")


@users_app.command("reset-password")
def reset_password(email: Annotated[str, typer.Argument(help="The user's e-mail.")]) -> None:
    """Set a new password (asks for it); ends the user's browser sessions."""
    with open_container() as c:
        user = _user(c, email)
        password = getpass.getpass(f"New password for {user.email}: ")
        if getpass.getpass("Again: ") != password:
            err_console.print("[red]the passwords differ[/]")
            raise typer.Exit(1)
        try:
            c.identity.update_user(Actor.cli(), user.id, password=password)
        except LanternError as e:  # too short
            err_console.print(f"[red]{e}[/]")
            raise typer.Exit(1) from e
        console.print(f"password of {user.email} changed")


def _user(c: Container, email: str) -> User:
    try:
        return c.identity.user_by_email(Actor.cli(), email)
    except LanternError as e:
        err_console.print(f"[red]{e}[/]")
        raise typer.Exit(2) from e
