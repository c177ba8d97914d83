"""Which symbols each index holds: `index_composition` per (session, index), `index_membership`
over all of them, their jobs, and the schedules that start a close at each exchange's close."""
