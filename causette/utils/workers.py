"""Worker processes that die with their parent and leave Ctrl-C to it.

Every pool of processes in Causette (cleaning the corpus, tokenising it, counting chunks for a
tokenizer) follows three rules:

1. **A worker dies with its parent.** A worker whose parent is killed (``kill -9``, a crash, the
   out-of-memory killer) must not go on for minutes, re-parented to PID 1. On Linux the kernel
   kills it at once (``prctl(PR_SET_PDEATHSIG)``); everywhere, and as a second guard, a thread of
   the worker checks twice a second that its parent is still the same process.
2. **Only the parent answers Ctrl-C.** The terminal sends SIGINT to every process of the
   foreground group, workers included. Workers ignore it: the parent alone stops (the command
   line prints ``interrupted``, exit code 130) and stops its workers. A worker cannot ignore
   SIGINT before its own code runs, so the parent starts workers with SIGINT *blocked*: they
   inherit the block, a Ctrl-C during their start-up (while Python imports) stays pending, and
   they drop it when they ignore SIGINT. The parent holds the Ctrl-C back meanwhile and raises it
   once every worker has started (:func:`sigint_held`).
3. **Stopping never waits for a worker.** On an error or Ctrl-C the parent kills its workers
   without waiting for the task in hand (a whole book can take seconds), and nothing can hang:
   :class:`OrderedPool` talks to each worker through its own two pipes, read by the parent's
   main thread only, never by a hidden thread that could wait forever for half a message.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from collections import deque
from multiprocessing.reduction import ForkingPickler
from typing import Any, Callable, Iterable, Iterator

PARENT_POLL_SECONDS = 0.5  # how often a worker checks that its parent is alive (the portable guard)
STOP_SECONDS = 5.0  # how long stopping waits for a worker to exit before killing it
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class WorkerDied(RuntimeError):
    """A worker process ended without answering (killed, out of memory, crashed)."""


# ----------------------------------------------------------------------------- in the worker


def die_with_parent(parent_pid: int, kernel: bool = True) -> None:
    """Call first thing in a worker: ignore Ctrl-C, and exit when process ``parent_pid`` dies.

    ``kernel``: also ask Linux to kill this process when its parent dies. Only right when the
    parent started it from a thread that lives as long as the parent (the main thread): the
    kernel acts when that *thread* ends.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # also drops a Ctrl-C pending since start-up
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if kernel:
        _kill_me_with_parent()
    if os.getppid() != parent_pid:  # the parent died before we got here
        os._exit(1)
    watch_parent(parent_pid)


def _kill_me_with_parent() -> None:
    """Linux: the kernel sends SIGKILL to this process when its parent's thread ends."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the watching thread still does the job
        pass


def watch_parent(parent_pid: int, poll: float = PARENT_POLL_SECONDS) -> threading.Thread:
    """A daemon thread that ends this process once its parent is no longer ``parent_pid``
    (an orphan is re-parented, so its ``getppid()`` changes): the portable guard."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll)
        os._exit(1)

    thread = threading.Thread(target=watch, name="watch-parent", daemon=True)
    thread.start()
    return thread


# ----------------------------------------------------------------------------- in the parent


@contextlib.contextmanager
def sigint_held(method: str = "spawn") -> Iterator[None]:
    """Hold Ctrl-C back while worker processes start (``method``: their start method).

    Inside the block SIGINT is blocked in this thread, so processes started here inherit the
    block (see rule 2 of the module docstring), and a Ctrl-C that reaches this process is
    recorded instead of raised in the middle of starting a process; it is raised at the end of
    the block, as the ``KeyboardInterrupt`` it would have been. Only in the main thread of a
    POSIX system; elsewhere the block changes nothing.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    if method != "fork":
        # "spawn" starts multiprocessing's resource tracker with the first process, and that
        # start unblocks SIGINT: start it now, before blocking.
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a pending Ctrl-C arrives now...
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)  # ...and is recorded first
        if caught:
            if callable(previous):
                previous(signal.SIGINT, None)  # Python's handler: raises KeyboardInterrupt
            elif previous in (signal.SIG_DFL, None):
                signal.raise_signal(signal.SIGINT)


def _serve(tasks, results, parent_pid: int, kernel: bool, fn: Callable, initializer: Callable | None, initargs: tuple) -> None:
    """A worker's life: set up, then answer ``fn(item)`` for each item, in order, until told to stop.

    Items come through ``tasks`` (``(item,)``, or ``None``: stop), answers go back through
    ``results`` (``(True, value)`` or ``(False, exception)``). Two threads move them, so that the
    work never waits for a pipe: one empties ``tasks`` as items come (the parent never blocks
    sending while this process blocks answering), one sends the answers while the next item is
    being worked on.
    """
    die_with_parent(parent_pid, kernel)
    try:
        if initializer is not None:
            initializer(*initargs)
    except Exception as e:
        _answer(results, False, e)
        return
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    outbox: queue.SimpleQueue = queue.SimpleQueue()

    def receive() -> None:
        while True:
            try:
                message = tasks.recv()
            except (EOFError, OSError):  # the parent is gone
                message = None
            inbox.put(message)
            if message is None:
                return

    def send() -> None:
        while (answer := outbox.get()) is not None:
            _answer(results, *answer)

    threading.Thread(target=receive, name="receive", daemon=True).start()
    sender = threading.Thread(target=send, name="send", daemon=True)
    sender.start()
    while (message := inbox.get()) is not None:
        try:
            outbox.put((True, fn(message[0])))
        except Exception as e:
            outbox.put((False, e))
    outbox.put(None)
    sender.join()


def _answer(results, ok: bool, value: Any) -> None:
    try:
        message = ForkingPickler.dumps((ok, value))
    except Exception as e:  # a value or an exception that cannot be pickled: send why, as text
        what = f"{type(value).__name__}: {value}" if not ok else f"a result that cannot be pickled ({e})"
        message = ForkingPickler.dumps((False, RuntimeError(what)))
    try:
        results.send_bytes(message)
    except OSError:  # the parent is gone: nobody to answer
        os._exit(1)


class OrderedPool:
    """``fn(item)`` for a stream of items in ``workers`` processes, the results in input order.

    ``initializer(*initargs)`` runs once in each worker first (to load a tokenizer, say).
    ``fn``, ``initializer`` and the items must be picklable (module-level functions). Items go
    to the workers in turn, at most ``ahead`` per worker without an answer, so memory stays
    bounded however long the stream. An exception raised by ``fn`` or ``initializer`` is raised
    again here; a worker that dies raises :class:`WorkerDied`.

    Use it as a context manager: leaving the block normally stops the workers; leaving it on an
    exception (Ctrl-C included) kills them at once (see the module docstring).
    """

    def __init__(
        self, workers: int, fn: Callable, initializer: Callable | None = None, initargs: tuple = (),
        method: str = "spawn", ahead: int = 2,
    ):
        self.ahead = max(1, ahead)
        self._processes: list = []
        self._tasks: list = []  # our ends of the pipes, one pair per worker
        self._results: list = []
        self._in_flight = 0
        ctx = mp.get_context(method)
        kernel = threading.current_thread() is threading.main_thread()
        try:
            with sigint_held(method):
                for k in range(max(1, workers)):
                    task_out, task_in = ctx.Pipe(duplex=False)  # (reading end, writing end)
                    result_out, result_in = ctx.Pipe(duplex=False)
                    process = ctx.Process(
                        target=_serve, name=f"causette-worker-{k}", daemon=True,
                        args=(task_out, result_in, os.getpid(), kernel, fn, initializer, initargs),
                    )
                    process.start()
                    # the worker's ends now live in the worker only: its death closes them (EOFError here)
                    task_out.close()
                    result_in.close()
                    self._processes.append(process)
                    self._tasks.append(task_in)
                    self._results.append(result_out)
        except BaseException:
            self.terminate()
            raise

    def __enter__(self) -> "OrderedPool":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and self._in_flight == 0:
            self.close()
        else:
            self.terminate()

    def imap(self, items: Iterable) -> Iterator:
        """``fn(item)`` for each item, in order; the next items are sent before a result is handed out."""
        items = iter(items)
        pending: deque[int] = deque()  # the worker of each item sent and not yet answered, in order
        turn = 0
        exhausted = False
        while True:
            while not exhausted and len(pending) < self.ahead * len(self._processes):
                try:
                    item = next(items)
                except StopIteration:
                    exhausted = True
                    break
                self._send(turn, item)
                pending.append(turn)
                turn = (turn + 1) % len(self._processes)
            if not pending:
                return
            value = self._receive(pending.popleft())
            yield value

    def _send(self, k: int, item: Any) -> None:
        try:
            self._tasks[k].send((item,))
        except OSError:  # BrokenPipeError: the worker is gone
            raise self._died(k) from None
        self._in_flight += 1

    def _receive(self, k: int) -> Any:
        try:
            ok, value = self._results[k].recv()
        except (EOFError, OSError):  # OSError: "end of file during message", the worker died sending
            raise self._died(k) from None
        self._in_flight -= 1
        if not ok:
            raise value
        return value

    def _died(self, k: int) -> BaseException:
        """What to raise for a worker that is gone: the error it sent before exiting (its
        initializer failed, say), else :class:`WorkerDied` with how it ended."""
        with contextlib.suppress(EOFError, OSError):
            while self._results[k].poll():
                ok, value = self._results[k].recv()
                if not ok:
                    return value
        process = self._processes[k]
        process.join(1.0)
        code = process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return WorkerDied(f"a worker process died ({how})")

    def close(self) -> None:
        """Tell every worker to stop, and wait for them (killing any that does not stop in time)."""
        for conn in self._tasks:
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)
        deadline = time.monotonic() + STOP_SECONDS
        for process in self._processes:
            process.join(max(0.0, deadline - time.monotonic()))
        self.terminate()

    def terminate(self) -> None:
        """Kill every worker now and close the pipes (idempotent)."""
        for process in self._processes:
            if process.exitcode is None:
                process.terminate()
        for process in self._processes:
            process.join(STOP_SECONDS)
            if process.exitcode is None:
                process.kill()
                process.join()
        for conn in self._tasks + self._results:
            conn.close()
        self._processes, self._tasks, self._results = [], [], []
