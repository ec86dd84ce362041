"""moto's server, applying DynamoDB requests one at a time, as DynamoDB applies each item update atomically.

moto applies an UpdateItem in two steps: it computes the new value of an ``ADD`` to a set from the
item as it is, then stores it. Two updates of one item served at the same moment can therefore
lose one ``ADD``, which DynamoDB never does. The orchestrator counts registrations and completed
tasks with such ``ADD``s, and the tests hold it to exactly-once results, so the emulator the tests,
the demo and the benchmarks start serves DynamoDB requests one after another. Other services are
served concurrently as moto_server serves them (regions deploying in parallel call EC2, ECS and
IAM at the same time).

    python tools/moto_atomic.py -H 127.0.0.1 -p 5000      (the options of moto_server)
"""

from __future__ import annotations

import sys
import threading

from moto import server


class OneDynamoDBRequestAtATime(server.DomainDispatcherApplication):
    """moto's WSGI application with every DynamoDB request served under one lock."""

    _lock = threading.Lock()

    def __call__(self, environ, start_response):
        # DynamoDB's JSON protocol names the operation in this header: DynamoDB_20120810.UpdateItem
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return super().__call__(environ, start_response)
        with self._lock:
            return super().__call__(environ, start_response)


def main() -> None:
    server.DomainDispatcherApplication = OneDynamoDBRequestAtATime  # what server.main() builds its app from
    server.main(sys.argv[1:])


if __name__ == "__main__":
    main()
