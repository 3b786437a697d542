"""Quickbase as the site-survey app of Aurora's site-survey guide (plain Python, no Dagster).

``tables`` (the Quickbase tables from their YAML spec), ``intake`` (a request becomes a survey
record), ``upload`` (a completed survey goes to Aurora; 422s written back), ``file_links`` (signed
links Aurora downloads images from), ``receiver_routes`` (the receiver serves those links),
``subscribe`` (the partner webhook subscription). The Dagster part is ``defs/site_surveys/``.
"""
