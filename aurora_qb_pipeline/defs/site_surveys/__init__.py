"""Site surveys (issue 12): the intake and upload jobs, their sensors and resource."""
