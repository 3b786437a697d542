"""The benchmark's table: one row per step and mode, the modes side by side."""

from __future__ import annotations

import os
import platform
from typing import Any, Callable

import dagster as dg

from ..api_facts import AURORA_RATE_LIMIT


def machine_facts() -> dict[str, Any]:
    return {"nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "dagster": dg.__version__}


def clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def design_records_per_upsert(step: dict[str, Any]) -> str:
    """Design records sent per upsert to the designs table. The pipeline's steps also upsert line
    items to a second table (``detail.export_upserts`` counts the designs table's own); the naive
    script upserts to the designs table only."""
    upserts = step["detail"].get("export_upserts", step["upsert_requests"])
    return f"{step['records_sent'] / upserts:.1f}".rstrip("0").rstrip(".") if upserts else "-"


COLUMNS: list[tuple[str, str, Callable[[dict], str]]] = [
    ("wall s", "{:>8}", lambda s: f"{s['wall_s']:.2f}"),
    ("real h:m:s", "{:>10}", lambda s: clock(s["real_world_s"])),
    ("est h:m:s", "{:>9}", lambda s: clock(s["real_world_est_s"])),
    ("cpu s", "{:>7}", lambda s: f"{s['cpu_s']:.1f}"),
    ("Aurora", "{:>7}", lambda s: str(s["aurora_requests"])),
    ("429", "{:>4}", lambda s: str(s["aurora_429"])),
    ("QB", "{:>5}", lambda s: str(s["quickbase_requests"])),
    ("429", "{:>4}", lambda s: str(s["quickbase_429"])),
    ("upserts", "{:>7}", lambda s: str(s["upsert_requests"])),
    ("runs", "{:>4}", lambda s: str(s["detail"].get("runs", "-"))),
    ("dsg/ups", "{:>7}", design_records_per_upsert),
    ("bound s", "{:>8}", lambda s: f"{s['aurora_lower_bound_s']:.2f}"),
    ("x bound", "{:>7}", lambda s: "-" if s["ratio_to_lower_bound"] is None else f"{s['ratio_to_lower_bound']:.2f}"),
    ("RSS MB", "{:>7}", lambda s: f"{s['peak_rss_mb']:.0f}"),
]


def format_table(report: dict[str, Any]) -> str:
    """Rows grouped by step, one per mode, so the modes stand side by side."""
    modes = report["modes"]
    labels: dict[str, str] = {}  # step key -> label, in the order the modes ran them
    for result in modes.values():
        for step in result["steps"]:
            labels.setdefault(step["key"], step["label"])
    header = f"{'step':<46} {'mode':<11} " + " ".join(fmt.format(name) for name, fmt, _ in COLUMNS)
    lines = [header, "-" * len(header)]
    for key, label in labels.items():
        for name, result in modes.items():
            step = next((s for s in result["steps"] if s["key"] == key), None)
            if step:
                cells = " ".join(fmt.format(render(step)) for _, fmt, render in COLUMNS)
                flag = "" if step["ok"] else "  FAILED"
                lines.append(f"{label:<46} {name:<11} {cells}{flag}")
                label = ""
    config = report["config"]
    per_step = all(m.get("rss_per_step") for m in modes.values())
    lines += [
        "",
        (f"bound s = Aurora requests (429s excluded) / {AURORA_RATE_LIMIT.requests} per "
         f"{AURORA_RATE_LIMIT.scaled(config['time_scale']).window_s:g} s "
         f"(steps under {AURORA_RATE_LIMIT.requests} requests fit in the first window, so their ratio means little);"),
        (f"real = wall / time scale {config['time_scale']:g}: right for rate-limited waiting, too high for CPU time "
         "(which does not scale); est = bound / time scale + (wall - bound), taking the rest as unscaled overhead;"),
        ("upserts = Quickbase upsert requests to every table (designs and line items); dsg/ups = design records "
         "per upsert to the designs table;"),
        ("cpu s = process CPU, sandbox threads included; RSS = peak resident memory "
         f"({'of the step' if per_step else 'since the mode started'}), sandbox included."),
    ]
    for name, result in modes.items():
        for step in result.get("steps", []):
            lines += step_notes(name, step)
    lines += goal_lines(modes.get("incremental"))
    lines += fetch_goal_lines(modes)
    lines += tenant_goal_lines(modes.get("tenants"), config["time_scale"])
    for name, result in modes.items():
        if "error" in result:
            lines.append(f"{name}: {result['error']}")
        else:
            lines.append(f"{name}: {result['data']}; RSS after setup {result['rss_after_setup_mb']:.0f} MB, "
                         f"max {result['max_rss_mb']:.0f} MB")
    return "\n".join(lines)


def step_notes(mode: str, step: dict[str, Any]) -> list[str]:
    """Latency and Aurora requests against what the changed designs need, for the 1%-changed steps."""
    detail, lines = step["detail"], []
    where = f"{mode} / {step['label'].strip()}"
    if detail.get("latency_p50_s") is not None:
        delivered = (f" (all {detail['webhook_deliveries']} deliveries in the inbox after "
                     f"{detail['all_delivered_after_s']:.2f} s; plus up to the sensor interval, "
                     f"{detail['sensor_interval_s']} s, in production)" if "webhook_deliveries" in detail else
                     " (plus up to the sensor interval in production)")
        lines.append(f"{where}: change -> Quickbase record {detail['latency_p50_s']:.2f} s median, "
                     f"{detail['latency_max_s']:.2f} s max over {detail['records_current']} record(s){delivered}")
    if detail.get("aurora_needed"):
        lines.append(f"{where}: {step['aurora_requests']} Aurora requests for {detail['aurora_needed']} needed "
                     f"({detail['aurora_needed_staging']} staging the changed projects + "
                     f"{detail['aurora_needed_resolution']} resolving events): "
                     f"{step['aurora_requests'] / detail['aurora_needed']:.3f} x")
    return lines


def goal_lines(result: dict[str, Any] | None) -> list[str]:
    """Issue 9's goals for the webhook step, checked on this run's figures."""
    if not result or "steps" not in result:
        return []
    steps = {s["key"]: s for s in result["steps"]}
    hook, quiet = steps.get("rerun_1pct_webhooks"), steps.get("rerun_unchanged")
    if hook is None:
        return []
    needed = hook["detail"].get("aurora_needed") or 0
    ratio = hook["aurora_requests"] / needed if needed else None
    goals = [
        ("at most 2 upserts", hook["upsert_requests"] <= 2, str(hook["upsert_requests"])),
        ("at most 2 runs", hook["detail"].get("runs", 99) <= 2, str(hook["detail"].get("runs"))),
        ("Aurora requests within 5% of what the changed designs need", ratio is not None and ratio <= 1.05,
         "-" if ratio is None else f"{ratio:.3f} x"),
    ]
    if quiet is not None:
        goals.append(("no-change rerun: 0 Quickbase requests", quiet["quickbase_requests"] == 0,
                      str(quiet["quickbase_requests"])))
    return ["goals (webhook step): " + "; ".join(f"{name}: {got} {'met' if ok else 'NOT MET'}"
                                                  for name, ok, got in goals)]


def _met(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def _step(result: dict, key: str) -> dict:
    return next((s for s in result.get("steps", []) if s["key"] == key), {})


def fetch_goal_lines(modes: dict[str, Any]) -> list[str]:
    """Issue 10's goals for the full sync: Aurora requests against list pages + projects + 2 x designs
    (the pages counted at the per_page maximum), pipeline CPU beyond the naive script per project,
    and upserts per table (designs, line items)."""
    incremental, naive = modes.get("incremental", {}), modes.get("naive", {})
    full = _step(incremental, "full_sync")
    if not full or "data" not in incremental:
        return []
    data = incremental["data"]
    pages = -(-data["projects"] // 250)
    floor = pages + data["projects"] + 2 * data["designs"]
    excess = full["aurora_requests"] / floor - 1
    lines = [f"full sync: {full['aurora_requests']} Aurora requests; pages + projects + 2 x designs = {pages} + "
             f"{data['projects']} + 2 x {data['designs']} = {floor} ({100 * excess:+.1f}%; goal within 2%: "
             f"{_met(excess <= 0.02)})"]
    naive_full = _step(naive, "full_sync")
    if naive_full:
        beyond = (full["cpu_s"] - naive_full["cpu_s"]) / data["projects"] * 1000
        lines.append(f"full sync: pipeline CPU {full['cpu_s']:.1f} s vs naive {naive_full['cpu_s']:.1f} s: "
                     f"{beyond:.0f} ms per project beyond the naive script (goal at most 30 ms: {_met(beyond <= 30)})")
    detail = full.get("detail", {})
    if "line_item_requests" in detail:
        lines.append(f"full sync: Quickbase upserts {detail.get('export_upserts')} for the designs table "
                     f"({full['records_sent']} records), {detail['line_item_requests']} for the line items table "
                     f"({detail.get('line_items_sent')} items)")
    return lines


def tenant_goal_lines(result: dict[str, Any] | None, time_scale: float) -> list[str]:
    """Issue 13's goal for many tenants, measured (not estimated): the tenants at once within 1.1x
    of the slowest tenant's own per-key bound; beside it, the same against one tenant alone, and
    where each tenant's time went."""
    alone, together = _step(result or {}, "one_tenant"), _step(result or {}, "tenants_full_sync")
    if not alone or not together:
        return []
    ratio, detail = together["ratio_to_lower_bound"], together["detail"]
    lines = [f"tenants (time scale {time_scale:g}): {detail['tenants']} tenants at once {together['wall_s']:.1f} s, "
             f"{ratio}x the slowest tenant's bound {together['aurora_lower_bound_s']:.1f} s (goal at most 1.1x: "
             f"{_met(ratio is not None and ratio <= 1.1)}); one tenant alone {alone['wall_s']:.1f} s, "
             f"{alone['ratio_to_lower_bound']}x its bound; at once / alone {detail.get('x_one_alone')}x; "
             f"Aurora 429s {alone['aurora_429']} + {together['aurora_429']}; sandbox CPU "
             f"{alone['detail'].get('sandbox_cpu_s')} s + {detail.get('sandbox_cpu_s')} s"]
    for step in result["steps"]:
        where = step["detail"].get("timeline")
        if where:
            lines.append(f"  {step['key']}: {where['before_first_request_s']:.1f} s before its first Aurora request, "
                         f"{where['first_to_last_request_s']:.1f} s first to last, {where['after_last_request_s']:.1f} s "
                         f"after its last; CPU {step['cpu_s']:.1f} s")
    return lines
