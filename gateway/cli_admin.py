"""`gateway teams | keys | spend`: administration straight on the database named by
GATEWAY_DATABASE_URL (no running gateway needed; running ones see changes within 2 s).

Every failure is one line on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from gateway.counters.limits import Limits
from gateway.keys.secret import display_prefix, hash_secret, new_secret
from gateway.store import DEFAULT_URL, Key, StoreError, Team
from gateway.store.plain import GROUPS
from gateway.store.records import parse_time

# The SQL modules (gateway.store.admin, .ledger, .core) are imported where a command
# uses them: `gateway serve` without virtual keys never loads SQLAlchemy.
if TYPE_CHECKING:
    from gateway.store import Store

COMMANDS = ("teams", "keys", "spend")


def register(commands: Any) -> None:
    """Add the admin subcommands to the main parser's subparsers."""
    teams = commands.add_parser(
        "teams", help="create, list, show, update, delete teams"
    ).add_subparsers(dest="action", required=True, parser_class=commands._parser_class)
    keys = commands.add_parser(
        "keys", help="create, list, show, update, revoke virtual keys"
    ).add_subparsers(dest="action", required=True, parser_class=commands._parser_class)

    create = teams.add_parser("create", help="a new team")
    create.add_argument("name")
    _team_fields(create)
    _json_flag(create)
    _json_flag(teams.add_parser("list", help="every team"))
    show = teams.add_parser("show", help="one team (id or name)")
    show.add_argument("team")
    _json_flag(show)
    update = teams.add_parser("update", help="change a team's fields")
    update.add_argument("team")
    update.add_argument("--name", help="a new name")
    _team_fields(update, clearing=True)
    _json_flag(update)
    delete = teams.add_parser("delete", help="delete a team without live keys")
    delete.add_argument("team")
    _json_flag(delete)

    create = keys.add_parser("create", help="a new key; its secret is printed once")
    create.add_argument(
        "--name", required=True, help="a display name, unique (also the metric label)"
    )
    create.add_argument("--team", help="the team it belongs to (id or name)")
    _key_fields(create)
    _json_flag(create)
    listing = keys.add_parser("list", help="every key (secrets are never shown again)")
    listing.add_argument("--team", help="only this team's keys")
    _json_flag(listing)
    show = keys.add_parser("show", help="one key (id or name)")
    show.add_argument("key")
    _json_flag(show)
    update = keys.add_parser("update", help="change a key's fields")
    update.add_argument("key")
    update.add_argument("--name", help="a new name")
    update.add_argument("--team", help="move it to this team")
    update.add_argument("--no-team", action="store_true", help="take it out of its team")
    _key_fields(update, clearing=True)
    _json_flag(update)
    revoke = keys.add_parser("revoke", help="revoke a key for good")
    revoke.add_argument("key")
    _json_flag(revoke)

    report = commands.add_parser("spend", help="spend from the ledger, summed")
    report.add_argument(
        "--by",
        action="append",
        choices=GROUPS,
        default=[],
        help="group by this field; repeat for several (e.g. --by team --by day)",
    )
    report.add_argument("--since", help="from this date or time (UTC, inclusive)")
    report.add_argument("--until", help="up to this date (inclusive) or time (exclusive), UTC")
    report.add_argument("--format", choices=("table", "csv", "json"), default="table")


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def _team_fields(parser: argparse.ArgumentParser, clearing: bool = False) -> None:
    parser.add_argument(
        "--models", help="allowed models: registry keys, aliases or globs, comma-separated"
    )
    if clearing:
        parser.add_argument(
            "--all-models", action="store_true", help="remove the model list (every model)"
        )
    parser.add_argument(
        "--metadata",
        action="append",
        metavar="KEY=VALUE",
        default=None,
        help="metadata (e.g. cost_centre=CC-12); repeat for several"
        + ("; replaces all of it" if clearing else ""),
    )
    _limit_fields(parser, clearing)


def _limit_fields(parser: argparse.ArgumentParser, clearing: bool) -> None:
    parser.add_argument(
        "--budget",
        action="append",
        metavar="AMOUNT/PERIOD",
        default=None,
        help="a budget in USD per total|daily|weekly|monthly (calendar, UTC), e.g. 10/daily; "
        "repeat for several; add /allow-unpriced to let unpriced models through at $0"
        + ("; replaces all budgets" if clearing else ""),
    )
    if clearing:
        parser.add_argument("--no-budgets", action="store_true", help="remove every budget")
    hint = " (none: no limit)" if clearing else ""
    parser.add_argument("--rpm", type=_count, help="requests per minute" + hint)
    parser.add_argument("--tpm", type=_count, help="tokens (input + output) per minute" + hint)
    parser.add_argument("--max-parallel", type=_count, help="requests in flight at once" + hint)


def _count(text: str) -> int | str:
    if text.strip().lower() in ("none", "off"):
        return "none"
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of at least 1 (or none)")
    return int(text)


def _limits(args: argparse.Namespace) -> dict[str, Any]:
    """The limit flags given, as the store's fields (None clears one)."""
    changes: dict[str, Any] = {}
    if getattr(args, "no_budgets", False):
        changes["budgets"] = []
    elif args.budget is not None:
        changes["budgets"] = args.budget
    for name in ("rpm", "tpm", "max_parallel"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = None if value == "none" else value
    return changes


def _created(args: argparse.Namespace, what: str) -> dict[str, Any]:
    """The create flags teams and keys share, as the store's arguments."""
    from gateway.store import admin

    return {
        "models": _models(args.models),
        "metadata": _metadata(args.metadata),
        "limits": admin.parse_limits(_limits(args), what),
    }


def _changed(args: argparse.Namespace) -> dict[str, Any]:
    """The update flags teams and keys share, as the store's arguments: only those given."""
    changes: dict[str, Any] = {}
    if args.name is not None:
        changes["name"] = args.name
    if args.all_models:
        changes["models"] = None
    elif args.models is not None:
        changes["models"] = _models(args.models)
    if args.metadata is not None:
        changes["metadata"] = _metadata(args.metadata)
    return changes


def _key_fields(parser: argparse.ArgumentParser, clearing: bool = False) -> None:
    _team_fields(parser, clearing)
    parser.add_argument(
        "--expires", help="expiry, ISO-8601 (e.g. 2026-12-31 or 2026-12-31T18:00:00Z)"
    )
    if clearing:
        parser.add_argument("--no-expiry", action="store_true", help="remove the expiry")
    parser.add_argument(
        "--tags", help="tags, comma-separated" + ("; replaces them" if clearing else "")
    )


def _fail(message: str) -> NoReturn:
    print(f"gateway: error: {message}", file=sys.stderr)
    raise SystemExit(1)


def _metadata(pairs: list[str] | None) -> dict[str, str] | None:
    if pairs is None:
        return None
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            _fail(f"--metadata {pair!r}: give KEY=VALUE")
        out[name.strip()] = value
    return out


def _models(text: str | None) -> list[str] | None:
    return (
        None if text is None else [part.strip() for part in text.split(",")] if text.strip() else []
    )


def _print(value: Any, as_json: bool, lines: Callable[[], list[str]]) -> None:
    if as_json:
        print(json.dumps(value, indent=2))
    else:
        print("\n".join(lines()))


def _table(rows: Sequence[Sequence[Any]]) -> list[str]:
    cells = [["-" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]


def _globs(models: tuple[str, ...] | None) -> str:
    return "(all)" if models is None else ",".join(models) or "(none)"


def _limit_lines(limits: Limits) -> list[str]:
    if limits.empty:
        return ["  limits:   -"]
    parts = [
        *(b.spec() for b in limits.budgets),
        *(
            f"{name}={value}"
            for name, value in (
                ("rpm", limits.rpm),
                ("tpm", limits.tpm),
                ("max_parallel", limits.max_parallel),
            )
            if value is not None
        ),
    ]
    return [f"  limits:   {' '.join(parts)}"]


def _team_lines(team: Team) -> list[str]:
    meta = ", ".join(f"{k}={v}" for k, v in team.metadata.items()) or "-"
    return [
        f"team {team.name} ({team.id})",
        f"  models:   {_globs(team.models)}",
        f"  metadata: {meta}",
        *_limit_lines(team.limits),
    ]


def _key_lines(key: Key) -> list[str]:
    meta = ", ".join(f"{k}={v}" for k, v in key.metadata.items()) or "-"
    public = key.public()
    state = "revoked" if key.revoked else "active"
    return [
        f"key {key.name} ({key.id}) {state}",
        f"  prefix:   {key.prefix}...",
        f"  team:     {key.team_name or '-'}",
        f"  models:   {_globs(key.models)}",
        f"  expires:  {public['expires_at'] or 'never'}",
        f"  tags:     {','.join(key.tags) or '-'}",
        f"  metadata: {meta}",
        *_limit_lines(key.limits),
    ]


def _teams(store: Store, args: argparse.Namespace) -> None:
    from gateway.store import admin

    if args.action == "list":
        teams = admin.list_teams(store)
        _print(
            [t.public() for t in teams],
            args.json,
            lambda: _table(
                [("NAME", "ID", "MODELS"), *((t.name, t.id, _globs(t.models)) for t in teams)]
            ),
        )
        return
    if args.action == "create":
        team = admin.create_team(store, args.name, **_created(args, "team"))
    elif args.action == "show":
        team = admin.get_team(store, args.team)
    elif args.action == "update":
        team = admin.update_team(store, args.team, limits=_limits(args), **_changed(args))
    else:
        team = admin.delete_team(store, args.team)
        _print(team.public(), args.json, lambda: [f"deleted team {team.name} ({team.id})"])
        return
    _print(team.public(), args.json, lambda: _team_lines(team))


def _keys(store: Store, args: argparse.Namespace) -> None:
    from gateway.store import admin

    if args.action == "list":
        keys = admin.list_keys(store, args.team)
        _print(
            [k.public() for k in keys],
            args.json,
            lambda: _table(
                [
                    ("NAME", "ID", "PREFIX", "TEAM", "MODELS", "EXPIRES", "STATE"),
                    *(
                        (
                            k.name,
                            k.id,
                            k.prefix + "...",
                            k.team_name,
                            _globs(k.models),
                            k.public()["expires_at"],
                            "revoked" if k.revoked else "active",
                        )
                        for k in keys
                    ),
                ]
            ),
        )
        return
    if args.action == "create":
        secret = new_secret()
        key = admin.create_key(
            store,
            args.name,
            secret_hash=hash_secret(secret),
            prefix=display_prefix(secret),
            team=args.team,
            expires_at=_time(args.expires, "--expires"),
            tags=args.tags,
            **_created(args, "key"),
        )
        _print(
            {**key.public(), "key": secret},
            args.json,
            lambda: [
                *_key_lines(key),
                f"  secret:   {secret}",
                "Store the secret now: it is not shown again (only its hash is kept).",
            ],
        )
        return
    if args.action == "show":
        key = admin.get_key(store, args.key)
    elif args.action == "update":
        changes = _changed(args)
        if args.no_team:
            changes["team"] = None
        elif args.team is not None:
            changes["team"] = args.team
        if args.no_expiry:
            changes["expires_at"] = None
        elif args.expires is not None:
            changes["expires_at"] = _time(args.expires, "--expires")
        if args.tags is not None:
            changes["tags"] = args.tags
        key = admin.update_key(store, args.key, limits=_limits(args), **changes)
    else:
        key = admin.revoke_key(store, args.key)
    _print(key.public(), args.json, lambda: _key_lines(key))


def _time(text: str | None, flag: str) -> datetime | None:
    return None if text is None else parse_time(text, flag)


def _spend(store: Store, args: argparse.Namespace) -> None:
    from gateway.store.ledger import spend, time_range

    since, until = time_range(args.since, args.until)
    rows = spend(store, args.by, since, until)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return
    fields = [
        *dict.fromkeys(args.by),
        "requests",
        "input_tokens",
        "cached_input_tokens",
        "output_tokens",
        "reasoning_tokens",
        "cost_usd",
    ]
    if args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(fields)
        for row in rows:
            writer.writerow(["" if row[f] is None else row[f] for f in fields])
        return
    if not rows:
        print("no calls in the ledger for this range")
        return
    print(
        "\n".join(
            _table([[f.upper() for f in fields], *([row[f] for f in fields] for row in rows)])
        )
    )


def check_database(url: str | None) -> None:
    """Before `serve` starts workers: the database opens and is migrated, or exit 1 with
    one line. The default file not existing yet is fine (no keys: nothing to open)."""
    if url is None:
        return
    from gateway.keys.runtime import Governance

    try:
        governance = Governance.open(url)
    except StoreError as exc:
        _fail(str(exc))
    if governance.store is not None:
        governance.store.close()


def run(args: argparse.Namespace) -> None:
    from gateway.store import Store

    url = os.environ.get("GATEWAY_DATABASE_URL") or DEFAULT_URL
    try:
        store = Store.open(url)
    except StoreError as exc:
        _fail(str(exc))
    try:
        {"teams": _teams, "keys": _keys, "spend": _spend}[args.command](store, args)
    except StoreError as exc:
        _fail(str(exc))
    finally:
        store.close()
