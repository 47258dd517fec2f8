//! The normalised audit event (filled in by the activity-insights work).
