//! Sigma rules: model, condition grammar, modifiers, correlations; compiled for fast matching. (being built; see its issue).
