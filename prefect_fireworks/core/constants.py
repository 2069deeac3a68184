"""Constants shared by every layer: FireWorks' numbers, names and defaults, each defined once.

Settings that a user changes (URIs, directories) live in :mod:`prefect_fireworks.core.settings`;
these are fixed facts of the FireWorks schema and of this package.
"""

from __future__ import annotations

#: FireWorks' ``WFLOCK_EXPIRATION_SECS``: a workflow lock older than this is stale.
WFLOCK_EXPIRATION_SECS = 300
#: FireWorks' ``PW_CHECK_NUM``: mass operations above this many Fireworks need confirmation.
PW_CHECK_NUM = 10
#: FireWorks' ``RUN_EXPIRATION_SECS`` (``detect_lostruns`` default): 4 hours.
RUN_EXPIRATION_SECS = 4 * 3600
#: GridFS bucket FireWorks uses for launch actions too large for a document.
GRIDFS_FALLBACK_COLLECTION = "fw_gridfs"
#: Query operators that run server-side JavaScript: refused in every selector.
FORBIDDEN_OPERATORS = frozenset({"$where", "$function", "$accumulator"})
#: Where FireWorks records a FIZZLED launch's stack trace (in the launches collection).
STACKTRACE_KEY = "action.stored_data._exception._stacktrace"
#: Default budget of automatic reruns per Firework (counted from its archived launches).
DEFAULT_MAX_RERUNS = 3
#: The project's own Prefect event for a FIZZLED launch (resource ``fireworks.firework.<id>``).
FIZZLED_EVENT = "fireworks.firework.fizzled"
#: Default name of the automation that reruns FIZZLED Fireworks.
RERUN_AUTOMATION = "rerun-fizzled-fireworks"
