"""`deskpulse ingest`: the HTTP door of deskpulse (docs/ingest.md).

Canonical events (one, or a batch) and the webhooks of ticketing tools come in over HTTP; each
request is authenticated per source, bounded in size and rate, turned into validated canonical
events (webhooks through the same mapping files as replay), and answered 2xx only once Kafka has
acknowledged every event (acks=all, idempotent producer).

`service` is the aiohttp application, `sources` the endpoints and their mappings, `auth` the
signature and token checks, `sink` the Kafka producer, `openapi` the served document,
`telemetry` the metrics and logs, `cli` the command.
"""
