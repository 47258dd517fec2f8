//! The rule language (being built; see its issue).
