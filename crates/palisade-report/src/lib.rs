//! Report renderers: CSV, PDF, JSON and OSCAL assessment-results.
