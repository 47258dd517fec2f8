"""Findings v1 driven by IBM's own SDK (ibm-scc 1.1.2, `ibm_scc.findings_v1`).

Every method of `FindingsV1` is called; responses are parsed with the SDK's model classes
(`ApiNote.from_dict` …), which raise on a missing required field: that is the compatibility proof.
"""

import json

import pytest
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import BearerTokenAuthenticator
from ibm_scc.findings_v1 import (
    ApiListNoteOccurrencesResponse,
    ApiListNotesResponse,
    ApiListOccurrencesResponse,
    ApiListProvidersResponse,
    ApiNote,
    ApiNoteRelatedUrl,
    ApiOccurrence,
    Card,
    CardElementBreakdownCardElement,
    CardElementTimeSeriesCardElement,
    Context,
    DataTransferred,
    Finding,
    FindingType,
    FindingsV1,
    Kpi,
    KpiType,
    NetworkConnection,
    RemediationStep,
    Reporter,
    Section,
    SocketAddress,
    ValueTypeFindingCountValueType,
    ValueTypeKpiValueType,
)

ACCOUNT = "sdk-account"
PROVIDER = "sdk-partner"


@pytest.fixture(scope="module")
def findings(palisade):
    url, key, instance_id = palisade
    service = FindingsV1(account_id=ACCOUNT, authenticator=BearerTokenAuthenticator(key))
    service.set_service_url(f"{url}/instances/{instance_id}/findings")
    return service


def note_name(note_id, provider=PROVIDER):
    return f"{ACCOUNT}/providers/{provider}/notes/{note_id}"


REPORTER = Reporter(id="sdk-tool", title="SDK acceptance tool", url="https://example.com/tool")


def test_notes_of_every_kind(findings):
    created = findings.create_note(
        provider_id=PROVIDER,
        short_description="Traffic to a known botnet",
        long_description="A workload talked to a botnet command-and-control server.",
        kind="FINDING",
        id="botnet",
        reported_by=REPORTER,
        related_url=[ApiNoteRelatedUrl(label="runbook", url="https://example.com/runbook")],
        finding=FindingType(
            severity="HIGH",
            next_steps=[RemediationStep(title="Isolate the VM", url="https://example.com/isolate")],
        ),
        shared=True,
    )
    assert created.get_status_code() == 200
    note = ApiNote.from_dict(created.get_result())
    assert (note.id, note.kind, note.finding.severity) == ("botnet", "FINDING", "HIGH")
    assert note.create_time is not None

    findings.create_note(
        provider_id=PROVIDER,
        short_description="Bytes to bad peers",
        long_description="Bytes sent to peers with a bad reputation.",
        kind="KPI",
        id="bad-bytes",
        reported_by=REPORTER,
        kpi=KpiType(aggregation_type="SUM", severity="MEDIUM"),
    )
    findings.create_note(
        provider_id=PROVIDER,
        short_description="Network",
        long_description="Network section",
        kind="SECTION",
        id="network-section",
        reported_by=REPORTER,
        section=Section(title="Network", image="network.svg"),
    )
    card = findings.create_note(
        provider_id=PROVIDER,
        short_description="Botnet card",
        long_description="Botnet findings and bytes",
        kind="CARD",
        id="botnet-card",
        reported_by=REPORTER,
        card=Card(
            section="Network",
            title="Botnets",
            subtitle="last days",
            order=1,
            finding_note_names=[note_name("botnet")],
            elements=[
                # Not NUMERIC: the SDK cannot read a NUMERIC element back (its
                # NumericCardElementValueType.from_dict passes the fields to a constructor that
                # takes none), so a note list holding one would not parse. Palisade accepts it.
                CardElementBreakdownCardElement(
                    text="Findings",
                    kind="BREAKDOWN",
                    default_time_range="2d",
                    value_types=[
                        ValueTypeFindingCountValueType(
                            kind="FINDING_COUNT", finding_note_names=[note_name("botnet")], text="findings"
                        )
                    ],
                ),
                CardElementTimeSeriesCardElement(
                    text="Bytes",
                    kind="TIME_SERIES",
                    default_time_range="3d",
                    default_interval="d",
                    value_types=[ValueTypeKpiValueType(kind="KPI", kpi_note_name=note_name("bad-bytes"), text="bytes")],
                ),
            ],
        ),
    ).get_result()
    assert ApiNote.from_dict(card).card.elements[1].kind == "TIME_SERIES"

    # A body that does not match its kind is refused, naming the field.
    with pytest.raises(ApiException) as refused:
        findings.create_note(
            provider_id=PROVIDER,
            short_description="s",
            long_description="l",
            kind="FINDING",
            id="mismatch",
            reported_by=REPORTER,
            section=Section(title="t", image="i"),
        )
    assert refused.value.status_code == 400
    assert "/finding" in json.dumps(refused.value.http_response.json())

    with pytest.raises(ApiException) as duplicate:
        findings.create_note(
            provider_id=PROVIDER, short_description="s", long_description="l", kind="FINDING",
            id="botnet", reported_by=REPORTER, finding=FindingType(severity="LOW"),
        )
    assert duplicate.value.status_code == 409


def test_list_get_and_update_notes(findings):
    first = ApiListNotesResponse.from_dict(findings.list_notes(provider_id=PROVIDER, page_size=2).get_result())
    assert [note.id for note in first.notes] == ["bad-bytes", "botnet"]
    rest = ApiListNotesResponse.from_dict(
        findings.list_notes(provider_id=PROVIDER, page_size=10, page_token=first.next_page_token).get_result()
    )
    assert [note.id for note in rest.notes] == ["botnet-card", "network-section"]
    assert rest.next_page_token == ""

    fetched = ApiNote.from_dict(findings.get_note(provider_id=PROVIDER, note_id="botnet").get_result())
    assert fetched.reported_by.title == "SDK acceptance tool"

    updated = findings.update_note(
        provider_id=PROVIDER,
        note_id="botnet",
        short_description="Traffic to a known botnet",
        long_description="Updated description.",
        kind="FINDING",
        id="botnet",
        reported_by=REPORTER,
        finding=FindingType(severity="CRITICAL"),
    ).get_result()
    assert ApiNote.from_dict(updated).finding.severity == "CRITICAL"

    providers = ApiListProvidersResponse.from_dict(findings.list_providers(limit=10, skip=0).get_result())
    assert [provider.id for provider in providers.providers] == [PROVIDER]
    assert providers.providers[0].name == f"{ACCOUNT}/providers/{PROVIDER}"
    assert providers.total_count == 1
    ranged = findings.list_providers(start_provider_id="a", end_provider_id="b").get_result()
    assert ranged["providers"] == []


def botnet_occurrence(findings, occurrence_id, replace=None):
    return findings.create_occurrence(
        provider_id=PROVIDER,
        note_name=note_name("botnet"),
        kind="FINDING",
        id=occurrence_id,
        resource_url="https://cloud.example.com/vm/1",
        remediation="Isolate the VM and rotate its credentials.",
        context=Context(region="us-south", resource_crn="crn:v1:vm-1", resource_name="vm-1",
                        resource_type="Instance", service_name="is"),
        finding=Finding(
            severity="HIGH",
            certainty="MEDIUM",
            next_steps=[RemediationStep(title="Isolate", url="https://example.com/isolate")],
            network_connection=NetworkConnection(
                direction="OUTBOUND", protocol="TCP",
                client=SocketAddress(address="10.240.0.4", port=51000),
                server=SocketAddress(address="203.0.113.7", port=443),
            ),
            data_transferred=DataTransferred(client_bytes=1200, server_bytes=56000, client_packets=10, server_packets=40),
        ),
        reference_data={"source": "flow-log", "flows": 3},
        replace_if_exists=replace,
    )


def test_occurrences_with_replace_if_exists(findings):
    created = botnet_occurrence(findings, "occ-1")
    occurrence = ApiOccurrence.from_dict(created.get_result())
    assert occurrence.finding.network_connection.server.address == "203.0.113.7"
    assert created.get_result()["occurrence_count"] == 1

    with pytest.raises(ApiException) as duplicate:
        botnet_occurrence(findings, "occ-1")
    assert duplicate.value.status_code == 409
    replaced = botnet_occurrence(findings, "occ-1", replace=True).get_result()
    assert replaced["occurrence_count"] == 2, "reported again: counted, not duplicated"

    botnet_occurrence(findings, "occ-2")
    kpi = findings.create_occurrence(
        provider_id=PROVIDER, note_name=note_name("bad-bytes"), kind="KPI", id="kpi-1",
        kpi=Kpi(value=56000, total=100000),
    ).get_result()
    assert ApiOccurrence.from_dict(kpi).kpi.value == 56000

    with pytest.raises(ApiException) as wrong_kind:
        findings.create_occurrence(provider_id=PROVIDER, note_name=note_name("bad-bytes"), kind="FINDING", id="x")
    assert wrong_kind.value.status_code == 400

    page = ApiListOccurrencesResponse.from_dict(
        findings.list_occurrences(provider_id=PROVIDER, page_size=2).get_result()
    )
    assert [o.id for o in page.occurrences] == ["kpi-1", "occ-1"]
    rest = ApiListOccurrencesResponse.from_dict(
        findings.list_occurrences(provider_id=PROVIDER, page_token=page.next_page_token).get_result()
    )
    assert [o.id for o in rest.occurrences] == ["occ-2"]

    by_note = ApiListNoteOccurrencesResponse.from_dict(
        findings.list_note_occurrences(provider_id=PROVIDER, note_id="botnet", page_size=10).get_result()
    )
    assert sorted(o.id for o in by_note.occurrences) == ["occ-1", "occ-2"]

    fetched = ApiOccurrence.from_dict(findings.get_occurrence(provider_id=PROVIDER, occurrence_id="occ-1").get_result())
    assert fetched.reference_data == {"source": "flow-log", "flows": 3}
    note = ApiNote.from_dict(findings.get_occurrence_note(provider_id=PROVIDER, occurrence_id="occ-1").get_result())
    assert note.id == "botnet"

    updated = findings.update_occurrence(
        provider_id=PROVIDER, occurrence_id="occ-2", note_name=note_name("botnet"), kind="FINDING", id="occ-2",
        remediation="Already isolated.", context=Context(resource_crn="crn:v1:vm-2"),
        finding=Finding(severity="LOW"),
    ).get_result()
    assert ApiOccurrence.from_dict(updated).remediation == "Already isolated."


def test_graph_queries(findings):
    answer = findings.post_graph(body="{notes{id kind}}", content_type="application/graphql").get_result()
    ids = sorted(note["id"] for note in answer["data"]["notes"])
    assert ids == ["bad-bytes", "botnet", "botnet-card", "network-section"]
    high = findings.post_graph(
        body={"query": '{ occurrences(providerId: "sdk-partner", severity: HIGH) { id } }'}
    ).get_result()
    assert sorted(o["id"] for o in high["data"]["occurrences"]) == ["occ-1"]


def test_deletes(findings):
    assert findings.delete_occurrence(provider_id=PROVIDER, occurrence_id="occ-2").get_status_code() == 204
    with pytest.raises(ApiException) as gone:
        findings.get_occurrence(provider_id=PROVIDER, occurrence_id="occ-2")
    assert gone.value.status_code == 404
    assert findings.delete_note(provider_id=PROVIDER, note_id="network-section").get_status_code() == 204
    with pytest.raises(ApiException) as gone:
        findings.get_note(provider_id=PROVIDER, note_id="network-section")
    assert gone.value.status_code == 404
