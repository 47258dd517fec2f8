//! Detection runtime over event batches: Sigma packs and network detectors, state passed in and out. (being built; see its issue).
