"""Notifications v1 driven by IBM's own SDK (ibm-scc 1.1.2, `ibm_scc.notifications_v1`).

Every method of `NotificationsV1` is called; responses are parsed with the SDK's model classes.
The channel test sends a real webhook to a receiver this test runs on 127.0.0.1 (the server is
started with `--allow-insecure-webhooks` for that); the JWT's signature itself is verified by the
Rust tests, since this environment has no RSA library for Python.
"""

import base64
import http.server
import json
import threading

import pytest
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import BearerTokenAuthenticator
from ibm_scc.notifications_v1 import (
    Channel,
    ChannelDelete,
    ChannelGet,
    ChannelInfo,
    ChannelsDelete,
    ChannelsList,
    NotificationChannelAlertSourceItem,
    NotificationsV1,
    PublicKeyGet,
)
from ibm_scc import notifications_v1  # `TestChannel` by module, so pytest does not collect it

ACCOUNT = "sdk-account"


class Receiver(http.server.BaseHTTPRequestHandler):
    bodies = []

    def do_POST(self):  # noqa: N802 (the http.server API)
        length = int(self.headers.get("Content-Length", 0))
        Receiver.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def receiver_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


@pytest.fixture(scope="module")
def notifications(palisade):
    url, key, instance_id = palisade
    service = NotificationsV1(authenticator=BearerTokenAuthenticator(key))
    service.set_service_url(f"{url}/instances/{instance_id}/notifications")
    return service


def jwt_claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_channel_lifecycle(notifications, receiver_url):
    created = notifications.create_notification_channel(
        account_id=ACCOUNT,
        name="soc-webhook",
        type="Webhook",
        endpoint=receiver_url,
        description="SOC intake",
        severity=["critical", "high"],
        enabled=True,
        alert_source=[NotificationChannelAlertSourceItem(provider_name="NA", finding_types=["bot_server"])],
    )
    info = ChannelInfo.from_dict(created.get_result())
    assert info.status_code == 200 and info.channel_id
    channel_id = info.channel_id

    second = ChannelInfo.from_dict(
        notifications.create_notification_channel(
            account_id=ACCOUNT, name="all-findings", type="Webhook", endpoint=receiver_url
        ).get_result()
    ).channel_id

    listed = ChannelsList.from_dict(notifications.list_all_channels(account_id=ACCOUNT, limit=10, skip=0).get_result())
    assert [channel.name for channel in listed.channels] == ["soc-webhook", "all-findings"]

    fetched = ChannelGet.from_dict(
        notifications.get_notification_channel(account_id=ACCOUNT, channel_id=channel_id).get_result()
    ).channel
    assert isinstance(fetched, Channel)
    assert (fetched.severity.critical, fetched.severity.high, fetched.severity.medium) == (True, True, False)
    assert fetched.alert_source[0].provider_name == "NA"
    assert fetched.enabled is True

    updated = notifications.update_notification_channel(
        account_id=ACCOUNT,
        channel_id=channel_id,
        name="soc-webhook-2",
        type="Webhook",
        endpoint=receiver_url,
        severity=["critical", "high", "medium"],
        enabled=True,
    ).get_result()
    assert ChannelInfo.from_dict(updated).channel_id == channel_id
    again = notifications.get_notification_channel(account_id=ACCOUNT, channel_id=channel_id).get_result()
    assert again["channel"]["name"] == "soc-webhook-2"
    assert again["channel"]["severity"]["medium"] is True

    tested = notifications_v1.TestChannel.from_dict(
        notifications.test_notification_channel(account_id=ACCOUNT, channel_id=channel_id).get_result()
    )
    assert tested.test == "success"
    assert len(Receiver.bodies) == 1
    claims = jwt_claims(Receiver.bodies[0]["data"])
    assert claims["test"] is True and claims["iss"] == "palisade"

    key = PublicKeyGet.from_dict(notifications.get_public_key(account_id=ACCOUNT).get_result())
    assert key.public_key.startswith("-----BEGIN PUBLIC KEY-----")

    with pytest.raises(ApiException) as refused:
        notifications.create_notification_channel(
            account_id=ACCOUNT, name="bad", type="Pager", endpoint=receiver_url
        )
    assert refused.value.status_code == 400

    deleted = ChannelDelete.from_dict(
        notifications.delete_notification_channel(account_id=ACCOUNT, channel_id=channel_id).get_result()
    )
    assert deleted.channel_id == channel_id
    bulk = ChannelsDelete.from_dict(
        notifications.delete_notification_channels(account_id=ACCOUNT, request_body=[second]).get_result()
    )
    assert bulk.message == "Success"
    assert notifications.list_all_channels(account_id=ACCOUNT).get_result()["channels"] == []
    with pytest.raises(ApiException) as gone:
        notifications.get_notification_channel(account_id=ACCOUNT, channel_id=channel_id)
    assert gone.value.status_code == 404
