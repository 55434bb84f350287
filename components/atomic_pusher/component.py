"""AtomicPusher: the stock TFX Pusher with the atomic executor (see executor.py)."""

from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components.atomic_pusher import executor


class AtomicPusher(tfx.components.Pusher):
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
