"""``specc serve``: the reward over HTTP, for OpenRLHF and any trainer that can POST.

============================  ===================================================
``specc.serve.config``        settings and their defaults, the loopback check
``specc.serve.protocol``      request bodies to rows, every 4xx check
``specc.serve.engine``        the reward: check rows, grade batches, build replies
``specc.serve.batcher``       micro-batching of concurrent requests
``specc.serve.metrics``       ``/metrics`` in the Prometheus text format
``specc.serve.app``           the FastAPI app (imports fastapi)
``specc.serve.command``       the CLI command and uvicorn (imports uvicorn)
============================  ===================================================

Importing this package imports neither fastapi nor uvicorn; only ``app`` and
``command`` do, so the OpenRLHF reward file (``specc.integrations.openrlhf``) works
where they are not installed.
"""
