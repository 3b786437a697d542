"""Makes single realistic records (projects, designs, proposals, design requests) for one tenant."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any, Collection, Optional, Sequence

from .catalogue import (
    APP_URL,
    DESIGN_LABELS,
    FIRST_NAMES,
    FOREIGN_PLACES,
    IMAGE_SOURCES,
    LAST_NAMES,
    MILESTONES,
    MODULE_CATALOGUE,
    MODULE_WEIGHTS,
    MODULES,
    PROJECT_STATUSES,
    QUOTED_NAMES,
    REJECTION_REASONS,
    ROOF_PITCHES,
    SHADING_SEASON,
    UNICODE_NAMES,
    US_PLACES,
    Place,
)
from .engineering import summarize
from .equipment import choose_equipment
from .formats import ascii_slug, format_timestamp, one_line_address, parse_timestamp, random_uuid
from .pricing import pricing_plan
from .records import DesignBundle, TenantData


def _at_most(moment: datetime, latest: Optional[datetime]) -> datetime:
    return moment if latest is None else min(moment, latest)


class TenantBuilder:
    """Makes realistic records for one tenant from one RNG (all randomness goes through it)."""

    def __init__(self, rng: random.Random, tenant: TenantData) -> None:
        self.rng = rng
        self.tenant = tenant

    def uuid(self) -> str:
        return random_uuid(self.rng)

    def _hex(self, length: int) -> str:
        return f"{self.rng.getrandbits(4 * length):0{length}x}"

    # projects
    def _place(self, quirks: Collection[str]) -> Place:
        for kind, places in FOREIGN_PLACES.items():
            if kind in quirks:
                return self.rng.choice(places)
        return self.rng.choice(US_PLACES)

    def _location(self, quirks: Collection[str]) -> dict:
        rng = self.rng
        place = self._place(quirks)
        number = str(rng.randint(1, 9999) if place.number_first else rng.randint(1, 200))
        street_name = rng.choice(place.streets)
        street = f"{number} {street_name}" if place.number_first else f"{street_name} {number}"
        postal = f"{place.postal}{rng.randint(0, 99):02d}" if place.country == "United States" else place.postal
        if "null_address_parts" in quirks:
            street, postal = rng.choice(((None, postal), (street, None), (None, None)))
        return {
            "property_address": one_line_address(street, place.city, place.region, postal, place),
            "latitude": round(place.latitude + rng.uniform(-0.05, 0.05), 8),
            "longitude": round(place.longitude + rng.uniform(-0.05, 0.05), 8),
            "property_address_components": {
                "street_address": street,
                "city": place.city,
                "region": place.region,
                "postal_code": postal,
                "country": place.country,
            },
        }

    def _customer(self, quirks: Collection[str]) -> tuple[str, str, str]:
        """(first name, last name, project name)."""
        rng = self.rng
        if "unicode_name" in quirks:
            return rng.choice(UNICODE_NAMES)
        if "quoted_name" in quirks:
            first, last = rng.choice(QUOTED_NAMES)
        else:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        if "whitespace_name" in quirks:
            return f"  {first} ", f"{last}  ", f" {first}   {last}  "
        return first, last, f"{last} Residence" if rng.random() < 0.15 else f"{first} {last}"

    def project(self, created: datetime, quirks: Collection[str] = ()) -> dict:
        rng = self.rng
        project_id = self.uuid()
        first, last, name = self._customer(quirks)
        location = self._location(quirks)
        email_name = ".".join(filter(None, (ascii_slug(first), ascii_slug(last))))
        email_name = email_name or f"customer{rng.randint(1, 99999)}"
        self.tenant.note(quirks, project_id)
        return {
            "id": project_id,
            "name": name,
            "external_provider_id": f"CRM-{rng.randrange(10**6):06d}" if rng.random() < 0.8 else None,
            "status": rng.choice(PROJECT_STATUSES),
            "project_type": "commercial" if rng.random() < 0.08 else "residential",
            "tags": rng.choice(([], [], ["referral"], ["battery"], ["referral", "battery"])),
            "customer_salutation": rng.choice((None, None, "Mr.", "Ms.", "Dr.")),
            "customer_first_name": first,
            "customer_last_name": last,
            "customer_email": f"{email_name}@example.com" if rng.random() < 0.9 else None,
            "customer_phone": (f"+1 {rng.randint(201, 989)}-555-{rng.randint(0, 9999):04d}"
                               if rng.random() < 0.85 else None),
            "mailing_address": location["property_address"] if rng.random() < 0.7 else None,
            "owner_id": rng.choice(self.tenant.user_ids),
            "team_id": None,
            "partner_id": None,
            "location": location,
            "created_at": format_timestamp(created, iso="iso_timestamp" in quirks),
            "created_from_lead_id": None,
            "order_id": None,
            "ahj_id": self.uuid() if rng.random() < 0.5 else None,
            "preferred_solar_modules": [],
        }

    # designs
    def design_name(self, index: int) -> str:
        return f"Design {index + 1}{self.rng.choice(DESIGN_LABELS)}"

    def _array(self, module_name: str, count: int, azimuth: float, face: int, ground: bool) -> dict:
        rng = self.rng
        rating = MODULES[module_name].rating_stc
        orientation = rng.choice(("portrait", "portrait", "landscape"))
        access = rng.randint(72, 99)
        return {
            "size": count * rating,
            "azimuth": round(azimuth % 360, 1),
            "pitch": 25.0 if ground else rng.choice(ROOF_PITCHES),
            "orientation": orientation,
            "face": face,
            "ground_mounted": ground,
            "module": {"name": module_name, "count": count, "rating_stc": rating, "orientation": orientation},
            "shading": {"solar_access": {
                "annual": access,
                "monthly": [max(0, min(100, access + delta)) for delta in SHADING_SEASON],
            }},
        }

    def _arrays(self, project: dict, multiple_models: bool) -> list[dict]:
        rng = self.rng
        commercial = project["project_type"] == "commercial"
        total = rng.randint(80, 240) if commercial else rng.randint(12, 40)
        facing = 0.0 if project["location"]["latitude"] < 0 else 180.0
        base = facing + rng.uniform(-60, 60)
        if multiple_models:
            models = rng.sample(MODULE_CATALOGUE, rng.randint(2, 3))
            azimuths = [base, base + 90, base - 90]
        else:
            model = rng.choices(MODULE_CATALOGUE, weights=MODULE_WEIGHTS)[0]
            models = [model] * (1 if rng.random() < 0.65 else 2)
            azimuths = [base, base + rng.choice((90, -90, 180))]
        cuts = sorted(rng.sample(range(1, total), len(models) - 1))
        counts = [b - a for a, b in zip([0, *cuts], [*cuts, total])]
        ground = not commercial and rng.random() < 0.04
        return [self._array(model, count, azimuth, face, ground)
                for face, (model, count, azimuth) in enumerate(zip(models, counts, azimuths), start=1)]

    def _milestone(self, created: datetime, as_string: bool, latest: Optional[datetime] = None) -> Any:
        rng = self.rng
        if as_string:
            return rng.choice(MILESTONES)
        if rng.random() < 0.5:
            return None
        return {
            "id": self.uuid(),
            "milestone": rng.choice(MILESTONES),
            "notes": rng.choice((None, "", "Customer signed at kitchen table.")),
            "recorded_at": format_timestamp(_at_most(created + timedelta(days=rng.randint(0, 30)), latest), iso=True),
        }

    def proposal(self, design_created: datetime, latest: Optional[datetime] = None) -> dict:
        """A default proposal made after the design; ``latest`` caps its timestamps (runtime
        records must not lie in the future)."""
        rng = self.rng
        created = design_created + timedelta(minutes=rng.randint(5, 600))
        proposal_id = self.uuid()  # drawn in this order so generated tenants stay byte-identical
        updated = created + timedelta(minutes=rng.randint(0, 14 * 24 * 60))
        if latest is not None:
            created, updated = min(created, latest), min(updated, latest)
        return {
            "id": proposal_id,
            "created_at": format_timestamp(created, iso=True),
            "updated_at": format_timestamp(updated, iso=True),
            "proposal_template_id": rng.choice(self.tenant.proposal_template_ids),
            "proposal_link": f"{APP_URL}/e-proposal/{self._hex(24)}",
        }

    def design(self, project: dict, created: datetime, index: int, quirks: Collection[str] = (),
               name: Optional[str] = None, latest: Optional[datetime] = None) -> DesignBundle:
        """A design of ``project`` created at ``created``; ``index`` is its position in the project;
        ``latest`` caps derived timestamps (proposal, milestone) for records made at run time."""
        rng = self.rng
        design_id = self.uuid()
        arrays = [] if "empty_arrays" in quirks else self._arrays(project, "multiple_arrays" in quirks)
        inverter = "string" if project["project_type"] == "commercial" or rng.random() < 0.35 else "micro"
        battery = rng.random() < 0.2
        design = {
            "id": design_id,
            "project_id": project["id"],
            "name": name if name is not None else self.design_name(index),
            "external_provider_id": project["external_provider_id"],
            "created_at": format_timestamp(created, iso="iso_timestamp" in quirks),
            "milestone": self._milestone(created, "milestone_string" in quirks, latest),
        }
        equipment = choose_equipment(design_id, inverter, battery, quirks)
        design, summary = summarize(design, project, arrays, equipment, simulated="no_energy_production" not in quirks)
        if "array_without_module" in quirks:
            del summary["arrays"][0]["module"]  # sizes and bill of materials still count it
        proposal = None if "no_default_proposal" in quirks else self.proposal(created, latest)
        plan = pricing_plan(design_id, project, summary["system_size_stc"], quirks)
        self.tenant.note(quirks, design_id)
        return DesignBundle(design, summary, proposal, plan)

    # design requests
    def design_request(self, project_id: str, status: str, submitted: datetime, *,
                       finished: Optional[datetime] = None, reviewed: Optional[datetime] = None,
                       design_id: Optional[str] = None, image_src: Optional[str] = None,
                       reason: Optional[str] = None) -> dict:
        """A design request whose timestamps match ``status``.

        ``finished`` is when the designer completed or rejected it, ``reviewed`` when it was accepted."""
        completed = status in ("designer_completed", "accepted")
        rejected = status == "designer_rejected"

        def stamp(moment: Optional[datetime], applies: bool) -> Optional[str]:
            return format_timestamp(moment) if applies and moment else None

        return {
            "id": self.uuid(),
            "project_id": project_id,
            "design_id": design_id if status == "accepted" else None,
            "status": status,
            "image_src": image_src or self.rng.choice(IMAGE_SOURCES),
            "submission_time": format_timestamp(submitted),
            "completed_at": stamp(finished, completed),
            "reviewed_at": stamp(reviewed, status == "accepted"),
            "designer_rejected_at": stamp(finished, rejected),
            "rejection_reason": (reason or self.rng.choice(REJECTION_REASONS)) if rejected else None,
        }

    def initial_design_requests(self, project: dict, designs: Sequence[dict]) -> list[dict]:
        """The history of a generated project: none (40%), or one or two requests; when the project
        has designs, the first request often was accepted and created its first design."""
        rng = self.rng
        if rng.random() < 0.4:
            return []
        project_created = parse_timestamp(project["created_at"])
        requests = []
        for position in range(1 if rng.random() < 0.8 else 2):
            if position == 0 and designs and rng.random() < 0.6:
                reviewed = parse_timestamp(designs[0]["created_at"])
                span = reviewed - project_created
                submitted = project_created + span * rng.uniform(0.0, 0.3)
                finished = submitted + (reviewed - submitted) * rng.uniform(0.2, 0.9)
                requests.append(self.design_request(project["id"], "accepted", submitted, finished=finished,
                                                    reviewed=reviewed, design_id=designs[0]["id"]))
                continue
            status = rng.choice(("submitted", "designer_completed", "designer_rejected"))
            submitted = project_created + timedelta(minutes=rng.randint(5, 3 * 24 * 60))
            finished = submitted + timedelta(minutes=rng.randint(60, 8 * 60))
            requests.append(self.design_request(project["id"], status, submitted, finished=finished))
        return requests

