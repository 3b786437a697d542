"""Quickbase opportunities -> Aurora projects and design requests, results written back (issue 14).

Plain Python, no Dagster: ``mapping`` (which Quickbase field is which, checked against both
tables), ``store`` (the intent recorded before every POST, button clicks), ``sync`` (the
per-opportunity logic and write-back), ``buttons`` (signed button URLs and the receiver route),
``presale`` (stages and files from agreement and project status events). The Dagster side is in
``defs/opportunities/``.
"""
