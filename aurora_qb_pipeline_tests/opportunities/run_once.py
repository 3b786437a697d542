"""One attempt at the opportunities, in a process of its own (the crash test kills it):
``python -m aurora_qb_pipeline_tests.opportunities.run_once <inbox url> <record id>...``, the
sandbox's variables in the environment."""

import sys

from aurora_qb_pipeline.defs.resources import build_resources
from aurora_qb_pipeline.opportunities.sync import read_opportunities
from aurora_qb_pipeline.settings import Credentials, Settings


def main(inbox_url: str, record_ids: list[str]) -> None:
    settings = Settings.from_env(inbox_url=inbox_url)
    resources = build_resources(settings, Credentials.from_env())
    aurora, quickbase, opportunities = (resources[k] for k in ("aurora", "quickbase", "opportunities"))
    sync = opportunities.sync(aurora.client, quickbase.client, None, print)
    found = read_opportunities(sync.opps, sync.fields, record_ids=record_ids)
    print(sync.run(found).outcomes, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
