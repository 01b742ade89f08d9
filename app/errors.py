"""Application-level exceptions. (HTTP mapping lives here too once the API exists.)"""

from __future__ import annotations


class LanternError(Exception):
    pass


class NotFound(LanternError):
    pass


class Conflict(LanternError):
    pass
