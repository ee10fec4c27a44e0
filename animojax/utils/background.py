"""Host work beside the accelerator's: decoding ahead and encoding behind, in one thread each.

Video decoding and encoding (PyAV/FFmpeg) release the GIL while they work, so a thread runs them
while the main thread dispatches the next batch to the device: the reenactment pipeline's stages
then overlap instead of adding up (benchmarks/RESULTS.md, "Reenactment pipeline").
"""

import collections
import concurrent.futures
import queue
import threading
from typing import Any, Callable, Iterable, Iterator

_DONE = object()


def prefetch(iterable: Iterable[Any], depth: int = 64) -> Iterator[Any]:
  """Yields `iterable`'s items, produced up to `depth` ahead in a thread.

  An exception of the producer is raised here, at the item where it happened. Closing the
  generator early (break, an error in the consumer) stops the producer at its next item.
  """
  items = queue.Queue(maxsize=depth)
  stop = threading.Event()

  def put(entry):  # False once the consumer has stopped (nobody reads the queue then).
    while not stop.is_set():
      try:
        items.put(entry, timeout=0.1)
        return True
      except queue.Full:
        continue
    return False

  def produce():
    try:
      for item in iterable:
        if not put((item, None)):
          return
      put((_DONE, None))
    except BaseException as e:  # pylint: disable=broad-except  (re-raised in the consumer)
      put((_DONE, e))

  thread = threading.Thread(target=produce, daemon=True)
  thread.start()
  try:
    while True:
      item, error = items.get()
      if item is _DONE:
        if error is not None:
          raise error
        return
      yield item
  finally:
    stop.set()


class InOrder:
  """Runs calls one after another in a thread, at most `depth` behind the caller.

  `submit(fn, *args)` returns at once (or waits while `depth` calls are pending); `join()` waits
  for all. An exception of a call is raised by the next `submit` or by `join`.
  """

  def __init__(self, depth: int = 64):
    self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    self._pending = collections.deque()
    self._depth = depth

  def submit(self, fn: Callable[..., Any], *args) -> None:
    while self._pending and (self._pending[0].done() or len(self._pending) >= self._depth):
      self._pending.popleft().result()
    self._pending.append(self._pool.submit(fn, *args))

  def join(self) -> None:
    try:
      while self._pending:
        self._pending.popleft().result()
    finally:
      self.cancel()

  def cancel(self) -> None:
    """Drops the calls not started yet and waits for the running one (its error is dropped)."""
    self._pending.clear()
    self._pool.shutdown(wait=True, cancel_futures=True)
