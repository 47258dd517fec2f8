//! A small scan shared by the renderers' unit tests.

use chrono::{DateTime, Utc};
use palisade_model::resource::Resource;
use palisade_posture::scan::{ScanEvaluation, ScanInput, ScanPlan};
use palisade_posture::{ControlLibrary, Profile, Rollup, RollupBuilder};
use serde_json::json;

use crate::ReportMeta;

pub(crate) fn now() -> DateTime<Utc> {
    "2026-03-01T00:00:00Z".parse().expect("valid time")
}

pub(crate) fn scan() -> (ReportMeta, Rollup, Vec<ScanEvaluation>) {
    let rules = palisade_rules::parse_rules(&json!([
        {"id": "versioning", "description": "Buckets keep versions",
         "target": {"service_name": "s3", "resource_kind": "bucket"},
         "required_config": {"property": "versioning.status", "operator": "string_equals", "value": "Enabled"}}
    ]))
    .expect("rules");
    let library: ControlLibrary = serde_json::from_value(json!({
        "id": "lib", "control_library_name": "Lib", "control_library_version": "1",
        "controls": [{"control_id": "cp-9", "control_name": "CP-9", "control_description": "System Backup",
            "control_specifications": [{"id": "s", "component_id": "s3", "assessments": [{"assessment_id": "versioning"}]}]}]
    }))
    .expect("library");
    let profile: Profile = serde_json::from_value(json!({
        "id": "p", "profile_name": "Backups", "profile_version": "1.0",
        "controls": [{"control_library_id": "lib", "control_id": "cp-9"}]
    }))
    .expect("profile");
    let resources: Vec<Resource> = serde_json::from_value(json!([
        {"id": "arn:aws:s3:::good", "name": "good", "environment": "aws", "account_id": "1",
         "service_name": "s3", "resource_kind": "bucket", "config": {"versioning": {"status": "Enabled"}}},
        {"id": "arn:aws:s3:::bad", "name": "bad-bücket", "environment": "aws", "account_id": "1",
         "service_name": "s3", "resource_kind": "bucket", "config": {"versioning": {"status": "Suspended"}}}
    ]))
    .expect("resources");
    let plan = ScanPlan::new(ScanInput {
        profile: &profile,
        libraries: &[library],
        rules: &rules,
        attachment_parameters: &[],
        attestations: &[],
        now: now(),
    })
    .expect("plan");
    let evaluations = plan.evaluate_chunk(&resources, now());
    let mut builder = RollupBuilder::new(&plan);
    builder.add_chunk(&resources, &evaluations);
    let meta = ReportMeta {
        report_id: "r-1".into(),
        report_type: "ondemand".into(),
        created_on: now(),
        scan_time: now(),
        profile_id: "p".into(),
        profile_name: "Backups".into(),
        profile_version: "1.0".into(),
        attachment_id: Some("a-1".into()),
        attachment_name: Some("prod".into()),
        instance_id: None,
    };
    (meta, builder.finish(), evaluations)
}
