"""The MQTT face: topics, requests and responses, progress, state, status, URCs.
Knows nothing of AT commands."""
