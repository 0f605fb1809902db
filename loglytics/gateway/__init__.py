"""The HTTP API gateway (`loglytics api`): FastAPI on uvicorn, a process of its own.

Stateless: a Kafka client of `llm.requests`/`llm.responses` (request and reply
by request id, as `loglytics ask`) and a reader of the `tenants` topic (which
tenant a key belongs to), so any number of replicas can run behind a load
balancer. Modules: `models` (the brief's bodies), `mapping` (to and from task
inputs and replies), `calls` (authentication, one call), `routes`, `errors`,
`body` (size, JSON and depth before any route), `directory`, `backend`,
`app` and `server`.
"""
