"""The `alerts:` block of a tenant YAML: defaults, channels, and errors that name the field."""

from __future__ import annotations

import pytest

from blocks_pipelines.tenants.alert_policy import EmailChannel, FileChannel, SnsChannel, WebhookChannel
from blocks_pipelines.tenants.config import TenantConfigError, load_tenant_file
from tests.test_tenants_registry import _demo, _write


def test_a_tenant_without_alerts_block_gets_the_defaults(tmp_path):
    tenant = load_tenant_file(_write(tmp_path, _demo()))
    assert tenant.alerts.min_impact_usd == 50.0 and tenant.alerts.sensitivity == 4.0
    assert [type(c) for c in tenant.alerts.channels] == [FileChannel]


def test_channels_parse_by_type(tmp_path):
    data = _demo()
    data["alerts"] = {
        "min_impact_usd": 200,
        "channels": [
            {"type": "slack", "url_env": "GLOBEX_SLACK_WEBHOOK"},
            {
                "type": "email",
                "to": ["finops@globex.example"],
                "from": "blocks@globex.example",
                "smtp_port": 587,
                "starttls": True,
                "username_env": "SMTP_USER",
                "password_env": "SMTP_PASSWORD",
            },
            {"type": "sns", "topic_arn": "arn:aws:sns:us-east-1:222222222222:cost-alerts"},
        ],
    }
    tenant = load_tenant_file(_write(tmp_path, data))
    slack, email, sns = tenant.alerts.channels
    assert isinstance(slack, WebhookChannel) and slack.url_env == "GLOBEX_SLACK_WEBHOOK"
    assert isinstance(email, EmailChannel) and email.sender == "blocks@globex.example" and email.starttls
    assert isinstance(sns, SnsChannel) and sns.topic_arn.endswith(":cost-alerts")
    assert tenant.alerts.min_impact_usd == 200


@pytest.mark.parametrize(
    "alerts, field, expected",
    [
        ({"min_impact_usd": -5}, "alerts.min_impact_usd", "greater than or equal"),
        ({"channels": [{"type": "pager"}]}, "alerts.channels.0", "does not match any of the expected tags"),
        ({"channels": [{"type": "slack"}]}, "alerts.channels.0", "exactly one of url or url_env"),
        ({"channels": [{"type": "slack", "url_env": "lower_case"}]}, "alerts.channels.0", "pattern"),
        ({"channels": [{"type": "sns", "topic_arn": "cost-alerts"}]}, "alerts.channels.0", "pattern"),
        ({"channels": [{"type": "email", "to": []}]}, "alerts.channels.0", "at least 1"),
    ],
)
def test_a_bad_alerts_block_names_the_field(tmp_path, alerts, field, expected):
    data = _demo()
    data["alerts"] = alerts
    path = _write(tmp_path, data)
    with pytest.raises(TenantConfigError) as err:
        load_tenant_file(path)
    message = str(err.value)
    assert str(path) in message and f"field '{field}" in message and expected in message
