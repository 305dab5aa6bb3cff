"""`gateway serve | check | models | import-registry`: one clear line on any bad input, never a traceback."""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NoReturn

from gateway import capacity, cli_admin, multiprocess
from gateway.registry import Registry, RegistryError, default_registry_path, load_registry
from gateway.settings import SettingsError, from_env


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # `prog` is the whole command so far ("gateway keys create"): the hint names the
        # subcommand whose help has the flag, however deep it is.
        self.exit(2, f"gateway: error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gateway", description="An OpenAI-compatible LLM gateway.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--registry", help="registry folder (env GATEWAY_REGISTRY)")
    serve.add_argument("--host", help="listen address (env GATEWAY_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (env GATEWAY_PORT, default 8080)")
    serve.add_argument(
        "--workers", type=int, help="worker processes (env GATEWAY_WORKERS, default 1)"
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        help="client connections per worker (env GATEWAY_MAX_CONNECTIONS, default: "
        "what the open-file limit allows, docs/scale.md)",
    )
    serve.add_argument(
        "--log-level",
        default=os.environ.get("GATEWAY_LOG_LEVEL", "info"),
        choices=["critical", "error", "warning", "info", "debug"],
        help="log level (env GATEWAY_LOG_LEVEL, default info)",
    )

    check = commands.add_parser("check", help="validate a registry and exit 0 or 1")
    check.add_argument("path", nargs="?", help="registry folder (default: as serve)")

    models = commands.add_parser("models", help="list the registry's models")
    models.add_argument("path", nargs="?", help="registry folder (default: as serve)")

    imports = commands.add_parser(
        "import-registry", help="an llm-adapter Python registry as YAML on stdout"
    )
    imports.add_argument(
        "file", help="the llm-adapter registry, e.g. custom_registry.py (never executed)"
    )

    from gateway.verify import add_parser

    add_parser(commands)
    cli_admin.register(commands)  # teams, keys, spend
    return parser


def _fail(message: str) -> NoReturn:
    print(f"gateway: error: {message}", file=sys.stderr)
    raise SystemExit(1)


def _load(path: str | None) -> Registry:
    try:
        settings = from_env()
        folder = path or settings.registry or str(default_registry_path())
        return load_registry(folder, settings.custom_registry)
    except (RegistryError, SettingsError) as exc:
        _fail(str(exc))


def _price(value: Decimal | None) -> str:
    return "-" if value is None else format(value.normalize(), "f")


def _models(path: str | None) -> None:
    registry = _load(path)
    rows = [("KEY", "PROVIDER", "ENDPOINT", "MODEL", "IN/1M", "CACHED/1M", "OUT/1M")]
    for key, model in sorted(registry.models.items()):
        p = model.entry.pricing
        rows.append(
            (
                key,
                model.provider_name,
                model.endpoint,
                model.native_id,
                _price(p.input_per_mm if p else None),
                _price(p.cached_input_per_mm if p else None),
                _price(p.output_per_mm if p else None),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _serve(args: argparse.Namespace) -> None:
    # Flags become environment so every worker process builds the same settings.
    for flag, env in (
        ("registry", "GATEWAY_REGISTRY"),
        ("host", "GATEWAY_HOST"),
        ("port", "GATEWAY_PORT"),
        ("workers", "GATEWAY_WORKERS"),
        ("max_connections", "GATEWAY_MAX_CONNECTIONS"),
    ):
        value = getattr(args, flag)
        if value is not None:
            os.environ[env] = str(value)
    try:
        settings = from_env()
    except SettingsError as exc:
        _fail(str(exc))
    if settings.registry is None:
        os.environ["GATEWAY_REGISTRY"] = str(default_registry_path().resolve())
    elif not os.path.exists(settings.registry):
        _fail(f"{settings.registry}: no such registry folder")
    registry = _load(None)  # validate before any worker starts: one clear line, exit 1
    cli_admin.check_database(settings.database_url)  # likewise, and migrated once
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("gateway").info(
        "serving %d models from %s on http://%s:%d",
        len(registry),
        os.environ["GATEWAY_REGISTRY"],
        settings.host,
        settings.port,
    )
    # Before any worker starts (or anything imports prometheus-client): N workers share metrics.
    cleanup = multiprocess.prepare(settings.workers)
    # Every worker inherits the raised limit: room for as many held streams as it allows.
    descriptors = capacity.raise_descriptor_limit()
    capacity.log_capacity(descriptors, settings.workers)
    if settings.max_connections and settings.max_connections > capacity.stream_capacity(
        descriptors
    ):
        logging.getLogger("gateway").warning(
            "GATEWAY_MAX_CONNECTIONS=%d is more than the open-file limit leaves room for (%d): past "
            "that, calls are refused with 503 gateway_overloaded",
            settings.max_connections,
            capacity.stream_capacity(descriptors),
        )
    import uvicorn

    from gateway.server import PROTOCOL

    # uvicorn drains on SIGTERM, then restores this handler and re-raises the signal: a
    # handler that does nothing makes a drained stop exit 0, as process managers expect.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        uvicorn.run(
            "gateway.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=args.log_level,
            log_config=_logging_config(args.log_level),
            access_log=False,
            # In-flight calls finish first; at grace_s the gateway itself ends the streams left
            # with an error frame (gateway.drain), a second before uvicorn would cut them.
            timeout_graceful_shutdown=math.ceil(settings.grace_s) + 1,
            http=PROTOCOL,  # header size limit, receive timeouts, connection limit (gateway.server)
        )
    finally:
        cleanup()


def _logging_config(level: str) -> dict[str, Any]:
    """uvicorn's logging plus the gateway's own logger, applied in every worker process
    (workers are fresh processes: the basicConfig above reaches only this one)."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = {
        key: dict(value) if isinstance(value, dict) else value
        for key, value in LOGGING_CONFIG.items()
    }
    config["formatters"]["gateway"] = {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    config["handlers"]["gateway"] = {
        "class": "logging.StreamHandler",
        "formatter": "gateway",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["gateway"] = {
        "handlers": ["gateway"],
        "level": level.upper(),
        "propagate": False,
    }
    # httpx logs every request it sends at INFO ("HTTP Request: POST ..."): a line per
    # proxied call and 5% of a worker's CPU under load. Its warnings still show.
    config["loggers"]["httpx"] = {"level": "WARNING"}
    # The registry watcher logs each reload itself; watchfiles' "N changes detected" is noise.
    config["loggers"]["watchfiles"] = {"level": "WARNING"}
    return config


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        _serve(args)
    elif args.command in cli_admin.COMMANDS:
        cli_admin.run(args)
    elif args.command == "check":
        registry = _load(args.path)
        print(f"ok: {len(registry)} models, {len(registry.providers)} providers")
    elif args.command == "import-registry":
        from gateway.importer import run

        raise SystemExit(run(args.file))
    elif args.command == "verify":
        from gateway.verify import command

        try:
            settings = from_env()
        except SettingsError as exc:
            _fail(str(exc))
        folder = args.registry or settings.registry or str(default_registry_path())
        raise SystemExit(command(args, _load(folder), folder, settings))
    else:
        _models(args.path)


if __name__ == "__main__":
    main()
