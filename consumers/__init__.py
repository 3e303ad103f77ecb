"""kafka-python consumers: from the topics to where people look (terminal, Redis, alerts)."""
