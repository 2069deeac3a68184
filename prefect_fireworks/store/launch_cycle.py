"""The lean launch cycle: a Firework's life in few MongoDB commands, without locks.

On the embedded server a launch's time is the number of commands it sends, writes above all
(``docs/performance.md``). A life here is:

start
    1. **claim** - one conditional update ``{fw_id, state: READY}`` -> ``RUNNING`` that also
       pushes the launch id (launch ids are reserved in blocks, one counter round trip per
       `LAUNCH_ID_BLOCK` launches). Whoever gets ``modified_count == 1`` owns the Firework.
       The Firework document comes from the candidate query that found it (a batch of READY
       documents), or from the completion that readied it (`ReadyHints`), so no re-read.
    2. **launch insert** - the launch document already carries the Prefect run ids and the
       first checkpoint.
    3. **workflow cache** - ``fw_states.<id>: RUNNING`` (one conditional update, no lock).

completion
    4. **launch update** - state, history, action, times (built from the launch document in
       memory: no re-read, no final ping).
    5. **Firework writes** - one bulk write of the Firework and of the children it readies,
       each update conditional on what was read, and
    6. **workflow commit** - a compare-and-swap on the ``fw_states`` keys the decision read,
       ``updated_on`` and the absence of a lock; instead of a lock's two round trips.

No reads: the workflow comes from the process's `WorkflowCache` (read at its first
completion), the children's documents from `WaitingDocs`. A completion that holds no document
of a child reads the children in one ranged query together with up to `READ_AHEAD` WAITING
Fireworks further down the workflow, so a chain costs one read per `READ_AHEAD` lives (and one
launch-id reservation per `LAUNCH_ID_BLOCK`). A document read ahead may be stale by the time
it is used: the child's write is conditional on its ``state``, ``updated_on`` and ``spec`` as
read (``update_fws`` changes a spec without ``updated_on``), and so is a claim from a hint, so
a change made meanwhile is noticed and the locked path (or a fresh candidate query) takes over.

Anything unusual - the compare-and-swap lost to a concurrent writer, an FWAction that changes
the workflow (spec updates, additions, detours, defuses), several active launches - takes the
locked path (`LaunchPad.edit_workflow`), which recomputes every Firework this cycle wrote.

Modules: `prefect_fireworks.store.launch_state` (what a process keeps between launches: the
launch-id block, READY hints, the workflow cache, documents read ahead),
`prefect_fireworks.store.checkout` (start) and `prefect_fireworks.store.completion` (completion).
This module re-exports their public names.

Crash consistency: a process killed between the claim and the launch insert leaves a RUNNING
Firework listing a launch id with no launch document (``lpad admin check``: ``missing_launch``;
``detect_lostruns`` reports it); killed between the Firework writes and the workflow commit, a
``fw_states`` cache that disagrees with the Fireworks (``lpad admin check``: repaired by
``--repair``); killed after the launch update, a RUNNING Firework whose launch is COMPLETED
(FireWorks' "inconsistent" Firework, which ``detect_lostruns --refresh`` fixes).
"""

from __future__ import annotations

from prefect_fireworks.store.checkout import (
    CANDIDATE_BATCH,
    checkout_launch,
    claim,
    insert_launch,
    ip_address,
    new_launch_doc,
    set_cached_state,
    set_dotted,
)
from prefect_fireworks.store.completion import CAS_ATTEMPTS, READ_AHEAD, finish_launch
from prefect_fireworks.store.launch_state import (
    LAUNCH_ID_BLOCK,
    LaunchIdBlock,
    ReadyHints,
    WaitingDocs,
    WorkflowCache,
    hints,
    new_launch_id,
    waiting_docs,
    workflow_cache,
)

__all__ = [
    "CANDIDATE_BATCH",
    "CAS_ATTEMPTS",
    "LAUNCH_ID_BLOCK",
    "READ_AHEAD",
    "LaunchIdBlock",
    "ReadyHints",
    "WaitingDocs",
    "WorkflowCache",
    "checkout_launch",
    "claim",
    "finish_launch",
    "hints",
    "insert_launch",
    "ip_address",
    "new_launch_doc",
    "new_launch_id",
    "set_cached_state",
    "set_dotted",
    "waiting_docs",
    "workflow_cache",
]
