"""Ray as pilot's distributed backend: the one module that imports ray.

Ray is an optional extra (``pip install -e ".[ray]"``): the local commands never need it,
so every entry point asks :func:`require_ray` first and a missing install is a one-line
error instead of an ImportError traceback. Commands that spread work (``pilot sweep``,
``pilot leaderboard run --backend ray``) open a :func:`ray_session` and hand a list of jobs
to :func:`map_tasks`, which keeps the input order and turns a failed job into a value, so
one bad job never stops the others.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pilot.errors import UserError

INSTALL = 'pip install -e ".[ray]"'


def require_ray() -> Any:
    """The ``ray`` module, or a :class:`UserError` that names the extra to install."""
    try:
        import ray
    except ImportError:
        raise UserError(f"this command runs on Ray, which is not installed; {INSTALL}") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Ray for the length of a command.

    Without ``address`` a local Ray starts (no dashboard, quiet logs, ``num_cpus`` CPUs or
    all of them) and stops when the block ends. ``address="auto"`` or ``"ray://host:port"``
    joins a running cluster; leaving disconnects this driver and leaves the cluster up.
    Inside an already open session the block reuses it and shuts nothing down.
    """
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    if address and num_cpus is not None:
        raise UserError("--num-cpus sizes a local Ray; a cluster joined by --address has its own")
    if num_cpus is not None and num_cpus < 1:
        raise UserError(f"--num-cpus must be at least 1, got {num_cpus}")
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise UserError(f"cannot start or join {where}: {first}") from None
    try:
        yield ray
    finally:
        ray.shutdown()  # a joined cluster stays up: this only disconnects the driver


def _call(fn: Callable[[Any], Any], item: Any) -> Any:
    return fn(item)


def _outcome(ray: Any, ref: Any) -> Any:
    """A finished task's value; a task that raised gives its exception as the value."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:  # the job raised: hand back its own error
        cause = getattr(exc, "cause", None)
        return cause if isinstance(cause, BaseException) else exc
    except ray.exceptions.RayError as exc:  # worker or node gone after every retry, cancelled
        return exc


def map_tasks(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    num_cpus: float = 1,
    num_gpus: float = 0,
    max_retries: int = 2,
    on_done: Callable[[int, Any], None] | None = None,
    grace_s: float = 15.0,
) -> list[Any]:
    """``[fn(item) for item in items]`` as Ray tasks, in input order.

    Each task declares ``num_cpus``/``num_gpus`` so Ray packs no more of them on a node
    than it holds. A task whose worker process dies is run again by Ray, up to
    ``max_retries`` times (``fn`` must therefore be safe to repeat: a trial resumes from
    its checkpoint); a task that raises is not retried and its exception is returned in
    its slot. ``on_done(index, result_or_exception)`` runs in this process as each task
    ends. On an interrupt the running tasks get a KeyboardInterrupt (so they can save) and
    ``grace_s`` seconds before they are killed; then the interrupt goes on.
    """
    ray = require_ray()
    if not items:
        return []
    task = ray.remote(
        num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries, retry_exceptions=False
    )(_call)
    fn_ref = ray.put(fn)  # shipped once, not once per item
    refs = [task.remote(fn_ref, item) for item in items]
    index = {ref: i for i, ref in enumerate(refs)}
    results: list[Any] = [None] * len(refs)
    pending = list(refs)
    try:
        while pending:
            # a timeout keeps this loop in Python, where Ctrl-C is seen at once
            done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            for ref in done:
                i = index[ref]
                results[i] = _outcome(ray, ref)
                if on_done is not None:
                    on_done(i, results[i])
    except BaseException:
        _stop(ray, pending, grace_s)
        raise
    return results


def _stop(ray: Any, pending: list[Any], grace_s: float) -> None:
    """Ask unfinished tasks to stop (KeyboardInterrupt inside them), then kill stragglers."""
    for ref in pending:
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=False)
    deadline = time.monotonic() + grace_s
    left = list(pending)
    while left and time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            _, left = ray.wait(left, num_returns=len(left), timeout=0.5)
    for ref in left:
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=True)


def cluster_slots(num_cpus: float, num_gpus: float = 0) -> int:
    """How many tasks of this size the connected cluster can run at once."""
    ray = require_ray()
    total = ray.cluster_resources()
    slots = total.get("CPU", 0) / num_cpus if num_cpus else float("inf")
    if num_gpus:
        slots = min(slots, total.get("GPU", 0) / num_gpus)
    return max(0, int(slots))


def tune_map(
    fn: Callable[[Any, Callable[[int, float], None]], Any],
    items: Sequence[Any],
    *,
    names: Sequence[str],
    storage_path: str,
    max_t: int,
    grace_period: int,
    reduction_factor: float,
    num_cpus: float = 1,
    num_gpus: float = 0,
    max_retries: int = 2,
    on_result: Callable[[int, int, float], None] | None = None,
    on_done: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """``fn(item, report)`` for every item as Ray Tune trials under an ASHA scheduler.

    ``fn`` calls ``report(step, score)`` as it learns; ASHA compares trials at the same
    step and stops the weaker ones. Each slot of the result is ``"done"``, ``"stopped"``
    (ended early by ASHA) or the trial's error. A trial whose actor dies or that raises is
    started again up to ``max_retries`` times (``fn`` resumes from its own checkpoints).
    """
    require_ray()
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    if not items:
        return []
    items = list(items)
    state: dict[str, Any] = {"last": {}}

    def trainable(config: dict[str, Any]) -> None:
        last = {"step": 0, "score": float("nan")}

        def report(step: int, score: float) -> None:
            last.update(step=step, score=score)
            if step < max_t:  # at max_t ASHA would stop the trial before its last save
                tune.report({"step": step, "score": score})

        fn(items[config["index"]], report)
        tune.report({"step": last["step"], "score": last["score"], "finished": 1})

    events = _events_class(tune)(on_result, on_done, state["last"])

    scheduler = ASHAScheduler(
        time_attr="step",
        max_t=max_t,
        grace_period=grace_period,
        reduction_factor=reduction_factor,
    )
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": num_cpus, "gpu": num_gpus}),
        param_space={"index": tune.grid_search(list(range(len(items))))},
        tune_config=tune.TuneConfig(
            metric="score",
            mode="max",
            scheduler=scheduler,
            trial_name_creator=lambda t: names[t.config["index"]],
            trial_dirname_creator=lambda t: names[t.config["index"]],
        ),
        run_config=tune.RunConfig(
            name="tune",
            storage_path=storage_path,
            failure_config=tune.FailureConfig(max_failures=max_retries),
            verbose=0,
            callbacks=[events],
        ),
    )
    with contextlib.redirect_stdout(io.StringIO()):  # Tune prints its header regardless
        tuner.fit()
    return [state["last"].get(i, "unfinished") for i in range(len(items))]


def _events_class(tune: Any) -> type:
    """Tune callbacks that hand trial events to this process's hooks.

    Tune pickles its callbacks with the experiment state; the hooks (a progress bar, an
    open file) stay behind, so the class closes over nothing and a copy carries no hooks.
    """

    class Events(tune.Callback):
        def __init__(self, on_result: Any, on_done: Any, outcomes: dict[int, Any]) -> None:
            self._hooks = (on_result, on_done, outcomes)

        def __getstate__(self) -> dict[str, Any]:
            return {"_hooks": (None, None, {})}

        def on_trial_result(self, iteration, trials, trial, result, **info):  # noqa: ARG002
            on_result = self._hooks[0]
            if on_result is not None and not result.get("finished"):
                on_result(trial.config["index"], int(result["step"]), float(result["score"]))

        def _end(self, trial: Any, outcome: Any) -> None:
            _, on_done, outcomes = self._hooks
            outcomes[trial.config["index"]] = outcome
            if on_done is not None:
                on_done(trial.config["index"], outcome)

        def on_trial_complete(self, iteration, trials, trial, **info):  # noqa: ARG002
            self._end(trial, "done" if (trial.last_result or {}).get("finished") else "stopped")

        def on_trial_error(self, iteration, trials, trial, **info):  # noqa: ARG002
            self._end(trial, _tune_error(trial))

    return Events


def _tune_error(trial: Any) -> BaseException:
    """The exception a Tune trial ended with, as close to the trial's own as Ray keeps."""
    error = getattr(trial, "error", None) or getattr(trial, "_error", None)
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        return cause
    if isinstance(error, BaseException):
        return error
    return RuntimeError(f"trial {trial} failed")
