"""Regenerate ``quickbase_spec_subset.json``: the operations the Quickbase emulator implements,
copied unmodified from Quickbase's published Swagger 2.0 spec (the developer portal serves it as
``https://developer.quickbase.com/quickbase.json``).

    python aurora_qb_pipeline_tests/sandbox/extract_qb_spec.py path/to/quickbase-swagger.json

The contract tests read only the subset, so they run on a clean clone.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

OPERATIONS = frozenset(
    {
        "upsert",
        "runQuery",
        "deleteRecords",
        "getFields",
        "getField",
        "createField",
        "updateField",
        "deleteFields",
        "getTable",
        "getAppTables",
        "createTable",
        "updateTable",
        "getRelationships",
        "createRelationship",
        "getTableReports",
        "getApp",
        "downloadFile",
        "deleteFile",
        "deactivateUserToken",
        "deleteUserToken",
    }
)
SUBSET = Path(__file__).with_name("quickbase_spec_subset.json")
HEADER_KEYS = ("swagger", "info", "host", "basePath", "schemes")


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec's header and, of its paths, only the implemented operations."""
    paths: dict[str, dict[str, Any]] = {}
    for path, item in spec["paths"].items():
        kept = {method: op for method, op in item.items() if op.get("operationId") in OPERATIONS}
        if kept:
            paths[path] = kept
    found = {op["operationId"] for item in paths.values() for op in item.values()}
    if found != OPERATIONS:
        raise SystemExit(f"operations missing from the source spec: {sorted(OPERATIONS - found)}")
    return {**{key: spec[key] for key in HEADER_KEYS}, "paths": paths}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="Quickbase's Swagger 2.0 JSON file")
    parser.add_argument("--output", type=Path, default=SUBSET)
    args = parser.parse_args()
    subset = extract(json.loads(args.source.read_text(encoding="utf-8")))
    args.output.write_text(json.dumps(subset, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(subset['paths'])} paths to {args.output}")


if __name__ == "__main__":
    main()
