//! A scan of the built-in `nist-800-53-aws` profile over a few S3 buckets, and its drift from
//! an earlier scan.

use palisade_model::resource::Resource;
use palisade_posture::content::builtin;
use palisade_posture::scan::{ScanEvaluation, ScanInput, ScanPlan};
use palisade_posture::{ReportDrift, Rollup, RollupBuilder, diff_rollups};
use palisade_report::ReportMeta;
use serde_json::json;

pub struct Scanned {
    pub meta: ReportMeta,
    pub rollup: Rollup,
    pub evaluations: Vec<ScanEvaluation>,
    /// Read by the PDF test only.
    #[cfg_attr(not(feature = "pdf"), allow(dead_code))]
    pub drift: ReportDrift,
}

fn bucket(id: &str, name: &str, versioning: &str, block: bool) -> Resource {
    serde_json::from_value(json!({
        "id": id, "name": name, "environment": "aws", "account_id": "111122223333",
        "service_name": "s3", "resource_kind": "bucket", "region": "us-east-1",
        "config": {
            "public_access_block": {"block_public_acls": block, "ignore_public_acls": true,
                                    "block_public_policy": true, "restrict_public_buckets": true},
            "versioning": {"status": versioning, "mfa_delete": "Enabled"}
        }
    }))
    .expect("bucket")
}

pub fn scan() -> Scanned {
    let content = builtin().expect("built-in content");
    let profile = content.profile("nist-800-53-aws").expect("profile");
    let now = "2026-03-01T00:00:00Z".parse().expect("time");
    let plan = ScanPlan::new(ScanInput {
        profile,
        libraries: &content.libraries,
        rules: &content.rules,
        attachment_parameters: &[],
        attestations: &[],
        now,
    })
    .expect("plan");
    let rollup_of = |resources: &[Resource]| {
        let evaluations = plan.evaluate_chunk(resources, now);
        let mut builder = RollupBuilder::new(&plan);
        builder.add_chunk(resources, &evaluations);
        (builder.finish(), evaluations)
    };
    let (previous, _) = rollup_of(&[bucket("arn:aws:s3:::logs", "logs", "Enabled", true)]);
    let (rollup, evaluations) = rollup_of(&[
        bucket("arn:aws:s3:::logs", "logs", "Suspended", true),
        bucket(
            "arn:aws:s3:::données-clients",
            "données-clients",
            "Enabled",
            false,
        ),
    ]);
    let drift = diff_rollups(&previous, &rollup);
    Scanned {
        meta: ReportMeta {
            report_id: "report-42".into(),
            report_type: "ondemand".into(),
            created_on: now,
            scan_time: now,
            profile_id: profile.id.clone(),
            profile_name: profile.profile_name.clone(),
            profile_version: profile.profile_version.clone(),
            attachment_id: Some("attachment-1".into()),
            attachment_name: Some("production accounts".into()),
            instance_id: None,
        },
        rollup,
        evaluations,
        drift,
    }
}
