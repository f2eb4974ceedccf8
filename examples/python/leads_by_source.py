#!/usr/bin/env python3
"""A read model outside the CRM: leads created and leads won per lead source per month.

It reads the CRM's event log over NATS only (`crm.log.read` with `"format": "json"`, see
docs/NATS_API.md), by position, from its own checkpoint:

- created: one per `LeadCreated`, under the lead's `source` and the month (UTC) of the event's
  `occurred_at`;
- won: one per `LeadWon`, under the source the lead was created with and the month (UTC) of the
  `LeadWon`'s `occurred_at`. (A `LeadWon` whose `LeadCreated` it never saw would count under
  `unknown`; reading the log from position 1 that cannot happen.)

The state file holds the counts, the lead -> source map that attributes wins, and the position
they reflect. It is replaced atomically (temp file, fsync, rename) after each page, so whenever
the process stops (SIGTERM, SIGINT, even SIGKILL) the file is a consistent pair of counts and
position, and a restart continues from the next position without counting anything twice.

Usage:
    PYTHONPATH=target/tools/python python3 examples/python/leads_by_source.py \
        --state leads.json --once --print
"""

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import tempfile
from datetime import datetime, timezone

import nats
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

STATE_FORMAT = 1
# The log API's own cap on one page (docs/NATS_API.md, "Limits").
PAGE_EVENTS_MAX = 1000
REQUEST_TIMEOUT_S = 5.0
RETRY_PAUSE_S = 1.0
# How long `--once` keeps retrying an unreachable or unavailable log before it gives up.
ONCE_RETRY_WINDOW_S = 30.0

log = logging.getLogger("leads_by_source")


def log_event(level, message, **fields):
    """Logs `message key=value ...`, so the fields can be grepped and parsed."""
    text = " ".join([message] + [f"{k}={v}" for k, v in fields.items()])
    log.log(level, text)


class ProjectionError(Exception):
    """Anything that stops the projection; the message says what and where."""


class LogReadRefused(ProjectionError):
    """`crm.log.read` answered with a refusal (docs/NATS_API.md, "crm.log.read")."""

    def __init__(self, code, message):
        super().__init__(f"crm.log.read refused: {code}: {message}")
        self.code = code


class BadEvent(ProjectionError):
    """An event of the reply does not have the shape the contract promises."""

    def __init__(self, position, reason):
        super().__init__(f"event at position {position}: {reason}")
        self.position = position


class StateFileError(ProjectionError):
    """The state file exists but cannot be read as this projection's state."""


def month_of(timestamp, position):
    """`YYYY-MM` (UTC) of an RFC 3339 time such as `2026-12-02T04:22:47.218165Z`."""
    if not isinstance(timestamp, str):
        raise BadEvent(position, f"occurred_at is {timestamp!r}, not a string")
    try:
        # fromisoformat takes `Z` only from Python 3.11 on; `+00:00` works everywhere.
        parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError as e:
        raise BadEvent(position, f"occurred_at {timestamp!r}: {e}") from None
    if parsed.tzinfo is None:
        raise BadEvent(position, f"occurred_at {timestamp!r} has no offset")
    return parsed.astimezone(timezone.utc).strftime("%Y-%m")


class Projection:
    """The fold: counts per source and month, plus what it needs to attribute wins."""

    def __init__(self, position=0, lead_sources=None, counts=None):
        self.position = position
        self.lead_sources = lead_sources if lead_sources is not None else {}
        # source -> month -> {"created": n, "won": n}
        self.counts = counts if counts is not None else {}

    @classmethod
    def load(cls, path):
        """The state in `path`, or an empty projection when there is no such file yet."""
        try:
            with open(path, "rb") as f:
                state = json.load(f)
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as e:
            raise StateFileError(f"cannot read the state file {path}: {e}") from None
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise StateFileError(f"{path} is not a format {STATE_FORMAT} state file")
        position = state.get("position")
        lead_sources = state.get("lead_sources")
        counts = state.get("counts")
        if (
            not isinstance(position, int)
            or position < 0
            or not isinstance(lead_sources, dict)
            or not isinstance(counts, dict)
        ):
            raise StateFileError(f"{path} lacks a valid position, lead_sources or counts")
        return cls(position, lead_sources, counts)

    def save(self, path):
        """Replaces `path` atomically: a reader (or a restart) sees the old or the new state."""
        state = {
            "format": STATE_FORMAT,
            "position": self.position,
            "lead_sources": self.lead_sources,
            "counts": self.counts,
        }
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".leads_by_source-", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(state, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        # The rename itself is durable only once the directory is synced.
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def apply(self, event):
        """Folds one event of a `crm.log.read` JSON reply; it must be the next position."""
        if not isinstance(event, dict):
            raise BadEvent(self.position + 1, "not a JSON object")
        position = event.get("position")
        if position != self.position + 1:
            raise BadEvent(
                position, f"expected position {self.position + 1} (the log has no gaps)"
            )
        body = event.get("event")
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise BadEvent(position, "no event body")
        data = body["data"]
        kind = body.get("type")
        if kind == "LeadCreated":
            lead_id, source = data.get("lead_id"), data.get("source")
            if not isinstance(lead_id, str) or not isinstance(source, str):
                raise BadEvent(position, "LeadCreated without lead_id or source")
            self.lead_sources[lead_id] = source
            self._count(source, month_of(event.get("occurred_at"), position), "created")
        elif kind == "LeadWon":
            lead_id = data.get("lead_id")
            if not isinstance(lead_id, str):
                raise BadEvent(position, "LeadWon without lead_id")
            source = self.lead_sources.get(lead_id, "unknown")
            self._count(source, month_of(event.get("occurred_at"), position), "won")
        # Every other event type only moves the position.
        self.position = position

    def _count(self, source, month, what):
        cell = self.counts.setdefault(source, {}).setdefault(month, {"created": 0, "won": 0})
        cell[what] += 1

    def table(self):
        """The result: `{"position": N, "sources": {source: {month: {created, won}}}}`."""
        return {"position": self.position, "sources": self.counts}


async def read_page(client, subject, start, page_size):
    """One `crm.log.read` page as `(head, events)`; raises on anything but a good reply."""
    request = json.dumps({"from": start, "max": page_size, "format": "json"}).encode()
    reply = await client.request(subject, request, timeout=REQUEST_TIMEOUT_S)
    try:
        body = json.loads(reply.data)
    except ValueError as e:
        raise ProjectionError(f"{subject} answered with non-JSON: {e}") from None
    if not isinstance(body, dict):
        raise ProjectionError(f"{subject} answered with {type(body).__name__}, not an object")
    if body.get("status") == "rejected":
        raise LogReadRefused(body.get("code"), body.get("message"))
    head, events = body.get("head"), body.get("events")
    if not isinstance(head, int) or not isinstance(events, list):
        raise ProjectionError(f"{subject} answered without head and events")
    return head, events


async def read_page_retrying(client, subject, start, args, stop):
    """`read_page`, retried through timeouts and `unavailable` (the service restarting).
    Returns None when a stop was asked for meanwhile."""
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + ONCE_RETRY_WINDOW_S
    attempt = 0
    while not stop.is_set():
        attempt += 1
        try:
            done, page = await unless_stopped(
                read_page(client, subject, start, args.page_size), stop
            )
            return page if done else None
        except LogReadRefused as e:
            if e.code != "unavailable":
                raise
            failure = str(e)
        except (NatsTimeoutError, NoRespondersError) as e:
            failure = f"{type(e).__name__}: {e}"
        if args.once and loop.time() >= give_up_at:
            raise ProjectionError(
                f"no page from {subject} after {attempt} attempts; last failure: {failure}"
            )
        log_event(logging.WARNING, "log read failed; retrying", attempt=attempt, error=failure)
        await sleep_unless_stopped(stop, RETRY_PAUSE_S)
    return None


async def sleep_unless_stopped(stop, seconds):
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        pass


async def unless_stopped(awaitable, stop):
    """`(True, result)` of `awaitable`, or `(False, None)` when a stop comes first: it is then
    cancelled, which is harmless here since this projection only reads from NATS."""
    task = asyncio.ensure_future(awaitable)
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        stopper.cancel()
        return True, task.result()
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):
        pass
    return False, None


async def connect(args, stop):
    """A NATS connection, or None when a stop comes first. In follow mode it keeps trying (and
    reconnecting) for good; `--once` gives up after a few attempts."""

    async def on_error(e):
        # nats-py's default logs a whole traceback per failed attempt.
        log_event(logging.WARNING, "nats error", error=f"{type(e).__name__}: {e}")

    async def on_disconnected():
        log_event(logging.WARNING, "nats disconnected")

    async def on_reconnected():
        log_event(logging.INFO, "nats reconnected")

    connected, client = await unless_stopped(
        nats.connect(
            servers=[args.nats_url],
            name="leads-by-source",
            # The shipped NATS permissions give each user its own reply inbox.
            inbox_prefix=args.inbox_prefix.encode(),
            connect_timeout=5,
            reconnect_time_wait=1,
            max_reconnect_attempts=10 if args.once else -1,
            error_cb=on_error,
            disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected,
        ),
        stop,
    )
    return client if connected else None


async def run(args, stop):
    projection = Projection.load(args.state)
    log_event(logging.INFO, "starting", state=args.state, position=projection.position)
    client = await connect(args, stop)
    if client is None:
        return projection
    subject = f"{args.subject_prefix}.log.read"
    caught_up = False
    try:
        while not stop.is_set():
            page = await read_page_retrying(
                client, subject, projection.position + 1, args, stop
            )
            if page is None:
                break
            head, events = page
            for event in events:
                projection.apply(event)
            if events:
                # Whole pages only: the file never holds counts without their position.
                projection.save(args.state)
                log_event(
                    logging.DEBUG, "page applied", events=len(events),
                    position=projection.position, head=head,
                )
            elif projection.position < head:
                raise ProjectionError(
                    f"{subject} returned no event from {projection.position + 1} below its "
                    f"head {head}"
                )
            if projection.position < head:
                caught_up = False
                continue
            if not caught_up:
                log_event(logging.INFO, "caught up", position=projection.position, head=head)
                caught_up = True
            if args.once:
                break
            await sleep_unless_stopped(stop, args.poll_ms / 1000)
    finally:
        await client.close()
    return projection


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Counts leads created and won per lead source per month from the CRM log."
    )
    parser.add_argument(
        "--nats-url",
        default=os.environ.get("NATS_URL") or "nats://127.0.0.1:4222",
        help="the NATS server (default: $NATS_URL, else nats://127.0.0.1:4222)",
    )
    parser.add_argument(
        "--inbox-prefix",
        default=os.environ.get("NATS_INBOX_PREFIX") or "_INBOX",
        help="the reply inbox prefix; with the shipped permissions _INBOX_<user>, e.g. "
        "_INBOX_analyst (default: $NATS_INBOX_PREFIX, else _INBOX)",
    )
    parser.add_argument(
        "--state", default="leads_by_source.json",
        help="the state file: counts and checkpoint (default: leads_by_source.json)",
    )
    parser.add_argument(
        "--once", action="store_true", help="catch up to the log's head, then exit"
    )
    parser.add_argument(
        "--print", action="store_true", dest="print_table",
        help="print the result table as JSON on stdout when done",
    )
    parser.add_argument(
        "--subject-prefix", default=os.environ.get("CRM_SUBJECT_PREFIX") or "crm",
        help="the CRM's subject prefix (default: $CRM_SUBJECT_PREFIX, else crm)",
    )
    parser.add_argument(
        "--page-size", type=int, default=PAGE_EVENTS_MAX,
        help=f"events asked for per page, 1 to {PAGE_EVENTS_MAX} (default {PAGE_EVENTS_MAX})",
    )
    parser.add_argument(
        "--poll-ms", type=int, default=200,
        help="how often to look for new events once caught up, in ms (default 200)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every page")
    args = parser.parse_args(argv)
    if not 1 <= args.page_size <= PAGE_EVENTS_MAX:
        parser.error(f"--page-size must be between 1 and {PAGE_EVENTS_MAX}")
    if args.poll_ms < 1:
        parser.error("--poll-ms must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    async def guarded():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            # A stop lands between pages: the state on disk is always whole.
            loop.add_signal_handler(signum, stop.set)
        return await run(args, stop)

    try:
        projection = asyncio.run(guarded())
    except ProjectionError as e:
        log_event(logging.ERROR, "stopped", error=e)
        return 1
    except (NatsError, OSError) as e:
        log_event(logging.ERROR, "stopped", error=f"{type(e).__name__}: {e}")
        return 1
    log_event(logging.INFO, "stopped", position=projection.position)
    if args.print_table:
        print(json.dumps(projection.table(), sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
