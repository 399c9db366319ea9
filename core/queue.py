"""Celery tasks reached by name: a service queues `"registry.tasks.send_promotion_email"`
without importing its app's tasks module (the tasks import the services, never the reverse).

In the embedded default (CELERY_TASK_ALWAYS_EAGER) the task runs in-process; elsewhere it goes
through the broker. Either way the task must be registered in this process: a worker has
imported every app's tasks module at start; elsewhere the first call for a task not yet known
imports them (Django's autodiscovery of each installed app's `tasks` module). Not Celery's
`import_default_modules`: its Django fixup reruns every system check, which inside a worker's
task took long enough to stall the task.
"""

from __future__ import annotations

import functools
from typing import Any

from celery import current_app
from django.db import transaction
from django.utils.module_loading import autodiscover_modules


@functools.cache
def _discover() -> None:
    autodiscover_modules("tasks")


def enqueue(name: str, *args: Any, countdown: float | None = None, **kwargs: Any) -> None:
    """Queue the task called `name` now (run it now, when eager)."""
    if name not in current_app.tasks:
        _discover()
    try:
        task = current_app.tasks[name]
    except KeyError:
        raise LookupError(f"No Celery task named {name!r} is registered.") from None
    task.apply_async(args=args, kwargs=kwargs, countdown=countdown)


def enqueue_on_commit(name: str, *args: Any, **kwargs: Any) -> None:
    """Queue the task once the current transaction commits: a rolled-back change queues
    nothing. `robust`: the change is committed by then, so a broker outage must neither fail
    the caller nor skip the callbacks after this one (the beat sweeps pick up what was lost)."""
    transaction.on_commit(lambda: enqueue(name, *args, **kwargs), robust=True)
