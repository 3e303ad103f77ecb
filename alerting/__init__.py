"""SLA policy, anomaly detection, notifiers, Prometheus rules and the Alertmanager config."""
