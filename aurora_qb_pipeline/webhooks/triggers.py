"""Trigger rules: which Aurora events (and which of their statuses) sync a project.

Read from a small YAML file (``config/webhook_triggers.yaml`` by default,
``AURORA_QB_WEBHOOK_TRIGGERS`` to use another), each rule shape-checked with pydantic and the
whole file checked against what Aurora documents; every problem is reported at once, as the
mapping file's are.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from ..api_facts import (
    AURORA_AGREEMENT_STATUSES,
    AURORA_DESIGN_REQUEST_STATUSES,
    AURORA_SIMULATION_STATUSES,
    AURORA_WEBHOOK_LEGACY_NAMES,
)
from .events import KNOWN_EVENTS, canonical_event

NEVER_SYNC = "designer_rejected"
"""A rejected design request made no model: it never syncs, whatever a rule says."""

# events whose statuses Aurora documents: a rule naming another status is a typo
DOCUMENTED_STATUSES = {
    "performance_simulation_job_completed": AURORA_SIMULATION_STATUSES,
    "design_request_completed": AURORA_DESIGN_REQUEST_STATUSES,
    "agreement_status_changed": AURORA_AGREEMENT_STATUSES,
}


def normalize_status(value: Optional[str]) -> str:
    """Statuses compare without case, with '-' equal to '_' and runs of blanks as one."""
    return " ".join((value or "").replace("-", "_").split()).casefold()


class TriggersError(ValueError):
    """The trigger file is unusable; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("webhook trigger rules are not valid:\n  - " + "\n  - ".join(problems))


class TriggerRule(BaseModel):
    """One event's rule: enabled, and the statuses that sync ("any": all of them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    statuses: Union[Literal["any"], list[str]] = []

    def matches(self, status: Optional[str]) -> bool:
        if not self.enabled:
            return False
        if self.statuses == "any":
            return True
        return normalize_status(status) in {normalize_status(s) for s in self.statuses}


class TriggerRules(BaseModel):
    """Rules by canonical event name; an event without a rule never syncs."""

    model_config = ConfigDict(frozen=True)

    triggers: dict[str, TriggerRule]

    def rule(self, event: str) -> Optional[TriggerRule]:
        return self.triggers.get(canonical_event(event))

    def syncs(self, event: str, status: Optional[str]) -> bool:
        """Whether ``event`` with ``status`` syncs its project."""
        if event.startswith("design_request") and normalize_status(status) == NEVER_SYNC:
            return False
        rule = self.rule(event)
        return rule is not None and rule.matches(status)

    def enabled_events(self) -> list[str]:
        return [name for name, rule in self.triggers.items() if rule.enabled]


def _check_rule(event: str, rule: TriggerRule) -> list[str]:
    if not rule.enabled:
        return []
    problems = []
    if rule.statuses != "any" and not rule.statuses:
        problems.append(f"triggers.{event}: list at least one status (or 'any'), or set enabled: false")
    listed = [] if rule.statuses == "any" else [normalize_status(s) for s in rule.statuses]
    if event.startswith("design_request") and (NEVER_SYNC in listed or rule.statuses == "any"):
        problems.append(f"triggers.{event}: design requests in {NEVER_SYNC} never sync; list the statuses that do "
                        f"(designer_completed, accepted), or set enabled: false")
    documented = DOCUMENTED_STATUSES.get("design_request_completed" if event.startswith("design_request") else event)
    if documented:
        known = {normalize_status(s) for s in documented}
        unknown = [s for s in listed if s not in known]
        if unknown:
            problems.append(f"triggers.{event}: unknown status(es) {', '.join(unknown)} "
                            f"(Aurora documents {', '.join(documented)})")
    return problems


def parse_trigger_rules(raw: object, where: str = "trigger rules") -> TriggerRules:
    """Rules from the parsed YAML; :class:`TriggersError` lists every problem."""
    if not isinstance(raw, dict) or not isinstance(raw.get("triggers"), dict) or not raw["triggers"]:
        raise TriggersError([f"{where}: expected a mapping with a non-empty 'triggers' mapping of event -> rule"])
    problems = [f"{where}: unknown top-level key {key!r}" for key in raw if key != "triggers"]
    rules: dict[str, TriggerRule] = {}
    for name, body in raw["triggers"].items():
        event = canonical_event(str(name))
        if event not in KNOWN_EVENTS:
            problems.append(f"triggers.{name}: unknown event (known: {', '.join(KNOWN_EVENTS)}; "
                            f"legacy names: {', '.join(AURORA_WEBHOOK_LEGACY_NAMES)})")
            continue
        if event in rules:
            problems.append(f"triggers.{name}: {event} has a rule already (legacy and current names are one event)")
            continue
        try:
            rule = TriggerRule.model_validate(body if body is not None else {})
        except ValidationError as exc:
            for error in exc.errors():
                path = ".".join(str(p) for p in error["loc"])
                problems.append(f"triggers.{name}{'.' + path if path else ''}: {error['msg']}")
            continue
        problems += _check_rule(event, rule)
        rules[event] = rule
    if problems:
        raise TriggersError(problems)
    return TriggerRules(triggers=rules)


def default_triggers_path() -> Path:
    return Path(str(resources.files("aurora_qb_pipeline") / "config" / "webhook_triggers.yaml"))


def load_trigger_rules(path: Optional[Union[str, Path]] = None) -> TriggerRules:
    """Read and check the trigger file (the packaged one when ``path`` is None)."""
    path = Path(path) if path else default_triggers_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TriggersError([f"cannot read {path}: {exc}"]) from exc
    return parse_trigger_rules(raw, str(path))
