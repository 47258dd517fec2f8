"""Configuration Governance v1 driven by IBM's own SDK (ibm-scc 1.1.2,
`ibm_scc.configuration_governance_v1`), plus templates and admission decisions over raw HTTP
(the Python SDK has no template calls; paths follow IBM's Go SDK).

Every method of `ConfigurationGovernanceV1` is called; responses are parsed with the SDK's model
classes (`Rule.from_dict` …), which raise on a missing required field: that is the compatibility
proof. The service URL is `<palisade>/instances/{instance_id}`.
"""

import pytest
import requests
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import BearerTokenAuthenticator
from ibm_scc.configuration_governance_v1 import (
    ConfigurationGovernanceV1,
    CreateRuleAttachmentsResponse,
    CreateRuleRequest,
    CreateRulesResponse,
    EnforcementAction,
    Rule,
    RuleAttachment,
    RuleAttachmentList,
    RuleAttachmentRequest,
    RuleConditionSingleProperty,
    RuleList,
    RuleRequest,
    RuleRequiredConfigMultiplePropertiesConditionAnd,
    RuleRequiredConfigSingleProperty,
    RuleScope,
    TargetResource,
    TargetResourceAdditionalTargetAttributesItem,
)

ACCOUNT = "sdk-account"
BUCKET = TargetResource(
    service_name="cloud-object-storage",
    resource_kind="bucket",
    additional_target_attributes=[
        TargetResourceAdditionalTargetAttributesItem(name="location", value="us-south", operator="string_equals")
    ],
)


@pytest.fixture(scope="module")
def governance(palisade):
    url, key, instance_id = palisade
    service = ConfigurationGovernanceV1(authenticator=BearerTokenAuthenticator(key))
    service.set_service_url(f"{url}/instances/{instance_id}")
    return service


@pytest.fixture(scope="module")
def http(palisade):
    """A raw HTTP helper for what the SDK does not cover: (method, path, json) -> response."""
    url, key, instance_id = palisade
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"

    def call(method, path, body=None, headers=None):
        return session.request(method, f"{url}/instances/{instance_id}{path}", json=body, headers=headers or {})

    return call


def private_firewall_rule(name, action="disallow", labels=None):
    return RuleRequest(
        account_id=ACCOUNT,
        name=name,
        description=f"{name}: buckets allow private traffic only",
        target=BUCKET,
        required_config=RuleRequiredConfigMultiplePropertiesConditionAnd(
            description="private and small",
            and_=[
                RuleConditionSingleProperty(
                    property="firewall.allowed_network_type", operator="strings_in_list", value=["private"]
                ),
                RuleConditionSingleProperty(property="hard_quota", operator="num_less_than_equals", value="1000"),
            ],
        ),
        enforcement_actions=[EnforcementAction(action=action)],
        rule_type="user_defined",
        labels=labels or ["cos", "network"],
    )


def test_rules_bulk_create_list_get_update_delete(governance):
    created = governance.create_rules(
        rules=[
            CreateRuleRequest(request_id="first", rule=private_firewall_rule("deny-public")),
            CreateRuleRequest(rule=private_firewall_rule("audit-public", action="audit_log", labels=["audit"])),
            # Invalid: an operator the engine does not know. Answered on its own entry.
            CreateRuleRequest(
                request_id="bad",
                rule=RuleRequest(
                    account_id=ACCOUNT,
                    name="broken",
                    description="broken",
                    target=BUCKET,
                    required_config=RuleRequiredConfigSingleProperty(property="x", operator="num_equals"),
                    enforcement_actions=[EnforcementAction(action="disallow")],
                ),
            ),
        ],
        transaction_id="sdk-bulk-1",
    )
    assert created.get_status_code() == 207
    answers = CreateRulesResponse.from_dict(created.get_result()).rules
    assert [answer.status_code for answer in answers] == [201, 201, 400]
    assert [answer.request_id for answer in answers] == ["first", "2", "bad"]
    deny = answers[0].rule
    assert deny.rule_id and deny.name == "deny-public" and deny.rule_type == "user_defined"
    assert deny.enforcement_actions[0].action == "disallow"
    assert deny.creation_date is not None and deny.number_of_attachments == 0
    bad = answers[2]
    assert bad.trace == "sdk-bulk-1"
    assert any("/rules/2/rule/required_config" in error.message for error in bad.errors), bad.errors

    listed = governance.list_rules(account_id=ACCOUNT, labels="audit").get_result()
    rules = RuleList.from_dict(listed)
    assert [rule.name for rule in rules.rules] == ["audit-public"]
    assert rules.total_count == 1 and rules.first.href and rules.last.href
    page = RuleList.from_dict(governance.list_rules(account_id=ACCOUNT, limit=1, offset=1).get_result())
    assert (page.total_count, page.limit, page.offset, len(page.rules)) == (2, 1, 1, 1)
    assert RuleList.from_dict(governance.list_rules(account_id="another-account").get_result()).total_count == 0

    fetched = governance.get_rule(rule_id=deny.rule_id)
    etag = fetched.get_headers()["ETag"]
    rule = Rule.from_dict(fetched.get_result())
    assert rule.target.additional_target_attributes[0].operator == "string_equals"

    updated = governance.update_rule(
        rule_id=deny.rule_id,
        if_match=etag,
        name="deny-public",
        description="updated",
        target=BUCKET,
        required_config=RuleRequiredConfigSingleProperty(
            property="firewall.allowed_network_type", operator="strings_in_list", value=["private"]
        ),
        enforcement_actions=[EnforcementAction(action="disallow")],
        account_id=ACCOUNT,
        labels=["cos"],
    )
    assert Rule.from_dict(updated.get_result()).description == "updated"
    assert updated.get_headers()["ETag"] != etag

    # The old ETag is stale now; no ETag at all is refused too.
    with pytest.raises(ApiException) as stale:
        governance.update_rule(
            rule_id=deny.rule_id,
            if_match=etag,
            name="x",
            description="x",
            target=BUCKET,
            required_config=RuleRequiredConfigSingleProperty(property="a", operator="is_true"),
            enforcement_actions=[],
        )
    assert stale.value.status_code == 412

    audit_id = answers[1].rule.rule_id
    assert governance.delete_rule(rule_id=audit_id).get_status_code() == 204
    with pytest.raises(ApiException) as gone:
        governance.get_rule(rule_id=audit_id)
    assert gone.value.status_code == 404


def test_rule_attachments_and_the_decisions_they_drive(governance, http):
    rule = (
        CreateRulesResponse.from_dict(
            governance.create_rules(rules=[CreateRuleRequest(rule=private_firewall_rule("attached"))]).get_result()
        )
        .rules[0]
        .rule
    )
    created = governance.create_rule_attachments(
        rule_id=rule.rule_id,
        attachments=[
            RuleAttachmentRequest(
                account_id=ACCOUNT,
                included_scope=RuleScope(scope_id=ACCOUNT, scope_type="account", note="whole account"),
                excluded_scopes=[RuleScope(scope_id="rg-sandbox", scope_type="account.resource_group")],
            )
        ],
    )
    assert created.get_status_code() == 201
    attachment = CreateRuleAttachmentsResponse.from_dict(created.get_result()).attachments[0]
    assert isinstance(attachment, RuleAttachment)
    assert (attachment.rule_id, attachment.included_scope.scope_type) == (rule.rule_id, "account")
    assert attachment.excluded_scopes[0].scope_id == "rg-sandbox"

    listed = RuleAttachmentList.from_dict(governance.list_rule_attachments(rule_id=rule.rule_id).get_result())
    assert [item.attachment_id for item in listed.attachments] == [attachment.attachment_id]
    assert RuleList.from_dict(governance.list_rules(account_id=ACCOUNT, attached=True).get_result()).rules[
        0
    ].number_of_attachments == 1
    assert [
        item.rule_id for item in RuleList.from_dict(governance.list_rules(account_id=ACCOUNT, scopes=ACCOUNT).get_result()).rules
    ] == [rule.rule_id]

    bucket = {
        "id": "crn:v1:bucket:b1",
        "service_name": "cloud-object-storage",
        "resource_kind": "bucket",
        "account_id": ACCOUNT,
        "resource_group": "rg-prod",
        "region": "us-south",
        "config": {"firewall": {"allowed_network_type": ["public"]}, "hard_quota": 10},
    }
    denied = http("POST", "/v1/admission", {"operation": "create", "resource": bucket})
    assert denied.status_code == 200, denied.text
    decision = denied.json()
    assert decision["allowed"] is False
    assert [(v["rule_id"], v["action"]) for v in decision["violations"]] == [(rule.rule_id, "disallow")]
    assert decision["violations"][0]["details"][0]["property"] == "firewall.allowed_network_type"

    sandbox = dict(bucket, resource_group="rg-sandbox")
    assert http("POST", "/v1/admission", {"operation": "create", "resource": sandbox}).json()["allowed"] is True

    fetched = governance.get_rule_attachment(rule_id=rule.rule_id, attachment_id=attachment.attachment_id)
    etag = fetched.get_headers()["ETag"]
    assert RuleAttachment.from_dict(fetched.get_result()).account_id == ACCOUNT
    updated = governance.update_rule_attachment(
        rule_id=rule.rule_id,
        attachment_id=attachment.attachment_id,
        if_match=etag,
        account_id=ACCOUNT,
        included_scope=RuleScope(scope_id="rg-other", scope_type="account.resource_group"),
    )
    assert RuleAttachment.from_dict(updated.get_result()).excluded_scopes == []
    # Attached elsewhere now: the same request is allowed, from the rebuilt policy.
    assert http("POST", "/v1/admission", {"operation": "create", "resource": bucket}).json()["allowed"] is True

    assert (
        governance.delete_rule_attachment(rule_id=rule.rule_id, attachment_id=attachment.attachment_id).get_status_code()
        == 204
    )
    with pytest.raises(ApiException) as gone:
        governance.get_rule_attachment(rule_id=rule.rule_id, attachment_id=attachment.attachment_id)
    assert gone.value.status_code == 404

    log = http("GET", "/v1/admission/decisions?allowed=false").json()["decisions"]
    assert log and log[0]["decision_id"] == decision["decision_id"]
    assert log[0]["resource"]["id"] == "crn:v1:bucket:b1"


def test_templates_over_http_fill_defaults_and_refuse_clashes(http):
    template = {
        "account_id": ACCOUNT,
        "name": "private buckets",
        "description": "default buckets to private traffic",
        "target": {
            "service_name": "cloud-object-storage",
            "resource_kind": "bucket",
            "additional_target_attributes": [{"name": "location", "value": "us-south"}],
        },
        "customized_defaults": [
            {"property": "firewall.allowed_network_type", "value": ["private"]},
            {"property": "storage_class", "value": "smart"},
        ],
    }
    created = http(
        "POST",
        "/config/v1/templates",
        {"templates": [{"request_id": "t1", "template": template}, {"template": dict(template, name="")}]},
    )
    assert created.status_code == 207, created.text
    answers = created.json()["templates"]
    assert [answer["status_code"] for answer in answers] == [201, 400]
    template_id = answers[0]["template"]["template_id"]
    assert "/templates/1/template/name" in answers[1]["errors"][0]["message"]

    listed = http("GET", f"/config/v1/templates?account_id={ACCOUNT}").json()
    assert [item["template_id"] for item in listed["templates"]] == [template_id]

    fetched = http("GET", f"/config/v1/templates/{template_id}")
    updated = http(
        "PUT",
        f"/config/v1/templates/{template_id}",
        dict(template, description="changed"),
        headers={"If-Match": fetched.headers["ETag"]},
    )
    assert updated.status_code == 200 and updated.json()["description"] == "changed"

    scope = {"scope_id": ACCOUNT, "scope_type": "account"}
    attached = http(
        "POST", f"/config/v1/templates/{template_id}/attachments", {"attachments": [{"account_id": ACCOUNT, "included_scope": scope}]}
    )
    assert attached.status_code == 201, attached.text
    attachment_id = attached.json()["attachments"][0]["attachment_id"]
    assert attached.json()["attachments"][0]["template_id"] == template_id

    # A second template defaulting `storage_class` for the same scope is refused at attach time.
    other = http(
        "POST",
        "/config/v1/templates",
        {"templates": [{"template": dict(template, name="other", customized_defaults=[{"property": "storage_class", "value": "cold"}])}]},
    ).json()["templates"][0]["template"]["template_id"]
    clash = http(
        "POST", f"/config/v1/templates/{other}/attachments", {"attachments": [{"account_id": ACCOUNT, "included_scope": scope}]}
    )
    assert clash.status_code == 409, clash.text
    assert "storage_class" in clash.json()["errors"][0]["message"]

    decision = http(
        "POST",
        "/v1/admission",
        {
            "operation": "create",
            "resource": {
                "name": "new-bucket",
                "service_name": "cloud-object-storage",
                "resource_kind": "bucket",
                "account_id": ACCOUNT,
                "region": "us-south",
                "config": {"storage_class": "standard"},
            },
        },
    ).json()
    assert decision["allowed"] is True
    assert decision["templates_applied"] == [template_id]
    assert decision["patch"] == [{"op": "add", "path": "/config/firewall", "value": {"allowed_network_type": ["private"]}}]
    assert decision["resource"]["config"]["storage_class"] == "standard"

    attachments = http("GET", f"/config/v1/templates/{template_id}/attachments").json()
    assert attachments["total_count"] == 1
    one = http("GET", f"/config/v1/templates/{template_id}/attachments/{attachment_id}")
    moved = http(
        "PUT",
        f"/config/v1/templates/{template_id}/attachments/{attachment_id}",
        {"account_id": ACCOUNT, "included_scope": {"scope_id": "rg-x", "scope_type": "account.resource_group"}},
        headers={"If-Match": one.headers["ETag"]},
    )
    assert moved.status_code == 200, moved.text
    assert http("DELETE", f"/config/v1/templates/{template_id}/attachments/{attachment_id}").status_code == 204
    assert http("DELETE", f"/config/v1/templates/{template_id}").status_code == 204
    assert http("GET", f"/config/v1/templates/{template_id}").status_code == 404
