"""``aurora-qb tenants``: many Aurora tenants (README "Many tenants").

``check`` validates the tenants file (every problem at once) and shows each tenant's names;
``workspace`` writes a Dagster workspace with one code location per tenant: ``python_module``
entries for ``dagster dev`` (one process per location), or ``grpc_server`` entries for code servers
started with ``AURORA_QB_TENANT=<name>`` each (deploy/).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml
from tabulate import tabulate

from ..settings import Settings, environment
from ..tenants import TenantNames, TenantsFile, TenantsFileError, load_tenants


def _tenants(args: argparse.Namespace) -> TenantsFile:
    path = args.file or Settings.from_env(environment(args.env_file)).tenants_file
    if path is None:
        raise TenantsFileError(Path("(none)"), ["no tenants file: give --file or set AURORA_QB_TENANTS_FILE"])
    return load_tenants(Path(path))


def workspace(tenants: TenantsFile, grpc_host: str | None = None, grpc_port: int = 4000) -> dict:
    """A workspace with one code location per tenant (gRPC servers on consecutive ports from ``grpc_port``)."""
    entries = []
    for i, tenant in enumerate(tenants.tenants):
        names = TenantNames(tenant.name)
        if grpc_host:
            entries.append({"grpc_server": {"host": grpc_host, "port": grpc_port + i, "location_name": names.location}})
        else:
            entries.append({"python_module": {"module_name": "aurora_qb_pipeline.tenant_locations",
                                              "attribute": tenant.name, "location_name": names.location,
                                              "working_directory": "."}})
    return {"load_from": entries}


def _check(args: argparse.Namespace) -> int:
    try:
        tenants = _tenants(args)
    except TenantsFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    rows = []
    for t in tenants.tenants:
        names = TenantNames(t.name)
        credential = "partner application" if t.partner else f"${t.api_token_env}"
        rows.append([t.name, credential, t.quickbase_table_id_env or "QB_TABLE_ID", names.location,
                     names.partitions, names.pool, names.file(Path("aurora_qb.duckdb")).name])
    print(tabulate(rows, headers=["tenant", "Aurora key", "table id from", "code location", "partitions",
                                  "pool", "DuckDB file"]))
    return 0


def _workspace(args: argparse.Namespace) -> int:
    try:
        tenants = _tenants(args)
    except TenantsFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    text = yaml.safe_dump(workspace(tenants, args.grpc_host, args.grpc_port), sort_keys=False)
    if args.output == "-":
        print(text, end="")
    else:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}: {len(tenants.tenants)} code location(s)")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("tenants", help="many Aurora tenants: check the tenants file, write a workspace",
                       description=__doc__.split("\n\n")[0])
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name, func, text in (("check", _check, "validate the tenants file and show each tenant's names"),
                             ("workspace", _workspace, "write a workspace with one code location per tenant")):
        q = verbs.add_parser(name, help=text, description=text)
        q.add_argument("--file", type=Path, default=None,
                       help="the tenants file (default: AURORA_QB_TENANTS_FILE)")
        q.add_argument("--env-file", type=Path, default=None,
                       help="a dotenv file read over the environment (e.g. the sandbox's .env)")
        if name == "workspace":
            q.add_argument("--output", default="workspace.tenants.yaml",
                           help="where to write it ('-': standard output; default workspace.tenants.yaml)")
            q.add_argument("--grpc-host", default=None,
                           help="gRPC code servers on this host, one per tenant (default: python_module entries)")
            q.add_argument("--grpc-port", type=int, default=4000,
                           help="port of the first tenant's code server; the next tenants count up (default 4000)")
        q.set_defaults(func=func)
