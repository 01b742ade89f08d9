"""Queries the services share, kept out of them so a service reads as its steps."""
