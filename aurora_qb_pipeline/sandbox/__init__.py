"""Loopback servers that behave like Aurora Solar's and Quickbase's APIs (auth, paging, limits, faults)."""
