//! Audit-log decoders against real CloudTrail samples and hand-made Kubernetes and CADF files.

mod samples;
