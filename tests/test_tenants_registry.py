from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from blocks_pipelines.cli.main import main
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import TenantConfigError, load_registry, load_tenant_file
from tests.conftest import DEMO_TENANTS


def _demo(name="globex") -> dict:
    return yaml.safe_load((DEMO_TENANTS / f"{name}.yaml").read_text())


def _write(dirpath: Path, data: dict, stem: str | None = None) -> Path:
    dirpath.mkdir(parents=True, exist_ok=True)
    path = dirpath / f"{stem or data['id']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_demo_registry_loads_three_formats():
    registry = load_registry(DEMO_TENANTS)
    assert {t.id: t.cur_source.format.value for t in registry} == {
        "acme_corp": "cur1",
        "globex": "cur2",
        "initech": "focus",
    }
    globex = next(t for t in registry if t.id == "globex")
    assert len(globex.all_account_ids()) == 5
    assert globex.organization.account_ou()["222222222202"] == "Root/Engineering/Prod"
    assert globex.guardrails.max_hourly_commitment == 40.0


@pytest.mark.parametrize(
    "mutate, field, expected",
    [
        (lambda d: d["organization"].update(payer_account_id="12345"), "organization.payer_account_id", "pattern"),
        (lambda d: d["cur_source"].update(format="cur3"), "cur_source.format", "cur1"),
        (lambda d: d.pop("history_start"), "history_start", "Field required"),
        (lambda d: d.update(billing_mode="reseller"), "billing_mode", "blocks_vendor"),
        (lambda d: d["guardrails"].update(max_hourly_commitment=-1), "guardrails.max_hourly_commitment", "greater"),
        (lambda d: d.update(colour="blue"), "colour", "Extra inputs"),
        (lambda d: d["cur_source"].update(uri="s3://Bad_Bucket/x"), "cur_source.uri", "bucket"),
        (
            lambda d: d["connection"].update(scopes=["data_read", "purchase"], purchase_role_arn=None),
            "connection",
            "purchase_role_arn",
        ),
        (
            lambda d: d["organization"]["linked_accounts"][1].update(ou_path="Root/Nowhere"),
            "organization",
            "Root/Nowhere",
        ),
        (
            lambda d: d["organization"]["linked_accounts"][2].update(account_id="222222222202"),
            "organization",
            "more than once",
        ),
    ],
)
def test_invalid_file_names_file_field_and_expectation(tmp_path, mutate, field, expected):
    data = _demo()
    mutate(data)
    path = _write(tmp_path, data, stem="globex")
    with pytest.raises(TenantConfigError) as err:
        load_tenant_file(path)
    message = str(err.value)
    assert str(path) in message
    assert f"field '{field}" in message
    assert expected in message


def test_id_must_match_file_name(tmp_path):
    path = _write(tmp_path, _demo(), stem="other")
    with pytest.raises(TenantConfigError, match="must match the file name"):
        load_tenant_file(path)


def test_not_yaml_and_not_mapping(tmp_path):
    (tmp_path / "x.yaml").write_text("id: [unclosed")
    with pytest.raises(TenantConfigError, match="not valid YAML"):
        load_tenant_file(tmp_path / "x.yaml")
    (tmp_path / "y.yaml").write_text("- a\n- b\n")
    with pytest.raises(TenantConfigError, match="mapping"):
        load_tenant_file(tmp_path / "y.yaml")


def test_registry_reports_every_bad_file(tmp_path):
    good = _demo()
    _write(tmp_path, good)
    for stem in ("bad_one", "bad_two"):
        data = _demo()
        data["id"] = stem
        data["guardrails"]["max_hourly_commitment"] = 0
        _write(tmp_path, data)
    with pytest.raises(TenantConfigError) as err:
        load_registry(tmp_path)
    assert "bad_one.yaml" in str(err.value) and "bad_two.yaml" in str(err.value)


def test_assets_config_env_points_elsewhere(blocks_env, tmp_path, monkeypatch):
    other = tmp_path / "elsewhere"
    _write(other / "tenants", _demo("initech"))
    monkeypatch.setenv("BLOCKS_ASSETS_CONFIG", str(other))
    assert [t.id for t in load_registry(get_settings().tenants_dir)] == ["initech"]
    result = CliRunner().invoke(main, ["tenants", "list"])
    assert result.exit_code == 0, result.output
    assert "initech" in result.output and "globex" not in result.output


def test_cli_add_then_validate_roundtrip(blocks_env):
    runner = CliRunner()
    args = [
        "tenants",
        "add",
        "--id",
        "umbrella",
        "--name",
        "Umbrella",
        "--payer",
        "444444444444",
        "--format",
        "focus",
        "--history-start",
        "2026-01-01",
    ]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    tenant = load_tenant_file(get_settings().tenants_dir / "umbrella.yaml")
    assert tenant.connection.status == "pending" and tenant.connection.scopes == ["data_read"]
    assert len(tenant.connection.external_id) >= 16
    assert runner.invoke(main, args).exit_code != 0  # refuses to overwrite without --force
    result = runner.invoke(main, ["tenants", "validate"])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") == 4


def test_cli_validate_fails_on_bad_file(blocks_env):
    bad = get_settings().tenants_dir / "globex.yaml"
    bad.write_text(bad.read_text().replace('payer_account_id: "222222222222"', "payer_account_id: nope"))
    result = CliRunner().invoke(main, ["tenants", "validate"])
    assert result.exit_code == 1
    assert "globex.yaml" in result.output and "organization.payer_account_id" in result.output


def test_every_command_has_help():
    from blocks_pipelines.cli.main import COMMANDS

    runner = CliRunner()
    for name in COMMANDS:
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "unavailable" not in result.output, name


@pytest.mark.parametrize(
    "flag, value, expected",
    [
        ("--payer", "0099999999999", "an AWS account id is 12 digits, got '0099999999999'"),
        ("--id", "Umbrella", "field 'id': String should match pattern"),
    ],
)
def test_cli_add_names_the_one_bad_value(blocks_env, flag, value, expected):
    args = {"--id": "umbrella", "--name": "Umbrella", "--payer": "444444444444", "--history-start": "2026-01-01"}
    args[flag] = value
    result = CliRunner().invoke(main, ["tenants", "add", *[x for kv in args.items() for x in kv]])
    assert result.exit_code != 0
    assert expected in result.output
    assert "pydantic.dev" not in result.output and "Traceback" not in result.output
    assert not (get_settings().tenants_dir / "umbrella.yaml").exists()


def test_one_tenant_lookup_for_definitions_cli_and_dbt(tmp_path, monkeypatch):
    """resolve_tenant is the only lookup: a tenant whose definitions this process built (here one that is in no
    registry) resolves to that very config, as the shared Dagster compute functions need; any other id is read from
    the registry each time, so a tenant added after start is found, and an unknown id says how to add it."""
    from blocks_pipelines.ingestion.defs import build_ingestion_defs
    from blocks_pipelines.tenants.config import resolve_tenant
    from tests.models_helpers import make_tenant

    unregistered = make_tenant("boundco")
    build_ingestion_defs(unregistered)
    assert resolve_tenant("boundco") is unregistered

    tenants_dir = tmp_path / "tenants"
    monkeypatch.setenv("BLOCKS_ASSETS_CONFIG", str(tmp_path))
    with pytest.raises(KeyError, match="add assets_config/tenants/lateco.yaml"):
        resolve_tenant("lateco")
    _write(tenants_dir, {**_demo("globex"), "id": "lateco", "name": "Late Co"})
    assert resolve_tenant("lateco").name == "Late Co"


AZURE_PATH = "/providers/Microsoft.Billing/billingAccounts/8a1b2c3d-0000-4a00-9000-000000000001"
AZURE_MCA = "8a1b2c3d-0000-4a00-9000-000000000002:9b2c3d4e-0000-4a00-9000-000000000003_2019-05-31"


def test_a_tenant_file_lists_billing_accounts_per_provider(tmp_path):
    data = _demo("initech")
    data["billing_accounts"] = {
        "azure": [AZURE_PATH, AZURE_MCA],
        "gcp": ["01A2B3-C4D5E6-F7A8B9"],
        "oci": ["ocid1.tenancy.oc1..aaaaaaaa5kzqexample"],
        "other": ["datadog-org-42"],
    }
    tenant = load_tenant_file(_write(tmp_path, data))
    assert tenant.billing_account_ids("azure") == [AZURE_PATH, AZURE_MCA]
    assert tenant.billing_account_ids("aws") == ["333333333333"]
    assert tenant.billing_account_ids("gcp") == ["01A2B3-C4D5E6-F7A8B9"]


@pytest.mark.parametrize(
    "provider, value, expected",
    [
        ("gcp", "01A2B3-C4D5E6", "expected XXXXXX-XXXXXX-XXXXXX"),
        ("azure", "not-a-guid", "expected /providers/Microsoft.Billing/billingAccounts/<id>, an EA enrollment number"),
        ("oci", "ocid1.compartment.oc1..aaaa", "expected a tenancy OCID"),
    ],
)
def test_a_malformed_billing_account_names_the_provider_and_the_shape(tmp_path, provider, value, expected):
    data = _demo("initech")
    data["billing_accounts"] = {provider: [value]}
    with pytest.raises(TenantConfigError) as err:
        load_tenant_file(_write(tmp_path, data))
    msg = str(err.value)
    assert f"billing_accounts.{provider}" in msg and repr(value) in msg and expected in msg


def test_one_azure_account_spelled_twice_is_refused(tmp_path):
    data = _demo("initech")
    data["billing_accounts"] = {"azure": [AZURE_PATH, "8A1B2C3D-0000-4A00-9000-000000000001"]}
    with pytest.raises(TenantConfigError, match="listed more than once"):
        load_tenant_file(_write(tmp_path, data))


def test_cli_add_registers_other_clouds_accounts_and_add_account_extends_them(blocks_env):
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "tenants",
            "add",
            "--id",
            "umbrella",
            "--name",
            "Umbrella",
            "--payer",
            "444444444444",
            "--format",
            "focus",
            "--history-start",
            "2026-01-01",
            "--azure-billing-account",
            AZURE_PATH,
            "--oci-tenancy",
            "ocid1.tenancy.oc1..aaaaaaaa5kzqexample",
        ],
    )
    assert result.exit_code == 0, result.output
    path = get_settings().tenants_dir / "umbrella.yaml"
    assert yaml.safe_load(path.read_text())["billing_accounts"] == {
        "azure": [AZURE_PATH],
        "oci": ["ocid1.tenancy.oc1..aaaaaaaa5kzqexample"],
    }  # no empty providers written
    # the same account in another spelling is not added twice; a new GCP account is
    result = runner.invoke(
        main,
        [
            "tenants",
            "add-account",
            "umbrella",
            "--azure-billing-account",
            "8A1B2C3D-0000-4A00-9000-000000000001",
            "--gcp-billing-account",
            "01a2b3-c4d5e6-f7a8b9",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "added 01a2b3-c4d5e6-f7a8b9" in result.output
    tenant = load_tenant_file(path)
    assert tenant.billing_account_ids("azure") == [AZURE_PATH]
    assert tenant.billing_account_ids("gcp") == ["01a2b3-c4d5e6-f7a8b9"]
    before = path.read_text()
    result = runner.invoke(main, ["tenants", "add-account", "umbrella", "--gcp-billing-account", "01A2B3-C4D5E6"])
    assert result.exit_code != 0 and "'01A2B3-C4D5E6' is not a Google Cloud billing account id" in result.output
    assert path.read_text() == before
    assert runner.invoke(main, ["tenants", "add-account", "nobody", "--oci-tenancy", "x"]).exit_code != 0
    assert runner.invoke(main, ["tenants", "validate"]).exit_code == 0


def test_cli_add_refuses_a_malformed_other_cloud_account(blocks_env):
    result = CliRunner().invoke(
        main,
        [
            "tenants",
            "add",
            "--id",
            "umbrella",
            "--name",
            "Umbrella",
            "--payer",
            "444444444444",
            "--history-start",
            "2026-01-01",
            "--gcp-billing-account",
            "01A2B3C4D5E6F7A8B9",
        ],
    )
    assert result.exit_code != 0 and "billing_accounts.gcp" in result.output and "Traceback" not in result.output
    assert not (get_settings().tenants_dir / "umbrella.yaml").exists()


def test_an_azure_account_matches_in_each_spelling_its_exports_use():
    from blocks_pipelines.tenants import billing_accounts as ba

    # an EA enrollment registered by its number matches the export's full path; an MCA account by its GUID
    assert ba.matches("azure", ["12345678"], "/providers/Microsoft.Billing/billingAccounts/12345678")
    assert ba.matches("azure", ["8a1b2c3d-0000-4a00-9000-000000000002"], AZURE_MCA)
    assert ba.matches("azure", [AZURE_PATH], AZURE_PATH + "/billingProfiles/ABCD-EFGH-IJK-LMN")
    assert not ba.matches("azure", ["12345678"], "/providers/Microsoft.Billing/billingAccounts/12345679")
    assert ba.matches("gcp", ["01a2b3-c4d5e6-f7a8b9"], "01A2B3-C4D5E6-F7A8B9")
    # the shapes never overlap: 12 digits are an AWS account, never an EA enrollment
    assert ba.family_of_id("333333333333") == "aws" and ba.family_of_id("12345678") == "azure"
    assert ba.family_of_id("3333333333330") is None
