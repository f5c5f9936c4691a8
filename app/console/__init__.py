"""The virtual PA console: the live queue of callers waiting for a person, the PAs' presence,
taking a call on the PA's own phone, the screen pop with the client's script and message form,
and the supervisors' view."""
