"""SCC v3 configuration API driven by IBM's own SDK (ibm-scc 5.0.0).

Every response is also parsed with the SDK's model class (`Model.from_dict`), which raises on a
missing required field: that is the compatibility proof.
"""

import pytest
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import BearerTokenAuthenticator
from ibm_scc.security_and_compliance_center_api_v3 import (
    ControlLibrary,
    ControlLibraryCollection,
    ControlPrototype,
    ControlSpecificationPrototype,
    AssessmentPrototype,
    CompareProfileResponse,
    DefaultParameters,
    MultiCloudScopePayloadById,
    Parameter,
    Profile,
    ProfileAttachment,
    ProfileAttachmentCollection,
    ProfileAttachmentResponse,
    ProfileCollection,
    ProfileControlsPrototype,
    ProfileDefaultParametersResponse,
    ProviderType,
    ProviderTypeInstance,
    ProviderTypeInstanceCollection,
    ProviderTypeCollection,
    AttachmentNotifications,
    AttachmentNotificationsControls,
    Rule,
    RuleCollection,
    RuleTargetPrototype,
    RequiredConfigConditionBase,
    Scope,
    ScopeCollection,
    ScopePropertyScopeId,
    ScopePropertyScopeType,
    ScopePrototype,
    SecurityAndComplianceCenterApiV3,
    Settings,
    SubScope,
    SubScopeCollection,
    SubScopeResponse,
    Target,
    TargetCollection,
    TestEvent,
    EventNotificationsPrototype,
    Import,
    RuleParameter,
)


@pytest.fixture(scope="module")
def service(palisade):
    url, key, _ = palisade
    client = SecurityAndComplianceCenterApiV3(authenticator=BearerTokenAuthenticator(key))
    client.set_service_url(url)
    return client


@pytest.fixture(scope="module")
def instance_id(palisade):
    return palisade[2]


def test_settings_and_test_event(service, instance_id):
    settings = service.get_settings(instance_id=instance_id).get_result()
    Settings.from_dict(settings)
    updated = service.update_settings(
        instance_id=instance_id,
        event_notifications=EventNotificationsPrototype(
            instance_crn="crn:v1:bluemix:public:event-notifications:us-south:a/abc::", source_name="palisade"
        ),
    ).get_result()
    assert Settings.from_dict(updated).event_notifications.source_name == "palisade"
    event = service.post_test_event(instance_id=instance_id)
    assert event.get_status_code() == 202
    assert TestEvent.from_dict(event.get_result()).success is True


def make_rule(service, instance_id, description="S3 buckets block public ACLs"):
    response = service.create_rule(
        instance_id=instance_id,
        description=description,
        target=RuleTargetPrototype(service_name="s3", resource_kind="bucket"),
        required_config=RequiredConfigConditionBase(
            property="public_access_block.block_public_acls", operator="is_true"
        ),
        version="1.0.0",
        import_=Import(parameters=[RuleParameter(name="min_days", display_name="Minimum days", type="numeric")]),
        labels=["s3", "nist"],
    )
    assert response.get_status_code() == 201
    return response


def test_rules_crud_with_etags(service, instance_id):
    created = make_rule(service, instance_id)
    rule = Rule.from_dict(created.get_result())
    etag = created.get_headers()["ETag"]
    got = service.get_rule(instance_id=instance_id, rule_id=rule.id)
    assert Rule.from_dict(got.get_result()).description == "S3 buckets block public ACLs"
    assert got.get_headers()["ETag"] == etag

    replaced = service.replace_rule(
        instance_id=instance_id,
        rule_id=rule.id,
        if_match=etag,
        description="S3 buckets block public policies",
        target=RuleTargetPrototype(service_name="s3", resource_kind="bucket"),
        required_config=RequiredConfigConditionBase(
            property="public_access_block.block_public_policy", operator="is_true"
        ),
    )
    assert Rule.from_dict(replaced.get_result()).description == "S3 buckets block public policies"
    assert replaced.get_headers()["ETag"] != etag
    with pytest.raises(ApiException) as stale:
        service.replace_rule(
            instance_id=instance_id,
            rule_id=rule.id,
            if_match=etag,
            description="stale",
            target=RuleTargetPrototype(service_name="s3", resource_kind="bucket"),
            required_config=RequiredConfigConditionBase(property="x", operator="is_true"),
        )
    assert stale.value.code == 412

    with pytest.raises(ApiException) as invalid:
        service.create_rule(
            instance_id=instance_id,
            description="bad",
            target=RuleTargetPrototype(service_name="s3", resource_kind="bucket"),
            required_config=RequiredConfigConditionBase(property="x", operator="no_such_operator"),
        )
    assert invalid.value.code == 400

    listed = service.list_rules(instance_id=instance_id, type="user_defined", search="policies", service_name="s3")
    collection = RuleCollection.from_dict(listed.get_result())
    assert [found.id for found in collection.rules] == [rule.id]
    service.delete_rule(instance_id=instance_id, rule_id=rule.id)
    with pytest.raises(ApiException) as gone:
        service.get_rule(instance_id=instance_id, rule_id=rule.id)
    assert gone.value.code == 404


def make_library(service, instance_id, rule_id):
    return service.create_control_library(
        instance_id=instance_id,
        control_library_name="Palisade test library",
        control_library_description="controls for the SDK test",
        control_library_type="custom",
        control_library_version="1.0.0",
        controls=[
            ControlPrototype(
                control_name="AC-3",
                control_description="Access enforcement",
                control_category="Access Control",
                control_requirement=True,
                control_specifications=[
                    ControlSpecificationPrototype(
                        component_id="s3",
                        environment="aws",
                        control_specification_description="buckets are private",
                        assessments=[AssessmentPrototype(assessment_id=rule_id, assessment_description="block public ACLs")],
                    )
                ],
            )
        ],
    )


def test_control_libraries_profiles_scopes_and_attachments(service, instance_id):
    rule = Rule.from_dict(make_rule(service, instance_id, "for the library").get_result())
    created = make_library(service, instance_id, rule.id)
    assert created.get_status_code() == 201
    library = ControlLibrary.from_dict(created.get_result())
    assert library.controls_count == 1
    control = library.controls[0]
    assessment = control.control_specifications[0].assessments[0]
    assert assessment.assessment_id == rule.id
    assert [p.parameter_name for p in assessment.parameters] == ["min_days"]

    got = ControlLibrary.from_dict(service.get_control_library(instance_id=instance_id, control_library_id=library.id).get_result())
    assert got.control_library_name == "Palisade test library"
    listed = ControlLibraryCollection.from_dict(service.list_control_libraries(instance_id=instance_id, limit=50).get_result())
    assert library.id in [item.id for item in listed.control_libraries]
    replaced = service.replace_custom_control_library(
        instance_id=instance_id,
        control_library_id=library.id,
        control_library_name="Palisade test library v2",
        control_library_description="renamed",
        control_library_type="custom",
        control_library_version="1.1.0",
        controls=[ControlPrototype.from_dict({**control.to_dict(), "control_requirement": True})],
    ).get_result()
    assert ControlLibrary.from_dict(replaced).control_library_version == "1.1.0"

    profile_response = service.create_profile(
        instance_id=instance_id,
        profile_name="SDK profile",
        profile_version="1.0.0",
        profile_description="made by the SDK test",
        controls=[ProfileControlsPrototype(control_library_id=library.id, control_id=control.control_id)],
        default_parameters=[
            DefaultParameters(
                assessment_type="automated", assessment_id=rule.id, parameter_name="min_days",
                parameter_default_value="90", parameter_display_name="Minimum days", parameter_type="numeric",
            )
        ],
    )
    assert profile_response.get_status_code() == 201
    profile = Profile.from_dict(profile_response.get_result())
    assert profile.controls_count == 1 and profile.profile_type == "custom"
    assert Profile.from_dict(service.get_profile(instance_id=instance_id, profile_id=profile.id).get_result()).id == profile.id
    assert profile.id in [p.id for p in ProfileCollection.from_dict(service.list_profiles(instance_id=instance_id).get_result()).profiles]
    parameters = ProfileDefaultParametersResponse.from_dict(
        service.list_profile_parameters(instance_id=instance_id, profile_id=profile.id).get_result()
    )
    assert parameters.default_parameters[0].parameter_default_value == "90"
    updated_parameters = service.replace_profile_parameters(
        instance_id=instance_id,
        profile_id=profile.id,
        default_parameters=[
            DefaultParameters(assessment_type="automated", assessment_id=rule.id, parameter_name="min_days",
                              parameter_default_value="30", parameter_type="numeric")
        ],
    ).get_result()
    assert ProfileDefaultParametersResponse.from_dict(updated_parameters).default_parameters[0].parameter_default_value == "30"
    compared_raw = service.compare_profiles(instance_id=instance_id, profile_id=profile.id).get_result()
    assert CompareProfileResponse.from_dict(compared_raw).profile_type == "custom"
    assert compared_raw["controls_changes"]["total_added"] == 0
    replaced_profile = service.replace_profile(
        instance_id=instance_id,
        profile_id=profile.id,
        new_profile_type="custom",
        new_controls=[{"control_library_id": library.id, "control_id": control.control_id}],
        new_default_parameters=[],
        new_profile_name="SDK profile renamed",
    ).get_result()
    assert Profile.from_dict(replaced_profile).profile_name == "SDK profile renamed"

    scope_response = service.create_scope(
        instance_id=instance_id,
        name="production account",
        description="the prod AWS account",
        environment="aws",
        properties=[
            ScopePropertyScopeId(name="scope_id", value="123456789012"),
            ScopePropertyScopeType(name="scope_type", value="account"),
        ],
    )
    assert scope_response.get_status_code() == 201
    scope = Scope.from_dict(scope_response.get_result())
    assert Scope.from_dict(service.get_scope(instance_id=instance_id, scope_id=scope.id).get_result()).name == "production account"
    scopes = ScopeCollection.from_dict(service.list_scopes(instance_id=instance_id, environment="aws").get_result())
    assert scope.id in [s.id for s in scopes.scopes]
    assert Scope.from_dict(service.update_scope(instance_id=instance_id, scope_id=scope.id, name="prod").get_result()).name == "prod"

    sub = SubScopeResponse.from_dict(
        service.create_subscope(
            instance_id=instance_id,
            scope_id=scope.id,
            subscopes=[ScopePrototype(name="eu buckets", description="only EU", environment="aws",
                                      properties=[ScopePropertyScopeType(name="scope_type", value="account.resource_group")])],
        ).get_result()
    ).subscopes[0]
    assert SubScope.from_dict(service.get_subscope(instance_id=instance_id, scope_id=scope.id, subscope_id=sub.id).get_result()).name == "eu buckets"
    assert sub.id in [s.id for s in SubScopeCollection.from_dict(service.list_subscopes(instance_id=instance_id, scope_id=scope.id).get_result()).subscopes]
    assert SubScope.from_dict(service.update_subscope(instance_id=instance_id, scope_id=scope.id, subscope_id=sub.id, name="EU").get_result()).name == "EU"
    service.delete_subscope(instance_id=instance_id, scope_id=scope.id, subscope_id=sub.id)

    attachment_response = service.create_profile_attachment(
        instance_id=instance_id,
        profile_id=profile.id,
        new_attachments=[
            {
                "name": "prod daily",
                "description": "daily scan of prod",
                "scope": [MultiCloudScopePayloadById(id=scope.id).to_dict()],
                "schedule": "daily",
                "status": "enabled",
                "notifications": AttachmentNotifications(
                    enabled=True, controls=AttachmentNotificationsControls(threshold_limit=5, failed_control_ids=[])
                ).to_dict(),
                "attachment_parameters": [
                    Parameter(assessment_type="automated", assessment_id=rule.id, parameter_name="min_days",
                              parameter_type="numeric", parameter_value="7").to_dict()
                ],
            }
        ],
    )
    assert attachment_response.get_status_code() == 201
    attachment = ProfileAttachmentResponse.from_dict(attachment_response.get_result()).attachments[0]
    assert attachment.next_scan_time is not None
    got_attachment = ProfileAttachment.from_dict(
        service.get_profile_attachment(instance_id=instance_id, profile_id=profile.id, attachment_id=attachment.id).get_result()
    )
    assert got_attachment.schedule == "daily"
    for listing in (
        service.list_profile_attachments(instance_id=instance_id, profile_id=profile.id).get_result(),
        service.list_instance_attachments(instance_id=instance_id).get_result(),
    ):
        assert attachment.id in [a.id for a in ProfileAttachmentCollection.from_dict(listing).attachments]
    replaced_attachment = service.replace_profile_attachment(
        instance_id=instance_id,
        profile_id=profile.id,
        attachment_id=attachment.id,
        attachment_parameters=[],
        description="weekly now",
        name="prod weekly",
        notifications=AttachmentNotifications(enabled=False),
        schedule="every_7_days",
        scope=[MultiCloudScopePayloadById(id=scope.id)],
        status="enabled",
    ).get_result()
    assert ProfileAttachment.from_dict(replaced_attachment).schedule == "every_7_days"
    upgraded = service.upgrade_attachment(instance_id=instance_id, profile_id=profile.id, attachment_id=attachment.id,
                                          attachment_parameters=[]).get_result()
    assert ProfileAttachment.from_dict(upgraded).profile_id == profile.id

    with pytest.raises(ApiException) as in_use:
        service.delete_scope(instance_id=instance_id, scope_id=scope.id)
    assert in_use.value.code == 409
    service.delete_profile_attachment(instance_id=instance_id, profile_id=profile.id, attachment_id=attachment.id)
    service.delete_scope(instance_id=instance_id, scope_id=scope.id)
    service.delete_custom_profile(instance_id=instance_id, profile_id=profile.id)
    service.delete_custom_control_library(instance_id=instance_id, control_library_id=library.id)
    with pytest.raises(ApiException) as gone:
        service.get_control_library(instance_id=instance_id, control_library_id=library.id)
    assert gone.value.code == 404


def test_pagination_follows_next(service, instance_id):
    for index in range(5):
        service.create_scope(instance_id=instance_id, name=f"paged {index}", description="", environment="gcp",
                             properties=[ScopePropertyScopeType(name="scope_type", value="account")])
    first = ScopeCollection.from_dict(service.list_scopes(instance_id=instance_id, limit=2, environment="gcp").get_result())
    assert first.total_count == 5 and len(first.scopes) == 2 and first.next is not None
    from ibm_scc.security_and_compliance_center_api_v3 import ScopesPager

    pager = ScopesPager(client=service, instance_id=instance_id, limit=2, environment="gcp")
    names = [scope["name"] for scope in pager.get_all()]
    assert sorted(names) == [f"paged {index}" for index in range(5)]


def test_targets(service, instance_id):
    created = service.create_target(instance_id=instance_id, account_id="62ecf99b240144dea9125666249edfcb",
                                    trusted_profile_id="Profile-9ac9f3e5", name="other account")
    assert created.get_status_code() == 201
    target = Target.from_dict(created.get_result())
    assert Target.from_dict(service.get_target(instance_id=instance_id, target_id=target.id).get_result()).name == "other account"
    assert target.id in [t.id for t in TargetCollection.from_dict(service.list_targets(instance_id=instance_id).get_result()).targets]
    replaced = service.replace_target(instance_id=instance_id, target_id=target.id, account_id="62ecf99b240144dea9125666249edfcb",
                                      trusted_profile_id="Profile-9ac9f3e5", name="renamed").get_result()
    assert Target.from_dict(replaced).name == "renamed"
    service.delete_target(instance_id=instance_id, target_id=target.id)


def test_provider_types_and_instances(service, instance_id):
    types = ProviderTypeCollection.from_dict(service.list_provider_types(instance_id=instance_id).get_result())
    workload = next(t for t in types.provider_types if t.type == "workload-protection")
    assert ProviderType.from_dict(service.get_provider_type_by_id(instance_id=instance_id, provider_type_id=workload.id).get_result()).mode == "PULL"
    created = service.create_provider_type_instance(instance_id=instance_id, provider_type_id=workload.id, name="wp",
                                                    attributes={"wp_crn": "crn:v1:wp"})
    assert created.get_status_code() == 201
    instance = ProviderTypeInstance.from_dict(created.get_result())
    listed = ProviderTypeInstanceCollection.from_dict(
        service.list_provider_type_instances(instance_id=instance_id, provider_type_id=workload.id).get_result()
    )
    assert [i.id for i in listed.provider_type_instances] == [instance.id]
    assert ProviderTypeInstance.from_dict(
        service.get_provider_type_instance(instance_id=instance_id, provider_type_id=workload.id, provider_type_instance_id=instance.id).get_result()
    ).name == "wp"
    patched = service.update_provider_type_instance(instance_id=instance_id, provider_type_id=workload.id,
                                                    provider_type_instance_id=instance.id, name="renamed").get_result()
    assert ProviderTypeInstance.from_dict(patched).name == "renamed"
    with pytest.raises(ApiException) as over_limit:
        service.create_provider_type_instance(instance_id=instance_id, provider_type_id=workload.id, name="second")
    assert over_limit.value.code == 409
    service.delete_provider_type_instance(instance_id=instance_id, provider_type_id=workload.id, provider_type_instance_id=instance.id)
