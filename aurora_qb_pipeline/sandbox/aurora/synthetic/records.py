"""Containers of one tenant's data, in the shapes the API serves."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Collection, Optional


@dataclass
class DesignBundle:
    """One design as the API serves it: list/retrieve item, summary and default proposal."""

    design: dict
    summary: dict
    proposal: Optional[dict]


@dataclass
class TenantData:
    """Everything one Aurora tenant holds, keyed by id, in API shape."""

    tenant_id: str
    token: str
    proposal_template_ids: list[str]
    user_ids: list[str]
    projects: dict[str, dict] = field(default_factory=dict)
    designs: dict[str, dict] = field(default_factory=dict)  # design id -> design (with project_id)
    summaries: dict[str, dict] = field(default_factory=dict)  # design id -> summary
    proposals: dict[str, dict] = field(default_factory=dict)  # design id -> default proposal
    design_requests: dict[str, dict] = field(default_factory=dict)
    agreements: dict[str, dict] = field(default_factory=dict)  # agreement id -> agreement
    project_design_ids: dict[str, list[str]] = field(default_factory=dict)  # in creation order
    quirks: dict[str, list[str]] = field(default_factory=dict)  # quirk kind -> project/design ids

    def add_project(self, project: dict) -> None:
        self.projects[project["id"]] = project
        self.project_design_ids[project["id"]] = []

    def add_design(self, bundle: DesignBundle) -> None:
        design_id = bundle.design["id"]
        self.designs[design_id] = bundle.design
        self.summaries[design_id] = bundle.summary
        if bundle.proposal is not None:
            self.proposals[design_id] = bundle.proposal
        self.project_design_ids[bundle.design["project_id"]].append(design_id)

    def add_design_request(self, request: dict) -> None:
        self.design_requests[request["id"]] = request

    def designs_of(self, project_id: str) -> list[dict]:
        return [self.designs[d] for d in self.project_design_ids[project_id]]

    def note(self, kinds: Collection[str], record_id: str) -> None:
        for kind in sorted(kinds):
            self.quirks.setdefault(kind, []).append(record_id)

    def to_json(self) -> str:
        """Canonical JSON of the whole tenant (what "byte-identical" is measured on)."""
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

