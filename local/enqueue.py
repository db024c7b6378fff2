"""Put a tracking message on a provider's queue of the running local service (`make run`).

    python -m local.enqueue wooxy 5d91537bd132fdf45916520a [more ids ...]
    python -m local.enqueue wwt --references extid19
    python -m local.enqueue openmarket 12004-0328K-1232U-18C21 --context '{"campaign": "spring"}'

The message is the one a sender puts on the queue in the deployed stack: {"ids": [...]} (WWT may use
{"references": [...]}), with an optional "context" object echoed into change events. It goes through the local
service's /_local/enqueue control (PORT, default 3000); then watch GET /tracked/<provider>/<id> change.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any


def build_message(ids: list[str], references: bool, context: str | None) -> dict[str, Any]:
    message: dict[str, Any] = {"references" if references else "ids": ids}
    if context:
        try:
            parsed = json.loads(context)
        except ValueError:
            raise SystemExit("--context must be a JSON object") from None
        if not isinstance(parsed, dict):
            raise SystemExit("--context must be a JSON object")
        message["context"] = parsed
    return message


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.enqueue", description="Enqueue ids for tracking in the local run.")
    parser.add_argument("provider", choices=["openmarket", "wooxy", "wwt"])
    parser.add_argument("ids", nargs="+", help="message ids (or WWT references with --references)")
    parser.add_argument("--references", action="store_true", help='WWT: send {"references": [...]}')
    parser.add_argument("--context", help="a JSON object echoed into change events")
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('PORT', '3000')}", help="the local service (default: PORT)")
    args = parser.parse_args(argv)

    message = build_message(args.ids, args.references, args.context)
    request = urllib.request.Request(  # noqa: S310 - the local service's URL (http://127.0.0.1 by default)
        f"{args.url.rstrip('/')}/_local/enqueue/{args.provider}",
        data=json.dumps(message).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the local service's URL
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        print(f"enqueue failed: HTTP {exc.code} {exc.read().decode(errors='replace')}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"enqueue failed: is `make run` running at {args.url}? ({exc})", file=sys.stderr)
        return 1
    print(
        f"enqueued {len(args.ids)} {'reference' if args.references else 'id'}(s) on {answer['queue_url']} (message {answer['message_id']})"
    )
    for key in args.ids:
        print(f"  curl -s {args.url.rstrip('/')}/tracked/{args.provider}/{key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
