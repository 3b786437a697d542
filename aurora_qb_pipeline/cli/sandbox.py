"""``aurora-qb sandbox``: both sandbox servers in the foreground, for ``dagster dev`` sessions."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..instance import batch_asset_events
from .common import add_sandbox_options, start, wait_for_interrupt


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """The pipeline's environment as a dotenv file (mode 600: it holds the sandbox's tokens).
    ``dagster dev`` loads ``.env`` from the folder it starts in; git ignores it."""
    path.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    path.chmod(0o600)


def cmd_sandbox(args: argparse.Namespace) -> int:
    sandbox = start(args, args.aurora_port, args.quickbase_port)
    if args.env_file:
        write_env_file(Path(args.env_file), batch_asset_events(sandbox.env()))
        print(f"Environment for the pipeline written to {args.env_file} (mode 600); "
              "`dagster dev -w workspace.yaml` in this folder loads it.")
    print("Serving; Ctrl-C to stop.")
    wait_for_interrupt()
    sandbox.stop()
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("sandbox", help="serve the Aurora and Quickbase sandboxes in the foreground",
                       description=__doc__)
    add_sandbox_options(p, projects=50, time_scale=1.0)
    p.add_argument("--aurora-port", type=int, default=8801, help="loopback port of the Aurora sandbox")
    p.add_argument("--quickbase-port", type=int, default=8802, help="loopback port of the Quickbase sandbox")
    p.add_argument("--env-file", default=".env",
                   help="where to write the pipeline's environment ('' for nowhere); dagster dev loads .env")
    p.set_defaults(func=cmd_sandbox)
