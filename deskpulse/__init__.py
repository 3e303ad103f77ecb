"""deskpulse: live KPIs, SLA clocks and alerts for service desks."""
