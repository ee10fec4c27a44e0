"""The reenactment pipeline's host threads: decoding ahead, encoding behind."""

import threading
import time

import pytest

from animojax.utils import background


def test_prefetch_keeps_order_and_runs_ahead_in_a_thread():
  threads = set()

  def produce():
    for i in range(100):
      threads.add(threading.get_ident())
      yield i

  assert list(background.prefetch(produce(), depth=4)) == list(range(100))
  assert threads and threading.get_ident() not in threads


def test_prefetch_raises_the_producers_error_where_it_happened():

  def produce():
    yield 1
    yield 2
    raise ValueError('frame 3 is corrupt')

  got = []
  with pytest.raises(ValueError, match='frame 3 is corrupt'):
    for item in background.prefetch(produce()):
      got.append(item)
  assert got == [1, 2]


def test_prefetch_closed_early_stops_its_producer():
  produced = []

  def produce():
    for i in range(10_000):
      produced.append(i)
      yield i

  items = background.prefetch(produce(), depth=2)
  assert next(items) == 0
  items.close()
  time.sleep(0.5)
  count = len(produced)
  time.sleep(0.3)
  assert len(produced) == count < 10  # Stopped, at most a queue's depth ahead.


def test_in_order_runs_calls_in_order_and_raises_at_join():
  done = []
  worker = background.InOrder(depth=3)
  for i in range(20):
    worker.submit(done.append, i)
  worker.join()
  assert done == list(range(20))

  def fail(i):
    if i == 2:
      raise OSError('disk full')
    done.append(i)

  worker, done = background.InOrder(depth=64), []
  with pytest.raises(OSError, match='disk full'):
    for i in range(5):
      worker.submit(fail, i)
    worker.join()
  assert done[:2] == [0, 1] and 2 not in done


def test_in_order_cancel_drops_calls_not_started():
  started, gate = [], threading.Event()

  def slow(i):
    started.append(i)
    gate.wait(5)

  worker = background.InOrder(depth=64)
  for i in range(10):
    worker.submit(slow, i)
  time.sleep(0.2)
  threading.Timer(0.3, gate.set).start()  # Call 0 is still running when cancel() is called.
  worker.cancel()
  assert started == [0]
