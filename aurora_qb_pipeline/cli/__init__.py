"""``aurora-qb``: serve the sandbox, run the demo or the benchmark, recover crashed runs, install the test
browser, serve the webhook receiver and manage Aurora's webhook subscriptions, read the integration log
and the status.

One module per command group: ``sandbox``, ``demo``, ``recover``, ``browser``, ``webhooks``, ``quickbase``, ``site_surveys``,
``log``, ``status``, ``tenants``; the benchmark's options live with it (``aurora_qb_pipeline.bench``). Every option has a
help text (``aurora-qb CMD --help``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Optional, Sequence

from .. import bench
from ..instance import batch_asset_events
from . import browser, demo, log, quickbase, recover, sandbox, site_surveys, status, tenants, webhooks


def build_parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """(the aurora-qb parser, its bench subparser)."""
    parser = argparse.ArgumentParser(prog="aurora-qb", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sandbox.add_parser(sub)
    demo.add_parser(sub)
    recover.add_parser(sub)
    browser.add_parser(sub)
    webhooks.add_parser(sub)
    quickbase.add_parser(sub)
    site_surveys.add_parser(sub)
    log.add_parser(sub)
    status.add_parser(sub)
    tenants.add_parser(sub)
    p = sub.add_parser("bench", help="benchmark the pipeline against the sandbox (see README)",
                       description=bench.DESCRIPTION)
    bench.add_arguments(p)
    return parser, p


def main(argv: Optional[Sequence[str]] = None) -> int:
    warnings.filterwarnings("ignore", message=".*is currently in (beta|preview).*")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, bench_parser = build_parser()
    args = parser.parse_args(argv)
    batch_asset_events()  # runs executed by this process and its children write asset events in batches
    if args.command == "bench":
        return bench.run(bench.check_args(bench_parser, args), argv[1:])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
