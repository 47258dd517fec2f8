"""SCC v3 scans and reports driven by IBM's SDK (ibm-scc 5.0.0) over inventory pushed to Palisade.

Three buckets of account 111 are in scope (two versioned, one not); a bucket of account 222 is
outside the scope and must not be evaluated. Every response is parsed with the SDK's models.
"""

import pytest
import requests
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import BearerTokenAuthenticator
from ibm_scc.security_and_compliance_center_api_v3 import (
    AssessmentPrototype,
    ControlLibrary,
    ControlPrototype,
    ControlSpecificationPrototype,
    EvaluationPage,
    MultiCloudScopePayloadById,
    Profile,
    ProfileAttachmentResponse,
    ProfileControlsPrototype,
    Report,
    ReportCollection,
    ReportControls,
    ReportLatest,
    ReportSummary,
    RequiredConfigConditionBase,
    ResourcePage,
    Rule,
    RuleTargetPrototype,
    Scope,
    ScopePropertyScopeId,
    ScopePropertyScopeType,
    SecurityAndComplianceCenterApiV3,
)


@pytest.fixture(scope="module")
def service(palisade):
    url, key, _ = palisade
    client = SecurityAndComplianceCenterApiV3(authenticator=BearerTokenAuthenticator(key))
    client.set_service_url(url)
    return client


def bucket(bucket_id, account, versioning):
    return {
        "id": bucket_id, "environment": "aws", "account_id": account, "service_name": "s3", "resource_kind": "bucket",
        "region": "us-east-1", "name": bucket_id, "tags": {"team": "storage"},
        "config": {"versioning": {"status": versioning}}, "collected_at": "2026-06-01T00:00:00Z",
    }


@pytest.fixture(scope="module")
def scanned(service, palisade):
    url, key, instance_id = palisade
    pushed = requests.post(
        f"{url}/instances/{instance_id}/v1/inventory",
        headers={"Authorization": f"Bearer {key}"},
        json={"resources": [bucket("logs", "111", "Enabled"), bucket("backups", "111", "Enabled"),
                            bucket("public-site", "111", "Suspended"), bucket("other-account", "222", "Suspended")]},
        timeout=30,
    )
    assert pushed.status_code == 200 and pushed.json()["stored"] == 4
    rule = Rule.from_dict(service.create_rule(
        instance_id=instance_id, description="S3 buckets keep object versions",
        target=RuleTargetPrototype(service_name="s3", resource_kind="bucket"),
        required_config=RequiredConfigConditionBase(property="versioning.status", operator="string_equals", value="Enabled"),
    ).get_result())
    library = ControlLibrary.from_dict(service.create_control_library(
        instance_id=instance_id, control_library_name="scan library", control_library_description="",
        control_library_type="custom", control_library_version="1.0.0",
        controls=[ControlPrototype(control_name="CP-9", control_description="System backup", control_category="Contingency Planning",
                                   control_requirement=True,
                                   control_specifications=[ControlSpecificationPrototype(component_id="s3", environment="aws",
                                                                                          assessments=[AssessmentPrototype(assessment_id=rule.id)])])],
    ).get_result())
    profile = Profile.from_dict(service.create_profile(
        instance_id=instance_id, profile_name="backups", profile_version="1.0.0",
        controls=[ProfileControlsPrototype(control_library_id=library.id, control_id=library.controls[0].control_id)],
        default_parameters=[],
    ).get_result())
    scope = Scope.from_dict(service.create_scope(
        instance_id=instance_id, name="account 111", description="", environment="aws",
        properties=[ScopePropertyScopeId(name="scope_id", value="111"), ScopePropertyScopeType(name="scope_type", value="account")],
    ).get_result())
    attachment = ProfileAttachmentResponse.from_dict(service.create_profile_attachment(
        instance_id=instance_id, profile_id=profile.id,
        new_attachments=[{"name": "daily", "description": "", "scope": [MultiCloudScopePayloadById(id=scope.id).to_dict()],
                          "schedule": "daily", "status": "enabled", "notifications": {"enabled": False}, "attachment_parameters": []}],
    ).get_result()).attachments[0]
    scan = service.create_scan(instance_id=instance_id, attachment_id=attachment.id)
    assert scan.get_status_code() == 201
    result = scan.get_result()
    assert result["status"] == "completed" and result["attachment_id"] == attachment.id
    return {"report_id": result["report_id"], "rule_id": rule.id, "attachment_id": attachment.id, "instance_id": instance_id}


def test_report_and_score(service, scanned):
    instance_id, report_id = scanned["instance_id"], scanned["report_id"]
    report = Report.from_dict(service.get_report(instance_id=instance_id, report_id=report_id).get_result())
    assert report.id == report_id and report.type == "ondemand"
    latest = ReportLatest.from_dict(service.get_latest_reports(instance_id=instance_id).get_result())
    assert report_id in [r.id for r in latest.reports]
    assert (latest.score.passed, latest.score.total_count, latest.score.percent) == (2, 3, 66)
    listed = ReportCollection.from_dict(service.list_reports(instance_id=instance_id, report_attachment_id=scanned["attachment_id"]).get_result())
    assert [r.id for r in listed.reports] == [report_id]
    summary = ReportSummary.from_dict(service.get_report_summary(instance_id=instance_id, report_id=report_id).get_result())
    assert summary.score.passed == 2 and summary.evaluations.failure_count == 1
    controls = ReportControls.from_dict(service.get_report_controls(instance_id=instance_id, report_id=report_id).get_result())
    assert [(c.control_name, c.status) for c in controls.controls] == [("CP-9", "not_compliant")]


def test_evaluations_and_resources(service, scanned):
    instance_id, report_id = scanned["instance_id"], scanned["report_id"]
    failures = EvaluationPage.from_dict(service.list_report_evaluations(instance_id=instance_id, report_id=report_id, status="failure").get_result())
    assert failures.total_count == 1
    failing = failures.evaluations[0]
    assert failing.target.id == "public-site"
    assert failing.details.properties[0].property == "versioning.status"
    assert failing.details.properties[0].found_value == "Suspended"
    everything = EvaluationPage.from_dict(service.list_report_evaluations(instance_id=instance_id, report_id=report_id, limit=2).get_result())
    assert everything.total_count == 3 and len(everything.evaluations) == 2 and everything.next is not None
    resources = ResourcePage.from_dict(service.list_report_resources(instance_id=instance_id, report_id=report_id).get_result())
    assert sorted(r.id for r in resources.resources) == ["backups", "logs", "public-site"], "account 222 is out of scope"
    with pytest.raises(ApiException) as bad_status:
        service.list_report_evaluations(instance_id=instance_id, report_id=report_id, status="nonsense")
    assert bad_status.value.code == 400


def test_downloads(service, scanned):
    instance_id, report_id = scanned["instance_id"], scanned["report_id"]
    csv = service.get_report_download_file(instance_id=instance_id, report_id=report_id, accept="text/csv")
    text = csv.get_result().content.decode() if hasattr(csv.get_result(), "content") else str(csv.get_result())
    assert "public-site" in text and "Suspended" in text
    pdf = service.get_report_download_file(instance_id=instance_id, report_id=report_id, accept="application/pdf")
    body = pdf.get_result().content if hasattr(pdf.get_result(), "content") else pdf.get_result()
    assert body[:4] == b"%PDF"
    with pytest.raises(ApiException) as missing:
        service.get_report(instance_id=instance_id, report_id="no-such-report")
    assert missing.value.code == 404


def test_service_catalogue(service):
    from ibm_scc.security_and_compliance_center_api_v3 import Service, ServiceCollection

    services = ServiceCollection.from_dict(service.list_services().get_result())
    names = [s.service_name for s in services.services]
    assert "s3" in names
    s3 = Service.from_dict(service.get_service(services_name="s3").get_result())
    assert "bucket" in [config.resource_kind for config in s3.supported_configs]
    with pytest.raises(ApiException) as missing:
        service.get_service(services_name="no-such-service")
    assert missing.value.code == 404


def test_tags_rule_and_drift(service, scanned):
    from ibm_scc.security_and_compliance_center_api_v3 import ReportTags, ReportViolationsDrift, RuleInfo

    instance_id, report_id = scanned["instance_id"], scanned["report_id"]
    tags = ReportTags.from_dict(service.get_report_tags(instance_id=instance_id, report_id=report_id).get_result())
    assert tags.report_id == report_id
    rule = RuleInfo.from_dict(service.get_report_rule(instance_id=instance_id, report_id=report_id, rule_id=scanned["rule_id"]).get_result())
    assert rule.description == "S3 buckets keep object versions"
    # A second scan adds a data point to the drift.
    second = service.create_scan(instance_id=instance_id, attachment_id=scanned["attachment_id"]).get_result()
    drift = ReportViolationsDrift.from_dict(
        service.get_report_violations_drift(instance_id=instance_id, report_id=second["report_id"]).get_result()
    )
    assert [point.report_id for point in drift.data_points] == [report_id, second["report_id"]]
    assert drift.data_points[0].controls_summary.status == "not_compliant"


def test_scan_report_export_jobs(service, scanned, palisade):
    """Issue 4: `scan_reports` export jobs — create, list, get and download, in CSV and PDF."""
    from ibm_scc.security_and_compliance_center_api_v3 import CreateScanReport, ScanReport, ScanReportCollection

    instance_id, report_id = scanned["instance_id"], scanned["report_id"]
    created = CreateScanReport.from_dict(
        service.create_scan_report(instance_id=instance_id, report_id=report_id, format="csv").get_result()
    )
    assert created.id
    job = ScanReport.from_dict(
        service.get_scan_report(instance_id=instance_id, report_id=report_id, job_id=created.id).get_result()
    )
    assert job.status == "completed" and job.format == "csv" and job.href.endswith("/download")
    pdf_job = CreateScanReport.from_dict(
        service.create_scan_report(instance_id=instance_id, report_id=report_id, format="pdf").get_result()
    )
    listed = ScanReportCollection.from_dict(
        service.list_scan_reports(instance_id=instance_id, report_id=report_id).get_result()
    )
    assert {report.id for report in listed.scan_reports} >= {created.id, pdf_job.id}
    csv = service.get_scan_report_download_file(
        instance_id=instance_id, report_id=report_id, job_id=created.id, accept="application/csv"
    ).get_result()
    text = csv.content.decode() if hasattr(csv, "content") else str(csv)
    assert "public-site" in text
    pdf = service.get_scan_report_download_file(instance_id=instance_id, report_id=report_id, job_id=pdf_job.id)
    body = pdf.get_result().content if hasattr(pdf.get_result(), "content") else pdf.get_result()
    assert body[:4] == b"%PDF"
    with pytest.raises(ApiException) as bad_format:
        service.create_scan_report(instance_id=instance_id, report_id=report_id, format="docx")
    assert bad_format.value.code == 400
    with pytest.raises(ApiException) as missing:
        service.get_scan_report(instance_id=instance_id, report_id=report_id, job_id="no-such-job")
    assert missing.value.code == 404

    # Palisade's extra formats: the whole report as JSON, and OSCAL assessment results.
    url, key, _ = palisade
    download = f"{url}/instances/{instance_id}/v3/reports/{report_id}/download"
    as_json = requests.get(download, headers={"Authorization": f"Bearer {key}", "Accept": "application/json"})
    assert as_json.status_code == 200, as_json.text
    assert as_json.json()["report"]["report_id"] == report_id
    oscal = requests.get(download, headers={"Authorization": f"Bearer {key}", "Accept": "application/oscal+json"})
    assert oscal.status_code == 200, oscal.text
    assert "assessment-results" in oscal.json()
