"""The reference fakes of the ports, in memory, with the AWS adapters' conditional semantics.

They may import the engine, ``ports``, ``values`` and ``errors``; never boto3 or an AWS adapter.
"""

from durable_lambda.adapters.memory.blobs import MemoryBlobStore
from durable_lambda.adapters.memory.flow import MemoryFlowStore
from durable_lambda.adapters.memory.ports import MemoryPorts, memory_ports
from durable_lambda.adapters.memory.queue import MemoryResumeQueue
from durable_lambda.adapters.memory.runs import MemoryRunStore
from durable_lambda.adapters.memory.tokens import MemoryTokenStore

__all__ = [
    "MemoryBlobStore",
    "MemoryFlowStore",
    "MemoryPorts",
    "MemoryResumeQueue",
    "MemoryRunStore",
    "MemoryTokenStore",
    "memory_ports",
]
