//! Severities shared by detections and findings.
