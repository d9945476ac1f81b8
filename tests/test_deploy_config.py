"""The production instance config (dagster.prod.yaml, docs/deploy.md) passes Dagster's own validation: the instance
schema, then each configurable class's schema (EcsRunLauncher, S3ComputeLogManager, QueuedRunCoordinator), as
DagsterInstance does when it loads; the ECS launcher and S3 log manager are then built against moto."""

import shutil
from pathlib import Path

import boto3
import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes import ConfigurableClassData

PROD = Path(__file__).resolve().parents[1] / "dagster.prod.yaml"
ENV = {
    "DAGSTER_PG_HOST": "db.internal",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "secret",
    "DAGSTER_PG_DB": "dagster",
    "BLOCKS_ECS_CLUSTER": "blocks",
    "BLOCKS_DAGSTER_LOGS_BUCKET": "blocks-logs",
    "AWS_REGION": "us-east-1",
}
CLASSES = ("run_launcher", "compute_logs", "run_coordinator")


@pytest.fixture
def prod_env(monkeypatch, tmp_path):
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROD, home / "dagster.yaml")
    return home


def _class_data(section: dict) -> ConfigurableClassData:
    return ConfigurableClassData(section["module"], section["class"], yaml.safe_dump(section.get("config", {})))


def _class_config(section: dict) -> dict:
    data = _class_data(section)
    klass = getattr(__import__(data.module_name, fromlist=[data.class_name]), data.class_name)
    result = process_config(resolve_to_config_type(klass.config_type()), data.config_dict)
    assert result.success, f"{section['class']}: {[e.message for e in result.errors]}"
    return result.value


def test_the_production_config_passes_dagsters_instance_schema(prod_env):
    config, custom_class = dagster_instance_config(str(prod_env))
    assert custom_class is None
    assert set(config["storage"]) == {"postgres"}
    assert config["run_launcher"]["class"] == "EcsRunLauncher"
    assert config["compute_logs"]["class"] == "S3ComputeLogManager"
    assert config["sensors"]["use_threads"] is True


def test_each_configurable_class_accepts_its_section(prod_env):
    sections = yaml.safe_load(PROD.read_text())
    launcher = _class_config(sections["run_launcher"])
    assert launcher["run_task_kwargs"]["cluster"] == "blocks"  # {env: ...} resolved as the daemon will
    assert launcher["run_resources"] == {"cpu": "2048", "memory": "8192", "ephemeral_storage": 40}
    assert "BLOCKS_ENV=production" in launcher["env_vars"]
    assert _class_config(sections["compute_logs"])["bucket"] == "blocks-logs"
    coordinator = _class_config(sections["run_coordinator"])
    assert coordinator["tag_concurrency_limits"][0]["key"] == "blocks/tenant"


def test_a_misspelled_launcher_field_is_refused(prod_env):
    """The validation above can fail: the launcher's schema is strict outside its Permissive run_task_kwargs."""
    section = yaml.safe_load(PROD.read_text())["run_launcher"]
    section["config"]["run_resource"] = section["config"].pop("run_resources")
    with pytest.raises(DagsterInvalidConfigError, match="run_resource"):
        _class_data(section).rehydrate()


def test_a_missing_environment_variable_is_named(prod_env, monkeypatch):
    monkeypatch.delenv("BLOCKS_ECS_CLUSTER")
    with pytest.raises(DagsterInvalidConfigError, match="BLOCKS_ECS_CLUSTER"):
        _class_data(yaml.safe_load(PROD.read_text())["run_launcher"]).rehydrate()


def test_launcher_and_log_manager_are_built_from_it_against_moto(prod_env, aws_env, monkeypatch):
    """What the daemon does at start. Launching a task needs the ECS task metadata endpoint of a real task: not here."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    boto3.client("s3", endpoint_url=aws_env).create_bucket(Bucket="blocks-logs")
    sections = yaml.safe_load(PROD.read_text())
    launcher = _class_data(sections["run_launcher"]).rehydrate()
    assert type(launcher).__name__ == "EcsRunLauncher"
    assert launcher.run_task_kwargs == {"cluster": "blocks"} and launcher.secrets_tags == ["blocks-dagster"]
    assert launcher.propagate_tags == {"allow_list": ["blocks/tenant", "blocks/proposal_id"]}
    logs = _class_data(sections["compute_logs"]).rehydrate()
    assert type(logs).__name__ == "S3ComputeLogManager"
    assert logs._s3_bucket == "blocks-logs"  # noqa: SLF001
