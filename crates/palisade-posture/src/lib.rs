//! Posture scans: scope to resources, rule evaluation, roll-ups per control, score and drift. Pure.
