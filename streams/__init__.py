"""The faust-streaming app and its processors: ticket state, SLA clocks, windowed KPIs."""
