"""Dagster definitions, one folder per side (``aurora/``, ``quickbase/``), loaded by
``aurora_qb_pipeline.definitions`` with ``dg.load_from_defs_folder``. Module-level assets, checks
and jobs are picked up from here; sensors, the schedule and the resources are built from
``Settings`` by the factories in these modules."""
