"""The wallboard: a web page for a TV on the desk's wall, fed from the live state in Redis by
server-sent events. `deskpulse wallboard` serves it (docs/live-state.md, "The wallboard")."""
