"""Quickbase opportunities -> Aurora projects (issue 14): the job, its resource and the sensor."""
