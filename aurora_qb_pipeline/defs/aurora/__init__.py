"""The Aurora side: staging assets (keys ``aurora/...``), their checks, and what starts runs."""
