"""Containers of one tenant's data, in the shapes the API serves."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Collection, Optional


@dataclass
class DesignBundle:
    """One design as the API serves it: list/retrieve item, summary, default proposal, and the
    plan its pricing is computed from (see :mod:`.pricing`)."""

    design: dict
    summary: dict
    proposal: Optional[dict]
    pricing_plan: Optional[dict] = None


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
    pricing_plans: dict[str, dict] = field(default_factory=dict)  # design id -> pricing plan
    site_surveys: dict[str, dict] = field(default_factory=dict)  # request id -> survey (see site_surveys.py)
    deleted: dict[str, dict] = field(default_factory=dict)  # id -> {"kind", "deleted_at"} of deleted records
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
        if bundle.pricing_plan is not None:
            self.pricing_plans[design_id] = bundle.pricing_plan
        self.project_design_ids[bundle.design["project_id"]].append(design_id)

    def remove_design(self, design_id: str, deleted_at: str) -> None:
        """Forget a design and everything that hangs on it (summary, proposal, pricing, agreements)."""
        design = self.designs.pop(design_id)
        for collection in (self.summaries, self.proposals, self.pricing_plans):
            collection.pop(design_id, None)
        self.project_design_ids[design["project_id"]].remove(design_id)
        for agreement_id in [a for a, agreement in self.agreements.items() if agreement["design_id"] == design_id]:
            del self.agreements[agreement_id]
        self._forget(design_id, "design", deleted_at)

    def remove_project(self, project_id: str, deleted_at: str) -> list[str]:
        """Forget a project with its designs, design requests and site surveys; returns the design ids."""
        design_ids = list(self.project_design_ids[project_id])
        for design_id in design_ids:
            self.remove_design(design_id, deleted_at)
        del self.projects[project_id], self.project_design_ids[project_id]
        for collection in (self.design_requests, self.site_surveys, self.agreements):
            for record_id in [r for r, record in collection.items() if record["project_id"] == project_id]:
                del collection[record_id]
        self._forget(project_id, "project", deleted_at)
        return design_ids

    def _forget(self, record_id: str, kind: str, deleted_at: str) -> None:
        self.deleted[record_id] = {"kind": kind, "deleted_at": deleted_at}
        for ids in self.quirks.values():
            if record_id in ids:
                ids.remove(record_id)

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

